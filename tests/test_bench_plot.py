"""``gofer bench --plot``: a bar chart of each suite's figures beside the JSON (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.runner import main


def gofer_bench(*args: str) -> int:
    # In a subprocess, as a user runs it (matplotlib keeps its font files open).
    return subprocess.run([sys.executable, "-m", "gofer", "bench", *args], timeout=300).returncode

REPORT = {
    "python": "3.11",
    "machine": "test",
    "suites": [
        {
            "suite": "spawn",
            "metric": "us_per_task",
            "unit": "us per task",
            "lower_is_better": True,
            "medians": {"gofer": {"us_per_task": 2.0}, "asyncio": {"us_per_task": 5.0}, "trio": {"us_per_task": 30.0}},
        },
        {
            "suite": "echo",
            "metric": "rps",
            "unit": "requests/s",
            "lower_is_better": False,
            "medians": {"gofer": {"rps": 80000.0}, "gevent": {"rps": 30000.0}},
        },
        {"suite": "broken", "metric": "x", "unit": "x", "medians": {}},  # nothing measured: no panel
    ],
}


def test_plot_from_a_saved_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    src = tmp_path / "r.json"
    src.write_text(json.dumps(REPORT))
    out = tmp_path / "r.png"
    assert gofer_bench("--from", str(src), "--plot", str(out)) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_of_a_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run.png"
    args = ["spawn", "--quick", "--rounds", "1", "--systems", "gofer", "--set", "repeat=1"]
    assert gofer_bench(*args, "--json", str(tmp_path / "run.json"), "--plot", str(out)) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "run.json").read_text())["suites"][0]["suite"] == "spawn"


def test_from_needs_plot_and_figures(tmp_path: Path) -> None:
    src = tmp_path / "empty.json"
    src.write_text(json.dumps({"suites": []}))
    with pytest.raises(SystemExit):
        main(["--from", str(src)])
    pytest.importorskip("matplotlib")
    assert gofer_bench("--from", str(src), "--plot", str(tmp_path / "x.png")) == 1
