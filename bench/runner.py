"""The benchmark runner: subprocess per measurement, interleaved rounds.

Usage: ``python -m bench [--quick] [--json FILE] [--rounds N] [--plot FILE.png] [SUITE ...]``.
Prints, per suite, each system's median figure and its ratio to gofer's,
with a progress line on stderr while it runs, and writes every raw figure to
a JSON file. ``gofer bench`` (gofer's own command, from a checkout) calls
:func:`main` with its own ``prog``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import Suite, all_suites, child_env

__all__ = ["main", "measure_once"]


PURE = " (pure)"  # the suffix of a gofer system run on the pure-Python kernel


def installed_kernel() -> str:
    """The kernel gofer loads here by default: compiled, pure or mixed."""
    out = subprocess.run(
        [sys.executable, "-c", "import gofer; print(gofer.kernel())"],
        capture_output=True, text=True, env=child_env(GOFER_PURE_PYTHON=""), check=False,
    )
    return out.stdout.strip() or "unknown"


def with_kernels(systems: list[str], kernels: str) -> list[str]:
    """The systems to run: gofer's on the compiled kernel, the pure one, or both."""
    out = []
    for s in systems:
        if not s.startswith("gofer"):
            out.append(s)
            continue
        if kernels in ("compiled", "both"):
            out.append(s)
        if kernels in ("pure", "both"):
            out.append(s + PURE)
    return out


def measure_once(suite: Suite, system: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; return its metrics or an error."""
    # GOFER_PURE_PYTHON is set or cleared for the child and what it starts.
    pure = system.endswith(PURE)
    name = system.removesuffix(PURE)
    cmd = [sys.executable, "-m", "bench.worker", suite.name, name, json.dumps(params)]
    env = child_env(GOFER_PURE_PYTHON="1" if pure else "")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=suite.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {suite.timeout:.0f}s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit code {out.returncode}"}
    return json.loads(lines[-1])


def _progress(msg: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K" + msg)
    else:
        sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def run_suite(
    suite: Suite, quick: bool, rounds: int | None, overrides: dict[str, Any] | None = None, only: list[str] | None = None,
    kernels: str = "compiled",
) -> dict[str, Any]:
    params = suite.params_for(quick)
    params.update({k: v for k, v in (overrides or {}).items() if k in params})
    n = rounds or (suite.quick_rounds if quick else suite.rounds)
    systems = with_kernels([s for s in suite.systems if not only or s in only], kernels)
    raw: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    skipped: dict[str, str] = {}
    for r in range(n):
        order = [s for s in systems if s not in skipped]
        random.shuffle(order)
        for s in order:
            _progress(f"[{suite.name}] round {r + 1}/{n}: {s} ...")
            res = measure_once(suite, s, params)
            if "skip" in res:
                skipped[s] = res["skip"]
            elif "error" in res:
                raw[s].append(res)
            else:
                raw[s].append(res)
    _progress(f"[{suite.name}] done\n" if sys.stderr.isatty() else f"[{suite.name}] done")
    medians: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    for s, results in raw.items():
        good = [x for x in results if "error" not in x]
        if not good:
            if s not in skipped and results:
                errors[s] = results[-1]["error"]
            continue
        keys = [k for k, v in good[0].items() if isinstance(v, int | float)]
        medians[s] = {k: statistics.median(x[k] for x in good if k in x) for k in keys}
    return {
        "suite": suite.name,
        "description": suite.description,
        "metric": suite.metric,
        "unit": suite.unit,
        "lower_is_better": suite.lower_is_better,
        "goal": suite.goal,
        "params": params,
        "rounds": n,
        "medians": medians,
        "raw": raw,
        "skipped": skipped,
        "errors": errors,
    }


def format_result(res: dict[str, Any]) -> str:
    metric = res["metric"]
    med = res["medians"]
    base = med.get("gofer", {}).get(metric)
    lines = [f"== {res['suite']}: {res['description']}", f"   {metric} ({res['unit']}, {'lower' if res['lower_is_better'] else 'higher'} is better), median of {res['rounds']} rounds; ratio = system / gofer"]
    rows = sorted(med.items(), key=lambda kv: kv[1].get(metric, float("inf")), reverse=not res["lower_is_better"])
    for name, vals in rows:
        v = vals.get(metric)
        ratio = f"{v / base:6.2f}x" if (v is not None and base) else "     -"
        extra = ", ".join(f"{k}={_fmt(x)}" for k, x in vals.items() if k != metric)
        lines.append(f"   {name:<22} {_fmt(v):>12}  {ratio}   {extra}")
    for name, why in res["skipped"].items():
        lines.append(f"   {name:<22} skipped: {why}")
    for name, why in res["errors"].items():
        lines.append(f"   {name:<22} failed: {why}")
    if res.get("goal"):
        lines.append(f"   goal: {res['goal']}")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0 or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Run gofer's benchmark suites side by side with its peers.")
    ap.add_argument("suites", nargs="*", help="suite names (default: all); see --list")
    ap.add_argument("--quick", action="store_true", help="short run: smaller sizes, fewer rounds")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per suite (default: per suite)")
    ap.add_argument("--json", default="bench-results.json", help="where to write all figures (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the suites and exit")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a suite parameter (e.g. --set n=100); repeatable")
    ap.add_argument("--systems", default="", help="comma-separated systems to run (default: all)")
    ap.add_argument(
        "--kernels", choices=("compiled", "pure", "both"), default=None,
        help="gofer's kernel(s): both where the compiled one is installed (each gofer system also "
        "runs as 'NAME (pure)'), else pure",
    )
    ap.add_argument("--plot", metavar="FILE.png", help="also draw each suite's figures as a bar chart (needs matplotlib)")
    ap.add_argument("--from", dest="from_json", metavar="FILE.json", help="run nothing: take the figures from a saved report (with --plot)")
    args = ap.parse_args(argv)
    if args.from_json:
        if not args.plot:
            ap.error("--from needs --plot (it only draws a saved report)")
        with open(args.from_json) as f:
            return _plot(json.load(f), args.plot, prog)
    suites = all_suites()
    if args.list:
        for s in suites:
            print(f"{s.name:<24} {s.description}  [{', '.join(s.systems)}]")
        return 0
    if args.suites:
        names = {s.name for s in suites}
        unknown = [n for n in args.suites if n not in names]
        if unknown:
            ap.error(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        suites = [s for s in suites if s.name in args.suites]
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--set needs KEY=VALUE, not {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    only = [x for x in args.systems.split(",") if x]
    kernel = installed_kernel()
    # Where only one kernel is installed, it is the one gofer loads by default: no suffix.
    kernels = (args.kernels or "both") if kernel == "compiled" else "compiled"
    shown = {"both": "both kernels", "pure": "the pure-Python kernel"}.get(kernels, f"the {kernel} kernel")
    print(f"gofer kernel installed: {kernel}; running {shown}", flush=True)
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": sys.version.split()[0],
        "kernel": kernel,
        "kernels": kernels,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "suites": [],
    }
    for s in suites:
        res = run_suite(s, args.quick, args.rounds, overrides, only, kernels)
        report["suites"].append(res)
        print(format_result(res), flush=True)
        print(flush=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
    print(f"all figures written to {args.json}")
    return _plot(report, args.plot, prog) if args.plot else 0


def _plot(report: dict[str, Any], path: str, prog: str) -> int:
    from bench.plot import plot_report

    try:
        n = plot_report(report, path)
    except (RuntimeError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(f"{n} suite(s) drawn in {path}")
    return 0
