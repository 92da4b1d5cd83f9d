"""ParkingLot (gofer._core._lot): the hub-local FIFO of parked coroutines.

Unit tests of park/unpark/unpark_all, cancellation, timeouts (virtual
clock), values, the thread's main code and the hub-local check; then a
Hypothesis state machine against a plain list model.
"""

from __future__ import annotations

import io
import threading

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import gofer
from gofer._core import Hub, ParkingLot, hub_if_any
from gofer._core._local import set_hub
from gofer.testing import VirtualClock


def _parkers(lot: ParkingLot, n: int, log: list) -> list[gofer.Task]:
    def parker(i):
        log.append((i, lot.park()))

    tasks = [gofer.go(parker, i) for i in range(n)]
    gofer.yield_now()  # every one parks
    assert len(lot) == n
    return tasks


def test_unpark_wakes_the_longest_waiting_first(vrun):
    def main():
        lot = ParkingLot()
        log = []
        tasks = _parkers(lot, 3, log)
        assert lot.first is tasks[0]._g  # the worker running the first parker
        assert lot.unpark() is True
        assert lot.first is tasks[1]._g
        gofer.yield_now()
        assert log == [(0, None)] and len(lot) == 2
        assert lot.unpark("b") and lot.unpark("c")
        for t in tasks:
            t.join()
        assert log == [(0, None), (1, "b"), (2, "c")]
        assert len(lot) == 0

    vrun(main)


def test_unpark_all_wakes_every_one_in_order_with_the_value(vrun):
    def main():
        lot = ParkingLot()
        log = []
        tasks = _parkers(lot, 4, log)
        assert lot.unpark_all(7) == 4
        assert len(lot) == 0
        for t in tasks:
            t.join()
        assert log == [(0, 7), (1, 7), (2, 7), (3, 7)]

    vrun(main)


def test_nobody_parked():
    lot = ParkingLot()
    assert lot.unpark() is False
    assert lot.unpark(1) is False
    assert lot.unpark_all() == 0
    assert len(lot) == 0 and not lot and lot.first is None


def test_cancel_removes_exactly_that_waiter(vrun):
    def main():
        lot = ParkingLot()
        log = []
        tasks = _parkers(lot, 3, log)
        tasks[1].cancel()
        gofer.yield_now()
        assert tasks[1].cancelled()
        assert len(lot) == 2
        assert lot.unpark_all("x") == 2
        tasks[0].join()
        tasks[2].join()
        assert log == [(0, "x"), (2, "x")]

    vrun(main)


def test_timeout_raises_and_leaves_the_lot(vrun):
    def main():
        lot = ParkingLot()
        hub = gofer.get_hub()
        with pytest.raises(TimeoutError):
            lot.park(timeout=5)
        assert hub.now() == pytest.approx(5)
        assert len(lot) == 0
        assert lot.unpark() is False
        # A zero timeout gives up at once, without parking.
        with pytest.raises(TimeoutError):
            lot.park(timeout=0)
        assert hub.now() == pytest.approx(5)

    vrun(main)


def test_unparked_before_the_timeout_gets_its_value(vrun):
    def main():
        lot = ParkingLot()
        gofer.get_hub().call_later(2, lot.unpark, "v")
        assert lot.park(timeout=5) == "v"
        assert gofer.get_hub().now() == pytest.approx(2)
        gofer.sleep(10)  # the disarmed timeout never hits a later park

    vrun(main)


def test_cancelled_after_unpark_still_gets_the_value(vrun):
    def main():
        lot = ParkingLot()
        got = []

        def parker():
            got.append(lot.park())
            try:
                gofer.sleep(1)
            except gofer.Cancelled:
                got.append("cancelled at the next park")
                raise

        t = gofer.go(parker)
        gofer.yield_now()
        lot.unpark("mine")
        t.cancel()  # too late for this park: the wake is on its way
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert got == ["mine", "cancelled at the next park"]
        assert lot._given in (None, {})

    vrun(main)


def test_a_cancelled_coroutine_does_not_park(vrun):
    def main():
        lot = ParkingLot()
        me = gofer.current()
        assert me is not None
        me.cancel()
        with pytest.raises(gofer.Cancelled):
            lot.park()
        assert len(lot) == 0

    vrun(main)


def test_thread_main_code_parks_too():
    out = []

    def body():
        hub = Hub(VirtualClock())  # the thread's own hub, on a virtual clock
        set_hub(hub)
        try:
            lot = ParkingLot()
            gofer.go(lot.unpark, 42)
            out.append(lot.park())  # the main code, not a coroutine
            try:
                lot.park(timeout=5)
            except TimeoutError:
                out.append(("timed out at", hub.now(), len(lot)))
        finally:
            hub.close()

    th = threading.Thread(target=body)
    th.start()
    th.join()
    assert out == [42, ("timed out at", 5.0, 0)]


def test_a_coroutine_of_another_hub_cannot_park_in_it(vrun):
    lot = ParkingLot("shared")
    errors = []

    def other_thread():
        try:
            lot.park(timeout=1)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            hub = hub_if_any()
            if hub is not None:
                hub.close()

    def main():
        t = gofer.go(lot.park)
        gofer.yield_now()
        th = threading.Thread(target=other_thread)
        th.start()
        th.join()  # its park fails at once, without our hub
        assert len(lot) == 1
        lot.unpark()
        t.join()

    vrun(main)
    assert errors and "hub-local" in errors[0]


def test_repr_says_what_is_awaited(vrun):
    class Owner:
        def __repr__(self):
            return "<the owner>"

    owner = Owner()
    assert repr(ParkingLot()) == "<parking lot>"
    assert repr(ParkingLot("the end", owner=owner)) == "<the end on <the owner>>"
    lot = ParkingLot("the end", owner=owner)
    del owner
    assert repr(lot) == "<the end>"  # held weakly

    def main():
        lot = ParkingLot("a thing")
        t = gofer.go(lot.park)
        t.name = "parker"
        gofer.yield_now()
        assert "parker: parked on <a thing>" in gofer.dump_tasks(file=io.StringIO())
        lot.unpark()
        t.join()

    vrun(main)


# -- a model of the lot: a plain list ------------------------------------------------


class LotModel(RuleBasedStateMachine):
    """Random park (with or without a timeout), cancel, unpark, unpark_all and
    time passing, from the test thread's main code on a virtual clock; after
    every step each coroutine's outcome and the lot's length match the model."""

    def __init__(self) -> None:
        super().__init__()
        self.lot = ParkingLot()
        self.parked: list[tuple[int, float]] = []  # (id, deadline) in park order
        self.tasks: dict[int, gofer.Task] = {}
        self.outcome: dict[int, object] = {}
        self.expect: dict[int, object] = {}
        self.now = 0.0
        self.hub: Hub | None = None

    @initialize()
    def make_hub(self):
        old = hub_if_any()
        if old is not None:
            old.close()
        self.hub = Hub(VirtualClock())
        set_hub(self.hub)

    def settle(self) -> None:
        for _ in range(3):
            gofer.yield_now()

    @rule(timeout=st.sampled_from([None, None, 1.0, 2.5, 4.0]))
    def park(self, timeout):
        wid = len(self.tasks)
        self.outcome[wid] = "parked"
        lot = self.lot

        def body():
            try:
                self.outcome[wid] = ("woke", lot.park(timeout))
            except TimeoutError:
                self.outcome[wid] = "timed out"
            except gofer.Cancelled:
                self.outcome[wid] = "cancelled"
                raise

        self.tasks[wid] = gofer.go(body)
        self.parked.append((wid, self.now + timeout if timeout is not None else float("inf")))
        self.expect[wid] = "parked"
        self.settle()

    @rule(data=st.data())
    def cancel(self, data):
        if not self.parked:
            return
        i = data.draw(st.integers(0, len(self.parked) - 1))
        wid, _ = self.parked.pop(i)
        self.tasks[wid].cancel()
        self.expect[wid] = "cancelled"
        self.settle()

    @rule(value=st.sampled_from([None, 1, "v"]), cancel_too=st.booleans())
    def unpark(self, value, cancel_too):
        woke = self.lot.unpark(value)
        assert woke == bool(self.parked)
        if self.parked:
            wid, _ = self.parked.pop(0)
            self.expect[wid] = ("woke", value)
            if cancel_too:  # before it resumes: too late, it keeps its value
                self.tasks[wid].cancel()
        self.settle()

    @rule(value=st.sampled_from([None, 2]))
    def unpark_all(self, value):
        assert self.lot.unpark_all(value) == len(self.parked)
        for wid, _ in self.parked:
            self.expect[wid] = ("woke", value)
        self.parked.clear()
        self.settle()

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0]))
    def time_passes(self, dt):
        gofer.sleep(dt)  # the clock jumps from timer to timer
        self.now += dt
        for wid, deadline in self.parked:
            if deadline <= self.now:
                self.expect[wid] = "timed out"
        self.parked = [(w, d) for w, d in self.parked if d > self.now]
        self.settle()

    @invariant()
    def outcomes_match(self):
        assert self.outcome == self.expect
        assert len(self.lot) == len(self.parked)
        assert (self.lot.first is None) == (not self.parked)

    def teardown(self):
        hub = self.hub
        if hub is None:
            return
        for t in self.tasks.values():
            t.cancel()
        for t in self.tasks.values():
            try:
                t.join()
            except BaseException:
                pass
        hub.close()


TestLotModel = LotModel.TestCase
TestLotModel.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
