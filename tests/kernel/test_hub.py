"""The hub loop (gofer._core._hub): deadlock detection, timers, call_threadsafe, blocking in the hub.

Tests commented "Regression (fixed in ...)" reproduce bugs found in the
review of the core runtime (they came from the former test_core_review.py).
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from tests.kernel._kernelutil import _forever, _try

import gofer
from gofer._core import get_hub, wait_readable
from gofer.testing import VirtualClock
from gofer.testing import run as vrun_with

# -- deadlock detection ------------------------------------------------------------------


def test_deadlock_is_reported_with_parked_coroutines():
    def main():
        me = gofer.current()
        helper = gofer.go(me.join)  # waits for main, which waits for it
        helper.name = "helper"
        helper.join()

    with pytest.raises(gofer.Deadlock) as ei:
        gofer.run(main)
    msg = str(ei.value)
    assert "deadlock" in msg
    assert "helper: parked on <join main>" in msg
    assert "main: parked on <join helper>" in msg


def test_deadlock_in_plain_code():
    tasks = {}
    tasks["a"] = gofer.go(lambda: tasks["b"].join())
    tasks["b"] = gofer.go(lambda: tasks["a"].join())
    with pytest.raises(gofer.Deadlock):
        tasks["a"].join()
    for t in tasks.values():
        t.cancel()
    gofer.get_hub().close()


def test_no_false_deadlock_while_a_thread_job_runs(vrun):
    def main():
        return gofer.to_thread(time.sleep, 0.05) or "ok"

    assert vrun(main) == "ok"


def test_deadlock_join_of_task_parked_forever_names_both():
    def main():
        t = gofer.go(_forever)
        t.name = "stuck"
        t.join()

    with pytest.raises(gofer.Deadlock) as ei:
        gofer.run(main)
    msg = str(ei.value)
    assert "stuck: parked on <slot>" in msg
    assert "main: parked on <join stuck>" in msg


def test_no_false_deadlock_while_waiting_for_io_from_another_process():
    # Nothing in this process can wake the reader, but the child process will.
    def main():
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time, sys; time.sleep(0.05); sys.stdout.write('hi')"],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        st = get_hub().poller.register(fd)
        st.readable = False
        data = b""
        try:
            while True:
                try:
                    chunk = os.read(fd, 100)
                except BlockingIOError:
                    st.readable = False
                    wait_readable(st)
                    continue
                if not chunk:
                    break
                data += chunk
        finally:
            get_hub().poller.unregister(st)
            proc.stdout.close()
            proc.wait()
        return data

    assert gofer.run(main) == b"hi"


# Regression (fixed in 5e84162): cancelled timers still count: the hub waits until a cancelled
# timer's deadline (virtual clock jumps to it; real clock sleeps) before reporting Deadlock
def test_deadlock_is_not_delayed_by_a_cancelled_timer():
    clock = VirtualClock()

    def main():
        with gofer.timeout(1000):
            pass
        _forever()

    with pytest.raises(gofer.Deadlock):
        vrun_with(main, clock=clock)
    assert clock.now() == 0


# -- timers, big and infinite timeouts ---------------------------------------------------


def test_many_timers_cancel_cheaply(vrun):
    def main():
        hub = gofer.get_hub()
        hs = [hub.call_later(1000 + i, lambda: None) for i in range(100_000)]
        for h in hs:
            h.cancel()
        gofer.sleep(1)  # the loop compacts the heap of cancelled entries
        assert hub.stats()["timers"] == 0
        assert len(hub._timers) < 1000

    vrun(main)


# Regression (fixed in 5e84162): an infinite (or > ~292 years) timer at the head of the heap
# makes the poller raise OverflowError, which the hub throws into the main code
def test_infinite_timeout_scope_around_a_thread_job():
    def main():
        with gofer.timeout(math.inf):
            gofer.to_thread(time.sleep, 0.02)
        return "ok"

    assert gofer.run(main) == "ok"


# Regression (fixed in 5e84162): on the virtual clock, sleep(inf) returns (the clock jumps to
# inf) instead of the program being reported as deadlocked
def test_sleep_forever_on_virtual_clock_is_a_deadlock(vrun):
    with pytest.raises(gofer.Deadlock):
        vrun(gofer.sleep, math.inf)


# -- other threads: call_threadsafe, a hub's fds -----------------------------------------


def test_call_threadsafe_wakes_a_blocked_hub():
    def main():
        hub = gofer.get_hub()
        got = []
        me = gofer.current()

        class Wait:
            def _gofer_abort(self, task):
                return False

        def poke():
            got.append(threading.current_thread().name)
            hub.ready.append(me._g)

        th = threading.Thread(target=lambda: (time.sleep(0.05), hub.call_threadsafe(poke)), name="poker")
        th.start()
        from gofer._core import park

        park(Wait())
        th.join()
        return got

    assert gofer.run(main) == ["MainThread"]


# Regression (fixed in 5e84162): _drain_threadsafe clears _ts_signalled before reading the
# wake-up fd: a call_threadsafe landing between the two leaves the flag set with no byte
# pending, and every later call_threadsafe is lost (the hub sleeps in poll forever)
def test_call_threadsafe_racing_the_drain_is_not_lost(monkeypatch):
    real_read = os.read
    state: dict[str, Any] = {"hub": None, "armed": False}

    def racy_read(fd: int, n: int) -> bytes:
        hub = state["hub"]
        if state["armed"] and hub is not None and fd == hub._wakeup_r:
            state["armed"] = False
            # Another thread's call_threadsafe lands just before the hub reads.
            hub.call_threadsafe(lambda: None)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", racy_read)
    stuck: list[bool] = []

    def rescue() -> None:
        hub = state["hub"]
        stuck.append(True)
        os.write(hub._wakeup_w, (1).to_bytes(8, sys.byteorder))

    watchdog = threading.Timer(1.0, rescue)

    def main():
        hub = get_hub()
        state["hub"] = hub
        state["armed"] = True
        hub.call_threadsafe(lambda: None)
        gofer.sleep(0.001)  # the hub drains (and the race happens)
        watchdog.start()
        gofer.to_thread(time.sleep, 0.01)  # its completion comes via call_threadsafe
        watchdog.cancel()

    try:
        gofer.run(main)
    finally:
        watchdog.cancel()
        if watchdog.is_alive():
            watchdog.join()
    assert not stuck, "the hub missed a call_threadsafe wake-up"


def test_hub_of_an_exited_thread_releases_its_fds():
    def plain_thread():
        gofer.sleep(0.001)  # makes a hub in this thread (plain code)
        gofer.go(gofer.yield_now).join()

    def run_thread():
        gofer.run(gofer.sleep, 0.001)

    fds0 = set(os.listdir("/proc/self/fd"))
    for target in (plain_thread, run_thread):
        th = threading.Thread(target=target)
        th.start()
        th.join()
    gc.collect()
    assert set(os.listdir("/proc/self/fd")) - fds0 == set()


# -- blocking in the hub -----------------------------------------------------------------


def test_blocking_in_a_hub_callback_or_timer_is_a_named_error(vrun):
    def main():
        hub = get_hub()
        got: list[Any] = []
        hub.call_soon(lambda: got.append(_try(lambda: gofer.sleep(1))))
        hub.call_later(1, lambda: got.append(_try(gofer.yield_now)))
        t = gofer.go(gofer.sleep, 5)
        hub.call_soon(lambda: got.append(_try(t.join)))
        gofer.sleep(2)
        t.join()
        return [type(e).__name__ for e in got]

    assert vrun(main) == ["BlockingInHubError"] * 3


def test_idle_workers_let_go_are_ended_not_leaked() -> None:
    # Greenlets take no part in gc and an idle worker's frame holds it: a
    # worker dropped from the pool without being ended stayed alive forever
    # (4,745 after 5 bursts of 1,000 before the fix).
    from gofer._core import Worker
    from gofer._core._hub import _IDLE_KEEP

    def live_workers() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if o.__class__ is Worker)

    def main() -> int:
        for _ in range(5):
            tasks = [gofer.go(gofer.yield_now) for _ in range(1000)]
            for t in tasks:
                t.join()
            gofer.sleep(0.002)  # the hub sleeps: it trims its idle workers
        return live_workers()

    before = live_workers()
    assert gofer.run(main) - before <= _IDLE_KEEP + 8


def test_a_thread_ending_with_a_parked_receiver_takes_its_record_back() -> None:
    # The thread's hub goes at its exit; its coroutine never runs again, so a
    # send must not hand it the value (it returned, and the value was lost).
    ch: gofer.Chan[int] = gofer.Chan()

    def leaves_a_receiver() -> None:
        gofer.go(ch.recv)
        gofer.yield_now()  # the receiver parks in ch.recv; then the thread ends

    th = threading.Thread(target=leaves_a_receiver)
    th.start()
    th.join()
    gc.collect()
    with pytest.raises(TimeoutError):
        ch.send(1, timeout=0.05)
