"""Conditions, semaphores, events, barriers and queues on gofer's locks.

``condition_wait`` is ``threading.Condition.wait`` with a gofer
:class:`~gofer.patch._locks.Lock` as each waiter's lock. The stdlib's
pure-Python ``Condition``, ``Semaphore``, ``Event``, ``Barrier`` and
``queue.Queue`` look their locks up in ``threading`` when an object is made,
so once ``threading`` is patched they are cooperative as they are. The
subclasses here build them on gofer's locks without that, for the ``queue``
area patched alone, and keep every stdlib behaviour; ``queue_init`` gives a
``queue.Queue`` gofer's lock and conditions.
"""

from __future__ import annotations

import queue as _queue
import threading as _threading
from collections import deque
from typing import Any

from gofer._core import shield
from gofer.patch._locks import Lock, RLock

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Semaphore",
    "SimpleQueue",
    "Timer",
    "condition_wait",
    "queue_init",
]

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
