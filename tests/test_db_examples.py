"""The PostgreSQL, Redis and requests examples, run as scripts against real services."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from services import Service, postgres, redis_server  # noqa: F401  (fixtures)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, *args: str) -> str:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_pg_example(postgres: Service) -> None:  # noqa: F811
    pytest.importorskip("psycopg")
    dsn = f"host={postgres.host} port={postgres.port} user={postgres.user} dbname=postgres"
    out = _run("pg_concurrent_queries.py", dsn, "--clients", "20")
    m = re.search(r"^20 clients x pg_sleep\(0.2\) in ([\d.]+)s$", out, re.M)
    assert m, out
    if _patch_covers_psycopg():  # 20 x 0.2 s = 4 s if they did not overlap
        assert float(m.group(1)) < 3, out


def _patch_covers_psycopg() -> bool:
    """Whether this build's gofer.patch() installs psycopg's cooperative waits."""
    code = "import gofer; gofer.patch(); from gofer import patch_db; print(patch_db.is_patched('psycopg'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return r.stdout.strip() == "True"


def test_redis_example(redis_server: Service) -> None:  # noqa: F811
    pytest.importorskip("redis")
    out = _run(
        "redis_work_queue.py", "--port", str(redis_server.port), "--workers", "10", "--jobs", "100"
    )
    assert re.search(r"^100 jobs done by \d+ workers in [\d.]+s$", out, re.M), out


def test_requests_example() -> None:
    pytest.importorskip("requests")
    pytest.importorskip("httptools")
    out = _run("requests_fanout.py", "--demo", "50")
    m = re.search(r"^50/50 fetched with status 200 in ([\d.]+)s$", out, re.M)
    assert m, out
    assert float(m.group(1)) < 15  # 50 x 0.5 s = 25 s if they did not overlap
