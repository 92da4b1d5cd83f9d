"""The two kernels: the compiled build (setup.py) and the pure-Python sources it comes from.

CI runs the whole suite on both (``GOFER_PURE_PYTHON=1`` for the pure one);
these tests check the switch between them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gofer
from gofer._core import _kernel

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _run(code: str, src: Path = SRC, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, PYTHONPATH=str(src), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=60)


def _compiled_present() -> bool:
    return all(_kernel._compiled_file(name) is not None for name in _kernel.COMPILED)


def _setup_list(name: str) -> tuple[str, ...]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    return tuple(
        next(
            ast.literal_eval(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets)
        )
    )


def test_setup_compiles_the_modules_the_kernel_switch_knows() -> None:
    assert _setup_list("COMPILED") == _kernel.COMPILED
    assert _setup_list("NATIVE") == _kernel.NATIVE
    for name in _kernel.COMPILED:
        assert Path(_kernel._source(name)).exists(), name
    for name in _kernel.NATIVE:
        assert _kernel._source(name).endswith(".pyx") and Path(_kernel._source(name)).exists(), name


def test_kernel_says_how_its_modules_were_loaded() -> None:
    files = {sys.modules[name].__file__ or "" for name in _kernel.COMPILED}
    compiled = sum(f.endswith(tuple(_kernel._EXT)) for f in files)
    expect = "pure" if compiled == 0 else ("compiled" if compiled == len(files) else "mixed")
    assert gofer.kernel() == expect
    if _kernel.PURE_REQUESTED:
        assert expect == "pure"


def test_gofer_pure_python_loads_every_kernel_module_from_its_source() -> None:
    r = _run(
        "import sys, gofer; from gofer._core import _kernel\n"
        "print(gofer.kernel(), all(sys.modules[n].__file__.endswith('.py') for n in _kernel.COMPILED))",
        GOFER_PURE_PYTHON="1",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["pure", "True"]


@pytest.mark.parametrize("value", ["", "0"])
def test_empty_or_zero_does_not_ask_for_the_pure_kernel(value: str) -> None:
    r = _run("from gofer._core import _kernel; print(_kernel.PURE_REQUESTED)", GOFER_PURE_PYTHON=value)
    assert r.stdout.split() == ["False"], r.stderr


def _run_with_newer_source(dest: Path) -> subprocess.CompletedProcess[str]:
    """Copy gofer (with its build) to ``dest``, make ``_park.py`` newer than its build, import it."""
    shutil.copytree(SRC / "gofer", dest / "gofer", ignore=shutil.ignore_patterns("__pycache__"))
    later = time.time() + 10
    os.utime(dest / "gofer" / "_core" / "_park.py", (later, later))
    return _run("import gofer; print(gofer.kernel())", src=dest, GOFER_PURE_PYTHON="")


def test_a_compiled_module_older_than_its_source_runs_the_pure_kernel_with_a_warning(tmp_path: Path) -> None:
    if not _compiled_present():
        pytest.skip("the compiled kernel is not built here")
    (tmp_path / "setup.py").write_text("")  # a checkout: stale builds are looked for
    r = _run_with_newer_source(tmp_path / "src")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["pure"]
    assert "older than its sources" in r.stderr and "_park.py" in r.stderr


def test_an_installed_copy_is_not_checked_for_staleness(tmp_path: Path) -> None:
    if not _compiled_present():
        pytest.skip("the compiled kernel is not built here")
    # No setup.py above src/: an installed copy, whatever the files' times.
    r = _run_with_newer_source(tmp_path / "site")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["compiled"]
    assert "older" not in r.stderr
