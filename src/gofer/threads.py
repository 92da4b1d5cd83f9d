"""Running blocking work in OS threads without blocking the hub.

``to_thread(fn, *args)`` runs ``fn`` in a bounded thread pool and parks the
calling coroutine until it is done; the result comes back through the hub's
wake-up fd. Cancelling the caller stops the wait (a job that has not started
yet is dropped; one that is running finishes in its thread and its result is
discarded). The hub counts jobs in flight so that it never reports a
deadlock while a thread may still wake it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from gofer import _hub
from gofer._task import _current_tasklike, park

__all__ = ["max_workers", "to_thread"]
T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_in_flight = 0
max_workers = min(32, (os.cpu_count() or 1) + 4)


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gofer-worker")
        return _pool


def _jobs_in_flight() -> int:
    return _in_flight


def _pool_idents() -> set[int]:
    pool = _pool
    if pool is None:
        return set()
    return {t.ident for t in list(pool._threads) if t.ident is not None}


_hub.pool_jobs_in_flight = _jobs_in_flight
_hub.pool_thread_idents = _pool_idents


def _after_fork_in_child() -> None:
    # The pool's threads do not exist in a forked child (serve(workers=N)).
    global _pool, _in_flight, _lock
    _pool = None
    _in_flight = 0
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Job:
    """The park waitable of ``to_thread``: the future and its waiter."""

    __slots__ = ("fut", "task", "waiting")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.waiting = True
        self.fut: Future[Any] | None = None

    def _gofer_abort(self, task: Any) -> bool:
        if not self.waiting:
            return False
        self.waiting = False
        if self.fut is not None:
            self.fut.cancel()
        return True

    def _done_in_hub(self) -> None:
        self.task._hub.pending_jobs -= 1
        if self.waiting:
            self.waiting = False
            self.task._hub.ready.append(self.task)

    def __repr__(self) -> str:
        return "<to_thread job>"


def to_thread(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn(*args, **kw)`` in the thread pool; park until it returns.

    Returns its result or re-raises its exception.
    """
    global _in_flight
    if not callable(fn):
        raise TypeError(f"to_thread() needs a callable, not {type(fn).__name__}")
    me = _current_tasklike()
    hub = me._hub
    job = _Job(me)

    def done(fut: Future[Any]) -> None:
        global _in_flight
        with _lock:
            _in_flight -= 1
        try:
            hub.call_threadsafe(job._done_in_hub)
        except RuntimeError:
            pass  # the hub is gone

    with _lock:
        _in_flight += 1
    hub.pending_jobs += 1
    try:
        job.fut = fut = _get_pool().submit(fn, *args, **kw)
    except BaseException:
        with _lock:
            _in_flight -= 1
        hub.pending_jobs -= 1
        raise
    fut.add_done_callback(done)
    park(job)
    return fut.result()
