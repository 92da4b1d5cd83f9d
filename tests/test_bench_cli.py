"""The benchmarks run end to end (tiny sizes, gofer only): the suites do not rot.

They live in the checkout's bench/ (``python -m bench``); ``gofer bench``
finds that checkout or says how to get one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gofer import __main__ as cli

ROOT = Path(__file__).resolve().parents[1]


def _gofer(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gofer", *args], capture_output=True, text=True, timeout=240, cwd=cwd)


def test_bench_list(tmp_path):
    out = _gofer("bench", "--list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("spawn", "spawn_alive", "yield", "memory"):
        assert name in out.stdout


@pytest.mark.no_leak_check
def test_core_suites_run_and_write_json(tmp_path):
    out = _gofer(
        "bench", "spawn", "spawn_alive", "yield", "memory", "--rounds", "1", "--systems", "gofer",
        "--set", "n=200", "--set", "repeat=2", "--json", "r.json", cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    by_name = {s["suite"]: s for s in report["suites"]}
    assert by_name["spawn"]["medians"]["gofer"]["us_per_task"] > 0
    assert by_name["spawn_alive"]["medians"]["gofer"]["us_per_task"] > 0
    assert by_name["yield"]["medians"]["gofer"]["us_per_yield"] > 0
    assert by_name["memory"]["medians"]["gofer"]["bytes_per_coroutine"] > 0
    assert "ratio" in out.stdout


def test_bench_rejects_unknown_suite_and_bad_set(tmp_path):
    out = _gofer("bench", "no-such-suite", cwd=tmp_path)
    assert out.returncode != 0 and "unknown suite" in out.stderr
    out = _gofer("bench", "spawn", "--set", "oops", cwd=tmp_path)
    assert out.returncode != 0 and "KEY=VALUE" in out.stderr


def test_python_m_bench_lists_the_same_suites(tmp_path):
    # From the checkout's top directory, as docs/benchmarks.md runs it.
    paths = [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    out = subprocess.run([sys.executable, "-m", "bench", "--list"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == _gofer("bench", "--list", cwd=tmp_path).stdout


def test_gofer_bench_finds_the_checkout(tmp_path):
    assert cli.bench_checkout() == ROOT  # this gofer is src/gofer of the checkout
    assert cli.bench_checkout(start=tmp_path / "site-packages" / "gofer" / "__main__.py", cwd=ROOT) == ROOT
    assert cli.bench_checkout(start=tmp_path / "site-packages" / "gofer" / "__main__.py", cwd=tmp_path) is None


def test_gofer_bench_without_a_checkout_says_how(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "bench_checkout", lambda: None)
    assert cli.main(["bench", "--list"]) == 2
    err = capsys.readouterr().err
    assert "gofer checkout" in err and "python -m bench" in err


def test_gofer_command_usage(tmp_path):
    out = _gofer("frobnicate", cwd=tmp_path)
    assert out.returncode == 2 and "unknown command" in out.stderr


def test_gofer_systems_run_on_each_kernel_asked_for() -> None:
    from bench.runner import PURE, with_kernels

    systems = ["gofer", "gofer-wsgi", "uvloop"]
    assert with_kernels(systems, "compiled") == systems
    assert with_kernels(systems, "pure") == ["gofer" + PURE, "gofer-wsgi" + PURE, "uvloop"]
    assert with_kernels(systems, "both") == ["gofer", "gofer" + PURE, "gofer-wsgi", "gofer-wsgi" + PURE, "uvloop"]


@pytest.mark.no_leak_check
def test_bench_reports_the_kernel_and_runs_both_where_compiled(tmp_path):
    out = _gofer(
        "bench", "yield", "--rounds", "1", "--systems", "gofer", "--kernels", "both",
        "--set", "n=200", "--json", "r.json", cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    import gofer

    installed = subprocess.run(
        [sys.executable, "-c", "import gofer; print(gofer.kernel())"], capture_output=True, text=True,
        env=dict(os.environ, GOFER_PURE_PYTHON=""), check=True,
    ).stdout.strip()
    assert report["kernel"] == installed, gofer.kernel()
    rows = set(report["suites"][0]["medians"])
    assert rows == ({"gofer", "gofer (pure)"} if installed == "compiled" else {"gofer"})
    assert f"gofer kernel installed: {installed}" in out.stdout
