"""A finished task holds nothing of its body: return, raise, cancel, timeout and wake-up alike.

Regression for ``repro/cancel_retains_locals.py``: a coroutine cancelled
while parked kept its frame (and its locals) alive after it was joined,
through the exception left on the hub's suspended stack, until its pooled
worker took another task.
"""

from __future__ import annotations

import contextvars
import gc
import sys
import weakref
from typing import Any

import pytest

import gofer


class Big:
    """Stands for a large local (a buffer, a connection)."""


def _alive_after(body, *, expect=None) -> bool:
    """Run ``body(ref)`` as a task, join it, drop it; is its local still alive?"""
    refs: list[weakref.ref[Big]] = []

    def task(*args):
        b = Big()
        refs.append(weakref.ref(b))
        return body(*args)

    def main() -> bool:
        ch: gofer.Chan[int] = gofer.Chan()
        t = gofer.go(task, ch)
        gofer.yield_now()  # let it start and park
        if body is _parked_then_cancelled:
            t.cancel()
        elif body is _parked_then_woken:
            ch.send(1)
        try:
            t.join()
        except BaseException as exc:
            assert expect is not None and isinstance(exc, expect)
        del t
        gc.collect()
        # Looked at while the idle worker is still parked in the pool, before
        # anything else runs on this hub.
        return refs[0]() is not None

    return gofer.run(main)


def _returns(ch):
    return 1


def _raises(ch):
    raise ValueError("x")


def _parked_then_cancelled(ch):
    ch.recv()


def _parked_then_woken(ch):
    ch.recv()


def _times_out(ch):
    ch.recv(timeout=0.001)


def _scope_deadline(ch):
    with gofer.move_on_after(0.001):
        ch.recv()


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        (_returns, None),
        (_raises, ValueError),
        (_parked_then_cancelled, gofer.Cancelled),
        (_parked_then_woken, None),
        (_times_out, TimeoutError),
        (_scope_deadline, None),
    ],
    ids=["return", "raise", "cancel", "wake", "timeout", "scope-deadline"],
)
def test_finished_task_keeps_no_locals(body, expect):
    assert not _alive_after(body, expect=expect)


def test_cancelled_task_keeps_its_exception_until_dropped():
    # The Task itself keeps its Cancelled (join() re-raises it), so holding
    # the task keeps the frames: only dropping it frees them.
    refs: list[weakref.ref[Big]] = []

    def parked(ch):
        b = Big()
        refs.append(weakref.ref(b))
        ch.recv()

    def main():
        ch: gofer.Chan[int] = gofer.Chan()
        t = gofer.go(parked, ch)
        gofer.yield_now()
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        gc.collect()
        assert isinstance(t.exception(), gofer.Cancelled)
        return t

    t = gofer.run(main)
    assert t.cancelled()


def test_idle_workers_beyond_a_few_are_let_go_when_the_hub_sleeps():
    from gofer._core import _hub

    def main():
        ch: gofer.Chan[int] = gofer.Chan()
        ts = [gofer.go(ch.recv) for _ in range(2000)]
        gofer.yield_now()
        for _ in ts:
            ch.send(1)
        for t in ts:
            t.join()
        hub = gofer.get_hub()
        after_burst = len(hub.idle_workers)
        gofer.sleep(0.001)  # the hub sleeps in its poller: the pool is trimmed
        return after_burst, len(hub.idle_workers), len(hub.workers)

    after_burst, after_sleep, workers = gofer.run(main)
    assert after_burst > _hub._IDLE_KEEP  # kept while busy: spawning reuses them
    assert after_sleep <= _hub._IDLE_KEEP
    assert workers <= _hub._IDLE_KEEP + 1  # the pool and main's own worker


def test_hub_shrink_gives_back_the_idle_pool_and_grown_tables():
    def main():
        hub = gofer.get_hub()
        ts = [gofer.go(gofer.sleep, 0.001) for _ in range(2000)]
        for t in ts:
            t.join()
        with pytest.raises(RuntimeError, match="inside the hub"):
            hub.shrink()  # from a coroutine: an ended worker would return to the hub, not here
        done = gofer.Event()

        def in_hub():
            hub.shrink()
            done.set()

        hub.call_soon(in_hub)
        done.wait()
        left = len(hub.idle_workers), len(hub.workers), sys.getsizeof(hub.workers) - sys.getsizeof(set(hub.workers))
        assert gofer.go(lambda: 42).join() == 42  # the next spawn makes a fresh worker
        return left

    idle, workers, table = gofer.run(main)
    assert idle == 0 and workers <= 2 and table == 0  # main's worker (and in_hub's waker at most)


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


@pytest.mark.parametrize("how", ["join", "result"])
def test_reraised_error_makes_no_reference_cycle(how: str) -> None:
    """``join()``/``result()`` re-raising a task's error leave no cycle through their own frames.

    The exception's traceback holds the frames it passed through; had their
    locals kept the task (and so the exception), the task, its error and the
    caller's frames would stay until a full collection (as
    ``concurrent.futures.Future.result`` avoids too).
    """
    refs: list[weakref.ref[Any]] = []

    def boom() -> None:
        raise ValueError("boom")

    def main() -> None:
        t = gofer.go(boom)
        refs.append(weakref.ref(t))
        while how == "result" and not t.done():
            gofer.sleep(0)
        try:
            t.join() if how == "join" else t.result()
        except ValueError:
            pass
        del t

    gc.collect()
    gc.disable()
    try:
        gofer.run(main)
        assert refs[0]() is None, "the task was kept alive by a reference cycle"
    finally:
        gc.enable()
