"""`logtail check`: is this configuration good enough to run the service?

Exit 0 when everything is fine, 2 when the configuration or a local path is wrong, 3 when the configuration
is fine but the endpoint does not accept an export. One line per problem, naming the key; never a traceback.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import typer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from logtail.config import Config, ConfigError, ConfigOption, SetOption, load_config, safe_url
from logtail.export import open_transports
from logtail.export.profiles import destination

EXIT_OK: Final = 0
EXIT_CONFIG: Final = 2
EXIT_ENDPOINT: Final = 3


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


def probe_endpoint(config: Config) -> str | None:
    """Send one empty log export exactly as the service will (same profile URL, headers, TLS and transport);
    None when accepted, else why not."""
    export = config.export
    dest = destination(config)
    host = urllib.parse.urlsplit(export.endpoint).hostname or ""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"export.endpoint: cannot resolve {host}: {exc.strerror}"
    where = dest.logs.grpc_target + " (gRPC)" if export.protocol == "grpc" else safe_url(dest.logs.url)
    # Some receivers refuse a bare `{}`; an explicit empty list is the canonical empty request.
    body = b'{"resourceLogs":[]}' if export.protocol == "http/json" else ExportLogsServiceRequest().SerializeToString()
    try:
        transport = open_transports(config, dest)["logs"]
        try:
            answer = transport.send("logs", body)
        finally:
            transport.close()
    except Exception as exc:  # an operator tool reports, it does not crash (unreadable CA file, bad cert…)
        return f"export.endpoint: {where}: {type(exc).__name__}: {exc}"
    if answer.kind == "ok" and not answer.rejected:
        return None
    if answer.status == "timeout":
        return f"export.endpoint: {where}: no answer within export.timeout ({export.timeout:g} s)"
    if answer.status == "connection error":
        return f"export.endpoint: {where}: cannot connect: {answer.message}"
    hint = {"HTTP 401": " (check export.headers)", "HTTP 403": " (check export.headers)"}
    hint["HTTP 404"] = " (check the path in export.endpoint)"
    return f"export.endpoint: {where}: {answer.status}{hint.get(answer.status, '')}"


def run_check(config_path: Path | None, overrides: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Prints one line per problem on stderr and a short summary on stdout; returns the exit code."""
    try:
        config = load_config(config_path, env=env, overrides=overrides)
    except ConfigError as exc:
        _report(exc.problems)
        return EXIT_CONFIG
    local = path_problems(config)
    started = time.monotonic()
    unreachable = probe_endpoint(config)
    _report([*local, *([unreachable] if unreachable else [])])
    if local:
        return EXIT_CONFIG
    if unreachable:
        return EXIT_ENDPOINT
    elapsed = (time.monotonic() - started) * 1000
    typer.echo(
        f"ok: logs {config.source.logs_dir}, state {config.source.state_dir}, "
        f"{config.export.protocol} {safe_url(config.export.endpoint)} accepted an export in {elapsed:.0f} ms"
    )
    return EXIT_OK


def _report(problems: Sequence[str]) -> None:
    for line in problems:
        print(line, file=sys.stderr)


def check_command(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Validate the configuration, the logs and state directories, and reach the endpoint."""
    raise typer.Exit(run_check(config, set_ or []))
