"""Helpers for the gofer.patch() tests: each case runs in a fresh interpreter.

Patching is global and permanent for a process, so every case is a small
program run with ``sys.executable``; it inherits ``GOFER_POLLER``, so the
cases run on the poller under test. ``run_patched`` fails the test with the
child's output when the child fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CERTS = Path(__file__).parent / "certs"


def run_py(code: str, *args: str, timeout: float = 60, expect_rc: int = 0) -> str:
    """Run ``code`` (dedented) in a child interpreter; return its stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="default")
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT),
    )
    assert r.returncode == expect_rc, f"rc={r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    return r.stdout + r.stderr if expect_rc else r.stdout


def run_patched(code: str, *args: str, timeout: float = 60, patch: str = "gofer.patch()") -> str:
    """Run ``code`` after ``import gofer`` and ``patch`` (by default: everything)."""
    return run_py(f"import gofer\n{patch}\n" + textwrap.dedent(code), *args, timeout=timeout)
