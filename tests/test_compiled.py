"""The compiled build (setup.py) is what runs; the interpreted modules print the very same.

`make test` sets LOGTAIL_EXPECT_COMPILED=1: then every module setup.py compiles must be imported from its
extension, in the tests and in the `logtail` console script, or the suite would pass on the wrong build.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_golden import CASES, LOGTAIL, golden, parse_output

ROOT = Path(__file__).resolve().parent.parent


def compiled_modules() -> list[str]:
    """The module names of setup.py's COMPILED list (read, not imported: importing it would run setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (paths,) = (
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["COMPILED"]
    )
    return [path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for path in paths]


def test_setup_compiles_the_per_record_modules() -> None:
    modules = compiled_modules()
    assert {"parsers.winston", "parsers.records", "logtail.pipeline.redact", "logtail.export.encode"} <= set(modules)
    # Only pure modules: no I/O, nothing of the service's threads or sockets.
    pure = ("logtail.pipeline", "logtail.export", "logtail.source.work")
    assert all(not name.startswith("logtail.") or name.startswith(pure) for name in modules)


@pytest.mark.skipif(os.environ.get("LOGTAIL_EXPECT_COMPILED") != "1", reason="LOGTAIL_EXPECT_COMPILED=1 is unset")
def test_the_suite_runs_the_compiled_build() -> None:
    interpreted = [name for name in compiled_modules() if not importlib.import_module(name).__file__.endswith(".so")]
    assert interpreted == [], "run `make` (or `pip install -e .`) to build the extensions"


@pytest.mark.skipif(os.environ.get("LOGTAIL_EXPECT_COMPILED") != "1", reason="LOGTAIL_EXPECT_COMPILED=1 is unset")
def test_the_console_script_runs_the_compiled_build(tmp_path: Path) -> None:
    # The interpreter of the `logtail` script, started away from the sources: modules come through the install.
    script = "import sys, importlib; print(*(importlib.import_module(m).__file__ for m in sys.argv[1:]))"
    python = Path(LOGTAIL).with_name("python")
    assert Path(LOGTAIL).read_text().startswith(f"#!{python}")
    done = subprocess.run(
        [python, "-c", script, *compiled_modules()], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    files = done.stdout.split()
    assert files and all(name.endswith(".so") for name in files), files


@pytest.fixture(scope="module")
def interpreted_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sources alone, without any extension: what `LOGTAIL_PURE=1 pip install .` installs."""
    copy = tmp_path_factory.mktemp("pure")
    for package in ("logtail", "parsers"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return copy


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_interpreted_modules_print_the_same(name: str, interpreted_copy: Path) -> None:
    # -P: the working directory (the repository, with its extensions) is not put on sys.path; the copy is.
    check = "import parsers.winston as m; assert m.__file__.endswith('.py'), m.__file__"
    command = [sys.executable, "-P", "-c", f"{check}; from logtail.cli import app; app()"]
    env = {**os.environ, "PYTHONPATH": str(interpreted_copy)}
    pure = parse_output(CASES[name], command, env=env)
    assert pure == parse_output(CASES[name], [LOGTAIL])
    assert pure == golden(name)
