"""Decode one line of a container log file: Docker's json-file entry or a CRI entry (containerd, CRI-O).

Docker: `{"log": "<text>\\n", "stream": "stdout", "time": "<RFC3339Nano>"}`; a line of the container's output
longer than 16 KiB is written as several entries, all but the last without the trailing newline.
CRI: `<RFC3339Nano> <stream> <P|F> <text>`; `P` marks a piece of a longer line, `F` its last piece (or a whole
line). What a line carries is the container's own output, without the newline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from parsers.winston import iso_to_ns

DOCKER: Final = "docker"
CRI: Final = "cri"
CONTAINER_FAMILIES: Final = frozenset({DOCKER, CRI})


@dataclass(frozen=True, slots=True)
class Entry:
    time_ns: int
    stream: str
    partial: bool  # more of the same output line follows in the next entry of this stream
    text: bytes


def decode_docker(line: bytes) -> Entry | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    text, stream, stamp = obj.get("log"), obj.get("stream"), obj.get("time")
    if not isinstance(text, str) or not isinstance(stamp, str):
        return None
    time_ns = iso_to_ns(stamp)
    if time_ns is None:
        return None
    data = text.encode()
    partial = not data.endswith(b"\n")
    return Entry(time_ns, stream if isinstance(stream, str) else "stdout", partial, data if partial else data[:-1])


def decode_cri(line: bytes) -> Entry | None:
    line = line.removesuffix(b"\n")
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"P", b"F"):
        return None
    time_ns = iso_to_ns(parts[0].decode("ascii", "replace"))
    if time_ns is None:
        return None
    return Entry(time_ns, parts[1].decode("ascii", "replace"), parts[2] == b"P", parts[3] if len(parts) == 4 else b"")
