"""Security review (SECURITY.md): no code execution from data, TLS verified unless switched off loudly,
credentials never in logtail's own output, files with exported content readable by their owner only."""

from __future__ import annotations

import ast
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest
from stub_backend import Reply, StubBackend
from test_export_tls import pki as pki
from test_export_tls import server_context
from typer.testing import CliRunner

from logtail.cli import app
from logtail.commands.check import run_check
from logtail.devcollector.collector import DevCollector, free_port

ROOT = Path(__file__).resolve().parent.parent
LOGTAIL = str(Path(sys.executable).with_name("logtail"))
RECORDS: Final = 3
HEADER_SECRET: Final = "SEKRIThdr-9f2c41d7"
KEY_SECRET: Final = "SEKRITkey-55aa0e13"
URL_SECRET: Final = "SEKRITurl-0b7d2e9c"

# --- no code execution from disk or configuration data -------------------------------------------------
_BAD_NAMES: Final = {"eval", "exec", "compile", "__import__"}
_BAD_ATTRS: Final = {
    ("os", "system"),
    ("os", "popen"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("marshal", "loads"),
    ("marshal", "load"),
}
_BAD_MODULES: Final = {"pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "jsonpickle"}


def dangerous(source: str, name: str) -> list[str]:
    """Calls that run code or a shell, or unpickle, found in `source` (one line each)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where}: import {m}" for m in modules if m.split(".")[0] in _BAD_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _BAD_NAMES:
            found.append(f"{where}: {func.id}()")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if (func.value.id, func.attr) in _BAD_ATTRS:
                found.append(f"{where}: {func.value.id}.{func.attr}()")
            if func.value.id == "importlib" and not all(isinstance(a, ast.Constant) for a in node.args):
                found.append(f"{where}: importlib.{func.attr}() of a computed name")
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{where}: shell=")
    return found


def test_scanner_finds_every_dangerous_form() -> None:
    source = (
        "import pickle\nfrom marshal import loads\nimport os, yaml, importlib, subprocess\n"
        "eval(x)\nexec(x)\ncompile(x, 'f', 'exec')\n__import__(x)\nos.system(x)\nos.popen(x)\n"
        "yaml.load(x)\nimportlib.import_module(x)\nsubprocess.run(x, shell=True)\n"
        "subprocess.run(['ls'], shell=False)\nre.compile(x)\nyaml.safe_load(x)\nimportlib.import_module('json')\n"
    )
    assert len(dangerous(source, "sample.py")) == 11


def test_no_shell_eval_exec_or_unpickling_anywhere_in_logtail_and_parsers() -> None:
    files = sorted([*ROOT.joinpath("logtail").rglob("*.py"), *ROOT.joinpath("parsers").rglob("*.py")])
    assert len(files) > 20
    found = [line for path in files for line in dangerous(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


# --- helpers ----------------------------------------------------------------------------------------------
def accept(records: object) -> Reply:
    return Reply()


def write_logs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"2025-11-24T23:25:0{n}.000Z info: record {n} with Bearer tok{n}abcdefghij\n" for n in range(RECORDS)]
    (folder / "debug-2025-11-24.log").write_text("".join(lines))
    return folder


def replay(logs: Path, endpoint: str, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOGTAIL, "replay", str(logs), "--endpoint", endpoint, "--state", str(state), "--deadline", "2", *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.umask(0),  # permissions must not depend on the caller's umask
    )


# --- TLS (the exporter's own: tests/test_export_tls.py) ------------------------------------------------------
def test_check_warns_loudly_when_tls_verification_is_off(pki: Path, tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs")
    with StubBackend(accept, server_context(pki)) as backend:
        settings = [f"source.logs_dir={logs}", f"source.state_dir={tmp_path}", f"export.endpoint={backend.endpoint}"]
        done = subprocess.run(
            [LOGTAIL, "check", *(f"--set={s}" for s in [*settings, "export.tls.insecure=true"])],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 0
    assert "VERIFICATION IS OFF" in done.stderr


# --- files holding exported content -------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_replay_state_and_dead_letters_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs")
    state = tmp_path / "state" / "replay.json"
    with StubBackend(lambda records: Reply(status=400, message="bad")) as backend:
        done = replay(logs, backend.endpoint, state)
    assert done.returncode == 0 and backend.requests, done.stderr
    dead = state.with_name("replay-dead-letters.jsonl")
    assert len(dead.read_text().splitlines()) == RECORDS
    for path in (state, dead):
        assert path.stat().st_mode & 0o777 == 0o600, path


def run_service(
    logs: Path, state: Path, endpoint: str, *extra: str, limit_files: int | None = None
) -> subprocess.Popen[str]:
    """`logtail run` from the beginning of the files, under umask 0 (and `limit_files` descriptors), stderr kept."""
    command = [LOGTAIL, "run", "--logs-dir", str(logs), "--state-dir", str(state), "--endpoint", endpoint]

    def limits() -> None:
        os.umask(0)
        if limit_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, limit_files))

    return subprocess.Popen(
        [*command, "--start-at", "beginning", "--poll-interval", "0.05", *extra],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limits,
    )


def stop_service(process: subprocess.Popen[str]) -> str:
    """SIGTERM, exit 0 expected; its stderr."""
    process.terminate()
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    return err


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition()


@pytest.mark.timeout(60)
def test_service_state_and_dead_letters_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    logs, state = write_logs(tmp_path / "logs"), tmp_path / "state"
    dead = state / "dead-letter.jsonl"
    with StubBackend(lambda records: Reply(status=400, message="bad")) as backend:
        process = run_service(logs, state, backend.endpoint)
        wait_until(lambda: dead.exists() and len(dead.read_text().splitlines()) == RECORDS)
        stop_service(process)
    (checkpoint,) = state.glob("*.json")
    for path in (checkpoint, dead):
        assert path.stat().st_mode & 0o777 == 0o600, path


# --- credentials never in logtail's own output --------------------------------------------------------------
def secrets_in(text: str) -> list[str]:
    return [s for s in (HEADER_SECRET, KEY_SECRET, URL_SECRET) if s in text]


@pytest.mark.timeout(120)
def test_headers_never_appear_in_logtail_output_even_at_debug_level(
    collector: DevCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replays that succeed, retry against a dead port and are refused, with every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    logs = write_logs(tmp_path / "logs")
    headers = f"export.headers=Authorization=Bearer {HEADER_SECRET},x-api-key={KEY_SECRET}"
    runner = CliRunner()
    output: list[str] = []
    with StubBackend(lambda records: Reply(status=401, message="who are you")) as backend:
        refusing = backend.endpoint
        for n, (endpoint, protocol) in enumerate(
            [
                (collector.http_endpoint, "http/protobuf"),
                (collector.grpc_endpoint, "grpc"),
                (f"http://127.0.0.1:{free_port()}", "http/protobuf"),
                (refusing, "http/json"),
            ]
        ):
            args = ["replay", str(logs), "--endpoint", endpoint, "--protocol", protocol, "--set", headers]
            result = runner.invoke(app, [*args, "--state", str(tmp_path / f"s{n}.json"), "--deadline", "1"])
            output.append(result.output)
    assert len(collector.wait_for_logs(2 * RECORDS)) == 2 * RECORDS
    settings = [f"source.logs_dir={logs}", f"source.state_dir={tmp_path}", headers]
    assert run_check(None, [*settings, f"export.endpoint={collector.http_endpoint}"], env={}) == 0
    assert run_check(None, [*settings, f"export.endpoint={refusing}"], env={}) == 3
    printed = capsys.readouterr()
    assert {"httpcore.http11", "logtail.export.shipper"} <= {r.name for r in caplog.records}  # DEBUG did reach us
    everything = "\n".join([caplog.text, *output, printed.out, printed.err])
    assert "export failed" in everything and "HTTP 401" in everything  # the failure paths did log
    assert secrets_in(everything) == []


def test_endpoint_credentials_never_appear_in_check_output(
    collector: DevCollector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = collector.http_endpoint.replace("http://", f"http://logtail:{URL_SECRET}@")
    settings = [f"source.logs_dir={write_logs(tmp_path / 'logs')}", f"source.state_dir={tmp_path}"]
    assert run_check(None, [*settings, f"export.endpoint={endpoint}"], env={}) == 0
    printed = capsys.readouterr()
    assert secrets_in(printed.out + printed.err) == []


def test_a_malformed_headers_variable_is_reported_without_its_value(tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization: Bearer {HEADER_SECRET}", "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [LOGTAIL, "check", "--set", f"source.logs_dir={tmp_path}", "--set", f"source.state_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2 and "OTEL_EXPORTER_OTLP_HEADERS" in done.stderr
    assert secrets_in(done.stdout + done.stderr) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_service_logs_no_credentials_at_debug_level(collector: DevCollector, tmp_path: Path) -> None:
    """Headers and endpoint userinfo, with self.log_level=debug, through a collector outage and back."""
    logs, state = write_logs(tmp_path / "logs"), tmp_path / "state"
    endpoint = collector.http_endpoint.replace("http://", f"http://logtail:{URL_SECRET}@")
    headers = f"export.headers=Authorization=Bearer {HEADER_SECRET},x-api-key={KEY_SECRET}"
    process = run_service(logs, state, endpoint, "--set", headers, "--set", "self.log_level=debug")
    assert len(collector.wait_for_logs(RECORDS)) == RECORDS
    collector.kill()
    with (logs / "debug-2025-11-24.log").open("a") as more:
        more.write("2025-11-24T23:26:00.000Z info: written while the collector is down\n")
    time.sleep(2.0)  # export attempts fail and are logged
    collector.start()
    assert len(collector.wait_for_logs(RECORDS + 1)) == RECORDS + 1
    err = stop_service(process)
    assert "shipping" in err and "export failed" in err  # the endpoint and the failure path were logged
    assert secrets_in(err) == []
