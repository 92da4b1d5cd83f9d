"""Interpreter exit with other threads' hubs alive (gofer._atexit), and the
monitor's own thread, which must not get a hub under gofer.patch()."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unpatched  # each test starts a fresh interpreter of its own


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


DAEMON_WAITS = """
    import gofer, gofer.patch
    gofer.patch()
    import threading, time
    ev = threading.Event()
    def waits():
        while not ev.wait(0.005):
            pass
    for _ in range(2):
        threading.Thread(target=waits, daemon=True).start()
    time.sleep(0.1)
    print("done")
"""


def test_daemon_threads_waiting_under_patch_exit_cleanly() -> None:
    # On 3.11 this aborted at exit with a corrupted heap in 3 runs out of 3
    # before _atexit froze the daemon threads' hubs.
    for _ in range(3):
        r = _run(DAEMON_WAITS)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "done"
        assert "corrupted" not in r.stderr and "Fatal" not in r.stderr, r.stderr


def test_freeze_hubs_answers_for_running_hubs_only() -> None:
    r = _run("""
        import gofer, gofer.patch
        gofer.patch()
        import threading, time
        from gofer._core import _atexit
        ev = threading.Event()
        stop = False
        def waits():
            while not ev.wait(0.005):
                pass
        def busy():  # plain code, no hub running: not waited for
            while not stop:
                sum(range(1000))
        def serves():
            gofer.run(lambda: gofer.sleep(1000))
        for fn in (waits, busy, serves):
            threading.Thread(target=fn, daemon=True).start()
        time.sleep(0.1)
        t0 = time.monotonic()
        print(_atexit.freeze_hubs(wait=5.0), time.monotonic() - t0 < 2.0)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "True"]


def test_monitor_thread_gets_no_hub_under_patch() -> None:
    r = _run("""
        import gofer, gofer.patch
        gofer.patch()
        import threading
        from gofer import _monitor
        from gofer._core import hubs
        m = _monitor.monitor(0.05)
        gofer.run(lambda: gofer.sleep(0.2))
        names = {t.ident: t.name for t in threading.enumerate()}
        print(sorted(names.get(h.thread_ident, "?") for h in hubs if not h.closed))
        m.stop()
    """)
    assert r.returncode == 0, r.stderr
    assert "gofer-monitor" not in r.stdout, r.stdout
