"""The channel examples in examples/: each runs as a script, and its logic checks out."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

import gofer.testing

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prime_sieve():
    assert _run("prime_sieve.py", "10").split() == [
        "2",
        "3",
        "5",
        "7",
        "11",
        "13",
        "17",
        "19",
        "23",
        "29",
    ]
    primes = gofer.run(_load("prime_sieve.py").primes, 100)
    assert primes[-1] == 541 and len(set(primes)) == 100


def test_worker_pool():
    out = _run("worker_pool.py", "50", "4")
    assert "50 jobs done by" in out
    assert f"sum of squares: {sum(n * n for n in range(50))}" in out


def test_pipeline_cancel_stops_every_stage():
    out = _run("pipeline_cancel.py", "5")
    assert "stopped: square-1, square-2" in out
    got, stopped = gofer.testing.run(_load("pipeline_cancel.py").pipeline, 7)
    assert len(got) == 7 and all(int(g**0.5) ** 2 == g for g in got)
    assert sorted(stopped) == ["square-1", "square-2"]


@pytest.mark.parametrize("ticks", [3, 6])
def test_ticker_loop(ticks, capsys):
    # on the virtual clock the count is exact
    assert gofer.testing.run(_load("ticker_loop.py").loop, 0.5, ticks) == ticks
    assert "quit" in capsys.readouterr().out
    out = _run("ticker_loop.py", "0.01", "3")  # real time: only check it ends cleanly
    assert "quit" in out or "deadline" in out
