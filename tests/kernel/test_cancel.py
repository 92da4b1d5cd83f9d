"""Cancel scopes (gofer._core._cancel): cancellation, timeouts, shields and nesting (virtual clock).

Also deadlines that expire at the same instant, a NaN deadline, and scopes
cancelled from another thread.
"""

from __future__ import annotations

import math
import threading

import pytest

import gofer
from gofer._core import get_hub


def test_cancel_parked_task_raises_cancelled_inside(vrun):
    seen = []

    def victim():
        try:
            gofer.sleep(100)
        except gofer.Cancelled as exc:
            seen.append(exc)
            raise

    def main():
        t = gofer.go(victim)
        gofer.sleep(1)
        assert t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert t.cancelled()
        assert isinstance(t.exception(), gofer.Cancelled)

    vrun(main)
    assert len(seen) == 1 and seen[0].scope is None


def test_cancelled_is_not_an_exception_subclass():
    assert not issubclass(gofer.Cancelled, Exception)
    assert issubclass(gofer.Cancelled, BaseException)


def test_cancel_running_task_takes_effect_at_next_park(vrun):
    steps = []

    def victim():
        gofer.current().cancel()
        steps.append("still running")  # no park point yet
        gofer.yield_now()
        steps.append("not reached")

    def main():
        t = gofer.go(victim)
        with pytest.raises(gofer.Cancelled):
            t.join()

    vrun(main)
    assert steps == ["still running"]


def test_cancellation_is_level_triggered_until_task_ends(vrun):
    hits = []

    def stubborn():
        for _ in range(3):
            try:
                gofer.sleep(10)
            except gofer.Cancelled:
                hits.append("cancelled")
        return "gave up"

    def main():
        t = gofer.go(stubborn)
        gofer.sleep(1)
        t.cancel()
        assert t.join() == "gave up"  # it caught them all and returned
        assert not t.cancelled()

    vrun(main)
    assert hits == ["cancelled"] * 3


def test_shield_protects_cleanup(vrun):
    log = []

    def worker():
        try:
            gofer.sleep(100)
        finally:
            with gofer.shield():
                gofer.sleep(5)  # blocking clean-up still works
                log.append("cleaned up")

    def main():
        t = gofer.go(worker)
        gofer.sleep(1)
        t.cancel()
        hub = gofer.get_hub()
        t0 = hub.now()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert hub.now() - t0 == pytest.approx(5)

    vrun(main)
    assert log == ["cleaned up"]


def test_cancel_inside_shield_is_delivered_after_it(vrun):
    log = []

    def worker():
        with gofer.shield():
            gofer.sleep(5)
            log.append("shielded part done")
        gofer.sleep(1)
        log.append("not reached")

    def main():
        t = gofer.go(worker)
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()

    vrun(main)
    assert log == ["shielded part done"]


def test_timeout_raises_timeout_error_at_deadline(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        with pytest.raises(TimeoutError), gofer.timeout(2.5):
            gofer.sleep(100)
        assert hub.now() - t0 == pytest.approx(2.5)

    vrun(main)


def test_timeout_not_reached_is_silent(vrun):
    def main():
        with gofer.timeout(10) as sc:
            gofer.sleep(1)
        assert not sc.cancelled_caught
        with gofer.timeout(None):
            gofer.sleep(1000)
        gofer.sleep(20)  # the expired-but-unused timer must not fire later

    vrun(main)


def test_timeout_cancels_blocked_join_and_the_join_can_be_retried(vrun):
    def main():
        t = gofer.go(gofer.sleep, 10)
        with pytest.raises(TimeoutError), gofer.timeout(1):
            t.join()
        assert t.join() is None

    vrun(main)


def test_nested_timeouts_inner_fires_first(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        with gofer.timeout(10):
            with pytest.raises(TimeoutError), gofer.timeout(1):
                gofer.sleep(100)
            assert hub.now() - t0 == pytest.approx(1)
            gofer.sleep(2)  # the outer deadline still holds
        assert hub.now() - t0 == pytest.approx(3)

    vrun(main)


def test_nested_timeouts_outer_passes_through_inner(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        inner_caught = []
        with pytest.raises(TimeoutError), gofer.timeout(1):
            try:
                with gofer.timeout(10) as inner:
                    gofer.sleep(100)
            finally:
                inner_caught.append(inner.cancelled_caught)
        assert hub.now() - t0 == pytest.approx(1)
        assert inner_caught == [False]

    vrun(main)


def test_timeout_zero_and_bad_values(vrun):
    def main():
        with pytest.raises(TimeoutError), gofer.timeout(0):
            gofer.yield_now()
        for bad in (-1, float("nan"), "1"):
            with pytest.raises(ValueError, match="timeout"):
                gofer.timeout(bad)

    vrun(main)


def test_move_on_after(vrun):
    def main():
        with gofer.move_on_after(1) as sc:
            gofer.sleep(5)
        assert sc.cancelled_caught

    vrun(main)


def test_cancel_scope_cancel_from_another_coroutine(vrun):
    def main():
        with gofer.CancelScope() as sc:
            gofer.go(lambda: (gofer.sleep(1), sc.cancel()))
            gofer.sleep(100)
        assert sc.cancelled_caught
        assert gofer.get_hub().now() == pytest.approx(1)

    vrun(main)


def test_task_cancel_is_not_swallowed_by_a_timeout_scope(vrun):
    def victim():
        with gofer.timeout(50):
            gofer.sleep(100)

    def main():
        t = gofer.go(victim)
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()

    vrun(main)


def test_timeout_in_plain_code():
    with pytest.raises(TimeoutError), gofer.timeout(0.01):
        gofer.sleep(10)
    gofer.get_hub().close()


def test_nested_timeouts_expiring_at_the_same_instant(vrun):
    def main():
        with pytest.raises(TimeoutError), gofer.timeout(1) as outer, gofer.timeout(1) as inner:
            gofer.sleep(5)
        assert outer.cancelled_caught and not inner.cancelled_caught
        with gofer.move_on_after(1) as outer2:
            with gofer.move_on_after(1) as inner2:
                gofer.sleep(5)
            pytest.fail("the outer scope was cancelled too")
        assert outer2.cancelled_caught and not inner2.cancelled_caught
        # nothing pending afterwards: the clock moves only for this sleep
        t0 = get_hub().now()
        gofer.sleep(1)
        assert get_hub().now() == t0 + 1

    vrun(main)


def test_shield_inside_timeout_inside_scope(vrun):
    log = []

    def main():
        with gofer.scope() as s:

            def child():
                with pytest.raises(TimeoutError), gofer.timeout(1):
                    with gofer.shield():
                        gofer.sleep(3)  # not interrupted by the expired timeout
                        log.append(("shielded done", get_hub().now()))
                    gofer.sleep(10)  # the expired timeout fires here
                log.append(("timeout", get_hub().now()))

            s.go(child)
        return get_hub().now()

    assert vrun(main) == 3
    assert log == [("shielded done", 3), ("timeout", 3)]


# Regression (fixed after 5e84162): CancelScope(deadline=nan) was accepted; the NaN timer then
# stuck at the head of the heap (real clock: ValueError from the poller thrown into main;
# virtual clock: the hub spun forever)
def test_cancel_scope_rejects_a_nan_deadline(vrun):
    with pytest.raises(ValueError, match="deadline"):
        gofer.CancelScope(deadline=math.nan)

    def main():
        with pytest.raises(ValueError, match="timeout"):
            gofer.Task.join(gofer.go(gofer.sleep, 1), timeout=math.nan)

    vrun(main)


def test_cancel_scope_and_done_callback_from_another_thread():
    seen = []

    def main():
        t = gofer.go(gofer.sleep, 0.05)
        th = threading.Thread(target=t.add_done_callback, args=(lambda task: seen.append(threading.current_thread().name),))
        th.start()
        th.join()
        t.join()
        gofer.yield_now()
        with gofer.CancelScope() as sc:
            canceller = threading.Thread(target=sc.cancel)
            canceller.start()
            gofer.sleep(30)
        canceller.join()
        return sc.cancelled_caught

    assert gofer.run(main) is True
    assert seen == ["MainThread"]
