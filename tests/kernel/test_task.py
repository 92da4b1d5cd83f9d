"""Tasks (gofer._core._task): run, go, join, results, errors, names, callbacks, plain-code mode.

Also run() with Ctrl-C and KeyboardInterrupt, joins across threads and hubs,
and argument errors. Tests commented "Regression (fixed in ...)" reproduce
bugs found in the review of the core runtime (the former test_core_review.py).
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import queue
import signal
import threading
import time
from typing import Any

import pytest
from tests.kernel._kernelutil import _try

import gofer
from gofer._core import get_hub, hub_if_any


def test_run_returns_result_and_passes_arguments():
    def main(a, b, *, c):
        return a + b + c

    assert gofer.run(main, 1, 2, c=3) == 6


def test_run_reraises_main_error():
    def main():
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        gofer.run(main)


def test_go_and_join_results_in_order(vrun):
    def child(i):
        gofer.sleep(0.01 * (5 - i))
        return i * i

    def main():
        ts = [gofer.go(child, i) for i in range(5)]
        return [t.join() for t in ts]

    assert vrun(main) == [0, 1, 4, 9, 16]


def test_join_reraises_child_error_and_marks_it_retrieved(vrun, caplog):
    def bad():
        raise ValueError("child failed")

    def main():
        t = gofer.go(bad)
        with pytest.raises(ValueError, match="child failed"):
            t.join()
        assert t.done() and not t.cancelled()
        assert isinstance(t.exception(), ValueError)
        del t

    with caplog.at_level(logging.ERROR, logger="gofer"):
        vrun(main)
        import gc

        gc.collect()
    assert "never retrieved" not in caplog.text


def test_unretrieved_error_is_logged_with_traceback(vrun, caplog):
    def bad():
        raise RuntimeError("nobody joins me")

    def main():
        gofer.go(bad)
        gofer.sleep(0.1)

    with caplog.at_level(logging.ERROR, logger="gofer"):
        vrun(main)
        import gc

        gc.collect()
    assert "never retrieved" in caplog.text
    assert "nobody joins me" in caplog.text
    assert "Traceback" in caplog.text


def test_failure_is_isolated(vrun):
    log = []

    def bad():
        raise ValueError("x")

    def good():
        gofer.sleep(0.5)
        log.append("good finished")
        return 7

    def main():
        b = gofer.go(bad)
        g = gofer.go(good)
        gofer.sleep(0.1)
        assert b.done()
        assert g.join() == 7
        b.exception()

    vrun(main)
    assert log == ["good finished"]


def test_go_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        gofer.go(42)
    with pytest.raises(TypeError, match="callable"):
        gofer.run("main")


def test_join_yourself_is_an_error(vrun):
    def main():
        me = gofer.current()
        with pytest.raises(RuntimeError, match="join itself"):
            me.join()

    vrun(main)


def test_join_timeout_and_bad_timeout(vrun):
    def slow():
        gofer.sleep(10)
        return "late"

    def main():
        t = gofer.go(slow)
        hub = gofer.get_hub()
        t0 = hub.now()
        with pytest.raises(TimeoutError):
            t.join(timeout=1.5)
        assert hub.now() - t0 == pytest.approx(1.5)
        with pytest.raises(ValueError, match="timeout"):
            t.join(timeout=-1)
        assert t.join() == "late"

    vrun(main)


def test_run_inside_running_hub_is_an_error(vrun):
    def main():
        with pytest.raises(RuntimeError, match="inside a running hub"):
            gofer.run(lambda: None)

    vrun(main)


def test_result_before_done_is_an_error(vrun):
    def main():
        t = gofer.go(gofer.sleep, 1)
        with pytest.raises(RuntimeError, match="has not finished"):
            t.result()
        t.join()

    vrun(main)


def test_leftover_coroutines_are_cancelled_and_finally_runs(vrun):
    events = []

    def forever(i):
        try:
            gofer.sleep(1e9)
        finally:
            events.append(i)

    def main():
        for i in range(3):
            gofer.go(forever, i)
        gofer.sleep(1)
        return "done"

    assert vrun(main) == "done"
    assert sorted(events) == [0, 1, 2]
    assert hub_if_any() is None  # the hub is closed after run()


def test_cancel_before_start_never_runs_the_body(vrun):
    ran = []

    def main():
        t = gofer.go(ran.append, 1)
        assert t.cancel() is True
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert t.cancelled() and t.done()
        assert t.cancel() is False  # already finished

    vrun(main)
    assert ran == []


def test_yield_now_interleaves_fairly(vrun):
    order = []

    def worker(name):
        for i in range(3):
            order.append((name, i))
            gofer.yield_now()

    def main():
        a = gofer.go(worker, "a")
        b = gofer.go(worker, "b")
        a.join()
        b.join()

    vrun(main)
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_sleep_on_virtual_clock_and_bad_values(vrun):
    def main():
        hub = gofer.get_hub()
        t0 = hub.now()
        gofer.sleep(3600)
        assert hub.now() - t0 == pytest.approx(3600)
        with pytest.raises(ValueError, match=">= 0"):
            gofer.sleep(-1)
        with pytest.raises(ValueError):
            gofer.sleep(float("nan"))

    vrun(main)


def test_timers_fire_in_deadline_order(vrun):
    out = []

    def sleeper(d):
        gofer.sleep(d)
        out.append(d)

    def main():
        ts = [gofer.go(sleeper, d) for d in (5, 1, 3, 2, 4)]
        for t in ts:
            t.join()

    vrun(main)
    assert out == [1, 2, 3, 4, 5]


def test_names_repr_and_current(vrun):
    def main():
        me = gofer.current()
        assert me is not None and me.name == "main"
        t = gofer.go(gofer.sleep, 0)
        t.name = "sleeper"
        assert "sleeper" in repr(t) and "pending" in repr(t)
        t.join()
        assert "done" in repr(t)

    vrun(main)
    assert gofer.current() is None


def test_done_callbacks(vrun):
    seen = []

    def main():
        t = gofer.go(lambda: 5)
        t.add_done_callback(lambda task: seen.append(("cb", task.result())))
        t.add_done_callback(seen.append)
        assert t.remove_done_callback(seen.append) == 1
        t.join()
        gofer.yield_now()
        t.add_done_callback(lambda task: seen.append("late"))
        gofer.yield_now()

    vrun(main)
    assert seen == [("cb", 5), "late"]


def test_contextvars_copied_per_coroutine(vrun):
    var = contextvars.ContextVar("var", default="unset")

    def child():
        seen = var.get()
        var.set("child")
        return seen, var.get()

    def main():
        var.set("parent")
        assert gofer.go(child).join() == ("parent", "child")
        assert var.get() == "parent"

    vrun(main)


def test_plain_code_mode_runs_the_hub_until_the_call_returns():
    t = gofer.go(lambda: 21 * 2)
    assert t.join() == 42
    gofer.sleep(0.001)
    gofer.get_hub().close()


def test_join_from_plain_thread(vrun):
    result = []

    def main():
        t = gofer.go(gofer.sleep, 0.05)
        t.name = "target"
        th = threading.Thread(target=lambda: result.append(t.join(timeout=5)))
        th.start()
        t.join()
        while th.is_alive():
            gofer.sleep(0.01)
        th.join()

    gofer.run(main)
    assert result == [None]


def test_cancel_from_plain_thread():
    def main():
        t = gofer.go(gofer.sleep, 1000)
        th = threading.Thread(target=t.cancel)
        th.start()
        with pytest.raises(gofer.Cancelled):
            t.join()
        th.join()
        assert t.cancelled()

    gofer.run(main)


def test_blocking_inside_the_hub_raises_named_error(vrun):
    errors = []

    def cb():
        try:
            gofer.sleep(1)
        except gofer.BlockingInHubError as exc:
            errors.append(exc)

    def main():
        gofer.get_hub().call_soon(cb)
        gofer.sleep(0.1)

    vrun(main)
    assert len(errors) == 1 and "inside the hub" in str(errors[0])


def test_many_coroutines(vrun):
    def main():
        ts = [gofer.go(lambda i=i: (gofer.yield_now(), i)[1]) for i in range(5000)]
        return sum(t.join() for t in ts)

    assert vrun(main) == sum(range(5000))


def test_leftovers_are_cleaned_up_when_main_fails(vrun):
    events = []

    def child():
        try:
            gofer.sleep(100)
        finally:
            events.append("child finally")

    def main():
        gofer.go(child)
        gofer.sleep(1)
        raise LookupError("main failed")

    with pytest.raises(LookupError):
        vrun(main)
    assert events == ["child finally"]


def test_deadlock_while_cleaning_up_is_raised(vrun):
    tasks = {}

    def stubborn(other):
        with gofer.shield():  # ignores the clean-up's cancellation...
            tasks[other].join()  # ...and waits for a task that waits for it

    def main():
        tasks["a"] = gofer.go(stubborn, "b")
        tasks["b"] = gofer.go(stubborn, "a")
        gofer.yield_now()

    with pytest.raises(gofer.Deadlock):
        vrun(main)


# -- join racing a timeout ---------------------------------------------------------------


@pytest.mark.parametrize("child_first", [False, True])
def test_join_timeout_racing_completion_at_the_same_instant(vrun, child_first):
    def main():
        def child():
            gofer.sleep(1)
            return "done"

        t = gofer.go(child)
        if child_first:
            gofer.yield_now()  # child's timer is registered before the join's
        try:
            got = t.join(timeout=1)
        except TimeoutError:
            got = "timeout"
        # Either outcome is fine, but exactly one, and no stale wake afterwards.
        gofer.sleep(3)
        assert t.join() == "done"
        return got

    assert vrun(main) == ("done" if child_first else "timeout")


# -- run(), Ctrl-C and KeyboardInterrupt -------------------------------------------------


def test_run_twice_in_one_thread_and_after_plain_code():
    assert gofer.run(lambda: 1) == 1
    assert gofer.run(lambda: 2) == 2
    gofer.sleep(0)  # plain code: makes a hub
    t = gofer.go(lambda: 3)
    assert gofer.run(lambda: t.join() + 1) == 4
    assert hub_if_any() is None  # run() closed it


def test_nested_run_is_a_clear_error(vrun):
    def main():
        with pytest.raises(RuntimeError, match="inside a running hub"):
            gofer.run(lambda: None)
        got = []
        get_hub().call_soon(lambda: got.append(_try(lambda: gofer.run(lambda: None))))
        gofer.sleep(0.1)
        assert got and isinstance(got[0], RuntimeError)

    vrun(main)


def test_run_in_several_threads_at_once():
    results: dict[int, Any] = {}
    barrier = threading.Barrier(4)

    def body(i: int) -> int:
        barrier.wait()
        hubs = {id(get_hub())}
        ts = [gofer.go(lambda k=k: (gofer.sleep(0.001), k * i)[1]) for k in range(50)]
        return sum(t.join() for t in ts) + len(hubs) * 0

    def thread(i: int) -> None:
        results[i] = _try(lambda: (gofer.run(body, i), id(hub_if_any()))[0])

    ths = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert results == {i: sum(range(50)) * i for i in range(4)}


def test_ctrl_c_interrupts_run_promptly_and_runs_finally():
    cleaned = []

    def worker():
        try:
            gofer.sleep(1000)
        finally:
            cleaned.append("worker")

    def main():
        gofer.go(worker)
        gofer.sleep(1000)

    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gofer.run(main)
    assert time.monotonic() - t0 < 5
    timer.join()
    assert cleaned == ["worker"]


def test_keyboard_interrupt_inside_a_coroutine_reaches_run(vrun):
    def bad():
        raise KeyboardInterrupt

    def main():
        gofer.go(bad)
        gofer.sleep(100)

    with pytest.raises(KeyboardInterrupt):
        vrun(main)


def test_keyboard_interrupt_from_coroutine_runs_cleanup(vrun):
    log = []

    def main():
        def leftover():
            try:
                gofer.sleep(100)
            finally:
                with gofer.shield():
                    gofer.sleep(1)
                log.append("cleanup done")

        def boom():
            raise KeyboardInterrupt

        gofer.go(leftover)
        gofer.yield_now()
        gofer.go(boom)
        gofer.sleep(100)

    with pytest.raises(KeyboardInterrupt):
        vrun(main)
    assert log == ["cleanup done"]


# Regression (fixed in 5e84162): KeyboardInterrupt raised by the main coroutine is delivered
# twice (join re-raises it AND hub._fatal throws it again), cutting the leftovers' cleanup
def test_keyboard_interrupt_from_main_runs_leftover_cleanup(vrun):
    log = []

    def main():
        def leftover():
            try:
                gofer.sleep(100)
            finally:
                with gofer.shield():
                    gofer.sleep(1)
                log.append("cleanup done")

        gofer.go(leftover)
        gofer.yield_now()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vrun(main)
    assert log == ["cleanup done"]


# Regression (fixed in 5e84162): in plain code, a KeyboardInterrupt re-raised by join() is
# raised a second time at the next blocking call (hub._fatal is never cleared)
def test_keyboard_interrupt_is_delivered_once_in_plain_code():
    def boom():
        raise KeyboardInterrupt

    t = gofer.go(boom)
    try:
        with pytest.raises(KeyboardInterrupt):
            t.join()
        try:
            gofer.sleep(0.001)
        except KeyboardInterrupt:
            pytest.fail("KeyboardInterrupt delivered a second time")
    finally:
        get_hub().close()


# -- cross-thread ------------------------------------------------------------------------


def test_join_cancel_and_callbacks_across_hubs():
    handoff: queue.Queue[Any] = queue.Queue()
    done_in: list[int] = []

    def other_thread_main():
        slow = gofer.go(lambda: (gofer.sleep(0.02), 42)[1])
        forever = gofer.go(_forever_sleep)
        handoff.put((slow, forever))
        with pytest.raises(gofer.Cancelled):
            forever.join()
        return slow.join()

    th_result: list[Any] = []
    th = threading.Thread(
        target=lambda: th_result.append(_try(lambda: gofer.run(other_thread_main)))
    )
    th.start()

    def main():
        slow, forever = gofer.to_thread(handoff.get, True, 5)
        slow.add_done_callback(lambda t: done_in.append(threading.get_ident()))
        with pytest.raises(TimeoutError):
            forever.join(timeout=0.001)
        assert slow.join() == 42  # a coroutine of this hub joins a task of another hub
        forever.cancel()
        with pytest.raises(gofer.Cancelled):
            forever.join()
        assert forever.cancelled()

    gofer.run(main)
    th.join()
    assert th_result == [42]
    assert done_in == [th.ident]


def _forever_sleep() -> None:
    gofer.sleep(3600)


def test_join_from_plain_thread_without_run():
    def main():
        t = gofer.go(lambda: (gofer.sleep(0.01), "x")[1])
        out: list[Any] = []
        th = threading.Thread(target=lambda: out.append(_try(t.join)))
        th.start()
        gofer.to_thread(th.join)
        return out

    assert gofer.run(main) == ["x"]


# -- bad input ---------------------------------------------------------------------------


def test_bad_input_errors_name_the_problem(vrun):
    with pytest.raises(TypeError, match="callable"):
        gofer.run(42)  # type: ignore[arg-type]

    def main():
        with pytest.raises(TypeError, match="callable"):
            gofer.go(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callable"):
            gofer.to_thread("x")  # type: ignore[arg-type]
        t = gofer.go(gofer.sleep, 1)
        for bad in (-1, math.nan):
            with pytest.raises(ValueError, match="timeout"):
                t.join(timeout=bad)
            with pytest.raises(ValueError, match="timeout"):
                gofer.timeout(bad)
            with pytest.raises(ValueError):
                gofer.sleep(bad)
        t.join()
        me = gofer.go(lambda: gofer.current().join())
        with pytest.raises(RuntimeError, match="join itself"):
            me.join()

    vrun(main)
