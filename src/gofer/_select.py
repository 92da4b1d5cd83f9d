"""``select``: wait on several channel operations; exactly one takes effect.

The algorithm is Go's (``runtime/select.go``), in the same three passes.
The selecting caller locks every channel involved, in ``id`` order so that
two selects (or a select and a thread) locking overlapping sets cannot
deadlock. Pass 1, under those locks: find the cases that are ready now and
perform one of them, chosen uniformly at random (Go polls in a random order
instead; the choice is as fair). If none is ready (and there is no
``default``), pass 2: put one record per case on the channels' queues, all
sharing one ``_Sel`` token, unlock and park. A partner (a send, a receive,
another select, a close) that takes one of those records out of its queue
must then claim the token, an atomic test-and-set; a record whose token is
already claimed is dropped. The park's abort (cancellation, timeout) claims
the token too, so either one case fired and the select returns it, or none
did and the abort wins: no value is lost or delivered twice. Pass 3, once
it is back: the select removes its other records from their queues.

Because a select's own records are only queued after its ready check (done
with all its locks held), a select never matches itself, and a partner
never needs to claim two tokens at once.
"""

from __future__ import annotations

import random
from types import MethodType
from typing import Any

from gofer._chanrec import CLOSED, DONE, SELWAIT, _Sel, _SelWaiter
from gofer._core import check_timeout, me_for_park, park, wake
from gofer.chan import Chan, Closed

__all__ = ["default", "select"]

_RECV, _RECV_OK, _SEND = 0, 1, 2
_RECV_FN = Chan.recv
_RECV_OK_FN = Chan.recv_ok
_SEND_FN = Chan.send
_random = random.Random().random


class _Default:
    """The ``gofer.default`` case: makes a select return at once if nothing is ready."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "gofer.default"


default = _Default()


def _parse(i: int, case: Any) -> tuple[int, Chan[Any], Any]:
    """(kind, channel, value to send) of one select case."""
    if case.__class__ is MethodType:
        ch = case.__self__
        fn = case.__func__
        if isinstance(ch, Chan):
            if fn is _RECV_FN:
                return _RECV, ch, None
            if fn is _RECV_OK_FN:
                return _RECV_OK, ch, None
            if fn is _SEND_FN:
                raise TypeError(
                    f"select case {i}: a send case is a tuple (ch.send, value), not ch.send alone"
                )
    elif isinstance(case, tuple):
        if len(case) == 2:
            fn, value = case
            if (
                fn.__class__ is MethodType
                and fn.__func__ is _SEND_FN
                and isinstance(fn.__self__, Chan)
            ):
                return _SEND, fn.__self__, value
    elif isinstance(case, Chan):
        return _RECV, case, None
    raise TypeError(
        f"select case {i} is not a channel operation: {case!r} (use ch.recv, ch.recv_ok, "
        "(ch.send, value), a channel such as gofer.after(s), or gofer.default)"
    )


def select(*cases: Any, timeout: float | None = None) -> tuple[int, Any]:
    """Wait until one of several channel operations can proceed; perform exactly that one.

    Cases: ``ch.recv`` (value is the received value, ``None`` if ``ch`` is
    closed), ``ch.recv_ok`` (value is ``(value, ok)``), ``(ch.send, v)``
    (value is ``None``; raises :class:`Closed` if that case is chosen and
    ``ch`` is closed), a channel (the same as its ``recv``, e.g.
    ``gofer.after(1)``) and ``gofer.default`` (chosen if nothing else is
    ready now). Returns ``(index, value)`` of the case that fired; among
    ready cases it picks uniformly at random. A closed channel is always
    ready to receive from. ``timeout`` (seconds) raises ``TimeoutError``.
    """
    n = len(cases)
    if not n:
        raise ValueError("select() needs at least one case (Go's empty select would block forever)")
    if timeout is not None:
        check_timeout(timeout)
    # Parse the cases, then lock every channel once, in id order.
    ops: list[tuple[int, Chan[Any], Any]] = []
    dflt = -1
    for i, case in enumerate(cases):
        if case is default:
            if dflt >= 0:
                raise ValueError(f"select has more than one gofer.default (cases {dflt} and {i})")
            dflt = i
            ops.append((-1, None, None))  # type: ignore[arg-type]
            continue
        ops.append(_parse(i, case))
    chans = list({id(op[1]): op[1] for op in ops if op[0] >= 0}.values())
    if len(chans) > 1:
        chans.sort(key=id)
    for ch in chans:
        ch._lock.acquire()
    sel: _Sel | None = None
    woken: Any = None
    try:
        # Pass 1: look for the cases that can proceed now (a value or room in the
        # buffer, a live partner, a closed channel) and perform one, at random.
        while True:
            ready = [
                i
                for i, (kind, ch, _) in enumerate(ops)
                if kind >= 0 and (ch._send_ready() if kind == _SEND else ch._recv_ready())
            ]
            if not ready:
                break
            i = ready[0] if len(ready) == 1 else ready[int(_random() * len(ready))]
            kind, ch, value = ops[i]
            if kind == _SEND:
                done, woken = ch._send_locked(value)
                if done:
                    return i, None
            else:
                done, v, ok, woken = ch._recv_locked()
                if done:
                    return i, ((v, ok) if kind == _RECV_OK else v)
            # The partner we saw was taken meanwhile (a select that fired elsewhere, a
            # lock-free fast path or an abort on another thread): look again.
        if dflt >= 0:
            return dflt, None
        # Pass 2: nothing is ready; enqueue one record per case, sharing one
        # token, still under every lock (a lock-free fast path may claim the token
        # before the last is queued: the rest are then dead, and pass 3 drops them).
        me = me_for_park()
        sel = _Sel(n)
        recs = []
        for i, (kind, ch, value) in enumerate(ops):
            if kind >= 0:
                w = _SelWaiter(me, ch, value, kind == _SEND, sel, i)
                ch._enqueue(w)
                recs.append(w)
    finally:
        # Unlock, then wake the partner of a case performed in pass 1.
        for ch in chans:
            ch._lock.release()
        if woken is not None:
            wake(woken.task)
    # Park until one case fires (a partner claims the token) or the abort does.
    try:
        park(sel, timeout)
    finally:
        # Pass 3: dequeue from the losers, whether a case fired or the abort won.
        fired = sel.fired
        for w in recs:  # take our other records out of their queues (an atomic remove each)
            if w is not fired and w.state == SELWAIT:
                ch = w.ch
                try:
                    (ch._sendq if w.is_send else ch._recvq).remove(w)
                except ValueError:
                    pass  # a partner popped it and drops it: our token was taken
    # Report the case that fired; a send case woken by close raises Closed.
    assert fired is not None
    i = fired.idx
    kind = ops[i][0]
    st = fired.state
    if kind == _SEND:
        if st != DONE:
            raise Closed(
                f"channel {ops[i][1]!r} was closed while select was sending; the value was not delivered"
            )
        return i, None
    ok = st == DONE
    assert ok or st == CLOSED
    if kind == _RECV_OK:
        return i, (fired.value if ok else None, ok)
    return i, fired.value if ok else None
