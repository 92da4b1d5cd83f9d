"""``ParkingLot``: a FIFO of coroutines of one hub, parked until someone wakes them.

The building block of hub-local waits (a scope waiting for its children, a
race for its first finisher, a server for its stop, a pool for a free
connection), in the manner of trio's ``ParkingLot``: ``park()`` parks the
current coroutine (or the thread's main code) in the lot, ``unpark()`` wakes
the one that has waited longest, ``unpark_all()`` wakes every one, and a
value given to either is what the woken ``park()`` returns.

The lot is its parkers' ``park`` waitable (see ``gofer._core._park``): a
cancellation or a timeout takes exactly that parker out in O(1) (the
oldest parker in a slot, the others in an ``OrderedDict`` keyed by
task-like: FIFO order and cheap removal), and a parker that was already
unparked is woken normally, with its value, whatever comes after.
Wake-ups go through :func:`gofer._core.wake`, the one wake function.
``Task.join`` keeps its own joiner list (see ``gofer._core._task._JoinWait``):
it also holds wakers of joiners on other threads' hubs.

Hub-local: every parker of one lot runs on one hub, so the lot takes no
lock. ``park()`` from a coroutine of another hub while the lot holds
parkers raises ``RuntimeError``; ``unpark``/``unpark_all`` must be called
on that hub's thread (from a coroutine, the main code or a hub callback).
An empty lot may be reused on another hub (a server run again elsewhere).
Waits that cross threads use ``gofer._core.WaitQueue`` instead.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from greenlet import getcurrent

from gofer._core._park import Worker, current_tasklike, park, switch_away, wake

__all__ = ["ParkingLot"]


class ParkingLot:
    """A FIFO of parked coroutines of one hub; see the module docstring.

    ``what`` (and ``owner``, whose ``repr`` is appended; held weakly, so
    that an owner holding its lot makes no cycle) says what the parkers wait
    for: ``dump_tasks()`` and ``Deadlock`` messages show ``parked on <what>``.
    ``first`` (read only) is the parker that has waited longest, or None:
    ``lot.first is None`` is the cheap test for "nobody waits".
    """

    # Most lots never hold more than one parker at a time (a scope's owner,
    # a race's caller, a client waiting for a free connection): the oldest
    # parker is ``first``, and only those behind it go into an ``OrderedDict``
    # (made when first needed). ``_rest`` holds parkers only while ``first``
    # is set: taking ``first`` out moves the oldest of ``_rest`` up.
    __slots__ = ("_given", "_rest", "_what", "first")

    def __init__(self, what: str = "parking lot", owner: Any = None) -> None:
        self.first: Any = None
        self._rest: OrderedDict[Any, None] | None = None
        # Values handed to woken parkers that have not resumed yet (made on
        # the first unpark with a value: most lots never hand one over).
        self._given: dict[Any, Any] | None = None
        self._what: str | tuple[str, weakref.ref[Any]] = (
            what if owner is None else (what, weakref.ref(owner))
        )

    def park(self, timeout: float | None = None) -> Any:
        """Park the current coroutine until unparked; return the value it is given.

        Raises ``TimeoutError`` after ``timeout`` seconds and ``Cancelled`` if
        cancelled meanwhile; either takes it out of the lot.
        """
        t = getcurrent()
        if t.__class__ is not Worker:
            t = current_tasklike()
        first = self.first
        if first is None:
            self.first = t
        else:
            if first._hub is not t._hub:
                raise RuntimeError(
                    f"{self!r} is hub-local: a coroutine of another thread's hub cannot park in it"
                )
            rest = self._rest
            if rest is None:
                rest = self._rest = OrderedDict()
            rest[t] = None
        try:
            if timeout is None and not t._cancel_hint:
                # park() without its generality (as the fd waits do): the
                # scope's and the race's wait.
                t._wait = self
                switch_away(t._hub, t)
                t._wait = None
            else:
                park(self, timeout)
        except BaseException:
            if self._given:  # woken with a value, then killed before it resumed
                self._given.pop(t, None)
            raise
        given = self._given
        return given.pop(t, None) if given else None

    def unpark(self, value: Any = None) -> bool:
        """Wake the parker that has waited longest; False if nobody is parked."""
        t = self.first
        if t is None:
            return False
        rest = self._rest
        self.first = rest.popitem(False)[0] if rest else None
        if value is not None:
            if self._given is None:
                self._given = {}
            self._given[t] = value
        wake(t)
        return True

    def unpark_all(self, value: Any = None) -> int:
        """Wake every parker, in the order they parked; return how many."""
        t = self.first
        if t is None:
            return 0
        self.first = None
        rest = self._rest
        ts = [t]
        if rest:
            ts.extend(rest)
            rest.clear()
        if value is not None:
            if self._given is None:
                self._given = {}
            for t in ts:
                self._given[t] = value
        for t in ts:
            wake(t)
        return len(ts)

    def _gofer_abort(self, task: Any) -> bool:
        # Cancellation or timeout: out of the lot, unless already unparked.
        rest = self._rest
        if self.first is task:
            self.first = rest.popitem(False)[0] if rest else None
            return True
        if rest and task in rest:
            del rest[task]
            return True
        return False

    def __len__(self) -> int:
        if self.first is None:
            return 0
        rest = self._rest
        return 1 + len(rest) if rest else 1

    def __repr__(self) -> str:
        what = self._what
        if isinstance(what, str):
            return f"<{what}>"
        owner = what[1]()
        return f"<{what[0]}>" if owner is None else f"<{what[0]} on {owner!r}>"
