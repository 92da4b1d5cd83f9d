"""CPython's asyncio event-loop and streams tests pass on gofer's loop.

Runs ``tests/stdlib_asyncio/run_asyncio_tests.py test_events test_streams``:
each module plain and then with every asyncio loop a gofer loop; a test
that passes plain must pass on gofer too, unless it is listed with its
reason in ``tests/stdlib_asyncio/expected-failures-3.X.txt``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "stdlib_asyncio" / "run_asyncio_tests.py"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cpython_asyncio_events_and_streams_on_gofer_loop() -> None:
    pytest.importorskip("test.test_asyncio.test_events")
    r = subprocess.run(
        [sys.executable, str(RUNNER), "test_events", "test_streams"],
        capture_output=True,
        text=True,
        timeout=880,
    )
    print(r.stdout)
    assert r.returncode == 0, f"new failures on gofer's asyncio loop:\n{r.stdout}\n{r.stderr[-3000:]}"
    ran = re.findall(r"\[gofer\] \d+s, (\d+) gofer loops", r.stderr)
    assert len(ran) == 2 and all(int(n) > 0 for n in ran), f"the tests did not run on gofer loops: {r.stderr}"
