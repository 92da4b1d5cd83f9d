"""Locks for coroutines and threads: Mutex, Semaphore, Condition (and RwLock).

Each primitive is a little state under a ``threading.Lock`` plus a FIFO
:class:`~gofer._core.WaitQueue` of parked callers, so it works the same for
coroutines on any hub and for plain OS threads: a coroutine parks, a thread
blocks in its hub. Ownership is handed over directly on release (the first
waiter gets the lock; nobody can barge in between), which makes every lock
here fair and starvation-free. Every wait takes an optional ``timeout``
(seconds; ``TimeoutError``) and is a cancellation point; a waiter that is
cancelled or times out never takes the lock, and one that was handed the
lock keeps it (the cancellation then arrives at its next park point).
``statistics()`` reports holders and waiters.

RwLock is in ``gofer._rwlock``; Event, WaitGroup, Barrier and Once are in
``gofer._events``. All are exported from here too.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from greenlet import getcurrent

from gofer._core import WaitQueue, Worker, check_timeout, me_for_park, park, shield, wake
from gofer._events import Barrier, Event, Once, WaitGroup
from gofer._rwlock import RwLock

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Mutex",
    "Once",
    "RwLock",
    "Semaphore",
    "WaitGroup",
]


def _holder(t: Any) -> Any:
    """What to record as a lock's holder: the Task of a coroutine, else the thread's code."""
    return t.task if t.__class__ is Worker else t


def _describe(owner: Any) -> str | None:
    """A readable name for a lock holder (a coroutine or a thread's main code)."""
    if owner is None:
        return None
    label = getattr(owner, "_label", None)
    return str(label()) if label is not None else "main thread code"


class Mutex:
    """A mutual-exclusion lock (``with mu: ...``), as Go's ``sync.Mutex``.

    As in Go it is not tied to its holder: any coroutine or thread may
    release it. Releasing an unlocked Mutex raises ``RuntimeError``.
    """

    __slots__ = ("__weakref__", "_lock", "_locked", "_owner", "_q")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locked = False
        self._owner: Any = None
        self._q = WaitQueue(self._lock, "Mutex.acquire", owner=self)

    def acquire(self, timeout: float | None = None) -> None:
        """Wait until the mutex is free and take it (``TimeoutError`` after ``timeout``)."""
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if not self._locked:
                self._locked = True
                self._owner = _holder(getcurrent())
                return
            w = self._q.push(me_for_park())
        park(w, timeout)  # woken by release(): the mutex was handed to us

    def try_acquire(self) -> bool:
        """Take the mutex if it is free; never waits."""
        with self._lock:
            if self._locked:
                return False
            self._locked = True
            self._owner = _holder(getcurrent())
            return True

    def release(self) -> None:
        """Free the mutex, handing it to the first waiter if any."""
        with self._lock:
            if not self._locked:
                raise RuntimeError("release of an unlocked gofer.Mutex")
            w = self._q.pop()
            if w is None:
                self._locked = False
                self._owner = None
                return
            self._owner = _holder(w.task)
        wake(w.task)

    def locked(self) -> bool:
        return self._locked

    def __enter__(self) -> Mutex:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def statistics(self) -> dict[str, Any]:
        """``locked``, ``owner`` (who holds it) and ``waiters``."""
        with self._lock:
            return {
                "locked": self._locked,
                "owner": _describe(self._owner),
                "waiters": len(self._q),
            }

    def __repr__(self) -> str:
        return f"<gofer.Mutex {'locked' if self._locked else 'unlocked'} waiters={len(self._q)}>"


class Semaphore:
    """A counter of permits: ``acquire`` takes one (waiting if none), ``release`` returns one.

    Use as a context manager to hold one permit. Permits are handed to
    waiters in FIFO order.
    """

    __slots__ = ("__weakref__", "_lock", "_q", "_value")

    def __init__(self, value: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"semaphore initial value must be an int >= 0, not {value!r}")
        self._lock = threading.Lock()
        self._value = value
        self._q = WaitQueue(self._lock, f"{type(self).__name__}.acquire", owner=self)

    def acquire(self, timeout: float | None = None) -> None:
        """Take a permit, waiting for one (``TimeoutError`` after ``timeout``)."""
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if self._value:
                self._value -= 1
                return
            w = self._q.push(me_for_park())
        park(w, timeout)

    def try_acquire(self) -> bool:
        with self._lock:
            if self._value:
                self._value -= 1
                return True
            return False

    def _check_release(self, n: int) -> None:
        """Hook for BoundedSemaphore (lock held)."""

    def release(self, n: int = 1) -> None:
        """Return ``n`` permits, waking up to ``n`` waiters."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"release() needs a positive number of permits, not {n!r}")
        with self._lock:
            self._check_release(n)
            woken = []
            for _ in range(n):
                w = self._q.pop()
                if w is None:
                    self._value += 1
                else:
                    woken.append(w)
        for w in woken:
            wake(w.task)

    @property
    def value(self) -> int:
        """Permits available now."""
        return self._value

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def statistics(self) -> dict[str, Any]:
        """``value`` (permits free) and ``waiters``."""
        with self._lock:
            return {"value": self._value, "waiters": len(self._q)}

    def __repr__(self) -> str:
        return f"<gofer.{type(self).__name__} value={self._value} waiters={len(self._q)}>"


class BoundedSemaphore(Semaphore):
    """A Semaphore whose ``release`` raises ``ValueError`` if it would exceed the initial value."""

    __slots__ = ("_bound",)

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._bound = value

    def _check_release(self, n: int) -> None:
        direct = min(n, len(self._q))
        if self._value + n - direct > self._bound:
            raise ValueError(
                f"BoundedSemaphore released too many times (its bound is {self._bound})"
            )

    def statistics(self) -> dict[str, Any]:
        return {**super().statistics(), "bound": self._bound}


class Condition:
    """A condition variable over a :class:`Mutex` (``with cond: cond.wait()``).

    ``wait`` releases the mutex, parks until notified, then takes the mutex
    back (also when it raises ``TimeoutError`` or ``Cancelled``). A
    notification is never lost to a waiter that times out at the same time:
    either the waiter was notified (and returns) or it was not.
    """

    __slots__ = ("__weakref__", "_q", "_qlock", "lock")

    def __init__(self, lock: Mutex | None = None) -> None:
        if lock is not None and not isinstance(lock, Mutex):
            raise TypeError(f"Condition needs a gofer.Mutex, not {type(lock).__name__}")
        self.lock = lock if lock is not None else Mutex()
        self._qlock = threading.Lock()
        self._q = WaitQueue(self._qlock, "Condition.wait", owner=self)

    def acquire(self, timeout: float | None = None) -> None:
        self.lock.acquire(timeout)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> Condition:
        self.lock.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.lock.release()

    def wait(self, timeout: float | None = None) -> None:
        """Release the lock, wait for ``notify``, re-take the lock."""
        if not self.lock.locked():
            raise RuntimeError("Condition.wait() needs its lock held (use 'with cond:')")
        if timeout is not None:
            check_timeout(timeout)
        me = me_for_park()
        with self._qlock:
            w = self._q.push(me)
        self.lock.release()
        try:
            park(w, timeout)
        except BaseException:
            with shield():
                self.lock.acquire()
            raise
        self.lock.acquire()

    def wait_for(self, predicate: Any, timeout: float | None = None) -> Any:
        """Wait until ``predicate()`` is true; return its value (``TimeoutError`` after ``timeout``)."""
        result = predicate()
        if result:
            return result
        if timeout is not None:
            check_timeout(timeout)
            now = me_for_park()._hub.now
            deadline = now() + timeout
        while not result:
            if timeout is None:
                self.wait()
            else:
                left = deadline - now()
                try:
                    if left <= 0:
                        raise TimeoutError
                    self.wait(left)
                except TimeoutError:
                    result = predicate()  # one last look, as threading.Condition does
                    if result:
                        return result
                    raise TimeoutError(
                        "Condition.wait_for: the predicate did not become true in time"
                    ) from None
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters."""
        with self._qlock:
            woken = []
            for _ in range(n):
                w = self._q.pop()
                if w is None:
                    break
                woken.append(w)
        for w in woken:
            wake(w.task)

    def notify_all(self) -> None:
        with self._qlock:
            woken = self._q.pop_all()
        for w in woken:
            wake(w.task)

    def statistics(self) -> dict[str, Any]:
        """``waiters`` and the statistics of the underlying ``lock``."""
        with self._qlock:
            n = len(self._q)
        return {"waiters": n, "lock": self.lock.statistics()}

    def __repr__(self) -> str:
        return f"<gofer.Condition waiters={len(self._q)} lock={self.lock!r}>"
