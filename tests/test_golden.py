"""`logtail parse` on the bundled samples, byte for byte as checked in under tests/golden/.

Every event, attribute and body must stay as it is printed today, whether the compiled or the
interpreted modules run. After a deliberate change of the output, rewrite the files with
`LOGTAIL_UPDATE_GOLDEN=1 pytest tests/test_golden.py` and review the diff of their contents.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
LOGTAIL = str(Path(sys.executable).with_name("logtail"))
# (golden file, arguments after `logtail parse`); paths are relative to the repository, as printed.
CASES = {
    "v0.7.jsonl.gz": ("fixtures/librechat/v0.7",),
    "v0.8.jsonl.gz": ("fixtures/librechat/v0.8",),
    "v0.8-email-hash.jsonl.gz": ("--email-policy", "hash", "fixtures/librechat/v0.8"),
    "v0.8.1.jsonl.gz": ("fixtures/librechat/v0.8.1",),
}


def parse_output(
    args: tuple[str, ...],
    command: list[str],
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> bytes:
    done = subprocess.run([*command, "parse", *args], cwd=cwd, env=env, capture_output=True, check=False)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    return done.stdout


def golden(name: str) -> bytes:
    return gzip.decompress((GOLDEN / name).read_bytes())


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_output_is_the_golden_output(name: str) -> None:
    out = parse_output(CASES[name], [LOGTAIL])
    if os.environ.get("LOGTAIL_UPDATE_GOLDEN") == "1":
        (GOLDEN / name).write_bytes(gzip.compress(out, compresslevel=9, mtime=0))
    expected = golden(name)
    assert out.count(b"\n") == expected.count(b"\n")
    for number, (got, want) in enumerate(zip(out.splitlines(), expected.splitlines(), strict=True), 1):
        assert got == want, f"{name}: record {number} differs"
    assert out == expected
