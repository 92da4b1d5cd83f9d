"""Channels: Go's ``chan`` for coroutines and OS threads alike.

A :class:`Chan` is a FIFO with a capacity: 0 (rendezvous: a send waits for a
receiver), ``n`` (buffered) or unbounded. It holds a buffer and two queues
of waiter records (``gofer._chanrec``), the receivers and the senders parked
on it. A waiter on another thread's hub is woken through that hub's wake-up
fd (see ``gofer._core._waitq``), so a plain thread, a coroutine on this hub and a
coroutine on another hub can share one channel, each blocking in its own way.
Hand-off is direct: a send to a parked receiver writes the value into its
record; a receive from a parked sender takes it from the sender's (and refills
the buffer from it when buffered). ``close`` follows Go: buffered values still
drain, then receives report closed; a blocked or later send raises ``Closed``.

Thread safety, and why the hottest path takes no lock: a record is claimed
by taking it out of its deque (``popleft()`` by a partner or ``close``,
``remove()`` by its own abort), one C call atomic under the GIL, so exactly
one party gets it (a select's record also needs its select's token); the
winner sets its state and wakes it. So a send that raises did not deliver
its value, and one that returns did. The lock guards the buffer, the closed
flag and every decision made from more than one look ("no receiver is parked
and the buffer is full, so park me"); a send to a parked receiver (on a
rendezvous channel also a receive from a parked sender) needs none and takes
no lock. Queues change only by ``append``, ``popleft`` and ``remove``, never
by peeking then popping nor by replacing the deque; code that only looks
(``select``'s ready check, statistics) takes a snapshot as a hint. The hot
paths are inline on purpose: the ping-pong benchmark measures them.

Invariants, in the manner of Go's ``runtime/chan.go``; a record is *live*
(claimable) while ``WAITING`` (a plain send or receive) or ``SELWAIT`` (a
select's case) with its token unclaimed. Outside the lock queues only shrink,
so these hold whenever no caller is inside it (tests/chan_invariants.py):

* A queued record is ``WAITING`` or ``SELWAIT``, queued once, on its
  direction's queue; its state changes at most once, after it has left:
  ``DONE``/``CLOSED`` by its popper, ``GONE`` if popped with its token taken,
  ``ABORTED`` by its own abort. A dead record never becomes live again.
* Every enqueue is made under the lock, just after a look under it found no
  partner (a send: no live receiver, no room; a receive: no value, no live
  sender; a select: no ready case). So live records are in at most one of
  the two queues, but for one select with a send and a receive case on one
  rendezvous channel, as in Go.
* Buffered, counting dead records too: ``len(buf) <= cap``; a non-empty
  receive queue means an empty buffer, a non-empty send queue a full one.
  Rendezvous: the buffer stays empty; dead records (of a select that fired
  elsewhere and has not cleaned up yet) may sit opposite live ones.
* ``closed`` is set once, under the lock, which then empties both queues
  (live records wake with ``CLOSED``); nothing is enqueued afterwards, so a
  closed channel has no waiters and its buffer only drains.
* Once a send, receive or select returns or raises, no record of it is queued.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import deque
from collections.abc import Iterator
from threading import Lock
from typing import Any, Generic, TypeVar

from greenlet import getcurrent

from gofer._chanrec import CLOSED, DONE, GONE, SELWAIT, WAITING, _ChanWaiter, _SendWaiter
from gofer._core import DEBUG, Worker, check_timeout, give_way, hub_if_any, me_for_park, park, wake

__all__ = ["Chan", "Closed"]

T = TypeVar("T")
_UNBOUNDED = sys.maxsize
# Sends and receives left before the next look at the clock. Operations that
# find a partner or buffer room never park, so a producer that never blocks
# would starve timers and I/O; every _FAST_EVERY operations (a counter costs
# less than a clock read) the caller gives way if its time slice is over.
_FAST_EVERY = 32
_fast = _FAST_EVERY


def _slice_check() -> None:
    global _fast
    _fast = _FAST_EVERY
    g = getcurrent()
    hub = g._hub if g.__class__ is Worker else hub_if_any()
    if hub is not None:
        give_way(hub)
_NO_QUEUE: Any = ()  # shared empty stand-in until a channel first needs a deque
_get_ident = threading.get_ident


class Closed(Exception):
    """The channel is closed: a send on it, a second close, or a receive once it is drained."""


def _take(w: _ChanWaiter, q: deque[_ChanWaiter], state: int) -> _ChanWaiter | None:
    """``w`` was just popped from ``q``: claim it, or the first claimable record after it.

    A select record whose select already fired elsewhere is dropped. The
    record claimed gets ``state``; the caller sets its value and wakes it.
    """
    while True:
        if w.state == WAITING:
            w.state = state
            return w
        sel = w.sel
        assert sel is not None and w.state == SELWAIT
        if sel.tok.acquire(False):
            sel.fired = w
            w.state = state
            return w
        w.state = GONE
        try:
            w = q.popleft()
        except IndexError:
            return None


def _has_live(q: deque[_ChanWaiter]) -> bool:
    """A hint: does ``q`` hold a record that could be claimed now?"""
    try:
        w = q[0]
    except IndexError:
        return False
    if w.state == WAITING:
        return True
    for w in tuple(q):  # an atomic snapshot
        st = w.state
        if st == WAITING or (st == SELWAIT and w.sel is not None and not w.sel.tok.locked()):
            return True
    return False


class Chan(Generic[T]):
    """A channel: ``Chan()`` rendezvous, ``Chan(n)`` buffered, ``Chan(math.inf)`` unbounded.

    Safe from any coroutine on any hub and from plain OS threads. Blocking
    calls take an optional ``timeout`` (seconds; ``TimeoutError``) and are
    cancellation points. Iterating receives until the channel is closed.
    """

    __slots__ = ("_buf", "_cap", "_closed", "_lock", "_recvq", "_sendq", "name")

    def __init__(self, cap: int | float = 0, *, name: str = "") -> None:
        if isinstance(cap, float) and cap == math.inf:
            cap = _UNBOUNDED
        elif isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"channel capacity must be an int >= 0 or math.inf, not {cap!r}")
        self._cap: int = cap
        self._lock = Lock()
        self._buf: deque[T] = _NO_QUEUE
        self._recvq: deque[_ChanWaiter] = _NO_QUEUE
        self._sendq: deque[_ChanWaiter] = _NO_QUEUE
        self._closed = False
        self.name = name

    @classmethod
    def unbounded(cls, *, name: str = "") -> Chan[T]:
        """A channel whose sends never block (``Chan(math.inf)``)."""
        return cls(math.inf, name=name)

    # -- internals for try_* and select (call with the lock held) ----------------
    def _enqueue(self, w: _ChanWaiter) -> None:
        if w.is_send:
            if self._sendq is _NO_QUEUE:
                self._sendq = deque()
            self._sendq.append(w)
        else:
            if self._recvq is _NO_QUEUE:
                self._recvq = deque()
            self._recvq.append(w)

    def _recv_ready(self) -> bool:
        return bool(self._buf) or self._closed or _has_live(self._sendq)

    def _send_ready(self) -> bool:
        return self._closed or _has_live(self._recvq) or len(self._buf) < self._cap

    def _pop(self, q: deque[_ChanWaiter]) -> _ChanWaiter | None:
        if not q:  # also the shared empty tuple of a queue never used
            return None
        try:
            return _take(q.popleft(), q, DONE)
        except IndexError:
            return None

    def _recv_locked(self) -> tuple[bool, Any, bool, _ChanWaiter | None]:
        """Receive without blocking: (done, value, ok, sender to wake)."""
        buf = self._buf
        if buf:
            v = buf.popleft()
            s = self._pop(self._sendq)
            if s is not None:
                buf.append(s.value)
            return True, v, True, s
        s = self._pop(self._sendq)
        if s is not None:
            return True, s.value, True, s
        if self._closed:
            return True, None, False, None
        return False, None, False, None

    def _send_locked(self, value: Any) -> tuple[bool, _ChanWaiter | None]:
        """Send without blocking: (done, receiver to wake). Raises Closed."""
        if self._closed:
            raise Closed(f"send on closed channel {self!r}")
        r = self._pop(self._recvq)
        if r is not None:
            r.value = value
            return True, r
        buf = self._buf
        if len(buf) < self._cap:
            if buf is _NO_QUEUE:
                buf = self._buf = deque()
            buf.append(value)
            return True, None
        return False, None

    # -- sending -------------------------------------------------------------
    def send(self, value: T, timeout: float | None = None) -> None:
        """Send ``value``, waiting for room or a receiver.

        Raises :class:`Closed` if the channel is closed (also if it is closed
        while waiting: the value was then not delivered), ``TimeoutError``
        after ``timeout`` seconds, ``Cancelled`` if the caller is cancelled;
        in the last two cases the value was not delivered either.
        """
        global _fast
        _fast -= 1
        if _fast <= 0:
            _slice_check()
        rq = self._recvq
        if rq and not self._closed:
            # A parked receiver: popping its record claims it; no lock needed.
            try:
                r = rq.popleft()
            except IndexError:
                pass
            else:
                if r.state == WAITING:
                    r.state = DONE
                    got: _ChanWaiter | None = r
                else:
                    got = _take(r, rq, DONE)
                if got is not None:
                    got.value = value
                    t = got.task
                    hub = t._hub
                    # wake(t), inlined on the hottest send (a call costs about
                    # 60 ns); under GOFER_DEBUG the checked wake runs instead.
                    if hub.thread_ident == _get_ident() and not DEBUG:
                        hub.ready.append(t)
                    else:
                        wake(t)
                    return
        lock = self._lock
        lock.acquire()
        try:
            buf = self._buf
            if not self._recvq and len(buf) < self._cap and not self._closed:
                # Room in the buffer (and so nobody parked to receive): the common buffered case.
                if buf is _NO_QUEUE:
                    buf = self._buf = deque()
                buf.append(value)
                return
            done, partner = self._send_locked(value)
            if not done:
                if timeout is not None:
                    check_timeout(timeout)
                g = getcurrent()
                if g.__class__ is not Worker or g._cancel_hint:
                    g = me_for_park()
                w = _SendWaiter()
                w.task = g
                w.ch = self
                w.value = value
                if self._sendq is _NO_QUEUE:
                    self._sendq = deque()
                self._sendq.append(w)
        finally:
            lock.release()
        if done:
            if partner is not None:
                wake(partner.task)
            return
        park(w, timeout)
        if w.state != DONE:
            raise Closed(f"channel {self!r} was closed while sending; the value was not delivered")

    def try_send(self, value: T) -> bool:
        """Send without waiting; return False if it would block. Raises :class:`Closed`."""
        with self._lock:
            done, r = self._send_locked(value)
        if r is not None:
            wake(r.task)
        return done

    # -- receiving -----------------------------------------------------------
    def recv(self, timeout: float | None = None) -> T:
        """Receive a value, waiting for one; raise :class:`Closed` once closed and drained."""
        global _fast
        _fast -= 1
        if _fast <= 0:
            _slice_check()
        if not self._cap:
            sq = self._sendq
            if sq:
                # Rendezvous with a parked sender: popping claims it; no lock needed.
                try:
                    s = sq.popleft()
                except IndexError:
                    pass
                else:
                    if s.state == WAITING:
                        s.state = DONE
                        got: _ChanWaiter | None = s
                    else:
                        got = _take(s, sq, DONE)
                    if got is not None:
                        v = got.value
                        wake(got.task)
                        return v  # type: ignore[no-any-return]
        lock = self._lock
        lock.acquire()
        try:
            buf = self._buf
            if buf and not self._sendq:
                return buf.popleft()  # a buffered value and no parked sender to refill from
            done, v, ok, partner = self._recv_locked()
            if not done:
                if timeout is not None:
                    check_timeout(timeout)
                g = getcurrent()
                if g.__class__ is not Worker or g._cancel_hint:
                    g = me_for_park()
                w = _ChanWaiter()
                w.task = g
                w.ch = self
                if self._recvq is _NO_QUEUE:
                    self._recvq = deque()
                self._recvq.append(w)
        finally:
            lock.release()
        if done:
            if partner is not None:
                wake(partner.task)
            if ok:
                return v  # type: ignore[no-any-return]
            raise Closed(f"receive from closed channel {self!r}")
        park(w, timeout)
        if w.state == DONE:
            return w.value  # type: ignore[no-any-return]
        raise Closed(f"receive from closed channel {self!r}")

    def recv_ok(self, timeout: float | None = None) -> tuple[T | None, bool]:
        """Receive: ``(value, True)``, or ``(None, False)`` once closed and drained."""
        try:
            return self.recv(timeout), True
        except Closed:
            return None, False

    def try_recv(self) -> tuple[T | None, bool]:
        """Receive without waiting: ``(value, True)``, or ``(None, False)`` if none is ready.

        Raises :class:`Closed` once the channel is closed and drained.
        """
        with self._lock:
            done, v, ok, s = self._recv_locked()
        if s is not None:
            wake(s.task)
        if done and not ok:
            raise Closed(f"receive from closed channel {self!r}")
        return v, done

    def __iter__(self) -> Iterator[T]:
        """Receive values until the channel is closed and drained."""
        recv = self.recv
        while True:
            try:
                v = recv()
            except Closed:
                return
            yield v

    # -- closing and state ---------------------------------------------------
    def close(self) -> None:
        """Close the channel; a second close raises :class:`Closed`.

        Buffered values can still be received. Parked receivers wake with
        "closed"; parked senders raise :class:`Closed` (their values were
        not delivered).
        """
        woken = []
        with self._lock:
            if self._closed:
                raise Closed(f"close of closed channel {self!r}")
            self._closed = True  # from now on nothing is enqueued here
            for q in (self._recvq, self._sendq):
                while q:
                    try:
                        w = _take(q.popleft(), q, CLOSED)
                    except IndexError:
                        break
                    if w is None:
                        break
                    if not w.is_send:
                        w.value = None
                    woken.append(w)
        for w in woken:
            wake(w.task)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called (values may still be buffered)."""
        return self._closed

    @property
    def cap(self) -> int | float:
        """The capacity: 0 for rendezvous, ``math.inf`` for unbounded."""
        return math.inf if self._cap == _UNBOUNDED else self._cap

    def __len__(self) -> int:
        """The number of buffered values."""
        return len(self._buf)

    @staticmethod
    def _live_count(q: deque[_ChanWaiter]) -> int:
        n = 0
        for w in tuple(q):
            st = w.state
            if st == WAITING or (st == SELWAIT and w.sel is not None and not w.sel.tok.locked()):
                n += 1
        return n

    def statistics(self) -> dict[str, Any]:
        """Buffered values, capacity, closed flag and the parked senders and receivers."""
        with self._lock:
            return {
                "size": len(self._buf),
                "capacity": self.cap,
                "closed": self._closed,
                "senders_waiting": self._live_count(self._sendq),
                "receivers_waiting": self._live_count(self._recvq),
            }

    def __repr__(self) -> str:
        cap = "inf" if self._cap == _UNBOUNDED else str(self._cap)
        name = f" {self.name!r}" if self.name else ""
        state = " closed" if self._closed else ""
        return f"<gofer.Chan{name} cap={cap} len={len(self._buf)}{state}>"
