"""The execution tracer and the instrument hooks it is built on (issue 13).

The structural checker below is what "valid trace-event JSON" means here:
on every track B and E alternate and nest, time never goes back, and every
flow starts inside a slice of its track and ends at a slice of its target's
track, with exactly one start and one end per id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import greenlet
import pytest

import gofer
from gofer import _instrument
from gofer.testing import run as vrun


def check_trace(doc: dict) -> dict:
    """Assert the structure of a trace; return counts of what it holds."""
    events = doc["traceEvents"]
    json.dumps(doc)  # serialisable
    slices: dict[tuple[int, int], list[tuple[float, float]]] = {}
    open_: dict[tuple[int, int], tuple[float, str]] = {}
    last_ts: dict[tuple[int, int], float] = {}
    for e in events:
        if e["ph"] not in ("B", "E"):
            continue
        tr = (e["pid"], e["tid"])
        assert e["ts"] >= last_ts.get(tr, 0), f"time goes back on track {tr}: {e}"
        last_ts[tr] = e["ts"]
        if e["ph"] == "B":
            assert tr not in open_, f"a second begin before the end on track {tr}: {e}"
            open_[tr] = (e["ts"], e["name"])
        else:
            assert tr in open_, f"an end without a begin on track {tr}: {e}"
            b_ts, b_name = open_.pop(tr)
            assert e.get("name") == b_name, f"an end named unlike its begin on track {tr}: {e}"
            slices.setdefault(tr, []).append((b_ts, e["ts"]))
    assert not open_, f"begins without an end: {open_}"

    def inside(tr: tuple[int, int], ts: float) -> bool:
        return any(b <= ts <= end for b, end in slices.get(tr, ()))

    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert len(starts) == sum(1 for e in events if e["ph"] == "s"), "a flow id starts twice"
    assert len(ends) == sum(1 for e in events if e["ph"] == "f"), "a flow id ends twice"
    assert starts.keys() == ends.keys(), "flows without both ends"
    for fid, s in starts.items():
        f = ends[fid]
        assert inside((s["pid"], s["tid"]), s["ts"]), f"flow {fid} starts outside any slice"
        assert f.get("bp") == "e" and inside((f["pid"], f["tid"]), f["ts"]), f"flow {fid} ends outside any slice"
        assert f["ts"] >= s["ts"]
    names = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(slices) <= names, "a track without a name"
    return {"slices": sum(map(len, slices.values())), "flows": len(starts), "tracks": len(slices)}


def test_10000_coroutines_make_a_valid_trace(tmp_path) -> None:
    n = 10_000
    out = tmp_path / "out.json"

    def worker(i: int, ch: gofer.Chan, wg: gofer.WaitGroup) -> None:
        if i % 3 == 0:
            gofer.yield_now()
        ch.send(i)
        wg.done()

    def main() -> int:
        ch: gofer.Chan = gofer.Chan(100)
        wg = gofer.WaitGroup()
        wg.add(n)
        for i in range(n):
            gofer.go(worker, i, ch, wg)
        total = sum(ch.recv() for _ in range(n))
        wg.wait()
        return total

    with gofer.trace(out):
        assert gofer.run(main) == n * (n - 1) // 2
    counts = check_trace(json.loads(out.read_text()))
    assert counts["tracks"] >= n  # one per coroutine (plus the hub's and main's)
    assert counts["flows"] >= n  # every spawn at least


def test_park_reasons_and_the_waker(tmp_path) -> None:
    a, b = socket.socketpair()

    def reader() -> None:
        s = gofer.socket.socket(fileno=os.dup(a.fileno()))
        s.recv(1)  # fd
        s.close()

    def sender(ch: gofer.Chan) -> None:
        ch.send("x")

    def main() -> None:
        ch: gofer.Chan = gofer.Chan()
        mu = gofer.Mutex()
        s = gofer.go(sender, ch)
        t = gofer.go(reader)
        assert ch.recv() == "x"  # channel
        mu.acquire()
        holder = gofer.go(mu.acquire)  # lock
        gofer.sleep(0.01)  # timer
        mu.release()
        holder.join()  # join
        gofer.yield_now()  # yield
        b.send(b"!")
        t.join()
        s.join()

    with gofer.trace() as tr:
        vrun(main)
    a.close()
    b.close()
    check_trace(json.loads(tr.dumps()))
    reasons = {e["args"]["parked"] for e in tr.events if e["ph"] == "E" and "parked" in e.get("args", {})}
    assert {"channel", "fd", "timer", "lock", "join"} <= reasons, reasons
    names = {e["tid"]: e["args"]["name"] for e in tr.events if e["ph"] == "M" and e["name"] == "thread_name"}
    # The sender's send woke main: a flow from the sender's track to main's.
    flows = {e["id"]: e for e in tr.events if e["ph"] == "s"}
    pairs = {(names[flows[e["id"]]["tid"]], names[e["tid"]]) for e in tr.events if e["ph"] == "f"}
    assert any("sender" in src and dst == "main" for src, dst in pairs), pairs
    assert any(src.startswith("hub") and "reader" in dst for src, dst in pairs), pairs  # woken by I/O


def test_another_threads_hub_is_traced() -> None:
    started = threading.Event()
    go_on = threading.Event()

    def other() -> None:
        def body() -> None:
            started.set()
            while not go_on.is_set():
                gofer.sleep(0.005)
            gofer.go(gofer.yield_now).join()

        gofer.run(body)

    th = threading.Thread(target=other, name="other")
    th.start()
    started.wait()
    with gofer.trace() as tr:
        gofer.run(gofer.sleep, 0.05)
        go_on.set()
        th.join()
    check_trace(json.loads(tr.dumps()))
    procs = {e["args"]["name"] for e in tr.events if e["ph"] == "M" and e["name"] == "process_name"}
    assert any("other" in p for p in procs), procs


def test_tracing_off_leaves_nothing_installed() -> None:
    def main() -> None:
        hub = gofer.get_hub()
        with gofer.trace():
            gofer.yield_now()
            assert hub.ready.__class__ is not type(gofer.Chan)  # sanity
            assert type(hub.ready).__name__ == "_Traced"
        gofer.yield_now()
        assert type(hub.ready).__name__ == "deque"

    gofer.run(main)
    assert _instrument.instruments == ()
    assert greenlet.gettrace() is None
    # Around run(): the hub is closed before the trace stops.
    with gofer.trace():
        gofer.run(gofer.yield_now)
    assert greenlet.gettrace() is None


def test_a_failing_instrument_is_removed(caplog) -> None:
    class Bad(_instrument.Instrument):
        def run(self, task: object) -> None:
            raise ValueError("boom")

    bad = Bad()
    gofer.debug.add_instrument(bad)
    try:
        assert gofer.run(lambda: gofer.go(lambda: 7).join()) == 7
    finally:
        gofer.debug.remove_instrument(bad)
    assert bad not in _instrument.instruments
    assert "removing it" in caplog.text


def test_instrument_sees_spawn_wake_finish() -> None:
    seen: list[tuple[str, str]] = []

    class Rec(_instrument.Instrument):
        def spawn(self, task, parent) -> None:
            seen.append(("spawn", task.name or "?"))

        def wake(self, task, waker) -> None:
            seen.append(("wake", task.name))

        def finish(self, task) -> None:
            seen.append(("finish", task.name))

    def child(ch: gofer.Chan) -> None:
        ch.recv()

    def main() -> None:
        ch: gofer.Chan = gofer.Chan()
        t = gofer.go(child, ch)
        t.name = "child"
        gofer.yield_now()
        ch.send(1)
        t.join()

    rec = Rec()
    gofer.debug.add_instrument(rec)
    try:
        gofer.run(main)
    finally:
        gofer.debug.remove_instrument(rec)
    assert ("wake", "child") in seen and ("finish", "child") in seen
    assert any(k == "spawn" for k, _ in seen)


def test_gofer_trace_environment_variable(tmp_path) -> None:
    out = tmp_path / "env.json"
    code = "import gofer\ngofer.run(lambda: gofer.go(gofer.sleep, 0.001).join())\n"
    env = {**os.environ, "GOFER_TRACE": str(out)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    counts = check_trace(json.loads(out.read_text()))
    assert counts["slices"] >= 2


def test_opentelemetry_context_crosses_go() -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("gofer-test")

    def child() -> None:
        with tracer.start_as_current_span("child"):
            gofer.sleep(0.001)

    def main() -> None:
        with tracer.start_as_current_span("parent"):
            t = gofer.go(child)
        # The child started after the parent span ended in this coroutine:
        # it still saw the context copied when go() was called.
        t.join()
        with tracer.start_as_current_span("sibling"):
            pass

    gofer.run(main)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["child"].parent is not None
    assert spans["child"].parent.span_id == spans["parent"].context.span_id
    assert spans["child"].context.trace_id == spans["parent"].context.trace_id
    assert spans["sibling"].parent is None
