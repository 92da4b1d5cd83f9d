"""One run of one CPython test module, for ``_stdlib`` (a child process).

``python -m gofer.patch._stdlib_child MODULE OUT [--patch] [--skip FILE]
[--test-timeout S] [--use RESOURCES] [--in-coroutine]``: with ``--patch``, ``gofer.patch()`` comes first, before
anything else is imported, as gevent runs these tests. Then the module of the
interpreter's ``test`` package is loaded with unittest and run in the main
thread's code. Every test writes ``START id`` before it runs and
``pass|fail|skip id`` after, flushed at once, so that a test that hangs (the
faulthandler timer ends the process after ``--test-timeout`` seconds) is
known and the parent can start again after it.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    module, out = argv[0], argv[1]
    if "--patch" in argv:
        import gofer.patch

        gofer.patch()
    import faulthandler
    import unittest

    skip: set[str] = set()
    if "--skip" in argv:
        with open(argv[argv.index("--skip") + 1]) as f:
            skip = {line.strip() for line in f if line.strip()}
    per_test = float(argv[argv.index("--test-timeout") + 1]) if "--test-timeout" in argv else 60.0
    from test import support  # type: ignore[import-not-found]

    # No internet, no long "cpu" tests, the same in both runs; --use adds some.
    support.use_resources = argv[argv.index("--use") + 1].split(",") if "--use" in argv else []
    sink = open(out, "a", buffering=1)  # noqa: SIM115 - open for the whole run

    class Result(unittest.TextTestResult):
        def startTest(self, test: unittest.TestCase) -> None:
            sink.write(f"START {test.id()}\n")
            faulthandler.dump_traceback_later(per_test, exit=True)
            self._gofer_bad = False
            super().startTest(test)

        def _end(self, test: unittest.TestCase, outcome: str) -> None:
            faulthandler.cancel_dump_traceback_later()
            sink.write(f"{outcome} {test.id()}\n")

        def addSuccess(self, test: unittest.TestCase) -> None:
            super().addSuccess(test)
            self._end(test, "fail" if self._gofer_bad else "pass")

        def addExpectedFailure(self, test: unittest.TestCase, err: object) -> None:
            super().addExpectedFailure(test, err)  # type: ignore[arg-type]
            self._end(test, "pass")

        def addFailure(self, test: unittest.TestCase, err: object) -> None:
            super().addFailure(test, err)  # type: ignore[arg-type]
            self._end(test, "fail")

        def addError(self, test: unittest.TestCase, err: object) -> None:
            super().addError(test, err)  # type: ignore[arg-type]
            if isinstance(test, unittest.TestCase):
                self._end(test, "fail")
            else:  # a class or module fixture failed: its tests never ran
                sink.write(f"fixture {test}\n")

        def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
            super().addUnexpectedSuccess(test)
            self._end(test, "fail")

        def addSkip(self, test: unittest.TestCase, reason: str) -> None:
            super().addSkip(test, reason)
            self._end(test, "skip")

        def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: object) -> None:
            super().addSubTest(test, subtest, err)  # type: ignore[arg-type]
            if err is not None:
                self._gofer_bad = True

    suite = unittest.defaultTestLoader.loadTestsFromName(f"test.{module}")

    def flat(s: unittest.TestSuite) -> list[unittest.TestCase]:
        out: list[unittest.TestCase] = []
        for t in s:
            if isinstance(t, unittest.TestSuite):
                out.extend(flat(t))
            else:
                out.append(t)
        return out

    tests = [t for t in flat(suite) if t.id() not in skip]
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=1, resultclass=Result)  # type: ignore[arg-type]
    why = vsock_loopback_fails() if module == "test_socket" else None
    if why:
        # The client-server VSOCK tests would hang in accept() until the test
        # timeout, unpatched as well as patched: skipped, saying why.
        for t in tests:
            if _is_vsock_threaded(t):
                name = t._testMethodName
                setattr(t, name, unittest.skip(why)(getattr(t, name)))
    if "--in-coroutine" in argv:
        # The tests' own code then runs in a coroutine (inside gofer.run), so
        # every patched call takes its cooperative path.
        import gofer

        gofer.run(runner.run, unittest.TestSuite(tests))
    else:
        runner.run(unittest.TestSuite(tests))
    sink.write("DONE\n")
    sink.close()
    return 0


def _is_vsock_threaded(test: object) -> bool:
    cls = type(test)
    return "VSOCK" in cls.__name__ and any(b.__name__ == "ThreadableTest" for b in cls.__mro__)


def vsock_loopback_fails() -> str | None:
    """Why VSOCK loopback does not work here (None where it works or there is no VSOCK).

    Where ``/dev/vsock`` exists with no transport behind it (containers),
    test_socket's VSOCK client-server tests hang; they are skipped there.
    """
    import os
    import socket as stdsocket

    af = getattr(stdsocket, "AF_VSOCK", None)
    if af is None or not os.path.exists("/dev/vsock"):
        return None  # test_socket skips its VSOCK tests itself
    try:
        import fcntl
        import struct

        with open("/dev/vsock", "rb") as f:
            req = stdsocket.IOCTL_VM_SOCKETS_GET_LOCAL_CID
            cid = struct.unpack("I", fcntl.ioctl(f, req, b"    "))[0]
        with stdsocket.socket(af, stdsocket.SOCK_STREAM) as srv, stdsocket.socket(af, stdsocket.SOCK_STREAM) as cli:
            srv.bind((stdsocket.VMADDR_CID_ANY, stdsocket.VMADDR_PORT_ANY))
            srv.listen()
            cli.settimeout(2)
            cli.connect((cid, srv.getsockname()[1]))
    except OSError as exc:
        return f"VSOCK loopback does not work on this machine ({exc!r}); the stdlib's test hangs too"
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
