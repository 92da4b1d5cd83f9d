"""The channel invariants of gofer/chan.py at the points where they are easiest to break.

The model-based test (tests/test_chan_model.py) checks them after every
step; these tests set up the corner each one speaks of: one select on both
sides of a rendezvous channel, dead select records opposite live ones, a
buffered channel's queues and buffer, and a close with waiters of every kind.
"""

from __future__ import annotations

import chan_invariants
import gofer
from gofer import Chan, Closed, select


def test_one_select_on_both_sides_of_a_rendezvous_channel_is_the_exception(vrun):
    def main():
        a: Chan[str] = Chan()
        t = gofer.go(select, a.recv, (a.send, "mine"))
        gofer.yield_now()
        stats = a.statistics()
        assert stats["senders_waiting"] == stats["receivers_waiting"] == 1
        chan_invariants.check(a)  # live records in both queues, of one select
        assert a.recv() == "mine"
        assert t.join() == (1, None)
        chan_invariants.check(a)
        assert not a._recvq and not a._sendq

    vrun(main)


def test_a_buffered_channel_never_has_both_queues_in_use(vrun):
    # A select with both a send and a receive case on one buffered channel
    # always finds one of them ready: the buffer is either not full or not empty.
    def main():
        a: Chan[int] = Chan(1)
        assert select(a.recv, (a.send, 1), gofer.default) == (1, None)
        assert select(a.recv, (a.send, 2), gofer.default) == (0, 1)
        # Parked senders keep the buffer full, parked receivers keep it empty.
        senders = [gofer.go(a.send, v) for v in (10, 11, 12)]
        gofer.yield_now()
        assert len(a) == 1 and len(a._sendq) == 2
        chan_invariants.check(a)
        assert [a.recv() for _ in range(3)] == [10, 11, 12]
        for t in senders:
            t.join()
        receivers = [gofer.go(a.recv) for _ in range(2)]
        gofer.yield_now()
        assert len(a) == 0 and len(a._recvq) == 2
        chan_invariants.check(a)
        a.send(20)
        a.send(21)
        assert [t.join() for t in receivers] == [20, 21]
        chan_invariants.check(a)

    vrun(main)


def test_dead_select_records_may_sit_opposite_live_ones_on_a_rendezvous_channel(vrun):
    seen = []

    def main():
        c: Chan[int] = Chan()
        d: Chan[int] = Chan()
        e: Chan[int] = Chan()
        s1 = gofer.go(select, c.recv, d.recv)
        gofer.yield_now()  # s1 parks on c and d
        s2 = gofer.go(select, (c.send, 5), e.recv)

        def look():
            # s2 has parked, s1 has been woken but has not cleaned up yet.
            seen.append((len(c._recvq), len(c._sendq), c.statistics()["receivers_waiting"]))
            chan_invariants.check(c)

        checker = gofer.go(look)
        assert d.try_send(1)  # s1 fires on d: its record on c is dead, still queued
        assert s1.join() == (1, 1)
        checker.join()
        chan_invariants.check(c)
        assert len(c._recvq) == 0  # s1 removed its record
        assert c.recv() == 5  # s2 was parked, live, beside s1's dead record
        assert s2.join() == (0, None)

    vrun(main)
    assert seen == [(1, 1, 0)]


def test_a_buffered_send_drops_dead_receivers_before_it_buffers(vrun):
    def main():
        c: Chan[int] = Chan(2)
        d: Chan[int] = Chan()
        s = gofer.go(select, c.recv, d.recv)
        gofer.yield_now()
        assert d.try_send(1)  # s fired elsewhere: its record on c is dead
        assert len(c._recvq) == 1
        assert c.try_send(7)
        assert len(c._recvq) == 0 and len(c) == 1  # never a receiver beside a value
        chan_invariants.check(c)
        assert s.join() == (1, 1)
        assert c.recv() == 7

    vrun(main)


def test_close_empties_both_queues_at_once(vrun):
    def main():
        a: Chan[int] = Chan()
        b: Chan[int] = Chan(1)
        other: Chan[int] = Chan()
        receivers = [gofer.go(a.recv_ok), gofer.go(select, a.recv_ok, other.recv)]
        b.send(0)
        senders = [gofer.go(b.send, 1), gofer.go(select, (b.send, 2), other.recv)]
        gofer.yield_now()
        chan_invariants.check(a)
        chan_invariants.check(b)
        a.close()
        b.close()
        # before any woken waiter has run
        assert not a._recvq and not a._sendq and not b._recvq and not b._sendq
        chan_invariants.check(a)
        chan_invariants.check(b)
        assert [t.join() for t in receivers] == [(None, False), (0, (None, False))]
        for t in senders:
            try:
                t.join()
            except Closed:
                pass
            else:
                raise AssertionError("a sender parked on a closed channel returned")
        assert b.recv() == 0 and len(b) == 0  # the buffer only drains

    vrun(main)
