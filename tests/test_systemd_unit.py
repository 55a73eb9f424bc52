"""deploy/logtail.service: systemd accepts it, its hardening scores <= 2.0, and it fits what logtail does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from logtail.cli import app
from logtail.commands.check import EXIT_CONFIG
from logtail.config import DEFAULT_PATH, SourceConfig

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "logtail.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")
HOST_UNITS = Path("/usr/lib/systemd/system")


def directives() -> dict[str, list[str]]:
    """`Key` -> every value it is given, in order (systemd allows repeating keys)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_runs_logtail_as_a_notify_service_with_a_watchdog() -> None:
    unit = directives()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == [f"/usr/local/bin/logtail run --config {DEFAULT_PATH}"]
    assert unit["Restart"] == ["on-failure"]
    assert int(unit["WatchdogSec"][0].removesuffix("s")) >= 10
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["logtail"]
    assert unit["ProtectSystem"] == ["strict"]  # so the logs are read-only to it


def test_execstart_names_a_command_and_options_logtail_has() -> None:
    [exec_start] = directives()["ExecStart"]
    _, command, *options = exec_start.split()
    run = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    known = {opt for param in run.params for opt in param.opts}
    assert {o for o in options if o.startswith("--")} <= known


def test_the_state_directory_systemd_creates_is_logtails_default() -> None:
    """StateDirectory=logtail is /var/lib/logtail: the checkpoints go where the configuration looks by default."""
    [name] = directives()["StateDirectory"]
    assert SourceConfig.model_fields["state_dir"].default == Path("/var/lib") / name


def test_a_bad_configuration_is_not_restarted_in_a_loop() -> None:
    assert directives()["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    if not HOST_UNITS.is_dir():
        pytest.skip(f"{HOST_UNITS} is missing: verify needs the standard targets the unit refers to")
    # An alternative root holding the host's standard units, the unit and an executable where ExecStart
    # points: verify checks that ExecStart exists, and logtail is not installed system-wide on a dev machine.
    shutil.copytree(HOST_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system/logtail.service")
    exe = tmp_path / "usr/local/bin/logtail"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    done = subprocess.run(
        [str(ANALYZE), "verify", f"--root={tmp_path}", "logtail.service"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Unknown keys and unparsable values are only warnings with exit 0, so any output is a failure.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_analyze
def test_hardening_exposure_is_at_most_2() -> None:
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for logtail\.service: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match[1]) <= 2.0
