"""Run CPython's own ``test.test_socket`` against ``gofer.socket``.

The interpreter's ``test`` package holds the stdlib's socket test suite.
This script imports it with ``gofer.socket`` standing in for ``socket`` (only
while ``test.test_socket`` itself is imported, so ``import socket`` there
binds gofer's module and every other module keeps the stdlib's), runs it
with :mod:`unittest`, either as plain code or with ``--inside-run`` inside
``gofer.run()``, and compares what did not pass with the expectations file
beside it (``test_socket_expected.txt``): each test listed there fails by
design, with its reason. The exit status is 1 when a test that is not listed
fails or errs, or when the suite leaves threads behind; a listed test that
passes is reported as stale but does not fail the run.

Tests that need what this machine cannot do are skipped with the reason
printed: where ``/dev/vsock`` exists but a VSOCK loopback connection fails
(containers), test_socket's VSOCK test would hang in ``accept()`` with the
stdlib's socket too. ``--stdlib`` runs the suite unmodified, as the peer of
a gofer run on the same machine.

After each threaded test, test_socket waits until every thread the test
started has exited (``wait_threads_exit``). A test that looked up
``"localhost"`` started a resolver thread in gofer's pool, which exits after
the pool's idle timeout: with gofer's default of 0.5 s the whole suite takes
about 2.5 times as long as with the 0.05 s this runner sets
(``--idle-timeout 0.5`` runs it with the default; it passes the same way).

Usage: ``python tests/stdlib/run_test_socket.py [--inside-run] [--stdlib] [-v] [-k PATTERN]``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import time
import unittest
from pathlib import Path
from typing import Any

from gofer.patch._stdlib_child import vsock_loopback_fails

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "test_socket_expected.txt"
MODES = ("outside", "inside")


def load_expected(path: Path, mode: str) -> dict[str, tuple[str, str]]:
    """``{test id: (section, reason)}`` for the entries that apply to ``mode``.

    Lines are ``<test id> <outside|inside|both> <reason>``; ``[section]``
    lines start a section, ``#`` starts a comment. An entry may end its mode
    with ``,py>=3.N`` / ``,py<3.N`` to apply to some Python versions only.
    """
    entries: dict[str, tuple[str, str]] = {}
    section = ""
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise SystemExit(f"{path}:{lineno}: expected '<test id> <mode> <reason>', got {raw!r}")
        test_id, modes, reason = parts
        which, *conds = modes.split(",")
        if which not in (*MODES, "both"):
            raise SystemExit(f"{path}:{lineno}: mode must be outside, inside or both, not {which!r}")
        if which not in (mode, "both") or not all(_version_matches(c, path, lineno) for c in conds):
            continue
        entries[test_id] = (section, reason)
    return entries


def _version_matches(cond: str, path: Path, lineno: int) -> bool:
    for op in (">=", "<"):
        if cond.startswith("py" + op):
            major, minor = (int(x) for x in cond[2 + len(op):].split("."))
            have = sys.version_info[:2]
            return have >= (major, minor) if op == ">=" else have < (major, minor)
    raise SystemExit(f"{path}:{lineno}: a condition is py>=3.N or py<3.N, not {cond!r}")


def skip_unusable(mod: Any) -> list[str]:
    """Skip the test classes this machine cannot run; return what was skipped and why."""
    notes = []
    why = vsock_loopback_fails()
    if why:
        for name in dir(mod):
            cls = getattr(mod, name)
            # Only the tests that connect (client thread and server); the rest runs.
            if isinstance(cls, type) and issubclass(cls, mod.ThreadableTest) and "VSOCK" in name:
                setattr(mod, name, unittest.skip(why)(cls))
                notes.append(f"{name}: {why}")
    return notes


def import_stdlib() -> Any:
    """Import ``test.test_socket`` as it is (the stdlib's socket: the peer run)."""
    return importlib.import_module("test.test_socket")


def import_with_gofer_socket() -> Any:
    """Import ``test.test_socket`` with ``gofer.socket`` as its ``socket``."""
    import socket as stdsocket

    # Import what test_socket imports first, so that only test_socket binds gofer's module.
    for name in ("test.support", "test.support.os_helper", "test.support.socket_helper",
                 "test.support.threading_helper", "select", "signal", "threading"):
        importlib.import_module(name)
    import gofer.socket as gsocket

    sys.modules["socket"] = gsocket  # type: ignore[assignment]
    try:
        mod = importlib.import_module("test.test_socket")
    finally:
        sys.modules["socket"] = stdsocket
    if mod.socket is not gsocket:
        raise SystemExit("test.test_socket was already imported with the stdlib socket")
    return mod


class _Result(unittest.TextTestResult):
    """Collects the id of every test that did not pass, by outcome."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.passed: list[str] = []
        self.durations: list[tuple[float, str]] = []
        self._t0 = 0.0

    def startTest(self, test: unittest.TestCase) -> None:
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        self.durations.append((time.monotonic() - self._t0, test.id()))

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.passed.append(test.id())


def _id(test: Any) -> str:
    # A failing setUpModule/tearDownModule/setUpClass is an _ErrorHolder: its id is its description.
    return str(test.id())


def run_suite(mod: Any, pattern: str | None, verbosity: int, stream: Any) -> _Result:
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [pattern if "*" in pattern else f"*{pattern}*"]
    suite = loader.loadTestsFromModule(mod)
    runner = unittest.TextTestRunner(stream=stream, verbosity=verbosity, resultclass=_Result)
    return runner.run(suite)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inside-run", action="store_true", help="run the suite inside gofer.run()")
    ap.add_argument("--stdlib", action="store_true", help="run it with the stdlib's socket (no expectations)")
    ap.add_argument("--idle-timeout", type=float, default=0.05,
                    help="gofer.threads idle timeout in seconds (default 0.05; gofer's own is 0.5)")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="unittest verbosity (repeatable)")
    ap.add_argument("-k", dest="pattern", help="only tests whose id matches this pattern (fnmatch)")
    ap.add_argument("--expected", type=Path, default=EXPECTED, help="expectations file (default: beside this script)")
    args = ap.parse_args(argv)
    mode = "inside" if args.inside_run else "outside"
    expected = {} if args.stdlib else load_expected(args.expected, mode)

    from test import support

    import gofer
    from gofer import threads

    threads.set_idle_timeout(args.idle_timeout)
    mod = import_stdlib() if args.stdlib else import_with_gofer_socket()
    notes = skip_unusable(mod)
    stream = sys.stderr if args.verbose else io.StringIO()
    verbosity = args.verbose + 1 if args.verbose else 0
    t0 = time.monotonic()
    if args.inside_run:
        result = gofer.run(run_suite, mod, args.pattern, verbosity, stream)
    else:
        result = run_suite(mod, args.pattern, verbosity, stream)
    elapsed = time.monotonic() - t0
    if args.verbose:
        print("slowest tests:", file=sys.stderr)
        for dt, tid in sorted(result.durations, reverse=True)[:10]:
            print(f"  {dt:6.2f} s  {tid}", file=sys.stderr)

    bad = [(_id(t), "FAIL", tb) for t, tb in result.failures] + [(_id(t), "ERROR", tb) for t, tb in result.errors]
    bad += [(_id(t), "UNEXPECTED SUCCESS", "") for t in result.unexpectedSuccesses]
    if support.environment_altered:
        bad.append(("environment_altered", "FAIL", "the suite left threads (or other state) behind; see the warnings above\n"))
    unlisted = [(tid, kind, tb) for tid, kind, tb in bad if tid not in expected]
    listed = [(tid, kind) for tid, kind, _ in bad if tid in expected]
    stale = sorted(set(expected) & set(result.passed))

    what = "the stdlib's socket" if args.stdlib else "gofer.socket"
    print(f"test.test_socket with {what}, {mode} gofer.run, Python {sys.version.split()[0]}, "
          f"poller {os.environ.get('GOFER_POLLER', 'default')}: {elapsed:.0f} s")
    print(f"passed {len(result.passed)}, failed {len(result.failures)}, errors {len(result.errors)}, "
          f"skipped {len(result.skipped)}, expected failures {len(result.expectedFailures)}")
    for note in notes:
        print(f"  skipped here: {note}")
    for tid, kind in listed:
        section, reason = expected[tid]
        print(f"  listed [{section}] {kind}: {tid}: {reason}")
    for tid in stale:
        print(f"  stale (listed, but passed): {tid}")
    for tid, kind, tb in unlisted:
        print(f"\nUNLISTED {kind}: {tid}\n{tb}")
    print(f"{len(unlisted)} unlisted failure(s)" if unlisted else "no failures beyond those listed")
    return 1 if unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
