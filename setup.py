"""The compiled build: the per-record modules compiled with mypyc into C extensions next to their sources.

Each `.so` is found before its `.py` on import, so an in-place build (`pip install -e .`) runs compiled while the
sources stay importable as they are. `LOGTAIL_PURE=1 pip install .` builds nothing and installs plain Python.
The modules named here are pure and typed; the others (I/O, threads, pydantic, typer) gain nothing from it.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "parsers/auth.py",
    "parsers/balance.py",
    "parsers/catalogue.py",
    "parsers/debugblock.py",
    "parsers/errors.py",
    "parsers/event.py",
    "parsers/fields.py",
    "parsers/moderation.py",
    "parsers/records.py",
    "parsers/salvage.py",
    "parsers/search.py",
    "parsers/tokens.py",
    "parsers/winston.py",
    "logtail/pipeline/correlate.py",
    "logtail/pipeline/emails.py",
    "logtail/pipeline/memo.py",
    "logtail/pipeline/redact.py",
    "logtail/export/encode.py",
    "logtail/export/metrics.py",
]


def extensions() -> list[object]:
    if os.environ.get("LOGTAIL_PURE") == "1":
        return []
    from mypyc.build import mypycify

    # Two shared libraries, one per package, so that importing a parser never imports `logtail`.
    parsers = [path for path in COMPILED if path.startswith("parsers/")]
    logtail = [path for path in COMPILED if path.startswith("logtail/")]
    # Only the compiled modules are type-checked: what they import from elsewhere (typer, httpx, grpc, pydantic
    # behind it) is Any here and need not be installed to build. `make lint` checks everything strictly.
    options = ["--follow-imports=skip", "--no-warn-unused-ignores", "--no-warn-return-any"]
    groups = [(parsers, "parsers.compiled"), (logtail, "logtail.compiled")]
    return list(mypycify([*options, *COMPILED], separate=groups))


setup(ext_modules=extensions())
