"""The channel invariants stated at the top of ``src/gofer/chan.py``, as a check.

``check(ch)`` reads a channel's queues and buffer directly and asserts what
that docstring says holds whenever no caller is inside the channel's lock.
Call it while no other thread uses the channel (the model-based test,
tests/test_chan_model.py, drives everything from one thread and calls it
after every step; tests/test_chan_invariants.py calls it at chosen points).
"""

from __future__ import annotations

from typing import Any

from gofer import Chan
from gofer._chanrec import SELWAIT, WAITING


def is_live(w: Any) -> bool:
    """Can the record still be claimed?"""
    return w.state == WAITING or (w.state == SELWAIT and not w.sel.tok.locked())


def check(ch: Chan[Any]) -> None:
    recvq, sendq, buf, cap = list(ch._recvq), list(ch._sendq), ch._buf, ch._cap
    # A queued record is WAITING or SELWAIT, queued once, on its direction's queue.
    seen: set[int] = set()
    for q, is_send in ((recvq, False), (sendq, True)):
        for w in q:
            assert w.state in (WAITING, SELWAIT), w.state
            assert w.state == WAITING or w.sel is not None
            assert w.is_send is is_send and w.ch is ch
            assert id(w) not in seen, "a record queued twice"
            seen.add(id(w))
    # Live records in at most one queue, but for one select on both sides of a
    # rendezvous channel.
    live = [w for w in recvq if is_live(w)], [w for w in sendq if is_live(w)]
    if live[0] and live[1]:
        sels = {w.sel for w in live[0] + live[1]}
        assert cap == 0 and len(sels) == 1 and None not in sels, "live records in both queues"
    # The buffer, counting dead records too.
    assert len(buf) <= cap
    if cap == 0:
        assert not buf
    else:
        assert not (recvq and buf), "a receiver queued beside buffered values"
        assert not sendq or len(buf) == cap, "a sender queued while the buffer has room"
    # A closed channel has no waiters.
    if ch._closed:
        assert not recvq and not sendq, "records queued on a closed channel"
