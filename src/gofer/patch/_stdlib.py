"""CPython's own tests under ``gofer.patch()``, compared with the same tests unpatched.

``python -m gofer.patch --stdlib-tests [--ci] [--in-coroutine] [--expect FILE]
[--json OUT] [--module-timeout S] [--test-timeout S] [modules...]`` runs each
module of the interpreter's ``test`` package in child processes
(``_stdlib_child``): once plain, once with ``gofer.patch()`` applied first,
as gevent runs them (the tests in the main thread's code), and with
``--in-coroutine`` once more patched with the tests running inside
``gofer.run``, so that every patched call takes its cooperative path. A test that hangs ends its child after
``--test-timeout`` seconds; it counts as failed and the child starts again
after it. It prints per module passed / failed / skipped for both runs and
the share of the tests passing unpatched that also pass patched.

The expectations file lists known exclusions, one per line:
``test.test_x.Class.test_y  reason`` (``#`` starts a comment). The exit
status is 1 if a test that passes unpatched fails patched and is not listed,
so CI fails on any new failure; listed tests that pass again are reported
as stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

MODULES = [
    "test_socket", "test_selectors", "test_select", "test_queue", "test_threading", "test_thread",
    "test_subprocess", "test_ssl", "test_httplib", "test_urllib2_localnet", "test_socketserver",
    "test_wsgiref", "test_smtplib",
]
# test.support resources a module needs to run at all; it only talks to itself
# on loopback (the "network" tests of the other modules reach the internet).
RESOURCES = {"test_socketserver": "network"}
CI_MODULES = ["test_socket", "test_selectors", "test_queue", "test_threading"]
DEFAULT_EXPECT = os.path.join("tests", "stdlib_patched", "expectations.txt")


@dataclass
class Run:
    """The outcome of every test of one module in one mode."""

    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> pass|fail|skip
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ids(self, outcome: str) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == outcome}


def run_module(module: str, patched: bool, module_timeout: float, test_timeout: float, in_coroutine: bool = False) -> Run:
    """Run one module in a child process (started again after a hung test)."""
    run = Run()
    work = tempfile.mkdtemp(prefix=f"gofer-{module}-")
    out = os.path.join(work, "results.txt")
    skip = os.path.join(work, "skip.txt")
    t0 = time.monotonic()
    try:
        for _attempt in range(20):
            left = module_timeout - (time.monotonic() - t0)
            if left <= 0:
                run.notes.append(f"module timeout ({module_timeout:.0f} s)")
                break
            with open(skip, "w") as f:
                f.write("\n".join(run.outcomes))
            cmd = [sys.executable, "-m", "gofer.patch._stdlib_child", module, out, "--skip", skip,
                   "--test-timeout", str(test_timeout)]
            if patched:
                cmd.append("--patch")
            if in_coroutine:
                cmd.append("--in-coroutine")
            if module in RESOURCES:
                cmd += ["--use", RESOURCES[module]]
            try:
                subprocess.run(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=left, check=False)
            except subprocess.TimeoutExpired:
                run.notes.append(f"module timeout ({module_timeout:.0f} s)")
            done, started = _read(out, run)
            if done:
                break
            if started is None:
                run.notes.append("the child died before starting a test")
                break
            run.outcomes[started] = "fail"  # it hung or crashed the process
            run.notes.append(f"hung or crashed: {started}")
    finally:
        run.seconds = time.monotonic() - t0
        shutil.rmtree(work, ignore_errors=True)
    return run


def _read(path: str, run: Run) -> tuple[bool, str | None]:
    """Fold the child's result lines into ``run``; (finished, test started but not ended)."""
    started = None
    done = False
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return False, None
    open(path, "w").close()
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "START":
            started = rest
        elif kind in ("pass", "fail", "skip"):
            run.outcomes[rest] = kind
            started = None
        elif kind == "fixture":
            run.notes.append(f"fixture failed: {rest}")
        elif kind == "DONE":
            done = True
    return done, started


def read_expectations(path: str) -> dict[str, str]:
    """Test id -> reason, from the expectations file (missing file: none)."""
    out: dict[str, str] = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                test_id, _, reason = line.partition(" ")
                out[test_id] = reason.strip()
    return out


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    opts = {"--expect": DEFAULT_EXPECT, "--json": "", "--module-timeout": "900", "--test-timeout": "60"}
    modules: list[str] = []
    modes = ["patched"]
    it = iter(argv)
    for arg in it:
        if arg in opts:
            opts[arg] = next(it, "")
        elif arg == "--ci":
            modules.extend(CI_MODULES)
        elif arg == "--in-coroutine":
            modes.append("coroutine")
        elif arg.startswith("-"):
            print(f"unknown option {arg!r}", file=sys.stderr)
            return 2
        else:
            modules.append(arg)
    modules = modules or MODULES
    expect = read_expectations(opts["--expect"])
    report: dict[str, dict[str, object]] = {}
    new_failures: list[str] = []
    total_base = 0
    kept = dict.fromkeys(modes, 0)
    mt, tt = float(opts["--module-timeout"]), float(opts["--test-timeout"])
    head = "".join(f" {m + ' p/f/s':>18}" for m in ["unpatched", *modes])
    print(f"{'module':24}{head} {'kept':>7}  time (s)")
    for module in modules:
        base = run_module(module, False, mt, tt)
        runs = {m: run_module(module, True, mt, tt, in_coroutine=(m == "coroutine")) for m in modes}
        passed = base.ids("pass")
        total_base += len(passed)
        entry: dict[str, object] = {"unpatched": {k: sorted(base.ids(k)) for k in ("pass", "fail", "skip")}}
        counts = [f"{len(r.ids('pass'))}/{len(r.ids('fail'))}/{len(r.ids('skip'))}" for r in (base, *runs.values())]
        lost_any: set[str] = set()
        for m, r in runs.items():
            lost = passed - r.ids("pass")
            kept[m] += len(passed) - len(lost)
            lost_any |= lost
            entry[m] = {k: sorted(r.ids(k)) for k in ("pass", "fail", "skip")} | {"lost": sorted(lost), "notes": r.notes}
        share = min(100.0 * (len(passed) - len(passed - r.ids("pass"))) / len(passed) if passed else 100.0
                    for r in runs.values())
        secs = " + ".join(f"{r.seconds:.0f}" for r in (base, *runs.values()))
        print(f"{module:24}" + "".join(f" {c:>18}" for c in counts) + f" {share:6.1f}%  {secs}")
        new = sorted(t for t in lost_any if t not in expect)
        new_failures.extend(new)
        for t in new:
            print(f"    NEW FAILURE {t} ({', '.join(m for m in runs if t not in runs[m].ids('pass'))})")
        for t in sorted(lost_any):
            if t in expect:
                print(f"    excluded    {t}  ({expect[t]})")
        stale = sorted(t for t in expect if all(t in r.ids("pass") for r in runs.values()))
        for t in stale:
            print(f"    stale exclusion (passes now) {t}")
        for m, r in runs.items():
            for n in r.notes:
                print(f"    {m} run: {n}")
        entry["new"], entry["stale"] = new, stale
        entry["seconds"] = [round(r.seconds, 1) for r in (base, *runs.values())]
        report[module] = entry
    for m in modes:
        pct = 100.0 * kept[m] / total_base if total_base else 100.0
        print(f"overall ({m}): {kept[m]} of {total_base} tests passing unpatched pass patched ({pct:.1f}%)")
    share = min((100.0 * kept[m] / total_base if total_base else 100.0) for m in modes)
    print(f"new failures (not in {opts['--expect']}): {len(new_failures)}")
    if opts["--json"]:
        with open(opts["--json"], "w") as f:
            json.dump({"python": sys.version, "modules": report, "kept_percent": share}, f, indent=1)
    return 1 if new_failures else 0
