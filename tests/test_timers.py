"""Timers on the virtual clock: after, Timer stop/reset, Ticker phase and dropped ticks, tick."""

from __future__ import annotations

import threading
import time

import pytest

import gofer
from gofer import Chan, Ticker, Timer, select


def test_after_receives_the_clock_once(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        c = gofer.after(2.5)
        assert isinstance(c, Chan) and c.cap == 1
        assert c.recv() == t0 + 2.5
        assert hub.now() == t0 + 2.5
        assert select(c.recv, default_after(1)) == (1, t0 + 3.5)  # only once

    def default_after(s):
        return gofer.after(s)

    vrun(main)


def test_after_zero_fires_at_once_without_time_passing(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        c = gofer.after(0)
        assert not c.try_recv()[1]  # fired by the hub, not inline
        assert c.recv() == t0 == hub.now()

    vrun(main)


def test_timer_stop_before_fire(vrun):
    def main():
        t = Timer(5)
        assert t.pending
        gofer.sleep(1)
        assert t.stop() is True
        assert not t.pending
        assert t.stop() is False
        with pytest.raises(TimeoutError):
            t.c.recv(timeout=10)

    vrun(main)


def test_timer_stop_after_fire_discards_unreceived_value(vrun):
    def main():
        t = Timer(1)
        gofer.sleep(2)
        assert not t.pending and len(t.c) == 1
        assert t.stop() is True  # Go 1.23: fired but not received counts as stopped
        assert len(t.c) == 0
        t2 = Timer(1)
        t2.c.recv()
        assert t2.stop() is False

    vrun(main)


def test_timer_reset(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        t = Timer(5)
        gofer.sleep(3)
        assert t.reset(5) is True
        assert t.c.recv() == t0 + 8  # not at t0 + 5
        assert t.reset(1) is False
        assert t.c.recv() == t0 + 9
        gofer.sleep(5)
        assert t.reset(1) is False  # long fired and received
        gofer.sleep(0.5)
        assert t.reset(2) is True  # pending again: the first arming never fires
        assert t.c.recv() == t0 + 16.5

    vrun(main)


def test_timer_with_function(vrun):
    def main():
        got = []
        Timer(1, got.append, "a")
        t = Timer(2, got.append, "b")
        gofer.sleep(1.5)
        assert got == ["a"]
        assert t.stop()
        gofer.sleep(5)
        assert got == ["a"]
        with pytest.raises(RuntimeError, match="no channel"):
            _ = t.c

    vrun(main)


def test_ticker_ticks_with_phase_and_drops_for_slow_receiver(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        tk = Ticker(1)
        assert [tk.c.recv() - t0 for _ in range(3)] == [1, 2, 3]
        gofer.sleep(3.5)  # slow receiver: ticks at 4, 5, 6 -> only one is kept
        assert len(tk.c) == 1
        assert tk.c.recv() - t0 == 4
        assert tk.c.recv() - t0 == 7
        tk.reset(2)
        assert tk.period == 2
        assert tk.c.recv() - t0 == 9
        tk.stop()
        with pytest.raises(TimeoutError):
            tk.c.recv(timeout=10)
        assert "stopped" in repr(tk)

    vrun(main)


def test_tick_in_a_select_loop(vrun):
    def main():
        ticks = gofer.tick(1)
        done = gofer.after(5.5)
        n = 0
        while True:
            i, _ = select(ticks, done)
            if i == 1:
                break
            n += 1
        assert n == 5

    vrun(main)


def test_bad_durations():
    with pytest.raises(ValueError, match="non-negative"):
        Timer(-1)
    with pytest.raises(TypeError, match="number of seconds"):
        Timer("1")
    with pytest.raises(TypeError, match="number of seconds"):
        gofer.after(float("nan"))
    with pytest.raises(ValueError, match="positive"):
        Ticker(0)
    with pytest.raises(TypeError, match="callable"):
        Timer(1, 42)


def test_stop_and_reset_from_another_thread():
    def main():
        t = Timer(30)
        r = []
        th = threading.Thread(target=lambda: r.append(t.stop()))
        th.start()
        th.join()
        assert r == [True]
        t.reset(0.01)  # re-armed from this thread; fires
        t.c.recv(timeout=5)
        t2 = Timer(30)
        th = threading.Thread(target=t2.reset, args=(0.01,))  # armed through call_threadsafe
        th.start()
        th.join()
        t2.c.recv(timeout=5)

    gofer.run(main)


@pytest.mark.slow
def test_a_million_timers_are_cheap(vrun, capsys):
    """Create and stop 10**6 pending Timers; report the figure (no timing assertion)."""

    def main():
        hub = gofer.get_hub()
        n = 1_000_000
        t0 = time.perf_counter()
        timers = [Timer(60) for _ in range(n)]
        t1 = time.perf_counter()
        assert hub.stats()["timers"] >= n
        for t in timers:
            t.stop()
        t2 = time.perf_counter()
        assert hub.stats()["timers"] < n
        gofer.sleep(0.001)  # the hub drops the cancelled entries
        with capsys.disabled():
            print(f"\n1e6 timers: create {(t1 - t0):.2f}s, stop {(t2 - t1):.2f}s")

    vrun(main)
