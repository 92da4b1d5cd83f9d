"""Deadlock detection, Ctrl-C, dump_tasks, to_thread, coroutine-locals, timers."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest

import gofer


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


def test_ctrl_c_interrupts_run_promptly_and_runs_finally():
    cleaned = []

    def worker():
        try:
            gofer.sleep(1000)
        finally:
            cleaned.append("worker")

    def main():
        gofer.go(worker)
        gofer.sleep(1000)

    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gofer.run(main)
    assert time.monotonic() - t0 < 5
    timer.join()
    assert cleaned == ["worker"]


def test_keyboard_interrupt_inside_a_coroutine_reaches_run(vrun):
    def bad():
        raise KeyboardInterrupt

    def main():
        gofer.go(bad)
        gofer.sleep(100)

    with pytest.raises(KeyboardInterrupt):
        vrun(main)


def test_dump_tasks_shows_names_waits_and_stacks(vrun):
    def napper():
        gofer.sleep(50)

    def main():
        t = gofer.go(napper)
        t.name = "napper-1"
        gofer.yield_now()
        buf = io.StringIO()
        text = gofer.dump_tasks(buf)
        assert buf.getvalue() == text
        assert "napper-1: parked on <timer" in text
        assert "in napper" in text  # its stack
        assert "main: running" in text
        t.cancel()

    vrun(main)


def test_to_thread_result_error_and_concurrency(vrun):
    def main():
        assert gofer.to_thread(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            gofer.to_thread(lambda: 1 / 0)
        with pytest.raises(TypeError):
            gofer.to_thread(5)
        # Several at once really run in parallel threads.
        barrier = threading.Barrier(3, timeout=5)
        ts = [gofer.go(gofer.to_thread, barrier.wait) for _ in range(3)]
        assert sorted(t.join() for t in ts) == [0, 1, 2]

    gofer.run(main)


def test_to_thread_caller_can_be_cancelled(vrun):
    release = threading.Event()

    def main():
        t = gofer.go(gofer.to_thread, release.wait)
        gofer.sleep(0.01)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        release.set()

    gofer.run(main)


def test_local_is_per_coroutine(vrun):
    loc = gofer.local()

    def child(v):
        assert not hasattr(loc, "x")
        loc.x = v
        gofer.yield_now()
        return loc.x

    def main():
        loc.x = "main"
        ts = [gofer.go(child, i) for i in range(3)]
        assert [t.join() for t in ts] == [0, 1, 2]
        assert loc.x == "main"
        del loc.x
        with pytest.raises(AttributeError):
            _ = loc.x

    vrun(main)


def test_local_subclass_init_runs_per_coroutine(vrun):
    class Counter(gofer.local):
        def __init__(self, start):
            self.n = start

    c = Counter(10)

    def child():
        c.n += 1
        return c.n

    def main():
        assert gofer.go(child).join() == 11
        assert gofer.go(child).join() == 11
        assert c.n == 10

    vrun(main)
    with pytest.raises(TypeError):
        gofer.local(1)


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


def test_cancel_scope_and_done_callback_from_another_thread():
    seen = []

    def main():
        t = gofer.go(gofer.sleep, 0.05)
        th = threading.Thread(target=t.add_done_callback, args=(lambda task: seen.append(threading.current_thread().name),))
        th.start()
        th.join()
        t.join()
        gofer.yield_now()
        with gofer.CancelScope() as sc:
            canceller = threading.Thread(target=sc.cancel)
            canceller.start()
            gofer.sleep(30)
        canceller.join()
        return sc.cancelled_caught

    assert gofer.run(main) is True
    assert seen == ["MainThread"]
