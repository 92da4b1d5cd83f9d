"""Cancel scopes: ``timeout``, ``move_on_after``, ``shield``.

A :class:`CancelScope` marks a region of one coroutine's code that can be
cancelled as a whole. Cancelling it raises :class:`Cancelled` (tagged with
the scope) at the current or next park point inside the region; the scope's
``__exit__`` recognises its own ``Cancelled`` and stops it there. A shielded
scope hides cancellations of the scopes (and the task) around it, so clean-up
code can block. ``timeout(s)`` is a scope with a deadline that turns its own
cancellation into ``TimeoutError``; scopes nest freely, and an outer scope's
cancellation passes through inner ones untouched.
"""

from __future__ import annotations

import math
import threading
from types import TracebackType
from typing import Any, Literal

from gofer._core._park import Cancelled, current_tasklike, deliverable, interrupt
from gofer._core._timers import TimerHandle
from gofer._core._waitq import check_timeout

__all__ = ["CancelScope", "move_on_after", "shield", "timeout"]


class CancelScope:
    """A cancellable region of the current coroutine (``with CancelScope() as s``).

    ``cancel()`` may be called from any coroutine or thread, before or
    during the region. ``deadline`` is a monotonic time (``hub.now()``), or
    None. After the block, ``cancelled_caught`` says whether the scope's own
    cancellation was stopped by it.
    """

    __slots__ = ("_task", "_timer", "cancel_called", "cancelled_caught", "deadline", "shield")

    def __init__(self, *, deadline: float | None = None, shield: bool = False) -> None:
        if deadline is not None and (not isinstance(deadline, int | float) or math.isnan(deadline)):
            raise ValueError(f"deadline must be a number (hub.now() time) or None, not {deadline!r}")
        self._task: Any = None
        self._timer: TimerHandle | None = None
        self.deadline = deadline
        self.shield = shield
        self.cancel_called = False
        self.cancelled_caught = False

    def __enter__(self) -> CancelScope:
        if self._task is not None:
            raise RuntimeError("a CancelScope can only be entered once")
        t = current_tasklike()
        self._task = t
        t._scopes = (*t._scopes, self)
        if self.cancel_called:
            t._cancel_hint = True
        elif self.deadline is not None:
            hub = t._hub
            if self.deadline <= hub.now():
                self.cancel_called = True
                t._cancel_hint = True
            else:
                self._timer = hub.call_at(self.deadline, self.cancel)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> bool:
        t = self._task
        scopes = t._scopes
        if not scopes or scopes[-1] is not self:
            raise RuntimeError("cancel scopes were exited out of order")
        t._scopes = scopes[:-1]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if t._cancel_hint and not t._cancel_req and deliverable(t) is None:
            t._cancel_hint = any(s.cancel_called for s in t._scopes)
        if isinstance(ev, Cancelled) and ev.scope is self:
            self.cancelled_caught = True
            return True
        return False

    def cancel(self) -> None:
        """Cancel the region: ``Cancelled`` at its current or next park point.

        Safe from any thread.
        """
        if self.cancel_called:
            return
        t = self._task
        if t is not None and t._hub.thread_ident != threading.get_ident():
            t._hub.call_threadsafe(self.cancel)
            return
        self.cancel_called = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self._task
        if t is not None and self in t._scopes:
            t._cancel_hint = True
            interrupt(t)

    def __repr__(self) -> str:
        state = "cancelled" if self.cancel_called else "active"
        return f"<gofer.CancelScope {state} shield={self.shield} deadline={self.deadline}>"


def _deadline_after(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    check_timeout(seconds)
    return current_tasklike()._hub.now() + seconds  # type: ignore[no-any-return]


class timeout(CancelScope):
    """``with gofer.timeout(s):`` raises ``TimeoutError`` once ``s`` seconds pass.

    The blocked operation inside is cancelled (its registration undone) and
    ``TimeoutError`` is raised from the ``with`` statement. ``None`` means
    no limit. Nesting works: the nearest expired deadline wins.
    """

    __slots__ = ()

    def __init__(self, seconds: float | None) -> None:
        super().__init__(deadline=_deadline_after(seconds))

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if super().__exit__(et, ev, tb):
            raise TimeoutError("gofer.timeout: deadline exceeded") from None
        return False


class move_on_after(CancelScope):
    """Like ``timeout`` but silently leaves the block; check ``cancelled_caught``."""

    __slots__ = ()

    def __init__(self, seconds: float | None) -> None:
        super().__init__(deadline=_deadline_after(seconds))


def shield() -> CancelScope:
    """``with gofer.shield():`` protects clean-up code from outside cancellation."""
    return CancelScope(shield=True)
