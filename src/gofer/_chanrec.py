"""Waiter records of channels and the token of a parked ``select``.

A record stands for one parked channel operation: the task-like that parks,
the channel, the value (offered by a sender, or handed to a receiver) and a
``state``. A plain record starts ``WAITING``; it leaves that state once, set
by whoever took the record out of its queue: ``DONE`` by a partner,
``CLOSED`` by ``close``, or ``ABORTED`` by its own abort (cancellation,
timeout). The records of one ``select`` start ``SELWAIT`` and share a
:class:`_Sel` token, which is what a partner, ``close`` or the select's abort
claims; a record popped after its token was claimed becomes ``GONE``. See
the invariants in ``gofer.chan`` and the passes in ``gofer._select``.
"""

from __future__ import annotations

from threading import Lock
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gofer.chan import Chan

__all__ = ["ABORTED", "CLOSED", "DONE", "GONE", "SELWAIT", "WAITING"]

# Waiter record states. Records in a queue are WAITING (a plain record) or
# SELWAIT (a select's); the others are final, set once the record has left
# its queue. GONE marks a select record popped and dropped because its token
# was already claimed (its select fired on another case, or was aborted); a
# select record that its own select removes keeps SELWAIT.
WAITING, DONE, CLOSED, ABORTED, GONE, SELWAIT = 0, 1, 2, 3, 4, 5


class _Sel:
    """The token shared by the records of one parked ``select``: one may fire.

    A partner (or ``close``) claims it with an atomic test-and-set
    (``tok.acquire(False)``), so two parties on two different channels (with
    or without a channel's lock: the fast paths take none) cannot both take
    the same select; the winner stores the record it took in ``fired``. It is
    also the park waitable: an abort is a claim too, and leaves ``fired``
    None. A claimed token is never released.
    """

    __slots__ = ("fired", "n", "tok")

    def __init__(self, n: int) -> None:
        self.tok = Lock()
        self.fired: _ChanWaiter | None = None
        self.n = n

    def _gofer_abort(self, task: Any) -> bool:
        return self.tok.acquire(False)

    def __repr__(self) -> str:
        return f"<select over {self.n} cases>"


class _ChanWaiter:
    """A parked receiver: its task, the value handed to it, its state.

    Also the base of the sender's and the select's records. No ``__slots__``
    and no ``__init__`` on purpose: with class defaults a record costs an
    allocation and only the stores that differ (``task`` and ``ch``, and a
    sender's ``value``), which is measurable on the ping-pong path.
    """

    task: Any
    ch: Chan[Any]
    value: Any = None
    state = WAITING
    is_send = False
    sel: _Sel | None = None
    idx = 0

    def _gofer_abort(self, task: Any) -> bool:
        # Only plain records park on themselves (a select parks on its _Sel).
        # Taking the record out of its deque is the claim (see gofer.chan): an
        # atomic remove() either wins, or the record was already taken by a
        # partner or by close, and the wake is on its way.
        ch = self.ch
        try:
            (ch._sendq if self.is_send else ch._recvq).remove(self)
        except ValueError:
            return False
        self.state = ABORTED
        return True

    def __repr__(self) -> str:
        return f"<{'send on' if self.is_send else 'recv from'} {self.ch!r}>"


class _SendWaiter(_ChanWaiter):
    """A parked sender; ``value`` is the value it offers."""

    is_send = True


class _SelWaiter(_ChanWaiter):
    """A record of a parked ``select``: case ``idx``, sharing the token ``sel``.

    Its state starts at ``SELWAIT`` (not ``WAITING``) so that the fast paths'
    one test, ``state == WAITING``, fails for it and they hand it to
    ``gofer.chan._take``, which claims the token.
    """

    state = SELWAIT

    def __init__(
        self, task: Any, ch: Chan[Any], value: Any, is_send: bool, sel: _Sel, idx: int
    ) -> None:
        self.task = task
        self.ch = ch
        self.value = value
        self.is_send = is_send
        self.sel = sel
        self.idx = idx
