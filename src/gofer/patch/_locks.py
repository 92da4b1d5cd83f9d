"""``threading``-compatible locks built on gofer's wait queues.

:class:`Lock` and :class:`RLock` have the stdlib's API and error messages
(``acquire(blocking=True, timeout=-1) -> bool``, ``release()``,
``_at_fork_reinit()``...), but a caller that has to wait parks: a coroutine
parks on its hub, a plain thread blocks in its own hub, and either may
release what the other waits for. Their state sits under a real OS lock
(held for a few instructions, never across a park) and the waiters in a FIFO
:class:`~gofer._core.WaitQueue`, as in ``gofer.sync``.

An :class:`RLock` (and so a ``Condition`` over one) is owned by the
*coroutine* that took it, not by its thread: two coroutines of one thread
exclude each other, as two threads would.

Called from inside the hub (a callback), a contended acquire waits a moment
for a holder on another thread, then raises :class:`gofer.BlockingInHubError`.
The classes built on these locks are in ``_conds``.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading as _threading
import time as _time
import warnings
from typing import Any

from greenlet import getcurrent

from gofer._core import BlockingInHubError, WaitQueue, Worker, hub_if_any, me_for_park, park, wake

__all__ = ["Lock", "RLock"]

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
    if g.__class__ is Worker:
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

    def __init_subclass__(cls, **kw: Any) -> None:
        # As the stdlib's lock type: not a base class (3.13 tests it).
        raise TypeError("type 'threading.Lock' is not an acceptable base type")

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if (args or kwargs) and sys.version_info >= (3, 13):  # older ones ignore them silently
            warnings.warn("Passing arguments to RLock is deprecated and will be removed in 3.15",
                          DeprecationWarning, stacklevel=2)
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
