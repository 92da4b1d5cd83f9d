"""Adversarial review tests of the core runtime (hub, park/abort, workers, run, threads).

Regression tests for tricky corners (worker reuse, the abort protocol, direct
handoff, cross-thread use, deadlock detection, leaks); those commented
"Regression (fixed in ...)" reproduced bugs found in the review. A test marked
``xfail(strict=True, reason="BUG: ...")`` reproduces a bug not fixed yet: it
will XPASS (and so fail the suite) once fixed; then remove the mark.
"""

from __future__ import annotations

import contextvars
import gc
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import gofer
from gofer._core import current_tasklike, get_hub, hub_if_any, park, wait_readable
from gofer.testing import VirtualClock
from gofer.testing import run as vrun_with


class _Slot:
    """A minimal reusable waitable (kernel protocol): one waiter slot."""

    def __init__(self) -> None:
        self.waiter: Any = None

    def wait(self, timeout: float | None = None) -> None:
        self.waiter = current_tasklike()
        park(self, timeout)

    def wake(self) -> bool:
        w, self.waiter = self.waiter, None
        if w is None:
            return False
        w._hub.ready.append(w)
        return True

    def _gofer_abort(self, task: Any) -> bool:
        if self.waiter is task:
            self.waiter = None
            return True
        return False

    def __repr__(self) -> str:
        return "<slot>"


def _forever() -> None:
    """Park on something nothing will ever wake."""
    _Slot().wait()


# -- worker reuse: no state leaks from one task to the next --------------------------------


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


# -- resource leaks ------------------------------------------------------------------------


class _Big:
    pass


def test_finished_task_frees_its_argument(vrun):
    def main():
        arg = _Big()
        ref_arg = weakref.ref(arg)
        t = gofer.go(lambda a: None, arg)
        del arg
        t.join()
        del t
        gc.collect()
        return ref_arg() is None

    assert vrun(main)


# Regression (fixed in 5e84162): after join() returns, the joiner's stale _wait (a _JoinWait)
# still references the joined Task, keeping it and its result alive until the joiner parks
# again
def test_joined_task_result_is_freed_once_dropped(vrun):
    def main():
        t = gofer.go(_Big)
        ref_res = weakref.ref(t.join())
        del t
        gc.collect()
        return ref_res() is None

    assert vrun(main)


# Regression (fixed in 5e84162): an idle worker keeps the finished task's contextvars Context
# (gr_context), so objects the task stored in a ContextVar stay alive
def test_idle_worker_does_not_keep_the_task_context_alive(vrun):
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("big")

    def task():
        var.set(_Big())
        return weakref.ref(var.get())

    def main():
        t = gofer.go(task)
        ref = t.join()
        del t
        gc.collect()
        return ref() is None

    assert vrun(main)


def test_worker_count_stays_bounded_over_many_spawn_cycles(vrun):
    def main():
        hub = get_hub()
        for _ in range(50):
            ts = [gofer.go(gofer.yield_now) for _ in range(20)]
            for t in ts:
                t.join()
        return len(hub.workers)

    assert vrun(main) <= 25


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


# -- the abort protocol ----------------------------------------------------------------------


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


@pytest.mark.parametrize("child_first", [False, True])
def test_join_timeout_racing_completion_at_the_same_instant(vrun, child_first):
    def main():
        def child():
            gofer.sleep(1)
            return "done"

        t = gofer.go(child)
        if child_first:
            gofer.yield_now()  # child's timer is registered before the join's
        try:
            got = t.join(timeout=1)
        except TimeoutError:
            got = "timeout"
        # Either outcome is fine, but exactly one, and no stale wake afterwards.
        gofer.sleep(3)
        assert t.join() == "done"
        return got

    assert vrun(main) == ("done" if child_first else "timeout")


def test_nested_timeouts_expiring_at_the_same_instant(vrun):
    def main():
        with pytest.raises(TimeoutError), gofer.timeout(1) as outer, gofer.timeout(1) as inner:
            gofer.sleep(5)
        assert outer.cancelled_caught and not inner.cancelled_caught
        with gofer.move_on_after(1) as outer2:
            with gofer.move_on_after(1) as inner2:
                gofer.sleep(5)
            pytest.fail("the outer scope was cancelled too")
        assert outer2.cancelled_caught and not inner2.cancelled_caught
        # nothing pending afterwards: the clock moves only for this sleep
        t0 = get_hub().now()
        gofer.sleep(1)
        assert get_hub().now() == t0 + 1

    vrun(main)


def test_shield_inside_timeout_inside_scope(vrun):
    log = []

    def main():
        with gofer.scope() as s:

            def child():
                with pytest.raises(TimeoutError), gofer.timeout(1):
                    with gofer.shield():
                        gofer.sleep(3)  # not interrupted by the expired timeout
                        log.append(("shielded done", get_hub().now()))
                    gofer.sleep(10)  # the expired timeout fires here
                log.append(("timeout", get_hub().now()))

            s.go(child)
        return get_hub().now()

    assert vrun(main) == 3
    assert log == [("shielded done", 3), ("timeout", 3)]


def test_cancel_of_task_parked_in_to_thread(vrun):
    release = threading.Event()

    def main():
        t = gofer.go(gofer.to_thread, release.wait, 5)
        gofer.sleep(0.01)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        release.set()
        gofer.to_thread(time.sleep, 0)  # the pool thread is back

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


# -- direct handoff must not starve the hub ---------------------------------------------------


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


# -- run() -----------------------------------------------------------------------------------


def test_run_twice_in_one_thread_and_after_plain_code():
    assert gofer.run(lambda: 1) == 1
    assert gofer.run(lambda: 2) == 2
    gofer.sleep(0)  # plain code: makes a hub
    t = gofer.go(lambda: 3)
    assert gofer.run(lambda: t.join() + 1) == 4
    assert hub_if_any() is None  # run() closed it


def test_nested_run_is_a_clear_error(vrun):
    def main():
        with pytest.raises(RuntimeError, match="inside a running hub"):
            gofer.run(lambda: None)
        got = []
        get_hub().call_soon(lambda: got.append(_try(lambda: gofer.run(lambda: None))))
        gofer.sleep(0.1)
        assert got and isinstance(got[0], RuntimeError)

    vrun(main)


def _try(fn: Any) -> Any:
    try:
        return fn()
    except BaseException as exc:
        return exc


def test_run_in_several_threads_at_once():
    results: dict[int, Any] = {}
    barrier = threading.Barrier(4)

    def body(i: int) -> int:
        barrier.wait()
        hubs = {id(get_hub())}
        ts = [gofer.go(lambda k=k: (gofer.sleep(0.001), k * i)[1]) for k in range(50)]
        return sum(t.join() for t in ts) + len(hubs) * 0

    def thread(i: int) -> None:
        results[i] = _try(lambda: (gofer.run(body, i), id(hub_if_any()))[0])

    ths = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert results == {i: sum(range(50)) * i for i in range(4)}


def test_keyboard_interrupt_from_coroutine_runs_cleanup(vrun):
    log = []

    def main():
        def leftover():
            try:
                gofer.sleep(100)
            finally:
                with gofer.shield():
                    gofer.sleep(1)
                log.append("cleanup done")

        def boom():
            raise KeyboardInterrupt

        gofer.go(leftover)
        gofer.yield_now()
        gofer.go(boom)
        gofer.sleep(100)

    with pytest.raises(KeyboardInterrupt):
        vrun(main)
    assert log == ["cleanup done"]


# Regression (fixed in 5e84162): KeyboardInterrupt raised by the main coroutine is delivered
# twice (join re-raises it AND hub._fatal throws it again), cutting the leftovers' cleanup
def test_keyboard_interrupt_from_main_runs_leftover_cleanup(vrun):
    log = []

    def main():
        def leftover():
            try:
                gofer.sleep(100)
            finally:
                with gofer.shield():
                    gofer.sleep(1)
                log.append("cleanup done")

        gofer.go(leftover)
        gofer.yield_now()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vrun(main)
    assert log == ["cleanup done"]


# Regression (fixed in 5e84162): in plain code, a KeyboardInterrupt re-raised by join() is
# raised a second time at the next blocking call (hub._fatal is never cleared)
def test_keyboard_interrupt_is_delivered_once_in_plain_code():
    def boom():
        raise KeyboardInterrupt

    t = gofer.go(boom)
    try:
        with pytest.raises(KeyboardInterrupt):
            t.join()
        try:
            gofer.sleep(0.001)
        except KeyboardInterrupt:
            pytest.fail("KeyboardInterrupt delivered a second time")
    finally:
        get_hub().close()


# -- deadlock detection ---------------------------------------------------------------------


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


# -- big / infinite timeouts -----------------------------------------------------------------


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


# Regression (fixed after 5e84162): CancelScope(deadline=nan) was accepted; the NaN timer then
# stuck at the head of the heap (real clock: ValueError from the poller thrown into main;
# virtual clock: the hub spun forever)
def test_cancel_scope_rejects_a_nan_deadline(vrun):
    with pytest.raises(ValueError, match="deadline"):
        gofer.CancelScope(deadline=math.nan)

    def main():
        with pytest.raises(ValueError, match="timeout"):
            gofer.Task.join(gofer.go(gofer.sleep, 1), timeout=math.nan)

    vrun(main)


# -- cross-thread ---------------------------------------------------------------------------


def test_join_cancel_and_callbacks_across_hubs():
    handoff: queue.Queue[Any] = queue.Queue()
    done_in: list[int] = []

    def other_thread_main():
        slow = gofer.go(lambda: (gofer.sleep(0.02), 42)[1])
        forever = gofer.go(_forever_sleep)
        handoff.put((slow, forever))
        with pytest.raises(gofer.Cancelled):
            forever.join()
        return slow.join()

    th_result: list[Any] = []
    th = threading.Thread(
        target=lambda: th_result.append(_try(lambda: gofer.run(other_thread_main)))
    )
    th.start()

    def main():
        slow, forever = gofer.to_thread(handoff.get, True, 5)
        slow.add_done_callback(lambda t: done_in.append(threading.get_ident()))
        with pytest.raises(TimeoutError):
            forever.join(timeout=0.001)
        assert slow.join() == 42  # a coroutine of this hub joins a task of another hub
        forever.cancel()
        with pytest.raises(gofer.Cancelled):
            forever.join()
        assert forever.cancelled()

    gofer.run(main)
    th.join()
    assert th_result == [42]
    assert done_in == [th.ident]


def _forever_sleep() -> None:
    gofer.sleep(3600)


def test_join_from_plain_thread_without_run():
    def main():
        t = gofer.go(lambda: (gofer.sleep(0.01), "x")[1])
        out: list[Any] = []
        th = threading.Thread(target=lambda: out.append(_try(t.join)))
        th.start()
        gofer.to_thread(th.join)
        return out

    assert gofer.run(main) == ["x"]


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


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_errors_name_the_problem(vrun):
    with pytest.raises(TypeError, match="callable"):
        gofer.run(42)  # type: ignore[arg-type]

    def main():
        with pytest.raises(TypeError, match="callable"):
            gofer.go(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callable"):
            gofer.to_thread("x")  # type: ignore[arg-type]
        t = gofer.go(gofer.sleep, 1)
        for bad in (-1, math.nan):
            with pytest.raises(ValueError, match="timeout"):
                t.join(timeout=bad)
            with pytest.raises(ValueError, match="timeout"):
                gofer.timeout(bad)
            with pytest.raises(ValueError):
                gofer.sleep(bad)
        t.join()
        me = gofer.go(lambda: gofer.current().join())
        with pytest.raises(RuntimeError, match="join itself"):
            me.join()

    vrun(main)


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
