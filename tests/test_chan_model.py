"""Model-based test: a Chan against a small reference model of Go's channel semantics.

The state machine drives one channel from the test thread's main code
(plain-code mode: each ``settle()`` lets the hub run every coroutine to its
next park). Rules start parked senders and receivers (plain ones and ones
inside a ``select``), cancel them, fire a select's other case, use the
non-blocking calls and close the channel; after every rule each coroutine's
outcome and the channel's counters must match the model, and the channel
must keep the invariants stated in gofer/chan.py (tests/chan_invariants.py),
also in the moment after a select fired on its other case, before it has
removed its record from the channel.
"""

from __future__ import annotations

import math
from collections import deque

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import chan_invariants
import gofer
from gofer import Chan, Closed
from gofer._chanrec import SELWAIT, WAITING

PENDING = "pending"


class ChanModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ch: Chan[int] = Chan()
        # Each select-based worker's second case: never ready unless fire_other sends on it.
        self.others: dict[int, Chan[int]] = {}
        self.tasks: dict[int, gofer.Task] = {}
        self.outcome: dict[int, object] = {}
        # the model
        self.cap = 0
        self.buf: deque[int] = deque()
        self.senders: deque[tuple[int, int]] = deque()  # (worker id, value) parked
        self.receivers: deque[int] = deque()
        self.closed = False
        self.expect: dict[int, object] = {}
        self.next_id = 0
        self.next_value = 0
        self.hold = False

    # -- helpers ----------------------------------------------------------------
    def settle(self) -> None:
        if self.hold:  # fire_other checks the channel before the coroutines run
            return
        for _ in range(4):
            gofer.yield_now()

    def value(self) -> int:
        self.next_value += 1
        return self.next_value

    def start(self, fn) -> int:
        wid = self.next_id
        self.next_id += 1
        self.outcome[wid] = PENDING

        def body():
            try:
                self.outcome[wid] = fn()
            except Closed:
                self.outcome[wid] = "closed"
            except gofer.Cancelled:
                self.outcome[wid] = "cancelled"
                raise

        self.tasks[wid] = gofer.go(body)
        return wid

    def model_send(self, wid: int | None, v: int) -> object:
        """Returns the immediate result, or PENDING if the sender parks."""
        if self.closed:
            return "closed"
        if self.receivers:
            r = self.receivers.popleft()
            self.expect[r] = ("got", v)
            return "sent"
        if len(self.buf) < self.cap:
            self.buf.append(v)
            return "sent"
        if wid is not None:
            self.senders.append((wid, v))
        return PENDING

    def model_recv(self, wid: int | None) -> object:
        if self.buf:
            v = self.buf.popleft()
            if self.senders:
                s, sv = self.senders.popleft()
                self.buf.append(sv)
                self.expect[s] = "sent"
            return ("got", v)
        if self.senders:
            s, sv = self.senders.popleft()
            self.expect[s] = "sent"
            return ("got", sv)
        if self.closed:
            return "closed"
        if wid is not None:
            self.receivers.append(wid)
        return PENDING

    def parked_selects(self) -> list[int]:
        parked = [s for s, _ in self.senders] + list(self.receivers)
        return sorted(w for w in parked if w in self.others)

    # -- rules --------------------------------------------------------------------
    @initialize(cap=st.sampled_from([0, 1, 3, math.inf]))
    def make(self, cap):
        self.ch = Chan(cap)
        self.cap = cap

    @rule(use_select=st.booleans())
    def spawn_sender(self, use_select):
        v = self.value()
        ch = self.ch
        other: Chan[int] = Chan()

        def send():
            if use_select:
                i, _ = gofer.select((ch.send, v), other.recv)
                return "sent" if i == 0 else "other"
            ch.send(v)
            return "sent"

        wid = self.start(send)
        if use_select:
            self.others[wid] = other
        self.expect[wid] = self.model_send(wid, v)
        self.settle()

    @rule(use_select=st.booleans())
    def spawn_receiver(self, use_select):
        ch = self.ch
        other: Chan[int] = Chan()

        def recv():
            if use_select:
                i, got = gofer.select(ch.recv_ok, other.recv)
                if i == 1:
                    return "other"
                v, ok = got
                return ("got", v) if ok else "closed"
            return ("got", ch.recv())

        wid = self.start(recv)
        if use_select:
            self.others[wid] = other
        self.expect[wid] = self.model_recv(wid)
        self.settle()

    @rule(data=st.data())
    def cancel_one(self, data):
        parked = [s for s, _ in self.senders] + list(self.receivers)
        if not parked:
            return
        wid = data.draw(st.sampled_from(sorted(parked)))
        self.tasks[wid].cancel()
        self.senders = deque((s, v) for s, v in self.senders if s != wid)
        self.receivers = deque(r for r in self.receivers if r != wid)
        self.expect[wid] = "cancelled"
        self.settle()

    @rule(data=st.data())
    def fire_other(self, data):
        """A parked select fires on its other case; maybe one more step before it runs."""
        parked = self.parked_selects()
        if not parked:  # start one: it parks unless its case on ch can proceed
            if data.draw(st.booleans()):
                self.spawn_sender(True)
            else:
                self.spawn_receiver(True)
            parked = self.parked_selects()
            if not parked:
                return
        wid = data.draw(st.sampled_from(parked))
        assert self.others[wid].try_send(0)  # claims the select's token; it has not run yet
        self.senders = deque((s, v) for s, v in self.senders if s != wid)
        self.receivers = deque(r for r in self.receivers if r != wid)
        self.expect[wid] = "other"
        queued = list(self.ch._recvq) + list(self.ch._sendq)
        assert any(not chan_invariants.is_live(w) for w in queued), "its record left early"
        chan_invariants.check(self.ch)
        # One more operation from here meets the dead record; check before anything runs.
        step = data.draw(st.sampled_from(["none", "try_send", "try_recv", "close"]))
        self.hold = True
        try:
            if step != "none":
                getattr(self, step)()
        finally:
            self.hold = False
        chan_invariants.check(self.ch)
        self.settle()

    @rule()
    def try_send(self):
        v = self.value()
        want = self.model_send(None, v)
        try:
            got = "sent" if self.ch.try_send(v) else PENDING
        except Closed:
            got = "closed"
        assert got == want
        self.settle()

    @rule()
    def try_recv(self):
        want = self.model_recv(None)
        try:
            v, ok = self.ch.try_recv()
            got = ("got", v) if ok else PENDING
        except Closed:
            got = "closed"
        assert got == want
        self.settle()

    @rule()
    def close(self):
        if self.closed:
            try:
                self.ch.close()
            except Closed:
                return
            raise AssertionError("a second close did not raise Closed")
        self.ch.close()
        self.closed = True
        for r in self.receivers:
            self.expect[r] = "closed"
        for s, _ in self.senders:
            self.expect[s] = "closed"
        self.receivers.clear()
        self.senders.clear()
        self.settle()

    # -- checks ---------------------------------------------------------------------
    @invariant()
    def outcomes_match(self):
        assert self.outcome == self.expect

    @invariant()
    def counters_match(self):
        stats = self.ch.statistics()
        assert stats["size"] == len(self.buf) == len(self.ch)
        assert stats["senders_waiting"] == len(self.senders)
        assert stats["receivers_waiting"] == len(self.receivers)
        assert stats["closed"] == self.closed

    @invariant()
    def chan_invariants_hold(self):
        chan_invariants.check(self.ch)
        for wid, other in self.others.items():
            if self.outcome[wid] != PENDING:  # returned or raised: nothing of it left queued
                assert not other._recvq and not other._sendq

    @invariant()
    def queues_hold_only_waiting_records(self):
        # aborted or taken records never stay in a queue; a fired select's
        # records are gone once it has run
        for q in (self.ch._recvq, self.ch._sendq):
            for w in q:
                assert w.state == WAITING or (w.state == SELWAIT and not w.sel.tok.locked())
                assert w.is_send == (q is self.ch._sendq)

    def teardown(self):
        for t in self.tasks.values():
            t.cancel()
        for t in self.tasks.values():
            try:
                t.join()
            except BaseException:
                pass


TestChanModel = ChanModel.TestCase
TestChanModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
