"""The compiled build: the per-record modules compiled with mypyc into C extensions next to their sources.

Each `.so` is found before its `.py` on import, so an in-place build (`pip install -e .`) runs compiled while the
sources stay importable as they are. `LOGTAIL_PURE=1 pip install .` builds nothing and installs plain Python, and
so does a host without a working C compiler (with a warning): the service runs the same, only slower.
The modules named here are pure and typed; the others (I/O, threads, pydantic, typer) gain nothing from it.
No package `__init__` is compiled: its shared library sits inside the package, so mypyc would give the package
a wrong `__path__`. `parsers.parse_record` therefore lives in parsers/parse.py. In these modules `isinstance`
takes a tuple of types: a union (`int | float`) is built anew on every call there, a tuple is a type check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "parsers/auth.py",
    "parsers/balance.py",
    "parsers/catalogue.py",
    "parsers/console.py",
    "parsers/containers.py",
    "parsers/debugblock.py",
    "parsers/envelope.py",
    "parsers/errors.py",
    "parsers/event.py",
    "parsers/fields.py",
    "parsers/moderation.py",
    "parsers/parse.py",
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
    "logtail/export/users.py",
    "logtail/export/wire.py",
    "logtail/source/work.py",
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


class BuildOrFallBack(build_ext):
    """Compiles the extensions; if the C compiler fails, leaves none behind, so the sources are what runs."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # setuptools raises CompileError, LinkError, PlatformError, ExecError
            # Built ones, and in place (the packages sit at the top of the tree) those of an earlier build.
            for output in [*self.get_outputs(), *(self.get_ext_filename(ext.name) for ext in self.extensions)]:
                Path(output).unlink(missing_ok=True)
            sys.stderr.write(f"logtail: not compiled ({type(exc).__name__}, see above); installing the sources only\n")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildOrFallBack})
