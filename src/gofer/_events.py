"""Coordination primitives: Event, WaitGroup, Barrier, Once.

Built like the locks in ``gofer.sync`` (state under a ``threading.Lock``, a
FIFO :class:`~gofer._core.WaitQueue`), so they work across coroutines,
hubs and plain threads; every wait takes an optional ``timeout`` (seconds;
``TimeoutError``) and is a cancellation point. Exported from ``gofer.sync``
and ``gofer``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from threading import BrokenBarrierError
from typing import Any, TypeVar

from greenlet import getcurrent

from gofer._core import (
    Cancelled,
    QueueWaiter,
    Task,
    WaitQueue,
    check_timeout,
    go,
    me_for_park,
    park,
    wake,
)

__all__ = ["Barrier", "BrokenBarrierError", "Event", "Once", "WaitGroup"]
T = TypeVar("T")


def _wake_all(woken: list[QueueWaiter]) -> None:
    for w in woken:
        wake(w.task)


class Event:
    """A flag that coroutines and threads can wait for (``set``, ``clear``, ``wait``)."""

    __slots__ = ("__weakref__", "_flag", "_lock", "_q")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = False
        self._q = WaitQueue(self._lock, "Event.wait", owner=self)

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        with self._lock:
            if self._flag:
                return
            self._flag = True
            woken = self._q.pop_all()
        _wake_all(woken)

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> None:
        """Return once the flag is set (``TimeoutError`` after ``timeout``)."""
        if self._flag:
            return
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if self._flag:
                return
            w = self._q.push(me_for_park())
        park(w, timeout)

    def statistics(self) -> dict[str, Any]:
        with self._lock:
            return {"set": self._flag, "waiters": len(self._q)}

    def __repr__(self) -> str:
        return f"<gofer.Event {'set' if self._flag else 'unset'} waiters={len(self._q)}>"


class WaitGroup:
    """Waits for a collection of coroutines or threads to finish (Go's ``sync.WaitGroup``).

    ``add(n)`` before starting work, ``done()`` when each piece finishes,
    ``wait()`` until the counter is zero. ``go(fn, *args)`` does all three
    for a coroutine. A counter below zero raises ``ValueError``.
    """

    __slots__ = ("__weakref__", "_count", "_lock", "_q")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._q = WaitQueue(self._lock, "WaitGroup.wait", owner=self)

    def add(self, delta: int = 1) -> None:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"WaitGroup.add() needs an int, not {delta!r}")
        with self._lock:
            n = self._count + delta
            if n < 0:
                raise ValueError(
                    f"gofer.WaitGroup counter would go negative ({self._count} {delta:+d})"
                )
            self._count = n
            woken = self._q.pop_all() if n == 0 else None
        if woken:
            _wake_all(woken)

    def done(self) -> None:
        """One piece of work finished (``add(-1)``)."""
        self.add(-1)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the counter is zero (``TimeoutError`` after ``timeout``)."""
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if not self._count:
                return
            w = self._q.push(me_for_park())
        park(w, timeout)

    def go(self, fn: Callable[..., T], *args: Any, **kw: Any) -> Task[T]:
        """``add(1)``, start ``fn(*args, **kw)`` as a coroutine, ``done()`` when it ends."""
        if not callable(fn):
            raise TypeError(f"WaitGroup.go() needs a callable, not {fn!r}")
        self.add(1)

        def run() -> T:
            try:
                return fn(*args, **kw)
            finally:
                self.done()

        run.__qualname__ = getattr(fn, "__qualname__", "WaitGroup.go")
        return go(run)

    @property
    def count(self) -> int:
        return self._count

    def statistics(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self._count, "waiters": len(self._q)}

    def __repr__(self) -> str:
        return f"<gofer.WaitGroup count={self._count} waiters={len(self._q)}>"


_BROKEN: Any = object()


class Barrier:
    """``parties`` callers wait until all have arrived, then all go on (reusable).

    ``wait()`` returns the caller's arrival index (0 to parties-1). As in
    Python's ``threading.Barrier``, a waiter that times out or is cancelled
    breaks the barrier: the others raise ``threading.BrokenBarrierError``
    (also exported as ``gofer.BrokenBarrierError``) until ``reset()``.
    """

    __slots__ = ("__weakref__", "_broken", "_count", "_lock", "_parties", "_q")

    def __init__(self, parties: int) -> None:
        if isinstance(parties, bool) or not isinstance(parties, int) or parties < 1:
            raise ValueError(f"Barrier needs a positive number of parties, not {parties!r}")
        self._lock = threading.Lock()
        self._parties = parties
        self._count = 0
        self._broken = False
        self._q = WaitQueue(self._lock, "Barrier.wait", on_abort=self._break, owner=self)

    def wait(self, timeout: float | None = None) -> int:
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if self._broken:
                raise BrokenBarrierError("the gofer.Barrier is broken")
            idx = self._count
            if idx + 1 == self._parties:
                self._count = 0
                woken = self._q.pop_all()
            else:
                w = self._q.push(me_for_park(), idx)
                self._count = idx + 1
                woken = None
        if woken is not None:
            _wake_all(woken)
            return idx
        park(w, timeout)
        if w.value is _BROKEN:
            raise BrokenBarrierError("the gofer.Barrier was broken while waiting")
        return idx

    def _break(self) -> list[QueueWaiter]:
        """Break the barrier (lock held); returns the waiters to wake."""
        self._broken = True
        self._count = 0
        woken = self._q.pop_all()
        for w in woken:
            w.value = _BROKEN
        return woken

    def abort(self) -> None:
        """Break the barrier: current and future waiters raise BrokenBarrierError."""
        with self._lock:
            woken = self._break()
        _wake_all(woken)

    def reset(self) -> None:
        """Repair the barrier (current waiters raise BrokenBarrierError)."""
        with self._lock:
            woken = self._break()
            self._broken = False
        _wake_all(woken)

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return self._count

    @property
    def broken(self) -> bool:
        return self._broken

    def statistics(self) -> dict[str, Any]:
        with self._lock:
            return {"parties": self._parties, "waiting": self._count, "broken": self._broken}

    def __repr__(self) -> str:
        return f"<gofer.Barrier {self._count}/{self._parties}{' broken' if self._broken else ''}>"


_IDLE, _RUNNING, _DONE = 0, 1, 2


class Once:
    """Runs a function once (Go's ``sync.Once`` / ``OnceValue``).

    ``once.do(fn, *args)`` calls ``fn`` the first time only; concurrent
    callers wait until it has finished. Every call returns the first call's
    result, or re-raises its exception. If the first call is cancelled, it
    does not count: the next caller runs ``fn``.
    """

    __slots__ = ("__weakref__", "_exc", "_lock", "_q", "_result", "_runner", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _IDLE
        self._runner: Any = None
        self._result: Any = None
        self._exc: BaseException | None = None
        self._q = WaitQueue(self._lock, "Once.do", owner=self)

    def do(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Call ``fn(*args)`` if no call has completed yet; return the stored result."""
        if not callable(fn):
            raise TypeError(f"Once.do() needs a callable, not {fn!r}")
        if timeout is not None:
            check_timeout(timeout)
        while True:
            with self._lock:
                st = self._state
                if st == _IDLE:
                    self._state = _RUNNING
                    self._runner = getcurrent()
                    break
                if st == _DONE:
                    return self._stored()  # type: ignore[no-any-return]
                if self._runner is getcurrent():
                    raise RuntimeError("Once.do() was called again from inside its own function")
                w = self._q.push(me_for_park())
            park(w, timeout)  # woken when the running call finishes or is cancelled
        return self._run(fn, args)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            result = fn(*args)
        except Cancelled:
            with self._lock:  # a cancelled first call does not count
                self._state = _IDLE
                self._runner = None
                woken = self._q.pop_all()
            _wake_all(woken)
            raise
        except BaseException as exc:
            self._finish(None, exc)
            raise
        self._finish(result, None)
        return result

    def _finish(self, result: Any, exc: BaseException | None) -> None:
        with self._lock:
            self._result = result
            self._exc = exc
            self._state = _DONE
            self._runner = None
            woken = self._q.pop_all()
        _wake_all(woken)

    def _stored(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._result

    @property
    def done(self) -> bool:
        """True once a call has completed (returned or raised)."""
        return self._state == _DONE

    def statistics(self) -> dict[str, Any]:
        with self._lock:
            return {
                "done": self._state == _DONE,
                "running": self._state == _RUNNING,
                "waiters": len(self._q),
            }

    def __repr__(self) -> str:
        return f"<gofer.Once {('idle', 'running', 'done')[self._state]}>"
