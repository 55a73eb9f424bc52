"""`logtail run`: the service. Follows LibreChat's live log files, ships them, checkpoints what was acknowledged.

This module only wires the parts: configuration, logging, the exporter, the optional health endpoint,
systemd notifications and signals around `logtail.source.Tailer`. SIGTERM or SIGINT stops reading; the
batch in hand is shipped for up to `DRAIN_SECONDS`, checkpoints are saved and the process exits 0.
"""

from __future__ import annotations

import enum
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Final

import typer

from logtail.config import ConfigError, ConfigOption, EndpointOption, ProtocolOption, SetOption, load_config, safe_url
from logtail.export import build_sink
from logtail.pipeline import Pipeline
from logtail.service import heap
from logtail.service.health import start_health_server
from logtail.service.journal import configure_logging
from logtail.service.notify import Notifier
from logtail.service.selfmetrics import SelfMetrics
from logtail.source.tailer import Tailer, Timing, followed

EXIT_OK: Final = 0
EXIT_BAD_INPUT: Final = 2
# After a stop request the batch in hand may take this long to be acknowledged; then it is left for the next start.
DRAIN_SECONDS: Final = 6.0
DEFAULTS: Final = Timing()

log = logging.getLogger("logtail.commands.run")


class StartAt(enum.StrEnum):
    beginning = "beginning"
    end = "end"


def run_command(
    logs_dir: Annotated[
        Path | None, typer.Option(metavar="DIR", help="LibreChat's logs directory (source.logs_dir)")
    ] = None,
    login_log: Annotated[
        Path | None, typer.Option(metavar="FILE", help="v0.7 login-logs.log, outside the logs directory")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(metavar="DIR", help="where checkpoints are kept (default /var/lib/logtail)")
    ] = None,
    start_at: Annotated[
        StartAt | None,
        typer.Option(help="files without a checkpoint at the first start (later files: always from the beginning)"),
    ] = None,
    endpoint: EndpointOption = None,
    protocol: ProtocolOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, metavar="SECONDS", help="read every file at least this often")
    ] = DEFAULTS.poll_interval,
    flush_after: Annotated[
        float,
        typer.Option(min=0.01, metavar="SECONDS", help="send a file's last record after it stopped growing this long"),
    ] = DEFAULTS.flush_after,
) -> None:
    """Follow the live log files, ship them as OTLP logs and metrics, and checkpoint what was acknowledged."""
    flags = {
        "source.logs_dir": logs_dir,
        "source.login_log": login_log,
        "source.state_dir": state_dir,
        "source.start_at": start_at.value if start_at else None,
        "export.endpoint": endpoint,
        "export.protocol": protocol.value if protocol else None,
    }
    overrides = [f"{key}={value}" for key, value in flags.items() if value is not None]
    try:
        settings = load_config(config, overrides=[*overrides, *(set_ or [])])
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    source = settings.source
    if not source.logs_dir.is_dir():
        print(f"logtail run: logs directory {source.logs_dir} does not exist or is not a directory", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT)
    configure_logging(settings.self.log_format, settings.self.log_level)

    self_metrics = SelfMetrics()
    halt = threading.Event()  # set when draining has taken long enough: the sink gives up its batch
    try:
        health = start_health_server(address, self_metrics) if (address := settings.self.health_address) else None
    except OSError as exc:
        print(f"self.health_address: cannot listen on {address}: {exc.strerror or exc}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    shipper = build_sink(settings, self_metrics=self_metrics, stop=halt)
    notifier = Notifier()
    tailer = Tailer(
        source,
        shipper,
        self_metrics,
        pipeline=Pipeline(settings.privacy, error_family="error" in followed(source)),
        request_records=settings.export.batch_max_records,
        timing=Timing(poll_interval=poll_interval, scan_interval=max(10 * poll_interval, 1.0), flush_after=flush_after),
        on_ready=lambda files: notifier.ready(f"following {files} files in {source.logs_dir}"),
        on_beat=notifier.beat,
    )

    def drain() -> None:
        notifier.stopping()
        tailer.stop()
        timer = threading.Timer(DRAIN_SECONDS, halt.set)
        timer.daemon = True
        timer.start()

    signals: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Asked twice: give up the batch in hand now (it is read again at the next start).
        again = bool(signals)
        signals.append(signum)
        log.info("signal %d: %s", signum, "stopping now" if again else "stopping")
        # Event.set takes a lock the interrupted main thread may hold: do it from another thread.
        threading.Thread(target=halt.set if again else drain, daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    log.info("shipping %s to %s", source.logs_dir, safe_url(settings.export.endpoint))
    heap.settle()
    try:
        tailer.run()
    finally:
        halt.set()
        shipper.close()
        if health is not None:
            health.close()
    raise typer.Exit(EXIT_OK)
