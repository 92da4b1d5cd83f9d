"""Timers, clocks and callbacks: the hub's ready-queue items that are not tasks.

Everything on a hub's ready queue has a ``switch()`` method: a task's
greenlet, a :class:`Callback` (``fn(*args)`` run inside the hub) or the
target of a due :class:`TimerHandle`. Timers sit in the hub's heap by due
time; cancelling one only marks it (O(1)), and the hub drops marked entries
when it meets them or when they are more than half the heap.

A clock has ``now()``, ``autojump`` and ``jump_to(when)``: the hub reads
time only through it, so that ``gofer.testing.VirtualClock`` can replace
:class:`RealClock`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["INF", "SLICE", "Callback", "RealClock", "TimerHandle"]

log = logging.getLogger("gofer")

# The time slice (seconds): a coroutine that yields, hands off to another or
# takes a fast path when timers and I/O have not been looked at for this long
# lets them run first. 1 ms bounds what CPU-bound coroutines that yield add
# to a timer's or a ready socket's latency; it costs one clock read (about
# 50 ns) on every 4th yield and hand-off, and per fast path (see docs/kernel.md).
SLICE = 0.001
INF = float("inf")


class _TimerOwner(Protocol):
    """What a timer needs from its hub."""

    _cancelled_timers: int

    def now(self) -> float: ...


class Callback:
    """A ready-queue item that calls ``fn(*args)`` inside the hub."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def switch(self) -> None:
        try:
            self.fn(*self.args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            log.exception("gofer: exception in callback %r", self.fn)


class TimerHandle:
    """A pending timer; ``cancel()`` is O(1) (lazy deletion from the heap).

    ``target`` is a ready-queue item (something with ``switch()``) that is
    queued when the timer is due. The handle is also a park *waitable*: a
    coroutine sleeping on it is unregistered by cancelling the timer.
    """

    __slots__ = ("active", "hub", "target", "when")

    def __init__(self, hub: _TimerOwner, when: float, target: Any) -> None:
        self.hub = hub
        self.when = when
        self.target = target
        self.active = True

    def cancel(self) -> bool:
        if not self.active:
            return False
        self.active = False
        if self.when != INF:  # infinite timers are never in the heap
            self.hub._cancelled_timers += 1
        return True

    def _gofer_abort(self, task: Any) -> bool:
        return self.cancel()

    def __repr__(self) -> str:
        return f"<timer due in {self.when - self.hub.now():.3f}s>"


class RealClock:
    """The wall clock (``time.monotonic``)."""

    autojump = False

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def jump_to(self, when: float) -> None:  # pragma: no cover - never called
        raise RuntimeError("the real clock cannot jump")
