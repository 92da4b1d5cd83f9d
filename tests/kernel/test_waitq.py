"""Wait queues (gofer._core._waitq): FIFO records, abort accounting, wakes on this hub and across hubs.

The primitives built on them (sync, events, channels) have their own tests;
these check the queue's rules directly: a record is taken or aborted, never
both, aborted records are skipped and counted, and the queue is rebuilt once
they are the larger part.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import gofer
from gofer._core import WaitQueue, check_timeout, me_for_park, park, wake
from gofer._core._waitq import COMPACT_MIN


def _queue(**kw: Any) -> WaitQueue:
    return WaitQueue(threading.Lock(), "test.wait", **kw)


def test_pop_and_peek_are_fifo_and_take_a_record_once():
    q = _queue()
    with q.lock:
        recs = [q.push(f"task{i}", i) for i in range(3)]
        assert len(q) == 3
        assert q.peek() is recs[0] and recs[0].live  # peek leaves it in place
        assert [q.pop() for _ in range(3)] == recs
        assert not any(r.live for r in recs)
        assert q.pop() is None and q.peek() is None and len(q) == 0


def test_an_aborted_record_is_skipped_and_a_taken_one_cannot_be_aborted():
    q = _queue()
    with q.lock:
        a, b, c = q.push("a"), q.push("b"), q.push("c")
    assert b._gofer_abort("b") is True
    assert b._gofer_abort("b") is False  # only once
    with q.lock:
        assert len(q) == 2 and q.dead == 1
        assert q.pop() is a
        assert q.pop() is c  # b skipped, and no longer counted
        assert q.dead == 0
    assert a._gofer_abort("a") is False  # taken: its wake is on its way


def test_peek_drops_aborted_records_at_the_head():
    q = _queue()
    with q.lock:
        a, b = q.push("a"), q.push("b")
    a._gofer_abort("a")
    with q.lock:
        assert q.peek() is b
        assert q.dead == 0 and len(q.q) == 1


def test_many_aborts_rebuild_the_queue():
    q = _queue()
    n = 4 * COMPACT_MIN
    with q.lock:
        recs = [q.push(i) for i in range(n)]
    for r in recs[: n - 1]:
        r._gofer_abort(r.task)
        assert q.dead <= COMPACT_MIN or q.dead * 2 <= len(q.q)
    with q.lock:
        assert len(q) == 1
        assert len(q.q) < n // 2  # rebuilt, not just counted
        assert q.pop() is recs[-1]


def test_pop_all_takes_the_live_records_in_order():
    q = _queue()
    with q.lock:
        recs = [q.push(i) for i in range(4)]
    recs[1]._gofer_abort(1)
    with q.lock:
        assert q.pop_all() == [recs[0], recs[2], recs[3]]
        assert len(q) == 0 and q.dead == 0 and not q.q
    assert recs[2]._gofer_abort(2) is False


def test_on_abort_wakes_what_it_returns(vrun):
    def main():
        lock = threading.Lock()
        q: WaitQueue

        def release_all() -> list[Any]:
            return q.pop_all()  # as Barrier does: one gives up, all are released

        q = WaitQueue(lock, "test.wait", on_abort=release_all)

        def waiter(timeout: float | None) -> str:
            with lock:
                w = q.push(me_for_park())
            try:
                park(w, timeout)
            except TimeoutError:
                return "gave up"
            return "released"

        ts = [gofer.go(waiter, None), gofer.go(waiter, None), gofer.go(waiter, 1)]
        return [t.join() for t in ts]

    assert vrun(main) == ["released", "released", "gave up"]


def test_repr_names_the_primitive_its_owner_and_where_it_was_made():
    class Owner:
        def __repr__(self) -> str:
            return "<owner>"

    owner = Owner()
    q = WaitQueue(threading.Lock(), "Thing.wait", owner=owner)
    with q.lock:
        w = q.push("t")
    text = repr(w)
    assert text.startswith("<Thing.wait on <owner>, created at ")
    assert __file__ in text
    assert repr(q) == "<WaitQueue Thing.wait waiters=1>"


def test_wake_reaches_a_task_of_another_hub():
    q = _queue()
    parked = threading.Event()
    got: list[Any] = []

    def other() -> None:
        def main() -> Any:
            with q.lock:
                w = q.push(me_for_park(), "sent?")
            parked.set()
            park(w)
            return w.value

        got.append(gofer.run(main))

    th = threading.Thread(target=other)
    th.start()
    assert parked.wait(5)
    with q.lock:
        w = q.pop()
    assert w is not None
    w.value = "sent"  # the value travels in the record
    wake(w.task)  # from this thread: through the other hub's call_threadsafe
    th.join(5)
    assert got == ["sent"]


def test_me_for_park_raises_a_pending_cancellation_before_registering(vrun):
    def main():
        q = _queue()

        def body() -> None:
            gofer.current().cancel()
            with q.lock:
                q.push(me_for_park())  # raises: nothing is registered

        t = gofer.go(body)
        with pytest.raises(gofer.Cancelled):
            t.join()
        with q.lock:
            assert len(q) == 0

    vrun(main)


@pytest.mark.parametrize("bad", [-1, "1", float("nan")])
def test_check_timeout_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="timeout must be a non-negative number"):
        check_timeout(bad)
    check_timeout(None)
    check_timeout(0)
