"""Thread-safe wait queues: "park a coroutine or block a thread", across hubs.

Every gofer synchronisation primitive (and the channels) is a little state
guarded by a ``threading.Lock`` plus FIFO queues of *waiter records*. A
waiter record names the task-like that parks (a coroutine, or the stand-in
for a plain thread's main code, which blocks in its own hub's poller) and
carries the value handed to it. The rules, shared with ``gofer.chan``:

* The lock guards the state and the queues; it is never held across ``park``
  and never while waking a task of another hub (that writes a wake-up fd).
* A record is *live* while it sits in its queue waiting. Whoever takes it out
  (under the lock) clears ``live`` and wakes its task exactly once, after
  releasing the lock. Cancellation and timeouts call the record's
  ``_gofer_abort``, which clears ``live`` under the same lock and says
  whether it won; so a waiter is either woken or aborted, never both, and a
  value handed to it is never lost.
* Aborted records stay in the deque (removing from the middle of a deque
  costs O(n)); they are counted in ``dead`` and skipped when popped, and the
  queue is rebuilt when they are more than half of it. Cancelling many
  waiters therefore stays O(1) each.
* A wake is ``_park.wake``: straight onto the ready queue when the waiter
  lives on this thread's hub, through ``hub.call_threadsafe`` otherwise.

Primitives check for a pending cancellation *before* they register (see
:func:`me_for_park`), so that the kernel's park never aborts a record that a
thread of another hub may already have taken.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from gofer._core._park import current_tasklike, raise_if_cancelled, wake

__all__ = ["QueueWaiter", "WaitQueue", "check_timeout", "me_for_park"]

_get_ident = threading.get_ident
COMPACT_MIN = 32  # rebuild a queue once it holds this many aborted records (and they are half)
# The gofer package (this file is in gofer/_core/): frames there are not "the caller".
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _creation_site() -> tuple[str, int] | None:
    """(file, line) of the first caller outside gofer: where a primitive was made."""
    # From this frame up, skipping gofer's: a compiled kernel has no frames
    # of its own, so a fixed depth would not find the same caller.
    f = sys._getframe(0)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back  # type: ignore[assignment]
    return (f.f_code.co_filename, f.f_lineno) if f is not None else None


def me_for_park() -> Any:
    """The current task-like, after raising a pending cancellation.

    Call it before registering a waiter: between this check and ``park``
    nothing runs on this thread, so ``park`` will not find a cancellation to
    deliver by aborting a record that another thread may already have taken.
    """
    me = current_tasklike()
    if me._cancel_hint:
        raise_if_cancelled(me)
    return me


def check_timeout(timeout: float | None) -> None:
    """Reject a negative or non-numeric timeout with a clear message."""
    if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
        raise ValueError(
            f"timeout must be a non-negative number of seconds or None, not {timeout!r}"
        )


class QueueWaiter:
    """One parked caller in a :class:`WaitQueue`; also the ``park`` waitable."""

    __slots__ = ("live", "q", "task", "value")

    def __init__(self, q: WaitQueue, task: Any, value: Any) -> None:
        self.q = q
        self.task = task
        self.value = value
        self.live = True

    def _gofer_abort(self, task: Any) -> bool:
        q = self.q
        with q.lock:
            if not self.live:
                return False  # already taken: a wake is on its way
            self.live = False
            q.dead += 1
            if q.dead > COMPACT_MIN and q.dead * 2 > len(q.q):
                q.compact()
            woken = q.on_abort() if q.on_abort is not None else None
        if woken:
            for w in woken:
                wake(w.task)
        return True

    def __repr__(self) -> str:
        # What a Deadlock message and dump_tasks() show: which primitive, in
        # what state, made where.
        q = self.q
        owner = q.owner() if q.owner is not None else None
        text = q.what if owner is None else f"{q.what} on {owner!r}"
        if q.site is not None:
            text += f", created at {q.site[0]}:{q.site[1]}"
        return f"<{text}>"


class WaitQueue:
    """A FIFO of :class:`QueueWaiter` records, guarded by its owner's ``lock``.

    ``push``, ``pop``, ``peek``, ``pop_all`` and ``len()`` must be called with
    ``lock`` held. ``on_abort`` (called with the lock held after a waiter is
    aborted) returns the waiters it took out and that must be woken, for
    primitives whose other waiters may proceed once one gives up.
    """

    __slots__ = ("dead", "lock", "on_abort", "owner", "q", "site", "what")

    def __init__(
        self,
        lock: threading.Lock,
        what: str,
        on_abort: Callable[[], list[QueueWaiter]] | None = None,
        owner: Any = None,
    ) -> None:
        self.lock = lock
        self.what = what
        self.on_abort = on_abort
        # The primitive, for messages (weakly: no cycle to leave to the GC).
        self.owner: weakref.ref[Any] | None = weakref.ref(owner) if owner is not None else None
        self.site = _creation_site()
        self.q: deque[QueueWaiter] = deque()
        self.dead = 0

    def push(self, task: Any, value: Any = None) -> QueueWaiter:
        w = QueueWaiter(self, task, value)
        self.q.append(w)
        return w

    def pop(self) -> QueueWaiter | None:
        """Take the first live waiter out (the caller then wakes it)."""
        q = self.q
        while q:
            w = q.popleft()
            if w.live:
                w.live = False
                return w
            self.dead -= 1
        return None

    def peek(self) -> QueueWaiter | None:
        """The first live waiter, left in place."""
        q = self.q
        while q:
            w = q[0]
            if w.live:
                return w
            q.popleft()
            self.dead -= 1
        return None

    def pop_all(self) -> list[QueueWaiter]:
        out = [w for w in self.q if w.live]
        for w in out:
            w.live = False
        self.q.clear()
        self.dead = 0
        return out

    def compact(self) -> None:
        self.q = deque(w for w in self.q if w.live)
        self.dead = 0

    def __len__(self) -> int:
        return len(self.q) - self.dead

    def __repr__(self) -> str:
        return f"<WaitQueue {self.what} waiters={len(self)}>"
