"""`logtail` command line (events.md §6). Each command lives in its own module; this file only wires them."""

from __future__ import annotations

import typer

from logtail.commands.check import check_command
from logtail.commands.parse import parse_command
from logtail.commands.replay import replay_command
from logtail.commands.run import run_command
from logtail.commands.stats import stats_command

app = typer.Typer(
    name="logtail",
    help="Ship LibreChat's Winston logs as OpenTelemetry logs and metrics.",
    no_args_is_help=True,
    add_completion=False,
)

app.command("check")(check_command)
app.command("parse")(parse_command)
app.command("replay")(replay_command)
app.command("run")(run_command)
app.command("stats")(stats_command)
