"""Container log files (Docker json-file, CRI): envelopes, partial lines, and the same events as LibreChat's files.

The fixtures under `fixtures/containers/` were written by LibreChat's own logger (`generate.py` there): one run
wrote the files and, with `CONSOLE_JSON=true`, the console that Docker and containerd wrapped.
"""

from __future__ import annotations

import gzip
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.containers.wrap import MAX_LINE, cri_entries, docker_entries
from logtail.devcollector.collector import DevCollector
from logtail.pipeline import Pipeline
from logtail.source.containers import detect
from logtail.source.files import discover, file_identity
from logtail.source.read import read_events
from parsers import FileContext, parse_record
from parsers.containers import ContainerRecord, ContainerSplitter
from parsers.event import Event
from parsers.records import Record
from tests.test_replay import replay

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "containers"
JSON, TEXT = HERE / "json", HERE / "text"
CONTAINER = "ab" * 32
WRAPPERS = {"docker": docker_entries, "cri": cri_entries}
# What says where a record was read, not what it is.
WHERE = ("log.file.", "logtail.file.", "log.record.uid", "log.iostream", "k8s.", "container.", "logtail.t")
# LibreChat cuts long strings itself: 100 characters + `... [truncated]` in the debug file's metadata block, 150 in
# its header, CONSOLE_JSON_STRING_LENGTH (255) + `...` on the JSON console; a cut value matches on its prefix.
# The meiliSync logger has no JSON console: its console lines are colourised text, without the error's details.
NOT_ON_MEILI_CONSOLE = ("exception.", "error.type", "librechat.meta.")


def events(path: Path, *, error_family: bool = False) -> list[Event]:
    out = [event for log_file in discover([path]) for event in read_events(log_file)]
    Pipeline(error_family=error_family).process(out)
    return out


def what(event: Event) -> dict[str, object]:
    return {k: v for k, v in event.attributes.items() if not k.startswith(WHERE)}


def same_value(a: object, b: object) -> bool:
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        a, b = a.strip(), b.strip()  # the debug file trims a message (`\n\nAn Uncaught …`), JSON lines keep it
        if a == b:
            return True
        for x, y in ((a, b), (b, a)):  # what comes before LibreChat's cut (an error's first line may follow it)
            if "..." in x and y.startswith(x[: x.index("...")]):
                return True
            if len(x) >= 40 and y.startswith(x):  # a debug header cut at 150 UTF-16 units, its marker parsed away
                return True
    return False


def covers(container: Event, file: Event, ignore: tuple[str, ...] = ()) -> bool:
    """The container's event says everything the file's says (values LibreChat cut match their prefix)."""
    mine, theirs = what(container), {k: v for k, v in what(file).items() if k not in ignore}
    if file.family == "meili":  # colourised text on the console: the name and the message, no metadata
        return container.event_name == file.event_name
    return container.event_name == file.event_name and all(
        key in mine and same_value(mine[key], value) for key, value in theirs.items()
    )


def test_partial_entries_are_joined_per_stream() -> None:
    long = b'{"level":"info","message":"' + b"x" * (2 * MAX_LINE) + b'"}'
    for family, wrap in WRAPPERS.items():
        data = wrap(long[:MAX_LINE], "stdout", 1) + wrap(b"warning on stderr", "stderr", 2)
        # the rest of the long stdout line, its first piece written before the stderr line
        data = wrap(long, "stdout", 1) + wrap(b"warning on stderr", "stderr", 2)
        pieces = data.splitlines(keepends=True)
        assert len(pieces) == 4
        data = b"".join([pieces[0], pieces[3], *pieces[1:3]])  # stderr between the first and second piece
        splitter = ContainerSplitter(family, 1 << 20)
        records = [r for i in range(0, len(data), 1000) for r in splitter.feed(data[i : i + 1000])]
        records += splitter.flush()
        # As they complete; a checkpoint after the stderr line stays before the long line, still being joined.
        assert [r.data for r in records] == [b"warning on stderr\n", long + b"\n"]
        assert [r.start for r in records] == [len(pieces[0]), 0]
        assert [r.end for r in records] == [0, len(data)]
        assert [r.stream for r in records if isinstance(r, ContainerRecord)] == ["stderr", "stdout"]


def test_other_output_is_a_record_per_line_and_holds_nothing_up() -> None:
    header = b"2025-11-24 23:25:00 \x1b[31merror\x1b[39m: \x1b[31mboom"
    lines = [(b"(node:1) Warning: one", "stderr"), (b'{"level":"info","message":"a"}', "stdout"), (header, "stdout")]
    lines += [(b"second line of the message\x1b[39m", "stdout"), (b"(node:1) Warning: two", "stderr")]
    splitter = ContainerSplitter("cri", 1 << 20)
    records = splitter.feed(b"".join(cri_entries(line, stream, 1) for line, stream in lines))
    assert [r.data for r in records] == [
        b"(node:1) Warning: one\n",
        b'{"level":"info","message":"a"}\n',
        b"(node:1) Warning: two\n",
    ]
    assert records[2].end == records[1].end  # the colourised record, still open, starts there
    assert splitter.pending  # the colourised record may go on
    rest = splitter.flush(final=False)
    assert [r.data for r in rest] == [header + b"\nsecond line of the message\x1b[39m\n"]
    ctx = FileContext("cri", "0.log", "0.log", "id")
    event = parse_record(rest[0], ctx)
    assert (event.severity_text, event.body) == ("error", "boom\nsecond line of the message")
    warning = parse_record(records[0], ctx)
    assert (warning.event_name, warning.time_unix_nano, warning.attributes["log.iostream"]) == (
        "librechat.unparsed",
        1,
        "stderr",
    )
    assert "logtail.time_inferred" not in warning.attributes


def test_an_unfinished_partial_line_is_held_until_the_file_ends() -> None:
    data = cri_entries(b"y" * (MAX_LINE + 10), "stdout", 1).splitlines(keepends=True)[0]
    splitter = ContainerSplitter("cri", 1 << 20)
    assert splitter.feed(data) == []
    assert splitter.flush(final=False) == []  # the runtime writes the rest soon
    assert splitter.pending == len(data)
    [record] = splitter.flush()
    assert record.data == b"y" * MAX_LINE + b"\n"


_OUTPUT = st.one_of(
    st.binary(max_size=3 * MAX_LINE // 2).map(lambda b: b.replace(b"\n", b" ")),
    st.sampled_from(
        [
            b'{"level":"info","message":"[indexSync] Sync completed successfully"}',
            b"2025-11-24 23:25:00 \x1b[32minfo\x1b[39m: \x1b[32mhello",
            b"2025-11-24T23:25:48.797Z debug: [spendTokens] conversationId: c | Token usage:",
            b"{",
            b"  promptTokens: 5,",
            b"}",
            b"",
        ]
    ),
)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.tuples(_OUTPUT, st.sampled_from(["stdout", "stderr"])), max_size=8),
    family=st.sampled_from(sorted(WRAPPERS)),
    cut=st.integers(min_value=1, max_value=5000),
    idle=st.booleans(),
)
def test_any_chunking_gives_the_same_records(lines: list[tuple[bytes, str]], family: str, cut: int, idle: bool) -> None:
    data = b"".join(WRAPPERS[family](line, stream, 10**18 + i) for i, (line, stream) in enumerate(lines))
    whole = ContainerSplitter(family, 1 << 20)
    expected = whole.feed(data) + whole.flush()
    chunked = ContainerSplitter(family, 1 << 20)
    got: list[Record] = []
    positions: list[tuple[int, int]] = []  # (records handed out so far, `position` then)
    for i in range(0, len(data), cut):
        got += chunked.feed(data[i : i + cut])
        if idle:  # the file stopped growing for a while: what is whole goes, a line still arriving stays
            got += chunked.flush(final=False)
        positions.append((len(got), chunked.position))
    got += chunked.flush()
    # A checkpoint at the last record's end, or at `position`, never skips a record handed out later.
    assert all(a.end <= b.end for a, b in itertools.pairwise(got))
    assert all(r.start >= position for n, position in positions for r in got[n:])
    assert got[-1:] == [] or got[-1].end == len(data)
    if family == "cri":  # Docker's json-file replaces invalid UTF-8 (as Go does); CRI keeps the bytes
        for stream in ("stdout", "stderr"):
            mine = [r for r in got if isinstance(r, ContainerRecord) and r.stream == stream]
            assert b"".join(r.data for r in mine) == b"".join(line + b"\n" for line, s in lines if s == stream)
    if not idle:
        assert got == expected


def test_a_record_over_16_kib_arrives_whole() -> None:
    for source in ("docker", "pods"):
        big = [e for e in events(JSON / source) if "librechat.meta.header_159" in e.attributes]
        assert len(big) == 1, source
        assert big[0].event_name == "librechat.error"
        assert big[0].attributes["exception.message"] == "upstream rejected the request"
        assert big[0].end - big[0].start > MAX_LINE


def test_the_fixtures_split_the_big_record_as_the_runtimes_do() -> None:
    [cri] = [p for p in (JSON / "pods").rglob("1.log")]
    assert b" stdout P " in cri.read_bytes()
    docker = [p for p in (JSON / "docker").rglob("*-json.log*")]
    text = b"".join(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes() for p in docker)
    assert any(len(line) > MAX_LINE and not line.endswith(b'\\n","stream":"stdout"') for line in text.split(b',"time"'))


@pytest.mark.parametrize("source", ["docker", "pods"])
def test_the_same_calls_give_the_same_events_as_the_files(source: str) -> None:
    files = [e for e in events(JSON / "logs", error_family=True) if not e.attributes.get("logtail.twin")]
    container = events(JSON / source)
    assert Counter(e.event_name for e in container) == Counter(e.event_name for e in files)
    assert len(container) == len(files) == 1876

    # Call by call: the events of one name and logger come in the order of the calls in both. The meiliSync
    # logger's console lines are the text ones, timed by the runtime; its file's records have inferred times.
    def in_call_order(found: list[Event], meili: Callable[[Event], bool]) -> list[Event]:
        return sorted(found, key=lambda e: (e.event_name, meili(e), e.time_unix_nano))

    pairs = list(
        zip(
            in_call_order(container, lambda e: e.time_unix_nano == e.observed_unix_nano),
            in_call_order(files, lambda e: e.family == "meili"),
            strict=True,
        )
    )
    # The console cuts a stack at 255 characters: where the frame naming the provider was cut off, the error's
    # source is not known ("other"). Every other attribute matches.
    cut = [(c, f) for c, f in pairs if not covers(c, f)]
    assert all(covers(c, f, ignore=("librechat.error.source",)) for c, f in cut), cut[:1]
    assert all(str(c.attributes["exception.stacktrace"]).endswith("...") for c, _ in cut)
    assert len(cut) < 20


def test_docker_and_cri_give_identical_events() -> None:
    # The two runtimes rotate at other records; correlation spans a container's files, so that does not show.
    docker, cri = events(JSON / "docker"), events(JSON / "pods")
    assert [(e.event_name, e.time_unix_nano, e.body, what(e)) for e in docker] == [
        (e.event_name, e.time_unix_nano, e.body, what(e)) for e in cri
    ]
    assert all(e.observed_unix_nano >= e.time_unix_nano for e in docker)


def test_kubernetes_files_carry_the_pod_and_container() -> None:
    first = events(JSON / "pods")[0]
    assert first.attributes["k8s.namespace.name"] == "librechat"
    assert first.attributes["k8s.pod.name"] == "librechat-api-5f7d8c9b4-x2x7q"
    assert first.attributes["k8s.pod.uid"] == "0b6c1d7e-4f2a-4e9b-8c3d-2a1b0c9d8e7f"
    assert first.attributes["k8s.container.name"] == "api"
    assert first.attributes["log.iostream"] == "stdout"
    assert "container.id" in events(JSON / "docker")[0].attributes


def test_only_librechat_containers_are_read(tmp_path: Path) -> None:
    for pod in ("librechat_librechat-api-1_0b6c1d7e-4f2a", "monitoring_grafana-0_1a2b3c4d-5e6f"):
        target = tmp_path / pod / "app" / "0.log"
        target.parent.mkdir(parents=True)
        target.write_bytes(cri_entries(b'{"level":"info","message":"hello"}', "stdout", 1))
    assert [f.path.parent.parent.name for f in discover([tmp_path])] == ["librechat_librechat-api-1_0b6c1d7e-4f2a"]
    assert len(discover([tmp_path], select="*grafana*")) == 1


def test_colourised_console_is_read_as_text_headers() -> None:
    files = [e for e in events(JSON / "logs", error_family=True) if not e.attributes.get("logtail.twin")]
    at_info = Counter(e.event_name for e in files if e.severity_number >= 9)
    for source in ("docker", "pods"):
        text = events(TEXT / source)
        assert Counter(e.event_name for e in text) == at_info
        assert not any("\x1b" in e.body for e in text)
        assert all(not e.attributes.get("logtail.time_inferred") for e in text)


def test_rotated_names_keep_the_identity() -> None:
    head = b'2025-11-24T23:25:00.000000417Z stdout F {"level":"info"}\n'
    assert file_identity("0.log", head) == file_identity("0.log.20251124-234548.gz", head)
    assert file_identity("a" * 64 + "-json.log", head) == file_identity("a" * 64 + "-json.log.3.gz", head)


def test_a_line_that_is_no_envelope_is_unparsed_not_lost() -> None:
    splitter = ContainerSplitter("docker", 1 << 20)
    [record] = splitter.feed(b"garbage\n")
    event = parse_record(record, FileContext("docker", "x-json.log", "x-json.log", "id"))
    assert event.event_name == "librechat.unparsed"
    assert isinstance(record, Record)


def test_the_docker_wrapper_escapes_as_go_does() -> None:
    entry = docker_entries('<b>&\x1b[31m"\\\t\u2028é'.encode(), "stdout", 1_764_026_700_000_417_000)
    log = '"\\u003cb\\u003e\\u0026\\u001b[31m\\"\\\\\\t\\u2028é\\n"'
    expected = '{"log":' + log + ',"stream":"stdout","time":"2025-11-24T23:25:00.000417Z"}\n'
    assert entry == expected.encode()


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_replay_ships_container_files_with_the_runtime_time_as_observed_time(
    collector: DevCollector, tmp_path: Path, protocol: str
) -> None:
    pods = JSON / "pods"
    done = replay(pods, "--endpoint", collector.http_endpoint, "--protocol", protocol, state=tmp_path / "replay.json")
    assert done.returncode == 0, done.stderr
    expected = {str(e.attributes["log.record.uid"]): e for e in events(pods)}
    received = collector.wait_for_logs(len(expected))
    assert sorted(str(r["attributes"]["log.record.uid"]) for r in received) == sorted(expected)
    for record in received:
        event = expected[str(record["attributes"]["log.record.uid"])]
        assert record["observed_time_unix_nano"] == event.observed_unix_nano > 0
        assert record["attributes"]["k8s.pod.name"] == "librechat-api-5f7d8c9b4-x2x7q"


def test_files_are_ordered_as_the_runtimes_wrote_them(tmp_path: Path) -> None:
    docker = tmp_path / "docker" / CONTAINER / f"{CONTAINER}-json.log"
    pod = tmp_path / "pods" / "librechat_librechat-api-0_1b2c3d4e-5f60" / "api"
    names = {
        docker.parent: [docker.name + suffix for suffix in (".1", ".3.gz", "", ".2.gz")],
        pod: ["1.log", "0.log.20251124-235959", "0.log", "0.log.20251124-101010.gz", "1.log.20251125-000001"],
    }
    for directory, files in names.items():
        directory.mkdir(parents=True)
        for name in files:
            (directory / name).write_bytes(b"")
    assert [f.path.name.removeprefix(CONTAINER) for f in discover([tmp_path / "docker"])] == [
        "-json.log.3.gz",
        "-json.log.2.gz",
        "-json.log.1",
        "-json.log",
    ]
    assert [f.path.name for f in discover([tmp_path / "pods"])] == [
        "0.log.20251124-101010.gz",
        "0.log.20251124-235959",
        "0.log",
        "1.log.20251125-000001",
        "1.log",
    ]
    assert (detect(tmp_path / "docker"), detect(tmp_path / "pods"), detect(docker.parent)) == (
        "docker",
        "cri",
        "docker",
    )
    assert detect(tmp_path / "nothing-yet") == detect(JSON / "logs") == "files"


# `DEBUG_CONSOLE=true` without CONSOLE_JSON: the debug file's text on stdout, a metadata block line by line
# (written by @librechat/data-schemas 0.0.71 for two calls of the v0.8 corpus).
DEBUG_CONSOLE = [
    b"2025-11-24T23:25:11.431Z debug: [Balance.check] Initial state",
    b"{",
    b'  user: "73619ebc79f00c9216f63c89",',
    b'  model: "gpt-4o",',
    b'  endpoint: "azureOpenAI",',
    b'  tokenType: "prompt",',
    b"  amount: 7704,",
    b"  balance: 460759,",
    b"  multiplier: 2.5,",
    b"  endpointTokenConfig: false,",
    b'  userId: "73619ebc79f00c9216f63c89",',
    b'  requestId: "5efd2a2a-b8fc-4f45-92b1-7bf263e07e92",',
    b'  request_id: "5efd2a2a-b8fc-4f45-92b1-7bf263e07e92",',
    b'  request_method: "DELETE",',
    b'  request_path: "/api/auth/login",',
    b"}",
    b"2025-11-24T23:25:11.452Z debug: [Balance.check] Token cost",
    b"{",
    b"  tokenCost: 19260,",
    b'  userId: "73619ebc79f00c9216f63c89",',
    b'  requestId: "5efd2a2a-b8fc-4f45-92b1-7bf263e07e92",',
    b'  request_id: "5efd2a2a-b8fc-4f45-92b1-7bf263e07e92",',
    b'  request_method: "DELETE",',
    b'  request_path: "/api/auth/login",',
    b"}",
]


def test_debug_console_text_is_read_as_the_debug_file_is() -> None:
    data = b"".join(cri_entries(line, "stdout", 1_764_026_711_431_000_417 + i) for i, line in enumerate(DEBUG_CONSOLE))
    splitter = ContainerSplitter("cri", 1 << 20)
    records = splitter.feed(data) + splitter.flush()
    ctx = FileContext("cri", "0.log", "0.log", "id")
    check, cost = (parse_record(r, ctx) for r in records)
    assert (check.event_name, check.attributes["librechat.token.amount"], check.attributes["url.path"]) == (
        "librechat.balance.check",
        7704,
        "/api/auth/login",
    )
    assert cost.attributes["librechat.token.cost"] == 19260
    assert check.time_unix_nano == 1_764_026_711_431_000_000  # the record's own time, not the runtime's
