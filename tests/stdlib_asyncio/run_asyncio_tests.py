"""Run CPython's own asyncio tests on gofer's event loop, against a plain run.

Usage: ``python tests/stdlib_asyncio/run_asyncio_tests.py [MODULE ...]
[--update] [--json FILE]`` (modules default to :data:`MODULES`; names are
those of ``test.test_asyncio``). Each module runs twice in a child process:
once as the stdlib ships it ("plain"), once with every asyncio loop made a
:class:`gofer.aio.GoferEventLoop` ("gofer": asyncio's default policy, and
``asyncio.SelectorEventLoop`` (and 3.13's ``asyncio.EventLoop``) build gofer loops; a loop asked for with a
selector that has no pollable fd, select() or poll(), gets the default one
instead). The tests run in the thread's main code, so each loop parks that
thread's root greenlet on the gofer hub whenever asyncio would block.

A test that passes plain but not on gofer must be listed, with its reason,
in ``expected-failures-3.X.txt`` beside this file; the run fails on any
other such test (and says which listed ones pass now). ``--update`` rewrites
the file's entries for the modules run, keeping the reasons already given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = [
    "test_events",
    "test_streams",
    "test_server",
    "test_sock_lowlevel",
    "test_sendfile",
    "test_subprocess",
    "test_unix_events",
    "test_base_events",
    "test_selector_events",
    "test_tasks",
    "test_futures",
    "test_locks",
    "test_queues",
    "test_taskgroups",
    "test_timeouts",
    "test_waitfor",
    "test_runners",
    "test_ssl",
    "test_sslproto",
    "test_context",
    "test_threads",
    "test_pep492",
]
CHILD_TIMEOUT = 900


_made = [0]  # gofer loops made in this child: proof the tests ran on them


def _use_gofer_loops() -> None:
    """Make every asyncio loop the child process creates a gofer loop."""
    import asyncio
    import selectors
    from asyncio import unix_events

    from gofer.aio import GoferEventLoop

    class TestGoferLoop(GoferEventLoop):
        def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
            if selector is not None and not callable(getattr(selector, "fileno", None)):
                selector.close()  # select()/poll() cannot be waited on: use epoll
                selector = None
            super().__init__(selector)
            _made[0] += 1

    unix_events._UnixDefaultEventLoopPolicy._loop_factory = TestGoferLoop  # type: ignore[attr-defined]
    asyncio.SelectorEventLoop = TestGoferLoop  # type: ignore[misc]
    unix_events.SelectorEventLoop = TestGoferLoop  # type: ignore[misc]
    if hasattr(asyncio, "EventLoop"):  # 3.13: the default loop class, by its new name
        asyncio.EventLoop = TestGoferLoop
        unix_events.EventLoop = TestGoferLoop
    asyncio.set_event_loop_policy(None)


class _Collect(unittest.TextTestResult):
    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self.outcomes[test.id()] = "fail"

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skip"

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "skip"

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "fail"


def _child(module: str, mode: str, out: str) -> int:
    if mode == "gofer":
        _use_gofer_loops()
    import importlib

    mod = importlib.import_module(f"test.test_asyncio.{module}")
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0, resultclass=_Collect)
    result: Any = runner.run(suite)
    with open(out, "w") as f:
        json.dump({"outcomes": result.outcomes, "gofer_loops": _made[0]}, f)
    return 0


def _run_module(module: str, mode: str) -> tuple[dict[str, str], str, int]:
    fd, out = tempfile.mkstemp(prefix=f"gofer-{module}-{mode}-", suffix=".json")
    os.close(fd)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [sys.executable, __file__, "--child", module, mode, out],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
        note = "" if r.returncode == 0 else f"exit {r.returncode}: {r.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        note = f"timed out after {CHILD_TIMEOUT}s"
    loops = 0
    try:
        with open(out) as f:
            data = json.load(f)
        outcomes: dict[str, str] = data["outcomes"]
        loops = data["gofer_loops"]
    except (OSError, ValueError, KeyError):
        outcomes = {}
        note = note or "no results"
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out)
    took = time.monotonic() - t0
    print(
        f"  {module} [{mode}] {took:.0f}s, {loops} gofer loops {note[:300]}",
        file=sys.stderr,
        flush=True,
    )
    return outcomes, note, loops


def _expected_path() -> str:
    return os.path.join(HERE, f"expected-failures-{sys.version_info[0]}.{sys.version_info[1]}.txt")


def _load_expected() -> dict[str, str]:
    exp: dict[str, str] = {}
    try:
        with open(_expected_path()) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, reason = line.partition("#")
                    exp[name.strip()] = reason.strip()
    except FileNotFoundError:
        pass
    return exp


def _write_expected(exp: dict[str, str]) -> None:
    with open(_expected_path(), "w") as f:
        f.write(
            "# CPython asyncio tests that pass on asyncio's own loop but not on gofer's\n"
            f"# (Python {sys.version_info[0]}.{sys.version_info[1]}); written by run_asyncio_tests.py --update.\n"
            "# Format: test id  # reason\n"
        )
        for name in sorted(exp):
            f.write(f"{name}  # {exp[name] or 'TODO: reason'}\n")


def _count(outcomes: dict[str, str]) -> dict[str, int]:
    c = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    for v in outcomes.values():
        c[v] += 1
    return c


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return _child(sys.argv[2], sys.argv[3], sys.argv[4])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", default=MODULES)
    ap.add_argument(
        "--update", action="store_true", help="rewrite the expected failures of these modules"
    )
    ap.add_argument("--json", help="write the per-module counts here")
    args = ap.parse_args()
    expected = _load_expected()
    report: dict[str, Any] = {}
    new: list[str] = []
    fixed: list[str] = []
    found: dict[str, str] = {}
    for module in args.modules:
        plain, pnote, _ = _run_module(module, "plain")
        gofer, gnote, loops = _run_module(module, "gofer")
        worse = sorted(t for t, o in plain.items() if o == "pass" and gofer.get(t) != "pass")
        prefix = f"test.test_asyncio.{module}."
        listed = {t for t in expected if t.startswith(prefix)}
        found.update({t: expected.get(t, "") for t in worse})
        new += [t for t in worse if t not in expected]
        fixed += sorted(t for t in listed if gofer.get(t) == "pass")
        report[module] = {
            "plain": _count(plain),
            "gofer": _count(gofer),
            "newly_failing": len(worse),
            "gofer_loops": loops,
        }
        if pnote or gnote:
            report[module]["note"] = (pnote or gnote)[:300]
    print(
        f"\n{'module':24} {'plain pass/fail/err/skip':>26} {'gofer pass/fail/err/skip':>26} {'worse':>6}"
    )
    tot_plain = tot_kept = 0
    for module, r in report.items():
        p, g = r["plain"], r["gofer"]
        tot_plain += p["pass"]
        tot_kept += p["pass"] - r["newly_failing"]
        ps = f"{p['pass']}/{p['fail']}/{p['error']}/{p['skip']}"
        gs = f"{g['pass']}/{g['fail']}/{g['error']}/{g['skip']}"
        print(f"{module:24} {ps:>26} {gs:>26} {r['newly_failing']:>6} {r['gofer_loops']:>6}")
    if tot_plain:
        print(
            f"\nof {tot_plain} tests passing plain, {tot_kept} pass on gofer's loop ({100 * tot_kept / tot_plain:.1f}%)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.update:
        kept = {
            t: r
            for t, r in expected.items()
            if not any(t.startswith(f"test.test_asyncio.{m}.") for m in args.modules)
        }
        kept.update(found)
        _write_expected(kept)
        print(f"wrote {_expected_path()}")
        return 0
    for t in fixed:
        print(f"now passes (remove it from the expected failures): {t}")
    for t in new:
        print(f"NEW FAILURE on gofer's loop: {t}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
