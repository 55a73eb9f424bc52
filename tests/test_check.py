"""`logtail check`: exit 0 / 2 / 3, one line per problem naming the key, against a real collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logtail.commands.check import EXIT_CONFIG, EXIT_ENDPOINT, EXIT_OK, load_checked, run_check
from logtail.config import ConfigError
from logtail.devcollector.collector import DevCollector, free_port


@pytest.fixture
def dirs(tmp_path: Path) -> list[str]:
    (tmp_path / "logs").mkdir()
    return [f"source.logs_dir={tmp_path / 'logs'}", f"source.state_dir={tmp_path / 'state'}"]


def check(overrides: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = run_check(None, overrides, env={})
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_a_good_configuration_reaches_the_collector_and_exits_0(
    protocol: str, collector: DevCollector, dirs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    code, problems, out = check([*dirs, f"export.endpoint={endpoint}", f"export.protocol={protocol}"], capsys)
    assert (code, problems) == (EXIT_OK, [])
    assert out.startswith("ok: ") and f"{protocol} {endpoint} accepted an export" in out


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_an_unreachable_endpoint_alone_exits_3_naming_export_endpoint(
    protocol: str, dirs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, problems, out = check([*dirs, f"export.endpoint={endpoint}", f"export.protocol={protocol}"], capsys)
    assert code == EXIT_ENDPOINT and out == ""
    [line] = problems
    assert line.startswith("export.endpoint: 127.0.0.1:" if protocol == "grpc" else f"export.endpoint: {endpoint}/")
    assert "refused" in line.lower() or "UNAVAILABLE" in line


def test_an_unresolvable_host_is_reported_as_such(dirs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, problems, _ = check([*dirs, "export.endpoint=http://no-such-host.invalid:4318"], capsys)
    assert code == EXIT_ENDPOINT
    assert problems[0].startswith("export.endpoint: cannot resolve no-such-host.invalid")


def test_a_wrong_path_is_an_http_error_with_a_hint(
    collector: DevCollector, dirs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, problems, _ = check([*dirs, f"export.endpoint={collector.http_endpoint}/api/default"], capsys)
    assert code == EXIT_ENDPOINT
    assert problems == [
        f"export.endpoint: {collector.http_endpoint}/api/default/v1/logs: HTTP 404 (check the path in export.endpoint)"
    ]


def test_missing_directories_exit_2_even_when_the_endpoint_is_down_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, problems, _ = check(
        [
            f"source.logs_dir={tmp_path / 'absent'}",
            f"source.state_dir={blocker}",
            f"source.login_log={tmp_path / 'login-logs.log'}",
            f"export.endpoint=http://127.0.0.1:{free_port()}",
        ],
        capsys,
    )
    assert code == EXIT_CONFIG
    assert problems[:3] == [
        f"source.logs_dir: no such directory: {tmp_path / 'absent'}",
        f"source.login_log: no such file: {tmp_path / 'login-logs.log'}",
        f"source.state_dir: not a directory: {blocker}",
    ]
    assert problems[3].startswith("export.endpoint: ")


def test_half_a_client_certificate_is_a_configuration_error(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("")
    code, problems, _ = check([*dirs, f"export.tls.cert_file={cert}", "export.endpoint=http://127.0.0.1:1"], capsys)
    assert code == EXIT_CONFIG
    assert "export.tls: cert_file and key_file go together; set both or neither" in problems


def test_a_bad_file_exits_2_before_any_network_access(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "logtail.toml"
    config.write_text(f'[source]\nlogs_dir = "{tmp_path}"\nfamilies = "all"\n[export]\nendpont = "http://x"\n')
    code = run_check(config, [], env={})
    _, err = capsys.readouterr()
    assert code == EXIT_CONFIG
    assert err.splitlines() == [
        f"source.families ({config}): Input should be a valid dictionary or instance of Families, got 'all'",
        f"export.endpont ({config}): unknown key; did you mean 'endpoint'?",
    ]


def test_the_service_refuses_a_configuration_whose_directories_are_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_checked(None, [f"source.logs_dir={tmp_path / 'gone'}"], env={})
    assert caught.value.problems[0] == f"source.logs_dir: no such directory: {tmp_path / 'gone'}"


def test_the_command_line_prints_lines_not_tracebacks(tmp_path: Path) -> None:
    config = tmp_path / "logtail.toml"
    config.write_text("[source\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOGTAIL_"))}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("logtail")), "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == EXIT_CONFIG
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"{config}: invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 8)"
    ]
