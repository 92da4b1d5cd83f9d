"""CI check: CPython's test_socket, test_selectors, test_queue and test_threading under gofer.patch().

Runs ``python -m gofer.patch --stdlib-tests --ci``, which runs each module
unpatched and patched and fails on any test that passes unpatched, fails
patched and is not listed in ``expectations.txt``. It takes several minutes,
so it runs only when ``GOFER_STDLIB_TESTS=1`` is set (CI sets it in one job).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.no_leak_check
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("GOFER_STDLIB_TESTS") != "1", reason="set GOFER_STDLIB_TESTS=1 to run CPython's tests under gofer.patch() (several minutes)")
def test_cpython_tests_under_patch_have_no_new_failure():
    r = subprocess.run(
        [sys.executable, "-m", "gofer.patch", "--stdlib-tests", "--ci",
         "--expect", str(Path(__file__).parent / "expectations.txt")],
        capture_output=True, text=True, cwd=str(ROOT), timeout=3500,
    )
    assert r.returncode == 0, r.stdout + r.stderr
