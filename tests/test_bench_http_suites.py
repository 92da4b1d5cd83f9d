"""The HTTP idle-memory and HTTPS bench suites run end to end (tiny sizes, gofer only)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("psutil")


def _bench(tmp_path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "gofer", "bench", "--quick", "--rounds", "1", "--systems", "gofer",
           "--json", "r.json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (suite,) = report["suites"]
    assert not suite["errors"], suite["errors"]
    assert not suite["skipped"], suite["skipped"]
    return suite["medians"]["gofer"]


@pytest.mark.no_leak_check
def test_http_idle_memory_suite_runs(tmp_path):
    med = _bench(tmp_path, "http_idle_memory", "--set", "connections=60", "--set", "settle=0.2")
    assert med["alive"] == 60  # every connection was still open when the idle RSS was read
    assert med["rss_start_mb"] > 0 and med["rss_idle_mb"] > 0 and med["rss_closed_mb"] > 0
    assert "bytes_per_conn" in med and "after_close_pct" in med


@pytest.mark.no_leak_check
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_https_plaintext_suite_runs(tmp_path):
    med = _bench(tmp_path, "https_plaintext", "--set", "duration=1", "--set", "warmup=1", "--set", "connections=4")
    assert med["rps"] > 0
    assert med["cpu_us_per_req"] > 0
    assert med.get("non_2xx", 0) == 0
