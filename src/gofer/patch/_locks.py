"""``threading``-compatible locks built on gofer's wait queues.

:class:`Lock` and :class:`RLock` have the stdlib's API and error messages
(``acquire(blocking=True, timeout=-1) -> bool``, ``release()``,
``_at_fork_reinit()``...), but a caller that has to wait parks: a coroutine
parks on its hub, a plain thread blocks in its own hub, and either may
release what the other waits for. Their state sits under a real OS lock
(held for a few instructions, never across a park) and the waiters in a FIFO
:class:`~gofer._waitq.WaitQueue`, as in ``gofer.sync``.

An :class:`RLock` (and so a ``Condition`` over one) is owned by the
*coroutine* that took it, not by its thread: two coroutines of one thread
exclude each other, as two threads would.

``condition_wait`` is ``threading.Condition.wait`` on these locks. The
stdlib's pure-Python ``Condition``, ``Semaphore``, ``Event``... look their
locks up in ``threading`` at call time, so patching ``threading`` makes them
cooperative as they are; the subclasses here build them on these locks
without that (for the ``queue`` area alone) and keep every stdlib behaviour. Called from
inside the hub (a callback), a contended acquire waits a moment for a holder
on another thread, then raises :class:`gofer.BlockingInHubError`.
"""

from __future__ import annotations

import _thread
import os
import queue as _queue
import threading as _threading
import time as _time
from collections import deque
from typing import Any

from greenlet import getcurrent

from gofer._cancel import shield
from gofer._hub import BlockingInHubError, hub_if_any
from gofer._task import _Worker, park
from gofer._waitq import WaitQueue, me_for_park, wake

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Lock",
    "RLock",
    "Semaphore",
    "SimpleQueue",
    "Timer",
]

_oslock = _thread.allocate_lock
_TIMEOUT_MAX = _threading.TIMEOUT_MAX
_HUB_SPINS = 2000  # sched_yield rounds a hub callback waits for another thread's holder


def _check_args(blocking: bool, timeout: float) -> float | None:
    """Validate ``acquire()`` arguments as ``_thread.lock`` does; the park timeout."""
    if timeout == -1:
        return None
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    if timeout > _TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")
    return float(timeout)


def _me() -> Any:
    """The owner identity of the running code: its Task, or the thread's greenlet."""
    g = getcurrent()
    if g.__class__ is _Worker:
        # A worker between tasks (a __del__ running as its last task ends)
        # has no task: it is then its own owner, never None (= unowned).
        t = g.task
        return t if t is not None else g
    return g


def _in_hub() -> bool:
    hub = hub_if_any()
    return hub is not None and getcurrent() is hub


class Lock:
    """A non-reentrant lock with the API of ``threading.Lock`` (see the module docstring)."""

    __slots__ = ("__weakref__", "_locked", "_q", "_state")

    def __init__(self) -> None:
        self._state = _oslock()
        self._locked = False
        self._q = WaitQueue(self._state, "threading.Lock.acquire")

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock; wait (park) up to ``timeout`` seconds if it is held."""
        t = _check_args(blocking, timeout)
        with self._state:
            if not self._locked:
                self._locked = True
                return True
        if not blocking or t == 0:
            return False
        if _in_hub():
            return self._acquire_in_hub(t)
        me = me_for_park()
        with self._state:
            if not self._locked:
                self._locked = True
                return True
            w = self._q.push(me)
        try:
            park(w, t)  # release() hands the lock over to us
        except TimeoutError:
            return False
        return True

    def _acquire_in_hub(self, t: float | None) -> bool:
        # The hub cannot park; a holder on another thread lets go within a
        # moment (these locks guard short sections), one on this hub never will.
        deadline = None if t is None else _time.monotonic() + t
        for _ in range(_HUB_SPINS):
            os.sched_yield()
            with self._state:
                if not self._locked:
                    self._locked = True
                    return True
            if deadline is not None and _time.monotonic() >= deadline:
                return False
        raise BlockingInHubError(
            "a blocking gofer call was made inside the hub (a contended threading.Lock "
            "acquired from a callback or timer); start a coroutine with gofer.go() instead"
        )

    acquire_lock = acquire

    def release(self) -> None:
        """Release the lock, handing it to the first waiter if there is one."""
        with self._state:
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            w = self._q.pop()
            if w is None:
                self._locked = False
                return
        wake(w.task)

    release_lock = release

    def locked(self) -> bool:
        return self._locked

    locked_lock = locked

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _at_fork_reinit(self) -> None:
        self._state = _oslock()
        self._locked = False
        self._q = WaitQueue(self._state, "threading.Lock.acquire")

    def __repr__(self) -> str:
        return f"<{'locked' if self._locked else 'unlocked'} gofer.patch.Lock object at {id(self):#x}>"


class RLock:
    """A reentrant lock owned by the coroutine (or thread code) that took it."""

    __slots__ = ("__weakref__", "_block", "_count", "_owner")

    def __init__(self) -> None:
        self._block = Lock()
        self._owner: Any = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _me()
        if self._owner is me:
            self._count += 1
            return True
        if not self._block.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        if self._owner is not _me() or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._block.release()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked(self) -> bool:
        return self._block.locked()

    # The protocol threading.Condition uses with an RLock.
    def _is_owned(self) -> bool:
        return self._owner is _me()

    def _release_save(self) -> tuple[int, Any]:
        if not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._block.release()
        return state

    def _acquire_restore(self, state: tuple[int, Any]) -> None:
        self._block.acquire()
        self._count, self._owner = state

    def _recursion_count(self) -> int:
        return self._count if self._owner is _me() else 0

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        return f"<{state} gofer.patch.RLock object owner={self._owner!r} count={self._count} at {id(self):#x}>"


_StdCondition: Any = _threading.Condition


def condition_wait(self: Any, timeout: float | None = None) -> bool:
    """``threading.Condition.wait`` with a gofer Lock as the waiter's lock.

    Otherwise the stdlib's, except that a cancelled waiter still takes the
    lock back (shielded) before ``Cancelled`` propagates, so that the ``with``
    block around it releases a lock it holds.
    """
    if not self._is_owned():
        raise RuntimeError("cannot wait on un-acquired lock")
    waiter = Lock()
    waiter.acquire()
    self._waiters.append(waiter)
    saved_state = self._release_save()
    gotit = False
    try:
        if timeout is None:
            waiter.acquire()
            gotit = True
        elif timeout > 0:
            gotit = waiter.acquire(True, timeout)
        else:
            gotit = waiter.acquire(False)
        return gotit
    finally:
        with shield():
            self._acquire_restore(saved_state)
        if not gotit:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass


class Condition(_StdCondition):  # type: ignore[misc]
    """``threading.Condition`` whose waits park (default lock: a gofer :class:`RLock`)."""

    def __init__(self, lock: Any = None) -> None:
        _StdCondition.__init__(self, RLock() if lock is None else lock)

    wait = condition_wait


class Semaphore(_threading.Semaphore):
    """``threading.Semaphore`` on a gofer Condition."""

    def __init__(self, value: int = 1) -> None:
        _threading.Semaphore.__init__(self, value)
        self._cond = Condition(Lock())


class BoundedSemaphore(_threading.BoundedSemaphore):
    """``threading.BoundedSemaphore`` on a gofer Condition."""

    def __init__(self, value: int = 1) -> None:
        _threading.BoundedSemaphore.__init__(self, value)
        self._cond = Condition(Lock())


class Event(_threading.Event):
    """``threading.Event`` on a gofer Condition."""

    def __init__(self) -> None:
        _threading.Event.__init__(self)
        self._cond = Condition(Lock())


class Barrier(_threading.Barrier):
    """``threading.Barrier`` on a gofer Condition."""

    def __init__(self, parties: int, action: Any = None, timeout: float | None = None) -> None:
        _threading.Barrier.__init__(self, parties, action, timeout)
        self._cond = Condition(Lock())


class Timer(_threading.Timer):
    """``threading.Timer`` (a real thread) whose ``cancel()`` event is a gofer Event."""

    def __init__(self, interval: float, function: Any, args: Any = None, kwargs: Any = None) -> None:
        _threading.Timer.__init__(self, interval, function, args, kwargs)
        self.finished = Event()


_PySimpleQueue: Any = _queue._PySimpleQueue  # type: ignore[attr-defined]


class SimpleQueue(_PySimpleQueue):  # type: ignore[misc]
    """``queue.SimpleQueue`` (the stdlib's Python version) on a gofer Semaphore."""

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._count = Semaphore(0)


def queue_init(self: Any, maxsize: int = 0, _orig: Any = _queue.Queue.__init__) -> None:
    """``queue.Queue.__init__`` with the queue's lock and conditions made gofer's."""
    _orig(self, maxsize)
    self.mutex = Lock()
    self.not_empty = Condition(self.mutex)
    self.not_full = Condition(self.mutex)
    self.all_tasks_done = Condition(self.mutex)
