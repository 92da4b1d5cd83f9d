"""Event, WaitGroup, Barrier, Once (coroutines, virtual clock)."""

from __future__ import annotations

import pytest

import gofer
from gofer import Barrier, BrokenBarrierError, Event, Once, WaitGroup


def test_event_wakes_all_waiters(vrun):
    def main():
        ev = Event()
        ts = [gofer.go(ev.wait) for _ in range(5)]
        gofer.yield_now()
        assert ev.statistics() == {"set": False, "waiters": 5}
        ev.set()
        for t in ts:
            t.join()
        assert ev.is_set()
        ev.wait()  # set: returns at once
        ev.clear()
        with pytest.raises(TimeoutError):
            ev.wait(timeout=1)
        assert ev.statistics() == {"set": False, "waiters": 0}

    vrun(main)


def test_waitgroup_counts_and_rejects_negative(vrun):
    def main():
        wg = WaitGroup()
        wg.wait()  # zero: no wait
        done = []
        for i in range(4):
            wg.go(lambda i=i: (gofer.sleep(i), done.append(i)))
        assert wg.count == 4
        waiter = gofer.go(wg.wait)
        wg.wait()
        waiter.join()
        assert done == [0, 1, 2, 3] and wg.count == 0
        with pytest.raises(ValueError, match="negative"):
            wg.done()
        assert wg.count == 0  # unchanged by the failed call
        wg.add(2)
        with pytest.raises(ValueError, match="negative"):
            wg.add(-3)
        with pytest.raises(TimeoutError):
            wg.wait(timeout=1)
        wg.add(-2)
        with pytest.raises(TypeError):
            wg.add(1.5)
        with pytest.raises(TypeError, match="callable"):
            wg.go(3)

    vrun(main)


def test_waitgroup_go_counts_down_on_failure(vrun):
    def main():
        wg = WaitGroup()

        def bad():
            raise KeyError("x")

        t = wg.go(bad)
        wg.wait()
        with pytest.raises(KeyError):
            t.join()

    vrun(main)


def test_barrier_generations(vrun):
    def main():
        b = Barrier(3)
        rounds = []

        def party(i):
            for r in range(3):
                gofer.sleep(i * 0.1)
                idx = b.wait()
                rounds.append((r, idx))

        ts = [gofer.go(party, i) for i in range(3)]
        for t in ts:
            t.join()
        for r in range(3):
            assert sorted(idx for rr, idx in rounds if rr == r) == [0, 1, 2]
        assert b.statistics() == {"parties": 3, "waiting": 0, "broken": False}

    vrun(main)


def test_barrier_breaks_on_timeout_and_reset_repairs(vrun):
    def main():
        b = Barrier(3)
        other = gofer.go(b.wait)
        gofer.yield_now()
        with pytest.raises(TimeoutError):
            b.wait(timeout=1)
        with pytest.raises(BrokenBarrierError):
            other.join()
        assert b.broken
        with pytest.raises(BrokenBarrierError):
            b.wait()
        b.reset()
        assert not b.broken and b.n_waiting == 0
        ts = [gofer.go(b.wait) for _ in range(2)]
        gofer.yield_now()
        b.abort()
        for t in ts:
            with pytest.raises(BrokenBarrierError):
                t.join()
        with pytest.raises(ValueError, match="positive number of parties"):
            Barrier(0)

    vrun(main)


def test_once_runs_once_and_waiters_share_the_result(vrun):
    def main():
        once = Once()
        calls = []

        def init():
            calls.append(1)
            gofer.sleep(1)
            return "ready"

        ts = [gofer.go(once.do, init) for _ in range(5)]
        assert [t.join() for t in ts] == ["ready"] * 5
        assert once.do(init) == "ready" and calls == [1] and once.done

    vrun(main)


def test_once_stores_exception_and_rejects_recursion(vrun):
    def main():
        once = Once()

        def bad():
            raise KeyError("init failed")

        for _ in range(2):
            with pytest.raises(KeyError):
                once.do(bad)
        assert once.done
        o2 = Once()
        with pytest.raises(RuntimeError, match="inside its own function"):
            o2.do(lambda: o2.do(lambda: None))
        with pytest.raises(TypeError, match="callable"):
            Once().do(3)

    vrun(main)


def test_once_cancelled_first_call_does_not_count(vrun):
    def main():
        once = Once()
        calls = []

        def init():
            calls.append(1)
            gofer.sleep(5)
            return len(calls)

        first = gofer.go(once.do, init)
        gofer.yield_now()
        second = gofer.go(once.do, init)
        gofer.yield_now()
        assert once.statistics() == {"done": False, "running": True, "waiters": 1}
        first.cancel()
        with pytest.raises(gofer.Cancelled):
            first.join()
        assert second.join() == 2  # the waiter ran it after the cancelled first call
        assert once.do(init) == 2

    vrun(main)
