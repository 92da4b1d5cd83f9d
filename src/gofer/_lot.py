"""``ParkingLot``: a FIFO of coroutines of one hub, parked until someone wakes them.

The building block of hub-local waits (a scope waiting for its children, a
race for its first finisher, a server for its stop, a pool for a free
connection), in the manner of trio's ``ParkingLot``: ``park()`` parks the
current coroutine (or the thread's main code) in the lot, ``unpark()`` wakes
the one that has waited longest, ``unpark_all()`` wakes every one, and a
value given to either is what the woken ``park()`` returns.

The lot is its parkers' ``park`` waitable (see ``gofer._park``): a
cancellation or a timeout takes exactly that parker out in O(1) (an
``OrderedDict`` keyed by task-like keeps both the FIFO order and the
removal cheap), and a parker that was already unparked is woken normally,
with its value, whatever comes after. Wake-ups go through
:func:`gofer._waitq.wake`, the one wake function.

Hub-local: every parker of one lot runs on one hub, so the lot takes no
lock. ``park()`` from a coroutine of another hub while the lot holds
parkers raises ``RuntimeError``; ``unpark``/``unpark_all`` must be called
on that hub's thread (from a coroutine, the main code or a hub callback).
An empty lot may be reused on another hub (a server run again elsewhere).
Waits that cross threads use ``gofer._waitq.WaitQueue`` instead.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from greenlet import getcurrent

from gofer._park import _current_tasklike, _Worker, park
from gofer._waitq import wake

__all__ = ["ParkingLot"]


class ParkingLot:
    """A FIFO of parked coroutines of one hub; see the module docstring.

    ``what`` (and ``owner``, whose ``repr`` is appended; held weakly, so
    that an owner holding its lot makes no cycle) says what the parkers wait
    for: ``dump_tasks()`` and ``Deadlock`` messages show ``parked on <what>``.
    """

    __slots__ = ("_given", "_hub", "_parked", "owner", "what")

    def __init__(self, what: str = "parking lot", owner: Any = None) -> None:
        self.what = what
        self.owner: weakref.ref[Any] | None = weakref.ref(owner) if owner is not None else None
        self._parked: OrderedDict[Any, None] = OrderedDict()
        # Values handed to woken parkers that have not resumed yet (made on
        # the first unpark with a value: most lots never hand one over).
        self._given: dict[Any, Any] | None = None
        self._hub: Any = None

    def park(self, timeout: float | None = None) -> Any:
        """Park the current coroutine until unparked; return the value it is given.

        Raises ``TimeoutError`` after ``timeout`` seconds and ``Cancelled`` if
        cancelled meanwhile; either takes it out of the lot.
        """
        t = getcurrent()
        if t.__class__ is not _Worker:
            t = _current_tasklike()
        parked = self._parked
        if not parked:
            self._hub = t._hub
        elif t._hub is not self._hub:
            raise RuntimeError(
                f"{self!r} is hub-local: a coroutine of another thread's hub cannot park in it"
            )
        parked[t] = None
        try:
            park(self, timeout)
        except BaseException:
            if self._given:  # woken with a value, then killed before it resumed
                self._given.pop(t, None)
            raise
        given = self._given
        return given.pop(t, None) if given else None

    def unpark(self, value: Any = None) -> bool:
        """Wake the parker that has waited longest; False if nobody is parked."""
        parked = self._parked
        if not parked:
            return False
        t = parked.popitem(last=False)[0]
        if value is not None:
            self._give(t, value)
        wake(t)
        return True

    def unpark_all(self, value: Any = None) -> int:
        """Wake every parker, in the order they parked; return how many."""
        parked = self._parked
        n = len(parked)
        if n:
            ts = list(parked)
            parked.clear()
            for t in ts:
                if value is not None:
                    self._give(t, value)
                wake(t)
        return n

    def _give(self, t: Any, value: Any) -> None:
        if self._given is None:
            self._given = {}
        self._given[t] = value

    def _gofer_abort(self, task: Any) -> bool:
        # Cancellation or timeout: out of the lot, unless already unparked.
        parked = self._parked
        if task in parked:
            del parked[task]
            return True
        return False

    def __len__(self) -> int:
        return len(self._parked)

    def __repr__(self) -> str:
        owner = self.owner() if self.owner is not None else None
        if owner is None:
            return f"<{self.what}>"
        return f"<{self.what} on {owner!r}>"
