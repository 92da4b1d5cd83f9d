"""Yielding and time slices: let others run without waiting for anything.

:func:`yield_now` requeues the running task behind every other ready one;
:func:`sleep` parks it on a timer. A coroutine that never blocks would
starve timers and I/O, so the hub keeps a time slice (``SLICE``, 1 ms):
once it is over, a yield, a hand-off or a fast path (:func:`give_way`,
called by sockets and channels before an operation that succeeds at once)
first queues what is due (``Hub.collect``) and lets it run.
"""

from __future__ import annotations

import time
from typing import Any

from greenlet import getcurrent

from gofer._core._hub import Hub
from gofer._core._park import (
    Worker,
    current_tasklike,
    park,
    raise_if_cancelled,
    raise_thrown,
    switch_away,
)
from gofer._core._types import TaskLike

__all__ = ["give_way", "sleep", "yield_now"]

_monotonic = time.monotonic


class _Yield:
    """The waitable of ``yield_now``: the task is already queued, so no abort."""

    __slots__ = ()

    def _gofer_abort(self, task: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "<yield>"


_YIELD = _Yield()


def yield_now() -> None:
    """Let every other ready coroutine run once, then continue.

    Once the time slice is over (``SLICE`` since timers and I/O were last
    looked at), due timers and ready I/O run first too. With another
    coroutine ready the clock is read on every 4th yield (as on every 4th
    hand-off in ``switch_away``); alone, on every yield.
    """
    t = getcurrent()
    if t.__class__ is not Worker:
        t = current_tasklike()
    if t._cancel_hint:
        raise_if_cancelled(t)
    hub = t._hub
    ready = hub.ready
    n = hub.handoffs
    if ready and n > 0:
        hub.handoffs = n - 1
        if n & 3 == 0 and _monotonic() >= hub.slice_end:
            _give_way(hub, t)
            return
        # switch_away inlined: this is the hottest park of all. A task that
        # yields is ready, not parked: it keeps _wait None (nothing to abort)
        # and nothing is thrown into it through _throw (Hub._interrupt_main).
        nxt = ready[0]
        if nxt.__class__ is Worker and nxt:
            ready.popleft()
            ready.append(t)
            nxt.switch()
            return
    elif _monotonic() >= hub.slice_end:
        _give_way(hub, t)
        return
    elif n > 0:
        hub.handoffs = n - 1
        return  # nobody else is ready: no switch, but it counts
    ready.append(t)
    t._wait = _YIELD
    hub.switch()
    if t._throw is not None:
        raise_thrown(t)


def _give_way(hub: Hub, t: TaskLike) -> None:
    """Queue what is due (timers, I/O, other threads' calls), let it and every
    other ready coroutine run, then continue. Never raises ``Cancelled``."""
    hub.collect()
    ready = hub.ready
    if not ready:
        return
    ready.append(t)
    t._wait = _YIELD
    switch_away(hub, t)
    t._wait = None


def give_way(hub: Hub) -> None:
    """Let timers, I/O and other coroutines run if the time slice is over.

    For fast paths (a socket call or channel operation that succeeds at
    once): call it *before* the operation, so that nothing it would return
    can be lost. It never raises ``Cancelled``, and does nothing in the hub
    itself or in a thread whose main code is not taking part.
    """
    if _monotonic() < hub.slice_end:
        return
    t = getcurrent()
    if t.__class__ is not Worker:
        root = hub.root
        if root is None or root.g is not t:
            return  # the hub, a callback, or a foreign greenlet: never switch
        t = root
    if t._hub is hub:
        _give_way(hub, t)


def sleep(seconds: float) -> None:
    """Park the current coroutine for ``seconds`` (0 is ``yield_now``)."""
    try:
        positive = seconds > 0
    except TypeError:
        raise TypeError(
            f"sleep() takes a number of seconds, not {type(seconds).__name__}: {seconds!r}"
        ) from None
    if not positive:
        if seconds == 0:
            yield_now()
            return
        raise ValueError(f"sleep length must be >= 0, not {seconds!r}")
    t = getcurrent()
    if t.__class__ is not Worker:
        t = current_tasklike()
    hub = t._hub
    park(hub.timer_at(hub.now() + seconds, t))
