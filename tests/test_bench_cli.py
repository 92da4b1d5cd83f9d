"""`gofer bench` runs end to end (tiny sizes, gofer only): the suites do not rot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _gofer(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gofer", *args], capture_output=True, text=True, timeout=240, cwd=cwd)


def test_bench_list(tmp_path):
    out = _gofer("bench", "--list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("spawn", "yield", "memory"):
        assert name in out.stdout


@pytest.mark.no_leak_check
def test_core_suites_run_and_write_json(tmp_path):
    out = _gofer(
        "bench", "spawn", "yield", "memory", "--rounds", "1", "--systems", "gofer",
        "--set", "n=200", "--set", "repeat=2", "--json", "r.json", cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    by_name = {s["suite"]: s for s in report["suites"]}
    assert by_name["spawn"]["medians"]["gofer"]["us_per_task"] > 0
    assert by_name["yield"]["medians"]["gofer"]["us_per_yield"] > 0
    assert by_name["memory"]["medians"]["gofer"]["bytes_per_coroutine"] > 0
    assert "ratio" in out.stdout


def test_bench_rejects_unknown_suite_and_bad_set(tmp_path):
    out = _gofer("bench", "no-such-suite", cwd=tmp_path)
    assert out.returncode != 0 and "unknown suite" in out.stderr
    out = _gofer("bench", "spawn", "--set", "oops", cwd=tmp_path)
    assert out.returncode != 0 and "KEY=VALUE" in out.stderr


def test_gofer_command_usage(tmp_path):
    out = _gofer("frobnicate", cwd=tmp_path)
    assert out.returncode == 2 and "unknown command" in out.stderr
