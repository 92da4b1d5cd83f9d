"""Parking and yields (gofer._core._park): worker reuse, the abort protocol, direct hand-off.

Tests commented "Regression (fixed in ...)" reproduce bugs found in the
review of the core runtime (they came from the former test_core_review.py).
"""

from __future__ import annotations

import contextvars
import gc
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.kernel._kernelutil import _Slot

import gofer
from gofer._core import get_hub, wait_readable
from gofer.testing import VirtualClock
from gofer.testing import run as vrun_with

# -- worker reuse: no state leaks from one task to the next ------------------------------


def test_reused_worker_starts_clean_after_a_cancelled_task(vrun):
    def main():
        hub = get_hub()
        victim = gofer.go(gofer.sleep, 10)
        gofer.yield_now()
        victim.cancel()
        with pytest.raises(gofer.Cancelled):
            victim.join()
        assert hub.idle_workers, "the cancelled task's worker should be idle for reuse"
        worker = hub.idle_workers[-1]
        # The next task takes that worker; it must not inherit the cancellation.
        nxt = gofer.go(lambda: (gofer.sleep(1), gofer.current())[1])
        assert nxt._g is worker
        assert nxt.join() is nxt
        assert not nxt.cancelled()

    vrun(main)


def test_reused_worker_does_not_inherit_a_cancel_scope_or_timeout(vrun):
    def main():
        def in_scope():
            with gofer.move_on_after(5) as cs:
                cs.cancel()
                gofer.sleep(1)
            return cs.cancelled_caught

        assert gofer.go(in_scope).join() is True

        def plain():
            gofer.sleep(10)
            return "ok"

        assert gofer.go(plain).join() == "ok"

    vrun(main)


def test_cancel_between_spawn_and_start_on_a_reused_worker(vrun):
    ran = []

    def main():
        gofer.go(lambda: None).join()  # leaves an idle worker
        t = gofer.go(ran.append, 1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert t.cancelled()
        # and the worker is fine for the next task
        assert gofer.go(lambda: 7).join() == 7

    vrun(main)
    assert ran == []


def test_contextvars_and_local_do_not_leak_between_tasks_on_one_worker(vrun):
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    loc = gofer.local()

    def first():
        var.set("first")
        loc.x = "first"

    def second():
        return var.get(), getattr(loc, "x", "unset")

    def main():
        gofer.go(first).join()
        return gofer.go(second).join()

    assert vrun(main) == ("unset", "unset")


# Regression (fixed in 5e84162): a cancel scope left open by a finished task (suspended
# generator) stays on the reused worker and later cancels an unrelated task
def test_open_scope_of_finished_task_does_not_cancel_next_task(vrun):
    def gen() -> Iterator[int]:
        with gofer.move_on_after(1):
            yield 1
            yield 2

    def leaker():
        g = gen()
        next(g)
        return g

    def victim():
        gofer.sleep(5)
        return "ok"

    def main():
        g = gofer.go(leaker).join()  # keeps the generator (and its open scope) alive
        try:
            return gofer.go(victim).join()
        finally:
            # Closing it runs the scope's __exit__ outside its task.
            try:
                g.close()
            except RuntimeError:
                pass

    assert vrun(main) == "ok"


def test_worker_count_stays_bounded_over_many_spawn_cycles(vrun):
    def main():
        hub = get_hub()
        for _ in range(50):
            ts = [gofer.go(gofer.yield_now) for _ in range(20)]
            for t in ts:
                t.join()
        return len(hub.workers)

    assert vrun(main) <= 25


# -- the abort protocol ------------------------------------------------------------------


def test_waiter_woken_then_cancelled_in_same_tick_sees_cancel_at_next_park(vrun):
    def main():
        slot = _Slot()
        log = []

        def waiter():
            slot.wait()
            log.append("woken")
            try:
                gofer.sleep(1)
            except gofer.Cancelled:
                log.append("cancelled at next park")
                raise

        t = gofer.go(waiter)
        gofer.yield_now()
        assert slot.wake()
        t.cancel()  # in the ready queue: the wake wins, no second wake
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert log == ["woken", "cancelled at next park"]

    vrun(main)


def test_cancel_while_ready_after_yield_is_not_lost(vrun):
    def main():
        def spinner():
            while True:
                gofer.yield_now()

        t = gofer.go(spinner)
        gofer.yield_now()
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()

    vrun(main)


# Regression (fixed in 5e84162): a timeout timer that fired while its task was already woken
# is not discarded; it aborts the task's NEXT park on the same waitable and raises a spurious
# TimeoutError
def test_stale_timeout_does_not_hit_the_next_park_on_the_same_fd():
    clock = VirtualClock()

    def main():
        hub = get_hub()
        a, b = socket.socketpair()
        a.setblocking(False)
        st = hub.poller.register(a.fileno())
        st.readable = False

        def reader():
            wait_readable(st, timeout=1)  # woken by data, while its deadline passes
            a.recv(10)
            st.readable = False
            wait_readable(st)  # no timeout at all
            return a.recv(10)

        def writer():
            b.send(b"x")
            # Use up the hub's switch budget so the I/O wake lands in the ready
            # queue before the timer check that finds the reader's deadline due.
            for _ in range(600):
                gofer.go(lambda: None)
            clock.advance(2)

        r = gofer.go(reader)
        gofer.yield_now()
        gofer.go(writer)
        gofer.sleep(5)
        b.send(b"y")
        try:
            return r.join()
        finally:
            hub.poller.unregister(st)
            a.close()
            b.close()

    assert vrun_with(main, clock=clock) == b"y"


# Regression (fixed in 5e84162): stale _TimeoutFire, through the kernel park API
def test_stale_timeout_on_a_reusable_waitable_kernel_level():
    """Same bug through the documented kernel API (park with a reused waitable)."""
    clock = VirtualClock()

    def main():
        slot = _Slot()
        out = []

        def waiter():
            slot.wait(timeout=1)
            out.append("first")
            slot.wait()  # no timeout
            out.append("second")

        def waker():
            # fillers ahead of the woken waiter: it does not run before the
            # next timer check, which finds its deadline due
            for _ in range(600):
                gofer.go(lambda: None)
            assert slot.wake()
            clock.advance(2)

        w = gofer.go(waiter)
        gofer.yield_now()
        gofer.go(waker)
        gofer.sleep(5)
        slot.wake()
        w.join()
        return out

    assert vrun_with(main, clock=clock) == ["first", "second"]


# -- direct handoff must not starve the hub ----------------------------------------------


def _pingpong_yield(stop: list[int]) -> list[gofer.Task[None]]:
    def spin():
        while not stop:
            gofer.yield_now()

    return [gofer.go(spin), gofer.go(spin)]


def _pingpong_chan(stop: list[int]) -> list[gofer.Task[None]]:
    c1: gofer.Chan[int] = gofer.Chan()
    c2: gofer.Chan[int] = gofer.Chan()

    def a():
        while not stop:
            c1.send(1)
            c2.recv()
        c1.close()

    def b():
        for _ in c1:
            c2.send(1)

    return [gofer.go(a), gofer.go(b)]


@pytest.mark.parametrize("pingpong", [_pingpong_yield, _pingpong_chan])
def test_pingpong_does_not_starve_timers_callbacks_threads_or_io(pingpong):
    def main():
        hub = get_hub()
        stop: list[int] = []
        tasks = pingpong(stop)
        gofer.yield_now()
        got: list[str] = []
        hub.call_soon(got.append, "soon")
        hub.call_later(0.001, got.append, "timer")
        th = threading.Thread(target=hub.call_threadsafe, args=(got.append, "thread"))
        th.start()
        a, b = socket.socketpair()
        try:
            st = hub.poller.register(a.fileno())
            st.readable = False
            b.send(b"x")
            wait_readable(st)  # needs the poller to run
            got.append("io")
            gofer.sleep(0.005)  # needs the timers to run
            th.join()
            gofer.yield_now()
            gofer.sleep(0.001)
            hub.poller.unregister(st)
        finally:
            a.close()
            b.close()
        stop.append(1)
        for t in tasks:
            t.join()
        return sorted(got)

    assert gofer.run(main) == ["io", "soon", "thread", "timer"]


def test_timeout_thrown_into_task_during_pingpong(vrun):
    def main():
        stop: list[int] = []
        tasks = _pingpong_yield(stop)

        def limited():
            with pytest.raises(TimeoutError), gofer.timeout(0):
                gofer.sleep(1)
            n = 0
            for _ in range(3):
                try:
                    _Slot().wait(timeout=0.5)
                except TimeoutError:
                    n += 1
            return n

        # the virtual clock cannot jump while the ping-pong runs: stop it first
        lim = gofer.go(limited)
        for _ in range(1000):
            gofer.yield_now()
        stop.append(1)
        for t in tasks:
            t.join()
        return lim.join()

    assert vrun(main) == 3


def test_a_cancelled_task_is_freed_without_the_gc() -> None:
    # raise_thrown's frame is in the traceback of what it raises: a local
    # left holding the exception made a cycle (exception -> traceback ->
    # frame -> exception) that kept the task's frames until a full gc, which
    # an idle server may not run for a long time.
    import weakref

    class Big:
        pass

    refs: list[Any] = []

    def body() -> None:
        b = Big()
        refs.append(weakref.ref(b))
        gofer.sleep(10)

    def main() -> bool:
        t = gofer.go(body)
        gofer.yield_now()
        t.cancel()
        while not t.done():  # not join(): re-raising a kept exception from
            gofer.yield_now()  # Task.result() links its frame (and the Task) in too
        del t
        return refs[0]() is None

    gc.collect()
    gc.disable()
    try:
        assert gofer.run(main)
    finally:
        gc.enable()
