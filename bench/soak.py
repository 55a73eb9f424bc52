"""A long soak of `logtail run` against LibreChat's rotation with crashes, outages and a moved collector.

`python -m bench.soak --minutes 20` (`make soak`; not part of `make test` or `make bench`): LibreChat's
error and debug files are written at `--rate` records/s and rotated as its winston-daily-rotate-file does
(by size, by date — a simulated day passes every `--day-seconds` — with gzip, then unlink), and archives
older than `--retention` seconds are deleted. Meanwhile, at random moments: SIGKILLs of the service (ten in
20 minutes), collector outages of 10 to 60 s (three), one collector restart on a new port that the service is
refused on until it is restarted with the new endpoint, and the logs directory made unreadable for 5 s (the
service runs without the capabilities that let root read anything). Counts scale with `--minutes`.

At the end it prints records written, received distinct, lost, duplicates (bound: one batch per kill), the
service's memory (PSS of its process tree) over time with its slope, its open descriptors over time and the
longest delay from an append to the first sight of the record at the receiver.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import orjson

from bench.measure import tree, usage
from fixtures.generate import RotatingWriter
from logtail.devcollector.collector import DevCollector
from parsers.event import iso_from_nanos

LOGTAIL: Final = str(Path(sys.executable).with_name("logtail"))
BATCH: Final = 512  # export.batch_max_records: the duplicate bound per kill
DAY_NS: Final = 86400 * 1_000_000_000
# Without these the service, running as root, could read the logs directory whatever its mode.
WARM_UP: Final = 10.0  # seconds after a (re)start before memory is sampled
NO_DAC: Final = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


class Writer(threading.Thread):
    """LibreChat at `rate` records/s over the error and debug files; records `soak-N`, N from 0."""

    def __init__(self, logs: Path, rate: float, day_seconds: float, max_size: int) -> None:
        super().__init__(daemon=True)
        self.files = RotatingWriter(logs, max_size=max_size, gzip=True)
        self.rate = rate
        self.day_seconds = day_seconds
        self.appended = array("d")  # wall time of each append, by N
        self.halt = threading.Event()
        self.lock = threading.Lock()  # held while writing: retention never deletes a file being finished

    def run(self) -> None:
        began = time.monotonic()
        pad = "p" * 160
        while not self.halt.is_set():
            due = int((time.monotonic() - began) * self.rate)
            with self.lock:
                while len(self.appended) < due:
                    n = len(self.appended)
                    # The day moves on every `day_seconds`: LibreChat's date rotation, compressed.
                    stamp = time.time_ns() + int((time.monotonic() - began) / self.day_seconds) * DAY_NS
                    iso = iso_from_nanos(stamp)
                    if n % 2:
                        data = f'{iso} debug: soak-{n} {pad}\n{{\n  tokens: {n % 97},\n  model: "gpt-4o"\n}}\n'
                        self.files.write("debug", stamp, data.encode())
                    else:
                        line = {"level": "error", "message": f"soak-{n} {pad}", "timestamp": iso}
                        self.files.write("error", stamp, orjson.dumps(line) + b"\n")
                    self.files.flush()
                    self.appended.append(time.time())
            self.halt.wait(0.01)

    def stop(self) -> None:
        self.halt.set()
        self.join()
        with self.lock:
            self.files.close()


@dataclass
class Receiver:
    """Tails the collectors' output files: how often each record arrived, and the longest append→arrival."""

    appended: array[float]
    outs: list[Path] = field(default_factory=list)
    seen: Counter[int] = field(default_factory=Counter)
    longest_delay: float = 0.0
    _offsets: dict[Path, int] = field(default_factory=dict)

    def poll(self) -> None:
        now = time.time()
        for out in list(self.outs):
            with contextlib.suppress(FileNotFoundError), out.open("rb") as stream:
                stream.seek(self._offsets.get(out, 0))
                data = stream.read()
            whole = data[: data.rfind(b"\n") + 1]
            self._offsets[out] = self._offsets.get(out, 0) + len(whole)
            for line in whole.splitlines():
                row = orjson.loads(line)
                if row.get("signal") != "log":
                    continue
                body = str(row["body"])
                if not body.startswith("soak-"):
                    continue
                n = int(body.split()[0][5:])
                if n not in self.seen:
                    self.longest_delay = max(self.longest_delay, now - self.appended[n])
                self.seen[n] += 1


class Service:
    """`logtail run` as a process with its output appended to one log."""

    def __init__(self, logs: Path, state: Path, log: Path) -> None:
        self.logs, self.state, self.log = logs, state, log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.started = 0.0  # monotonic time of the last (re)start

    def start(self, endpoint: str) -> None:
        command = [*NO_DAC, LOGTAIL, "run", "--logs-dir", str(self.logs), "--state-dir", str(self.state)]
        command += ["--endpoint", endpoint, "--start-at", "beginning", "--set", f"export.batch_max_records={BATCH}"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def kill(self) -> None:
        assert self.process is not None
        members = tree(self.process.pid)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def sample(self) -> tuple[int, int] | None:
        """(PSS bytes, open descriptors) of the service's process tree; None while it warms up after a start."""
        if self.process is None or self.process.poll() is not None or time.monotonic() - self.started < WARM_UP:
            return None
        fds = 0
        for pid in tree(self.process.pid):
            with contextlib.suppress(OSError):
                fds += len(os.listdir(f"/proc/{pid}/fd"))
        return usage(self.process.pid).rss, fds


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def plan(minutes: float, rng: random.Random) -> list[tuple[float, str, float]]:
    """(seconds from the start, fault, its duration) in time order, scaled from the 20-minute plan."""
    span = minutes * 60
    scale = minutes / 20
    longest = min(60.0, max(10.0, span / 6))
    faults = [(rng.uniform(0.05, 0.85) * span, "kill", 0.0) for _ in range(max(1, round(10 * scale)))]
    faults += [
        (rng.uniform(0.05, 0.8) * span, "outage", rng.uniform(10, longest)) for _ in range(max(1, round(3 * scale)))
    ]
    faults += [(rng.uniform(0.3, 0.7) * span, "new-port", 15.0), (rng.uniform(0.1, 0.9) * span, "unreadable", 5.0)]
    return sorted(faults)


def soak(minutes: float, rate: float, day_seconds: float, retention: float | None, max_size: int, seed: int) -> int:
    rng = random.Random(seed)
    retention = retention or max(60.0, minutes * 60 / 5)
    base = Path(tempfile.mkdtemp(prefix="logtail-soak-"))
    os.chmod(base, 0o755)
    logs, state = base / "logs", base / "state"
    logs.mkdir()
    collectors = [DevCollector(workdir=base / "collector-0").start()]
    writer = Writer(logs, rate, day_seconds, max_size)
    receiver = Receiver(writer.appended, [collectors[0].out])
    service = Service(logs, state, base / "logtail.log")
    samples: list[tuple[float, int, int]] = []
    deleted: list[Path] = []  # archives removed by retention
    faults = plan(minutes, rng)
    print(
        f"soak: {minutes:g} min at {rate:g} records/s in {base}; faults: "
        + ", ".join(f"{kind}@{at:.0f}s" for at, kind, _ in faults),
        flush=True,
    )
    began = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - began

    def tick(until: float) -> None:
        """Sample, tail the receiver and apply retention until `until` seconds from the start."""
        while elapsed() < until:
            receiver.poll()
            if (row := service.sample()) is not None and (not samples or elapsed() - samples[-1][0] >= 5):
                samples.append((elapsed(), *row))
            with writer.lock:
                cutoff = time.time() - retention
                for archive in logs.glob("*.gz"):
                    with contextlib.suppress(FileNotFoundError):
                        if archive.stat().st_mtime < cutoff:
                            archive.unlink()
                            deleted.append(archive)
            time.sleep(0.5)

    actions: dict[str, Callable[[float], None]] = {}

    def kill(_: float) -> None:
        service.kill()
        service.start(collectors[-1].http_endpoint)

    def outage(seconds: float) -> None:
        collectors[-1].stop()  # not a kill: rotel answers before its hook writes (SECURITY.md)
        tick(elapsed() + seconds)
        collectors[-1].start()

    def new_port(seconds: float) -> None:
        collectors[-1].stop()
        moved = DevCollector(workdir=base / f"collector-{len(collectors)}").start()
        collectors.append(moved)
        receiver.outs.append(moved.out)
        tick(elapsed() + seconds)  # the service is refused on the old port meanwhile
        service.stop()  # the operator points it at the new port
        service.start(moved.http_endpoint)

    def unreadable(seconds: float) -> None:
        os.chmod(logs, 0o000)  # LibreChat (root here) writes on; only the service is locked out
        tick(elapsed() + seconds)
        os.chmod(logs, 0o755)

    actions.update({"kill": kill, "outage": outage, "new-port": new_port, "unreadable": unreadable})
    service.start(collectors[0].http_endpoint)
    writer.start()
    try:
        for at, kind, seconds in faults:
            tick(at)
            print(f"  {elapsed():6.0f} s  {kind}" + (f" for {seconds:.0f} s" if seconds else ""), flush=True)
            actions[kind](seconds)
        tick(minutes * 60)
    finally:
        writer.stop()
    written = len(writer.appended)
    drain_began = time.monotonic()
    while len(receiver.seen) < written and time.monotonic() - drain_began < 300:
        tick(elapsed() + 1)
    drained = time.monotonic() - drain_began
    code = service.stop()
    for collector in collectors:
        collector.stop()
    receiver.poll()

    lost = written - len(receiver.seen)
    duplicates = sum(n - 1 for n in receiver.seen.values())
    bound = (service.kills + 1) * BATCH  # one batch per kill, and one for the restart on the new port
    rss = [(t / 60, pss / 2**20) for t, pss, _ in samples]
    fds = [f for _, _, f in samples]
    print(f"records written      {written:,} ({len(deleted)} archives deleted by the {retention:.0f} s retention)")
    print(f"received distinct    {len(receiver.seen):,} (drained {drained:.0f} s after writing stopped)")
    print(f"lost                 {lost:,}")
    print(f"duplicates           {duplicates:,} (bound {bound:,}: one batch per kill, {service.kills} kills)")
    print("memory (PSS, MiB)    " + " ".join(f"{m:.0f}" for _, m in rss[:: max(1, len(rss) // 12)]))
    late = [point for point in rss if point[0] >= minutes / 2]
    print(
        f"memory slope         {slope(rss):+.2f} MiB/min over {len(rss)} samples, {slope(late):+.2f} in the second half"
    )
    print(
        "open descriptors     "
        + " ".join(str(f) for f in fds[:: max(1, len(fds) // 12)])
        + f" (max {max(fds, default=0)})"
    )
    print(f"longest append→receiver delay  {receiver.longest_delay:.1f} s")
    print(f"service exit         {code}; its log: {base / 'logtail.log'}")
    ok = lost == 0 and duplicates <= bound and code == 0
    if ok:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0, help="records per second (default 500)")
    parser.add_argument("--day-seconds", type=float, default=60.0, help="a simulated day passes this often")
    parser.add_argument(
        "--retention",
        type=float,
        help="archives older than this (seconds) are deleted; default a fifth of the run",
    )
    parser.add_argument("--max-size", type=int, default=1 << 20, help="size rotation in bytes (LibreChat: 20 MB)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    sys.exit(soak(args.minutes, args.rate, args.day_seconds, args.retention, args.max_size, args.seed))


if __name__ == "__main__":
    main()
