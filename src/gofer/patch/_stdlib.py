"""CPython's own tests under ``gofer.patch()``, compared with the same tests unpatched.

``python -m gofer.patch --stdlib-tests [--expect FILE] [--json OUT]
[--module-timeout S] [--test-timeout S] [modules...]`` runs each module of
the interpreter's ``test`` package twice, in child processes
(``_stdlib_child``): once plain, once with ``gofer.patch()`` applied first,
as gevent runs them. A test that hangs ends its child after
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


def run_module(module: str, patched: bool, module_timeout: float, test_timeout: float) -> Run:
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
    it = iter(argv)
    for arg in it:
        if arg in opts:
            opts[arg] = next(it, "")
        elif arg == "--ci":
            modules.extend(CI_MODULES)
        elif arg.startswith("-"):
            print(f"unknown option {arg!r}", file=sys.stderr)
            return 2
        else:
            modules.append(arg)
    modules = modules or MODULES
    expect = read_expectations(opts["--expect"])
    report: dict[str, dict[str, object]] = {}
    new_failures: list[str] = []
    total_base = total_kept = 0
    print(f"{'module':24} {'unpatched p/f/s':>18} {'patched p/f/s':>18} {'kept':>7}  time (s)")
    for module in modules:
        base = run_module(module, False, float(opts["--module-timeout"]), float(opts["--test-timeout"]))
        pat = run_module(module, True, float(opts["--module-timeout"]), float(opts["--test-timeout"]))
        passed = base.ids("pass")
        lost = sorted(passed - pat.ids("pass"))
        total_base += len(passed)
        total_kept += len(passed) - len(lost)
        new = [t for t in lost if t not in expect]
        stale = sorted(t for t in expect if t in pat.ids("pass"))
        new_failures.extend(new)
        share = 100.0 * (len(passed) - len(lost)) / len(passed) if passed else 100.0
        counts = [f"{len(r.ids('pass'))}/{len(r.ids('fail'))}/{len(r.ids('skip'))}" for r in (base, pat)]
        print(f"{module:24} {counts[0]:>18} {counts[1]:>18} {share:6.1f}%  {base.seconds:.0f} + {pat.seconds:.0f}")
        for t in new:
            print(f"    NEW FAILURE {t}")
        for t in lost:
            if t in expect:
                print(f"    excluded    {t}  ({expect[t]})")
        for t in stale:
            print(f"    stale exclusion (passes now) {t}")
        for n in pat.notes:
            print(f"    patched run: {n}")
        report[module] = {
            "unpatched": {k: sorted(base.ids(k)) for k in ("pass", "fail", "skip")},
            "patched": {k: sorted(pat.ids(k)) for k in ("pass", "fail", "skip")},
            "lost": lost, "new": new, "stale": stale, "notes": pat.notes,
            "seconds": [round(base.seconds, 1), round(pat.seconds, 1)],
        }
    share = 100.0 * total_kept / total_base if total_base else 100.0
    print(f"overall: {total_kept} of {total_base} tests passing unpatched pass patched ({share:.1f}%)")
    print(f"new failures (not in {opts['--expect']}): {len(new_failures)}")
    if opts["--json"]:
        with open(opts["--json"], "w") as f:
            json.dump({"python": sys.version, "modules": report, "kept_percent": share}, f, indent=1)
    return 1 if new_failures else 0
