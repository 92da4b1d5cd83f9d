"""Running blocking work in OS threads without blocking the hub.

``to_thread(fn, *args)`` runs ``fn`` in a bounded thread pool and parks the
calling coroutine until it is done; the result comes back through the hub's
wake-up fd. Cancelling the caller stops the wait (a job that has not started
yet is dropped; one that is running finishes in its thread and its result is
discarded). The hub counts jobs in flight so that it never reports a
deadlock while a thread may still wake it.

The pool starts a thread only when no idle one can take a job, up to
``max_workers``, and a thread that has had nothing to do for
``idle_timeout`` seconds exits, as in well-kept pools (Java's keep-alive
time, gevent's idle workers): a program that resolved one host name is not
left with a resolver thread for its whole life, and thread-leak checks (such
as CPython's ``threading_cleanup``) see the thread go. At interpreter exit
idle threads are told to stop at once and running jobs are waited for, as
``concurrent.futures`` does.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from gofer._core import current_tasklike, park, register_thread_pool, wake

__all__ = ["idle_timeout", "max_workers", "set_idle_timeout", "to_thread"]
T = TypeVar("T")

_lock = threading.Lock()
_in_flight = 0
max_workers = min(32, (os.cpu_count() or 1) + 4)
# Seconds an idle pool thread waits for a job before it exits. Starting a
# thread costs about 100 us, a name lookup milliseconds, so a short wait
# loses little; under CPython's 1 s thread-leak check it passes that check.
idle_timeout = 0.5


class _Pool:
    """A bounded pool of worker threads that exit after ``idle_timeout`` idle seconds.

    One condition guards the job queue, the thread set and the idle count:
    a submitter starts a thread only when the queue holds more jobs than
    there are idle threads to take them, and a thread exits only with the
    lock held and the queue empty, so a job is never left without a thread.
    """

    def __init__(self, max_workers: int) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = (
            collections.deque()
        )
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._max = max_workers
        self._stopping = False

    def submit(self, fn: Callable[..., T], *args: Any, **kw: Any) -> Future[T]:
        fut: Future[T] = Future()
        with self._cond:
            if self._stopping:
                raise RuntimeError("cannot run a job in a thread: the interpreter is shutting down")
            self._jobs.append((fut, fn, args, kw))
            if len(self._jobs) > self._idle and len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name=f"gofer-worker-{_next_id()}", daemon=False)
                self._threads.add(t)
                t.start()
            else:
                self._cond.notify()
        return fut

    def _work(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        while True:
            with cond:
                idle_since = time.monotonic()
                while not self._jobs:
                    # idle_timeout is read each time: set_idle_timeout() wakes idle threads.
                    left = idle_since + idle_timeout - time.monotonic()
                    if self._stopping or left <= 0:
                        self._threads.discard(me)
                        return
                    self._idle += 1
                    try:
                        cond.wait(left)
                    finally:
                        self._idle -= 1
                fut, fn, args, kw = self._jobs.popleft()
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kw)
                except BaseException as exc:
                    fut.set_exception(exc)
                    del exc  # no cycle through this frame
                else:
                    fut.set_result(result)
                    del result
            del fut, fn, args, kw  # nothing of a finished job is kept while idle

    def wake_idle(self) -> None:
        """Make idle threads look at ``idle_timeout`` (or ``_stopping``) again."""
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        """No new jobs; idle threads exit now, busy ones after the queue is done."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def thread_count(self) -> int:
        with self._cond:
            return len(self._threads)


_pool: _Pool | None = None
_ids = 0


def _next_id() -> int:
    global _ids
    _ids += 1
    return _ids


def _get_pool() -> _Pool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = _Pool(max_workers)
        return _pool


def set_idle_timeout(seconds: float) -> None:
    """Set how long an idle pool thread waits for a job before it exits.

    Takes effect at once, for idle threads too. ``0`` makes every thread
    exit as soon as the queue is empty (each job may then start a thread).
    """
    global idle_timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"idle timeout must be a number of seconds, not {type(seconds).__name__}")
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"idle timeout must be >= 0 seconds, not {seconds!r}")
    idle_timeout = float(seconds)
    pool = _pool
    if pool is not None:
        pool.wake_idle()


def _jobs_in_flight() -> int:
    return _in_flight


def _pool_idents() -> set[int]:
    pool = _pool
    if pool is None:
        return set()
    with pool._cond:
        threads = list(pool._threads)
    return {t.ident for t in threads if t.ident is not None}


# Idle pool threads cannot wake a hub: its deadlock check does not count them.
register_thread_pool(_jobs_in_flight, _pool_idents)


def _at_exit() -> None:
    pool = _pool
    if pool is not None:
        pool.stop()


# Runs before the interpreter joins non-daemon threads (concurrent.futures uses it too).
_register_atexit: Any = getattr(threading, "_register_atexit", None)
if _register_atexit is not None:
    _register_atexit(_at_exit)


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
            wake(self.task)

    def __repr__(self) -> str:
        return "<to_thread job>"


def to_thread(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn(*args, **kw)`` in the thread pool; park until it returns.

    Returns its result or re-raises its exception.
    """
    global _in_flight
    if not callable(fn):
        raise TypeError(f"to_thread() needs a callable, not {type(fn).__name__}")
    me = current_tasklike()
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
