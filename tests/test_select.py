"""select: case kinds, default, closed channels, fairness, select vs select, abort safety, errors."""

from __future__ import annotations

import collections

import pytest

import gofer
from gofer import Chan, Closed, default, select


def test_recv_send_and_recv_ok_cases(vrun):
    def main():
        a, b, c = Chan(1), Chan(1), Chan(1)
        b.send("B")
        assert select(a.recv, b.recv) == (1, "B")
        c.send("C")
        assert select(a.recv, c.recv_ok) == (1, ("C", True))
        assert select(a.recv, (c.send, "x")) == (1, None)
        assert c.recv() == "x"
        a.send(1)
        assert select(a) == (0, 1)  # a channel itself is a receive case

    vrun(main)


def test_default_makes_it_non_blocking(vrun):
    def main():
        a = Chan()
        assert select(a.recv, (a.send, 1), default) == (2, None)
        assert a.statistics() == {
            "size": 0,
            "capacity": 0,
            "closed": False,
            "senders_waiting": 0,
            "receivers_waiting": 0,
        }
        a2 = Chan(1)
        a2.send(3)
        assert select(default, a2.recv) == (1, 3)  # a ready case beats default

    vrun(main)


def test_blocking_select_wakes_on_either_side(vrun):
    def main():
        a, b = Chan(), Chan()
        t = gofer.go(select, a.recv, b.recv)
        gofer.yield_now()
        assert a.statistics()["receivers_waiting"] == 1
        b.send("hi")
        assert t.join() == (1, "hi")
        # the record left on `a` is dead: a send there must not go to the finished select
        assert a.statistics()["receivers_waiting"] == 0
        assert not a.try_send("nobody")

        s = gofer.go(select, (a.send, 1), (b.send, 2))
        gofer.yield_now()
        assert b.recv() == 2
        assert s.join() == (1, None)
        assert a.try_recv() == (None, False)

    vrun(main)


def test_fired_select_is_not_taken_again_before_it_runs(vrun):
    def main():
        a, b = Chan(), Chan()
        t = gofer.go(select, a.recv, b.recv)
        gofer.yield_now()
        assert a.try_send(1)  # fires the select; it has not run its clean-up yet
        assert not b.try_send(2)  # its record on b is dead
        assert select((b.send, 3), default) == (1, None)
        assert t.join() == (0, 1)

    vrun(main)


def test_closed_channel_is_always_ready(vrun):
    def main():
        a, closed = Chan(), Chan()
        closed.close()
        assert select(a.recv, closed.recv) == (1, None)
        assert select(a.recv, closed.recv_ok) == (1, (None, False))
        with pytest.raises(Closed):
            select((closed.send, 1))
        # a parked select is woken by close
        t = gofer.go(select, a.recv_ok, Chan().recv)
        gofer.yield_now()
        a.close()
        assert t.join() == (0, (None, False))
        b = Chan()
        s = gofer.go(select, (b.send, 1))
        gofer.yield_now()
        b.close()
        with pytest.raises(Closed, match="not delivered"):
            s.join()

    vrun(main)


def test_timer_channel_case_and_timeout(vrun):
    def main():
        hub = gofer.get_hub()
        a = Chan()
        t0 = hub.now()
        i, v = select(a.recv, gofer.after(1.5))
        assert i == 1 and v == t0 + 1.5
        with pytest.raises(TimeoutError):
            select(a.recv, timeout=2)
        assert hub.now() == t0 + 3.5
        assert a.statistics()["receivers_waiting"] == 0

    vrun(main)


def test_uniform_choice_among_ready_cases(vrun):
    def main():
        chans = [Chan(1) for _ in range(3)]
        counts = collections.Counter()
        for _ in range(3000):
            for ch in chans:
                if not len(ch):
                    ch.send(0)
            i, _ = select(*(c.recv for c in chans))
            counts[i] += 1
        # each expected 1000 (sd ~26): a biased choice (e.g. always the first) fails
        for i in range(3):
            assert 850 < counts[i] < 1150, counts

    vrun(main)


def test_select_against_select_exactly_one_each(vrun):
    def main():
        a, b = Chan(), Chan()
        results = []

        def sender(k):
            results.append(("s", k, select((a.send, k), (b.send, k))))

        def receiver(k):
            results.append(("r", k, select(a.recv, b.recv)))

        ts = [gofer.go(sender, k) for k in range(20)] + [gofer.go(receiver, k) for k in range(20)]
        for t in ts:
            t.join()
        got = sorted(v for kind, _, (_, v) in results if kind == "r")
        assert got == list(range(20))
        assert a.statistics()["senders_waiting"] == b.statistics()["senders_waiting"] == 0

    vrun(main)


def test_same_channel_send_and_recv_in_one_select(vrun):
    def main():
        a = Chan()
        t = gofer.go(select, a.recv, (a.send, "mine"))
        gofer.yield_now()  # parked on both sides of `a`: it must not match itself
        assert not t.done()
        assert a.recv() == "mine"
        assert t.join() == (1, None)

    vrun(main)


def test_cancel_mid_select_loses_nothing(vrun):
    def main():
        a, b = Chan(), Chan()
        t = gofer.go(select, a.recv, (b.send, "v"))
        gofer.yield_now()
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert not b.try_recv()[1]  # the send case did not deliver
        assert not a.try_send(1)  # and the recv case no longer takes values

    vrun(main)


def test_select_fired_then_cancelled_returns_its_case(vrun):
    def main():
        a = Chan()
        out = []

        def selector():
            out.append(select(a.recv, Chan().recv))
            gofer.yield_now()

        t = gofer.go(selector)
        gofer.yield_now()
        a.send("delivered")  # fires the select and wakes it...
        t.cancel()  # ...then it is cancelled before it runs
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert out == [(0, "delivered")]

    vrun(main)


def test_timed_out_select_with_timer_channel_repeatedly(vrun):
    def main():
        a = Chan()
        for _ in range(500):
            assert select(a.recv, gofer.after(0.01))[0] == 1
        assert len(a._recvq) == 0  # each select took its record out again

    vrun(main)


def test_bad_cases():
    ch = Chan()
    with pytest.raises(ValueError, match="at least one case"):
        select()
    with pytest.raises(TypeError, match="not a channel operation"):
        select(ch.recv, 42)
    with pytest.raises(TypeError, match="case 0: a send case is a tuple"):
        select(ch.send)
    with pytest.raises(TypeError, match="not a channel operation"):
        select((ch.recv, 1))
    with pytest.raises(TypeError, match="not a channel operation"):
        select(len)
    with pytest.raises(ValueError, match=r"more than one gofer\.default"):
        select(default, default)
    with pytest.raises(ValueError, match="non-negative"):
        select(ch.recv, timeout=-1)
    assert repr(default) == "gofer.default"
