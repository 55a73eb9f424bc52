"""Discovery, ordering, decompression and file identity (logtail/source/files.py, logtail/source/read.py)."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from logtail.source.files import BadPath, discover, family_of, file_identity, open_decompressed
from logtail.source.read import read_events


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("error-2025-11-24.log", "error"),
        ("debug-2025-11-24.log.3.gz", "debug"),
        ("meiliSync-2025-11-25.log", "meili"),
        ("login-logs.log", "login"),
        (".5e48-audit.json", None),
        ("debug-2025-11-24.log.bak", None),
    ],
)
def test_family_of(name: str, family: str | None) -> None:
    assert family_of(name) == family


def test_directory_is_read_in_the_order_it_was_written(samples: Path) -> None:
    names = [f.path.name for f in discover([samples / "v0.8"])]
    assert names == [
        "debug-2025-11-24.log.gz",
        "debug-2025-11-24.log.1.gz",
        "debug-2025-11-24.log.2.gz",
        "debug-2025-11-24.log.3.gz",
        "error-2025-11-24.log.gz",
        "error-2025-11-24.log.1.gz",
        "error-2025-11-24.log.2.gz",
        "meiliSync-2025-11-24.log.gz",
        "debug-2025-11-25.log.gz",
        "debug-2025-11-25.log.1.gz",
        "debug-2025-11-25.log.2.gz",
        "debug-2025-11-25.log.3.gz",
        "debug-2025-11-25.log.4",
        "error-2025-11-25.log.gz",
        "error-2025-11-25.log.1.gz",
        "error-2025-11-25.log.2",
        "meiliSync-2025-11-25.log",
    ]


def test_v07_login_log_above_api_logs_is_found(samples: Path) -> None:
    files = discover([samples / "v0.7"])
    assert [f.family for f in files].count("login") == 1
    assert all(not f.path.name.startswith(".") for f in files)
    assert len(files) == 7


def test_unreadable_paths_are_reported_and_the_rest_still_found(samples: Path, tmp_path: Path) -> None:
    errors: list[BadPath] = []
    missing = tmp_path / "nope"
    files = discover([missing, samples / "v0.7" / "login-logs.log"], errors=errors)
    assert [f.family for f in files] == ["login"]
    assert len(errors) == 1 and str(missing) in str(errors[0])
    with pytest.raises(BadPath, match="nope"):
        discover([missing])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_permission_denied_is_a_bad_path(tmp_path: Path) -> None:
    locked = tmp_path / "error-2025-11-24.log"
    locked.write_text("{}\n")
    locked.chmod(0)
    with pytest.raises(BadPath, match=r"error-2025-11-24\.log"):
        discover([locked])


def test_gz_and_plain_copies_have_one_identity_and_the_same_uids(samples: Path, tmp_path: Path) -> None:
    source = samples / "v0.8" / "logs" / "debug-2025-11-24.log.1.gz"
    plain = tmp_path / "debug-2025-11-24.log.1"
    with gzip.open(source, "rb") as packed:
        plain.write_bytes(packed.read())
    first = plain.read_bytes().split(b"\n", 1)[0]
    assert file_identity(source.name, first) == file_identity(plain.name, first + b"\nmore")
    assert file_identity("debug-2025-11-24.log.2", first) != file_identity(plain.name, first)
    (gz_file,) = discover([source])
    (plain_file,) = discover([plain])
    gz_events = list(read_events(gz_file))
    plain_events = list(read_events(plain_file))
    assert [e.attributes["log.record.uid"] for e in gz_events] == [e.attributes["log.record.uid"] for e in plain_events]


def test_plain_file_beside_its_gz_is_read_once(samples: Path, tmp_path: Path) -> None:
    source = samples / "v0.8" / "logs" / "error-2025-11-24.log.1.gz"
    shutil.copy(source, tmp_path / source.name)
    with gzip.open(source, "rb") as packed:
        (tmp_path / source.name[:-3]).write_bytes(packed.read())
    assert [f.path.name for f in discover([tmp_path])] == ["error-2025-11-24.log.1"]


def test_reading_from_an_offset_continues_with_the_same_events(samples: Path) -> None:
    (log_file,) = discover([samples / "v0.8" / "logs" / "debug-2025-11-25.log.4"])
    everything = list(read_events(log_file))
    middle = everything[len(everything) // 2]
    rest = list(read_events(log_file, start=middle.start))
    assert [(e.line, e.start, e.event_name) for e in rest] == [
        (e.line, e.start, e.event_name) for e in everything[len(everything) // 2 :]
    ]


def test_small_chunks_and_long_lines_are_streamed(tmp_path: Path) -> None:
    path = tmp_path / "meiliSync-2025-11-24.log"
    long_line = b'{"level":"info","message":"' + b"x" * 5000 + b'"}\n'
    path.write_bytes(b'{"level":"info","message":"[syncWithMeili] Processed: 1"}\n' + long_line)
    (log_file,) = discover([path])
    events = list(read_events(log_file, max_record=1000))
    assert [e.event_name for e in events] == ["librechat.search.sync", "librechat.unparsed"]
    assert events[1].attributes["logtail.truncated"] is True
    assert events[1].end == path.stat().st_size


def test_open_decompressed_reads_gz_transparently(samples: Path) -> None:
    with open_decompressed(samples / "v0.8" / "logs" / "error-2025-11-24.log.2.gz") as stream:
        assert stream.read(1) == b"{"
