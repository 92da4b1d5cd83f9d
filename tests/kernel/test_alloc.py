"""Objects per task: what one go() keeps alive, parked and finished (issue 12 item 3).

Each test counts the gc-tracked objects that appear per task
(``gc.get_objects()``, the collector off while counting) between two
groups of tasks on one hub, so that one-time costs (the hub, lazily made
caches, the list holding the handles) cancel out. The bounds are what the
kernel achieves: a parked task is its ``Task`` and its ``Worker`` greenlet,
nothing else (no (fn, args, kw) tuple, no kwargs dict, no cancel-scope
list, no empty contextvars copy); a finished one is its ``Task`` alone, and
its worker goes back to the idle pool. A regression fails them.
"""

from __future__ import annotations

import contextvars
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gofer
from gofer._core import ParkingLot, get_hub

N = 200  # tasks in the measured group


@contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _census() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


def _per_task(before: Counter[str], after: Counter[str], n: int) -> dict[str, float]:
    """The object kinds that grew, per task (kinds that grew by less than one per 4 tasks dropped)."""
    d = after - before
    return {k: v / n for k, v in d.items() if v >= n // 4}


def _in_empty_context(fn: Callable[[], Any]) -> Any:
    """``gofer.run(fn)`` in an empty contextvars context.

    The test run's own is not empty (something has used ``decimal``, whose
    context is a context variable), and go() copies a context that is not.
    """
    return contextvars.Context().run(gofer.run, fn)


def _parked(spawn: Callable[[ParkingLot], Any], ctx: contextvars.Context | None = None) -> dict[str, float]:
    """Objects per task for N tasks started by ``spawn(lot)`` and parked in ``lot``.

    Run in ``ctx``, or in an empty context.
    """

    def main() -> dict[str, float]:
        lot = ParkingLot("test")
        hub = get_hub()
        # A first group takes every idle worker, so that each measured task
        # gets a fresh one, as it does when this many are alive at once.
        first = [spawn(lot) for _ in range(len(hub.idle_workers) + 10)]
        gofer.yield_now()
        assert not hub.idle_workers
        with _no_gc():
            before = _census()
            more = [spawn(lot) for _ in range(N)]
            gofer.yield_now()  # they all start and park
            after = _census()
        assert len(lot) == len(first) + N
        lot.unpark_all()
        for t in first + more:
            t.join()
        return _per_task(before, after, N)

    if ctx is None:
        return _in_empty_context(main)  # type: ignore[no-any-return]
    return ctx.run(gofer.run, main)


def _park_in(lot: ParkingLot, x: int = 0, y: str = "") -> None:
    lot.park()


# The task body is a plain function of no arguments: a bound method
# (lot.park) or a lambda made per call would be the caller's object, not the
# kernel's.
_lots: list[ParkingLot] = []


def _parked_here() -> None:
    _lots[-1].park()


def _spawn_no_args(lot: ParkingLot) -> gofer.Task[None]:
    if not _lots or _lots[-1] is not lot:
        _lots[:] = [lot]
    return gofer.go(_parked_here)


def test_a_parked_task_is_its_task_and_its_worker():
    assert _parked(_spawn_no_args) == {"Task": 1.0, "Worker": 1.0}


def test_arguments_keep_no_tuple_of_their_own():
    # *args is the tuple the call made, kept as it is, not wrapped in another;
    # kwargs are a dict (not gc-tracked when it holds only atoms), and the call
    # with ** makes one more tuple (the keyword names) while the body runs.
    assert _parked(lambda lot: gofer.go(_park_in, lot, 1)) == {"Task": 1.0, "Worker": 1.0, "tuple": 1.0}
    assert _parked(lambda lot: gofer.go(_park_in, lot, 1, y="a")) == {"Task": 1.0, "Worker": 1.0, "tuple": 2.0}


def test_a_context_is_kept_only_when_it_holds_something():
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")
    ctx = contextvars.Context()
    ctx.run(var.set, 1)
    # The caller's context has a variable set: each task runs in its own copy.
    per = _parked(_spawn_no_args, ctx)
    assert per == {"Task": 1.0, "Worker": 1.0, "Context": 1.0}


def test_an_event_waiter_adds_its_queue_record():
    def main() -> dict[str, float]:
        ev = gofer.Event()

        def wait() -> None:
            ev.wait()

        first = [gofer.go(wait) for _ in range(len(get_hub().idle_workers) + 10)]
        gofer.yield_now()
        with _no_gc():
            before = _census()
            more = [gofer.go(wait) for _ in range(N)]
            gofer.yield_now()
            after = _census()
        ev.set()
        for t in first + more:
            t.join()
        return _per_task(before, after, N)

    assert _in_empty_context(main) == {"Task": 1.0, "Worker": 1.0, "QueueWaiter": 1.0}


def test_a_finished_task_is_its_task_alone_and_its_worker_is_reused():
    def child() -> int:
        gofer.yield_now()
        return 1

    def main() -> tuple[dict[str, float], int]:
        hub = get_hub()
        for w in [gofer.go(child) for _ in range(20)]:  # the pool has workers
            w.join()
        del w
        workers = len(hub.workers)
        with _no_gc():
            before = _census()
            done = []
            for _ in range(N):  # one at a time: each reuses an idle worker
                t = gofer.go(child)
                t.join()
                done.append(t)
            after = _census()
        assert all(t.result() == 1 for t in done)
        return _per_task(before, after, N), len(hub.workers) - workers

    per, new_workers = _in_empty_context(main)
    assert per == {"Task": 1.0}
    assert new_workers == 0


def test_a_dropped_finished_task_leaves_nothing():
    def main() -> int:
        for t in [gofer.go(gofer.yield_now) for _ in range(20)]:
            t.join()
        with _no_gc():
            n0 = len(gc.get_objects())
            for _ in range(N):
                gofer.go(gofer.yield_now).join()
            return len(gc.get_objects()) - n0

    assert _in_empty_context(main) < N // 4
