"""`logtail check`: is this configuration good enough to run the service?

Exit 0 when everything is fine, 2 when the configuration or a local path is wrong, 3 when the configuration
is fine but the endpoint does not accept an export. One line per problem, naming the key; never a traceback.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import grpc
import httpx
import typer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

from logtail.config import Config, ConfigError, ConfigOption, ExportConfig, SetOption, load_config

EXIT_OK: Final = 0
EXIT_CONFIG: Final = 2
EXIT_ENDPOINT: Final = 3

_CONTENT_TYPES: Final = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}


def path_problems(config: Config) -> list[str]:
    """What is wrong with the paths the service reads and writes, as the current user sees them."""
    source = config.source
    problems = _directory("source.logs_dir", source.logs_dir, os.R_OK | os.X_OK, "readable")
    if source.login_log is not None and source.families.login:
        if not source.login_log.is_file():
            problems.append(f"source.login_log: no such file: {source.login_log}")
        elif not os.access(source.login_log, os.R_OK):
            problems.append(f"source.login_log: not readable by this user: {source.login_log}")
    if source.state_dir.exists():
        problems += _directory("source.state_dir", source.state_dir, os.W_OK | os.X_OK, "writable")
    elif not os.access(_existing_parent(source.state_dir), os.W_OK | os.X_OK):
        problems.append(f"source.state_dir: does not exist and cannot be created: {source.state_dir}")
    tls = config.export.tls
    for key, file in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        if file is not None and not os.access(file, os.R_OK):
            problems.append(f"export.tls.{key}: no readable file at {file}")
    if (tls.cert_file is None) != (tls.key_file is None):
        problems.append("export.tls: cert_file and key_file go together; set both or neither")
    return problems


def _directory(key: str, path: Path, mode: int, wanted: str) -> list[str]:
    if not path.exists():
        return [f"{key}: no such directory: {path}"]
    if not path.is_dir():
        return [f"{key}: not a directory: {path}"]
    if not os.access(path, mode):
        return [f"{key}: not {wanted} by this user: {path}"]
    return []


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def load_checked(path: Path | None, overrides: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Config:
    """The configuration the service may start with; ConfigError (exit 2) otherwise."""
    config = load_config(path, env=env, overrides=overrides)
    problems = path_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def probe_endpoint(export: ExportConfig) -> str | None:
    """Send one empty log export the way the service will; None when accepted, else why not."""
    url = urllib.parse.urlsplit(export.endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"export.endpoint: cannot resolve {host}: {exc.strerror}"
    try:
        if export.protocol == "grpc":
            return _probe_grpc(export, host, port, url.scheme == "https")
        return _probe_http(export)
    except Exception as exc:  # an operator tool reports, it does not crash
        return f"export.endpoint: {export.endpoint}: {type(exc).__name__}: {exc}"


def _ssl_context(export: ExportConfig) -> ssl.SSLContext:
    tls = export.tls
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _probe_http(export: ExportConfig) -> str | None:
    url = f"{export.endpoint}/v1/logs"
    # Some receivers refuse a bare `{}`; an explicit empty list is the canonical empty request.
    body = b'{"resourceLogs":[]}' if export.protocol == "http/json" else ExportLogsServiceRequest().SerializeToString()
    headers = {**export.headers, "Content-Type": _CONTENT_TYPES[export.protocol]}
    try:
        with httpx.Client(verify=_ssl_context(export), timeout=export.timeout) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return f"export.endpoint: {url}: no answer within export.timeout ({export.timeout:g} s)"
    except httpx.TransportError as exc:
        return f"export.endpoint: {url}: cannot connect: {_reason(exc)}"
    if response.is_success:
        return None
    hint = {401: " (check export.headers)", 403: " (check export.headers)", 404: " (check the path in export.endpoint)"}
    return f"export.endpoint: {url}: HTTP {response.status_code}{hint.get(response.status_code, '')}"


def _reason(exc: BaseException) -> str:
    # httpx wraps the OS error; its innermost cause reads best ("[Errno 111] Connection refused").
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def _probe_grpc(export: ExportConfig, host: str, port: int, secure: bool) -> str | None:
    target = f"{host}:{port}"
    if secure:
        tls = export.tls
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca_file.read_bytes() if tls.ca_file else None,
            private_key=tls.key_file.read_bytes() if tls.key_file else None,
            certificate_chain=tls.cert_file.read_bytes() if tls.cert_file else None,
        )
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    metadata = [(key.lower(), value) for key, value in export.headers.items()]
    try:
        stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.Export(ExportLogsServiceRequest(), timeout=export.timeout, metadata=metadata)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        name = code.name if code else "error"
        return f"export.endpoint: {target} (gRPC): {name}: {details}"
    finally:
        channel.close()
    return None


def run_check(config_path: Path | None, overrides: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Prints one line per problem on stderr and a short summary on stdout; returns the exit code."""
    try:
        config = load_config(config_path, env=env, overrides=overrides)
    except ConfigError as exc:
        _report(exc.problems)
        return EXIT_CONFIG
    local = path_problems(config)
    started = time.monotonic()
    unreachable = probe_endpoint(config.export)
    _report([*local, *([unreachable] if unreachable else [])])
    if local:
        return EXIT_CONFIG
    if unreachable:
        return EXIT_ENDPOINT
    elapsed = (time.monotonic() - started) * 1000
    typer.echo(
        f"ok: logs {config.source.logs_dir}, state {config.source.state_dir}, "
        f"{config.export.protocol} {config.export.endpoint} accepted an export in {elapsed:.0f} ms"
    )
    return EXIT_OK


def _report(problems: Sequence[str]) -> None:
    for line in problems:
        print(line, file=sys.stderr)


def check_command(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Validate the configuration, the logs and state directories, and reach the endpoint."""
    raise typer.Exit(run_check(config, set_ or []))
