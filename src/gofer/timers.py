"""Timers as in Go's ``time`` package: ``after``, ``tick``, ``Timer``, ``Ticker``.

A timer lives on the hub of the thread that made it and is one entry in
that hub's timer heap (``hub.timer_at``: O(log n) to add, O(1) to cancel),
so a million pending timers cost a million small heap entries and nothing
else. When it fires, the hub puts its clock reading (``hub.now()``: the
monotonic clock, or the virtual clock under ``gofer.testing``) into the
timer's channel, a ``Chan(1)``, without blocking. A ``Ticker`` does the same
every period and, as in Go, drops ticks that a slow receiver has not taken.

A timer remembers its current arming (the heap entry's handle) and fires
only for that one, so an earlier arming that comes due anyway is ignored.
That makes ``stop`` and ``reset`` safe from any thread (they swap the
current arming under a lock; the heap itself is touched only on the hub's
thread) and gives Go 1.23's guarantee: once ``stop`` or ``reset`` returns,
no stale value from before it can be received from the channel.

The hub fires timers only while it runs: inside ``gofer.run``, or while the
thread that made the timer is parked in a gofer call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gofer._core import Hub, TimerHandle, get_hub, go
from gofer.chan import Chan

__all__ = ["Ticker", "Timer", "after", "tick"]

_lock = threading.Lock()  # guards the ``_armed`` and ``_c`` fields of every timer
_get_ident = threading.get_ident


def _check_seconds(seconds: float, what: str, positive: bool = False) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        raise TypeError(f"{what} needs a number of seconds, not {seconds!r}")
    if seconds < 0 or (positive and seconds == 0):
        raise ValueError(
            f"{what} needs {'a positive' if positive else 'a non-negative'} number of seconds, not {seconds!r}"
        )
    return float(seconds)


class _PendingArm:
    """The arming token while an arming made from another thread travels to the hub."""

    __slots__ = ()


class _Armable:
    """What Timer and Ticker share: their current arming and how to change it.

    ``_armed`` is None (stopped or fired), the ``TimerHandle`` of the heap
    entry that will fire it, or a ``_PendingArm`` on its way to the hub. The
    object itself is the heap entry's target: when an entry is due the hub
    calls ``switch()``, which fires only if that entry is still the current
    arming (its handle is no longer active because the hub popped it). Any
    earlier arming that comes due anyway finds a different ``_armed`` and is
    ignored.
    """

    __slots__ = ("_armed", "_hub")

    _armed: TimerHandle | _PendingArm | None
    _hub: Hub

    def _arm_locked(self, when: float) -> _PendingArm | None:
        """Make a new arming current (``_lock`` held); returns a token to send to the hub."""
        hub = self._hub
        if hub.thread_ident == _get_ident():
            self._armed = hub.timer_at(when, self)
            return None
        p = self._armed = _PendingArm()
        return p

    def _send_arm(self, p: _PendingArm | None, when: float) -> None:
        if p is not None:
            self._hub.call_threadsafe(self._arm_in_hub, p, when)

    def _arm_in_hub(self, p: _PendingArm, when: float) -> None:
        with _lock:
            if self._armed is p:
                self._armed = self._hub.timer_at(when, self)

    def _cancel(self, old: TimerHandle | _PendingArm | None) -> None:
        """Drop a former arming's heap entry (outside ``_lock``)."""
        if old.__class__ is not TimerHandle:
            return  # None, or a pending arming that will find itself stale
        assert isinstance(old, TimerHandle)
        hub = self._hub
        if hub.thread_ident == _get_ident():
            old.cancel()
            old.target = None  # a cancelled entry waits in the heap for compaction: keep it small
        else:
            try:
                hub.call_threadsafe(old.cancel)
            except RuntimeError:
                pass  # that hub is closed: its timers never fire anyway

    def _due_locked(self) -> bool:
        """In ``switch`` (``_lock`` held): is the current arming the one that came due?"""
        h = self._armed
        return h.__class__ is TimerHandle and not h.active


class Timer(_Armable):
    """A single event in ``seconds``: a value on ``t.c``, or ``fn(*args)`` in a new coroutine.

    ``stop()`` cancels it; ``reset(seconds)`` re-arms it. Both return True
    if the timer was pending (including when it had fired but its value was
    not received yet: that value is discarded). Safe from any thread.
    """

    __slots__ = ("_args", "_c", "_fn")

    def __init__(self, seconds: float, fn: Callable[..., Any] | None = None, *args: Any) -> None:
        # Kept lean: creating a million timers is a requirement, not a corner case.
        if seconds.__class__ is not float or not seconds >= 0.0:
            seconds = _check_seconds(seconds, "Timer")
        if fn is not None and not callable(fn):
            raise TypeError(f"Timer needs a callable to run, not {type(fn).__name__}: {fn!r}")
        hub = self._hub = get_hub()
        self._fn = fn
        self._args = args
        self._c: Chan[float] | None = None  # made on first use: a million timers stay small
        when = hub.now() + seconds
        if hub.thread_ident == _get_ident():
            self._armed = hub.timer_at(when, self)
        else:
            self._send_arm(self._arm_locked(when), when)

    @property
    def c(self) -> Chan[float]:
        """The channel that receives the hub's clock reading when the timer fires."""
        c = self._c
        if c is None:
            if self._fn is not None:
                raise RuntimeError("this Timer runs a function when it fires; it has no channel")
            with _lock:
                c = self._c
                if c is None:
                    c = self._c = Chan(1)
        return c

    def switch(self) -> None:
        """Called by the hub when a heap entry of this timer is due (not for users)."""
        with _lock:
            if not self._due_locked():
                return  # stopped or reset meanwhile
            self._armed = None
            fn = self._fn
            c = self._c
            if fn is None and c is None:
                c = self._c = Chan(1)
        if fn is not None:
            go(fn, *self._args)
        elif c is not None:
            c.try_send(self._hub.now())

    def _drain(self) -> bool:
        c = self._c
        if c is None:
            return False
        return c.try_recv()[1]  # a fired value nobody took is stale now

    def stop(self) -> bool:
        """Cancel the timer; True if it was pending (or fired but not yet received)."""
        with _lock:
            old = self._armed
            self._armed = None
        self._cancel(old)
        return self._drain() or old is not None

    def reset(self, seconds: float) -> bool:
        """Re-arm the timer to fire ``seconds`` from now; returns what ``stop()`` would."""
        seconds = _check_seconds(seconds, "Timer.reset")
        when = self._hub.now() + seconds
        with _lock:
            old = self._armed
            p = self._arm_locked(when)
        self._cancel(old)
        was = self._drain() or old is not None
        self._send_arm(p, when)
        return was

    @property
    def pending(self) -> bool:
        """True until the timer fires or is stopped."""
        return self._armed is not None

    def __repr__(self) -> str:
        what = "calls " + getattr(self._fn, "__qualname__", repr(self._fn)) if self._fn else "sends"
        return f"<gofer.Timer {what} {'pending' if self._armed else 'stopped/fired'}>"


class Ticker(_Armable):
    """Sends the hub's clock reading on ``t.c`` every ``seconds``; drops ticks a slow receiver missed.

    Ticks keep their phase: after a long pause the next tick comes at the
    next multiple of the period. ``stop()`` and ``reset(seconds)`` are safe
    from any thread; after either returns no stale tick can be received.
    """

    __slots__ = ("_next", "_period", "c")

    def __init__(self, seconds: float) -> None:
        self._period = _check_seconds(seconds, "Ticker", positive=True)
        hub = self._hub = get_hub()
        self.c: Chan[float] = Chan(1)
        self._next = hub.now() + self._period
        with _lock:
            p = self._arm_locked(self._next)
        self._send_arm(p, self._next)

    def switch(self) -> None:
        """Called by the hub when a heap entry of this ticker is due (not for users)."""
        hub = self._hub
        with _lock:
            if not self._due_locked():
                return
            now = hub.now()
            nxt = self._next + self._period
            if nxt <= now:  # the hub was late: skip the missed ticks, keep the phase
                nxt += self._period * ((now - nxt) // self._period + 1)
            self._next = nxt
            self._armed = hub.timer_at(nxt, self)
        self.c.try_send(now)  # full: the receiver is slow, drop this tick

    def stop(self) -> None:
        """Stop ticking (the channel stays open, as in Go)."""
        with _lock:
            old = self._armed
            self._armed = None
        self._cancel(old)
        self.c.try_recv()

    def reset(self, seconds: float) -> None:
        """Stop, then tick every ``seconds`` from now."""
        period = _check_seconds(seconds, "Ticker.reset", positive=True)
        with _lock:
            old = self._armed
            self._period = period
            self._next = self._hub.now() + period
            p = self._arm_locked(self._next)
        self._cancel(old)
        self.c.try_recv()
        self._send_arm(p, self._next)

    @property
    def period(self) -> float:
        return self._period

    def __repr__(self) -> str:
        return f"<gofer.Ticker every {self._period}s {'running' if self._armed else 'stopped'}>"


def after(seconds: float) -> Chan[float]:
    """A channel that receives the clock reading once, ``seconds`` from now (Go's ``time.After``).

    Use it as a select case for a timeout: ``gofer.select(ch.recv, gofer.after(1))``.
    """
    return Timer(seconds).c


def tick(seconds: float) -> Chan[float]:
    """A channel that receives a tick every ``seconds`` (Go's ``time.Tick``).

    The ticker cannot be stopped and runs as long as its hub: prefer
    :class:`Ticker` in code that stops ticking.
    """
    return Ticker(seconds).c
