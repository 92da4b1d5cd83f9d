"""Channels: capacity kinds, FIFO, close semantics, try_*, timeouts, cancellation, errors."""

from __future__ import annotations

import math

import pytest

import gofer
from gofer.chan import Chan, Closed


def test_rendezvous_send_waits_for_a_receiver(vrun):
    log = []

    def main():
        ch = gofer.Chan()

        def sender():
            ch.send("a")
            log.append("sent")

        gofer.go(sender)
        gofer.sleep(1)
        assert log == []  # nobody received yet: still blocked
        assert ch.statistics()["senders_waiting"] == 1
        assert ch.recv() == "a"
        gofer.yield_now()
        assert log == ["sent"]

    vrun(main)


def test_buffered_send_blocks_only_when_full(vrun):
    def main():
        ch = gofer.Chan(2)
        ch.send(1)
        ch.send(2)
        assert len(ch) == 2 and ch.cap == 2
        assert not ch.try_send(3)
        t = gofer.go(ch.send, 3)
        gofer.yield_now()
        assert not t.done()
        assert ch.recv() == 1  # makes room: the parked sender's value moves into the buffer
        gofer.yield_now()
        assert t.done() and len(ch) == 2
        assert [ch.recv(), ch.recv()] == [2, 3]

    vrun(main)


def test_unbounded_never_blocks(vrun):
    def main():
        for ch in (gofer.Chan(math.inf), Chan.unbounded()):
            for i in range(10_000):
                ch.send(i)
            assert len(ch) == 10_000 and ch.cap == math.inf
            assert "cap=inf" in repr(ch)
            assert [ch.recv() for _ in range(10_000)] == list(range(10_000))

    vrun(main)


@pytest.mark.parametrize("cap", [0, 1, 5])
def test_fifo_per_sender_many_senders(vrun, cap):
    def main():
        ch = gofer.Chan(cap)

        def sender(k):
            for i in range(50):
                ch.send((k, i))

        ts = [gofer.go(sender, k) for k in range(4)]
        got = [ch.recv() for _ in range(200)]
        for t in ts:
            t.join()
        for k in range(4):
            assert [i for kk, i in got if kk == k] == list(range(50))

    vrun(main)


def test_close_drains_buffer_then_reports_closed(vrun):
    def main():
        ch = gofer.Chan(3)
        ch.send("x")
        ch.send("y")
        ch.close()
        assert ch.closed
        assert ch.recv() == "x"
        assert ch.recv_ok() == ("y", True)
        assert ch.recv_ok() == (None, False)
        with pytest.raises(Closed, match="receive from closed channel"):
            ch.recv()
        with pytest.raises(Closed, match="send on closed channel"):
            ch.send("z")
        with pytest.raises(Closed, match="send on closed channel"):
            ch.try_send("z")
        with pytest.raises(Closed, match="close of closed channel"):
            ch.close()
        with pytest.raises(Closed):
            ch.try_recv()

    vrun(main)


def test_close_wakes_receivers_and_fails_senders(vrun):
    def main():
        r = gofer.Chan()
        s = gofer.Chan()
        receivers = [gofer.go(r.recv_ok) for _ in range(3)]
        plain = gofer.go(r.recv)
        senders = [gofer.go(s.send, i) for i in range(3)]
        gofer.yield_now()
        r.close()
        s.close()
        assert [t.join() for t in receivers] == [(None, False)] * 3
        with pytest.raises(Closed):
            plain.join()
        for t in senders:
            with pytest.raises(Closed, match="was not delivered"):
                t.join()

    vrun(main)


def test_iteration_until_closed(vrun):
    def main():
        ch = gofer.Chan(1)

        def producer():
            for i in range(5):
                ch.send(i)
            ch.close()

        gofer.go(producer)
        assert list(ch) == [0, 1, 2, 3, 4]

    vrun(main)


def test_try_send_and_try_recv(vrun):
    def main():
        ch = gofer.Chan()
        assert ch.try_recv() == (None, False)
        assert not ch.try_send(1)  # nobody waiting
        t = gofer.go(ch.recv)
        gofer.yield_now()
        assert ch.try_send(7)  # hands to the parked receiver
        assert t.join() == 7
        s = gofer.go(ch.send, 8)
        gofer.yield_now()
        assert ch.try_recv() == (8, True)
        s.join()

    vrun(main)


def test_timeouts_raise_and_lose_nothing(vrun):
    def main():
        ch = gofer.Chan()
        hub = gofer.get_hub()
        t0 = hub.now()
        with pytest.raises(TimeoutError):
            ch.recv(timeout=2)
        assert hub.now() - t0 == 2
        with pytest.raises(TimeoutError):
            ch.send("lost?", timeout=1)
        assert ch.statistics()["senders_waiting"] == 0
        assert ch.try_recv() == (None, False)  # the timed-out send did not deliver
        with pytest.raises(TimeoutError):
            ch.recv(timeout=0)
        with pytest.raises(ValueError, match="non-negative"):
            ch.recv(timeout=-1)
        buffered = gofer.Chan(1)
        buffered.send(1, timeout=0)  # room: no wait, the timeout does not matter
        assert buffered.recv(timeout=0) == 1

    vrun(main)


def test_cancelled_sender_did_not_deliver(vrun):
    def main():
        ch = gofer.Chan()
        t = gofer.go(ch.send, "v")
        gofer.yield_now()
        t.cancel()
        gofer.yield_now()
        assert t.cancelled()
        assert ch.try_recv() == (None, False)
        assert ch.statistics()["senders_waiting"] == 0

    vrun(main)


def test_sender_woken_then_cancelled_returns_normally(vrun):
    """A value taken by a receiver counts as delivered even if cancel comes right after."""
    out = []

    def main():
        ch = gofer.Chan()

        def sender():
            ch.send("v")
            out.append("send returned")
            gofer.yield_now()  # the pending cancellation arrives here
            out.append("not reached")

        t = gofer.go(sender)
        gofer.yield_now()
        assert ch.recv() == "v"  # takes the value and wakes the sender...
        t.cancel()  # ...which is cancelled before it runs
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert out == ["send returned"]

    vrun(main)


def test_cancelled_receiver_consumes_nothing(vrun):
    def main():
        ch = gofer.Chan(1)
        t = gofer.go(ch.recv)
        gofer.yield_now()
        t.cancel()
        gofer.yield_now()
        ch.send(5)
        assert ch.recv() == 5

    vrun(main)


def test_cancel_before_park_raises_without_registering(vrun):
    def main():
        ch = gofer.Chan()
        with gofer.move_on_after(0) as sc:
            gofer.yield_now()
        assert sc.cancelled_caught
        sc2 = gofer.CancelScope()
        sc2.cancel()
        with sc2:
            ch.send(1)
        assert sc2.cancelled_caught
        assert ch.statistics()["senders_waiting"] == 0

    vrun(main)


def test_aborted_waiters_leave_the_queue(vrun):
    def main():
        ch = gofer.Chan()
        for _ in range(1000):
            with pytest.raises(TimeoutError):
                ch.recv(timeout=0.001)
        assert len(ch._recvq) == 0  # aborted records do not pile up
        ts = [gofer.go(ch.recv) for _ in range(100)]
        gofer.yield_now()
        for t in ts[::2]:
            t.cancel()
        gofer.yield_now()
        assert ch.statistics()["receivers_waiting"] == 50
        for i in range(50):
            ch.send(i)
        got = sorted(t.join() for t in ts[1::2])
        assert got == list(range(50))

    vrun(main)


def test_bad_capacity():
    for bad in (-1, 1.5, "3", None, True):
        with pytest.raises(ValueError, match="capacity"):
            Chan(bad)


def test_repr_and_statistics(vrun):
    def main():
        ch = Chan(2, name="jobs")
        ch.send(1)
        assert repr(ch) == "<gofer.Chan 'jobs' cap=2 len=1>"
        ch.close()
        assert "closed" in repr(ch)
        assert ch.statistics() == {
            "size": 1,
            "capacity": 2,
            "closed": True,
            "senders_waiting": 0,
            "receivers_waiting": 0,
        }

    vrun(main)


def test_deadlocked_channel_program_raises_deadlock():
    def main():
        ch = gofer.Chan()
        gofer.go(ch.recv)
        ch.recv()

    with pytest.raises(gofer.Deadlock, match=r"recv from <gofer\.Chan"):
        gofer.run(main)


def test_send_from_hub_callback_that_would_block_is_an_error(vrun):
    def main():
        ch = gofer.Chan()
        errors = []

        def cb():
            try:
                ch.send(1)
            except gofer.BlockingInHubError as exc:
                errors.append(exc)

        gofer.get_hub().call_soon(cb)
        gofer.sleep(0.1)
        assert len(errors) == 1
        assert ch.statistics()["senders_waiting"] == 0

    vrun(main)
