"""pytest fixtures for the real database and cache servers (see gofer.testing.services).

Session-scoped fixtures ``postgres``, ``redis_server`` and ``mariadb`` start
the server once per test session and skip the test, naming the Debian
package, where it is not installed. ``run_patched_child`` runs a driver
workload under ``gofer.patch()`` in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from gofer.testing.services import (
    HOST,
    Service,
    ServiceUnavailable,
    start_mariadb,
    start_postgres,
    start_redis,
)

__all__ = ["HOST", "Service", "mariadb", "postgres", "redis_server", "run_patched_child",
           "start_mariadb", "start_postgres", "start_redis"]


# -- child processes under gofer.patch() -----------------------------------------


def run_patched_child(script: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``python script *args`` and return the JSON object its last line prints.

    ``gofer.patch()`` is process-wide, so tests of drivers that need it run
    their workload in a child (the script calls ``gofer.patch()`` first). A
    child exiting with status 3 skips the test with its output as reason.
    """
    import gofer

    if not callable(getattr(gofer, "patch", None)):
        pytest.skip("gofer.patch() is not available in this build")
    r = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    if r.returncode == 3:
        pytest.skip(r.stdout.strip() or r.stderr.strip())
    assert r.returncode == 0, f"child failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-5000:]}"
    result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


# -- fixtures --------------------------------------------------------------------


def _started(start: Any) -> Iterator[Service]:
    try:
        cm = start()
        svc = cm.__enter__()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield svc
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Service]:
    yield from _started(start_postgres)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Service]:
    yield from _started(start_redis)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Service]:
    yield from _started(start_mariadb)
