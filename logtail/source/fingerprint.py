"""Who a file is: a hash of its first decompressed bytes, and a marker of the bytes before an offset.

A path or an inode says where a file is, not what it is: LibreChat's rotator gzips `x.log` to
`x.log.gz` and unlinks the original, and inodes are reused. The first `FINGERPRINT_SIZE` bytes of the
decompressed content stay the same through both, so a checkpoint taken on the plain file resumes
inside the archive. Before an offset is trusted, the bytes just before it must still be the bytes
that were acknowledged there (Fluent Bit's offset marker): a file truncated and rewritten past the old
offset is caught that way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

FINGERPRINT_SIZE: Final = 1024
MARKER_SIZE: Final = 32


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class _Sample:
    """A hash of `size` bytes of a file, and whether some bytes are those."""

    size: int
    digest: str

    def _holds(self, sample: bytes) -> bool:
        return len(sample) == self.size and _digest(sample) == self.digest


@dataclass(frozen=True, slots=True)
class Fingerprint(_Sample):
    """Hash of the first `size` bytes; grows with a young file until it reaches `FINGERPRINT_SIZE`."""

    @classmethod
    def of(cls, head: bytes) -> Fingerprint:
        head = head[:FINGERPRINT_SIZE]
        return cls(len(head), _digest(head))

    def matches(self, head: bytes) -> bool:
        """Whether a file starting with `head` is the file this fingerprint was taken of."""
        return self._holds(head[: self.size])


@dataclass(frozen=True, slots=True)
class Marker(_Sample):
    """Hash of the `size` bytes that end at a checkpoint's offset (size 0: nothing to check)."""

    @classmethod
    def of(cls, tail: bytes) -> Marker:
        tail = tail[-MARKER_SIZE:]
        return cls(len(tail), _digest(tail))

    def matches(self, tail: bytes) -> bool:
        return self.size == 0 or self._holds(tail[-self.size :])


NO_MARKER: Final = Marker(0, "")
