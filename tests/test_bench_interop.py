"""`gofer bench`'s interop suites run end to end (tiny sizes): requests and PostgreSQL clients."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gofer.testing.services import _pg_bindir


def _bench(tmp_path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "gofer", "bench", *args, "--rounds", "1", "--json", "r.json"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    return {s["suite"]: s for s in report["suites"]}


@pytest.mark.slow
@pytest.mark.no_leak_check
def test_interop_requests_suite_runs(tmp_path):
    pytest.importorskip("requests")
    systems = "gofer,threads" + (",gevent" if _has("gevent") else "")
    r = _bench(tmp_path, "interop_requests", "--systems", systems, "--set", "n=200", "--set", "concurrency=10")
    med = r["interop_requests"]["medians"]
    for system in systems.split(","):
        assert med[system]["cpu_us_per_request"] > 0, med
        assert med[system]["requests_per_s"] > 0


@pytest.mark.slow
@pytest.mark.no_leak_check
def test_interop_pg_suite_runs(tmp_path):
    if _pg_bindir() is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql')")
    pytest.importorskip("psycopg")
    pytest.importorskip("psycopg2")
    r = _bench(tmp_path, "interop_pg", "--systems", "gofer,gofer-psycopg2", "--set", "n=400", "--set", "concurrency=20")
    med = r["interop_pg"]["medians"]
    assert med["gofer"]["queries_per_s"] > 0 and med["gofer-psycopg2"]["queries_per_s"] > 0, med


def _has(mod: str) -> bool:
    try:
        __import__(mod)
    except ImportError:
        return False
    return True
