"""The execution tracer: ``with gofer.trace("out.json"):`` records scheduling.

A :class:`Tracer` is an instrument (``gofer._instrument``) that turns spawn,
run, park, wake and finish into Chrome trace-event JSON, the format that
Perfetto (ui.perfetto.dev) and ``chrome://tracing`` open:

* one *process* per hub (its thread), one *track* (``tid``) per coroutine,
  plus a track for the hub's loop and one for the thread's main code;
* a slice (``B``/``E``) each time a coroutine runs, named after it; the
  ``E`` carries why it stopped (``parked``: channel, fd, timer, lock, join,
  yield, thread) and what on, or how it ended;
* a flow (``s`` -> ``f``) from the slice that spawned or woke a coroutine to
  the slice where it next runs (a wake by I/O, a timer or another thread
  starts on the hub's track).

When the tracer stops, every slice still open is closed and flows whose
target never ran are dropped, so the file is always well formed. Set
``GOFER_TRACE=out.json`` to trace a whole program (written at exit).
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import threading
import time
from typing import Any

from gofer import _instrument
from gofer._core import Hub, Root, hub_if_any

__all__ = ["Tracer", "trace"]

_clock = time.perf_counter


class Tracer(_instrument.Instrument):
    """Records scheduling events while started (see :func:`trace`)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._t0 = 0.0
        self._tracks: dict[Any, tuple[int, int]] = {}  # task/root/hub -> (pid, tid)
        self._pids: dict[Any, int] = {}  # hub -> pid
        self._open: dict[tuple[int, int], str] = {}  # track -> name of its open slice
        self._pending: dict[Any, list[int]] = {}  # task -> flow ids to end where it next runs
        self._tids = itertools.count(3)
        self._flows = itertools.count(1)
        self._names: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()
        self.running = False

    # -- control -------------------------------------------------------------------
    def start(self) -> Tracer:
        if self.running:
            raise RuntimeError("this tracer is already running")
        self._t0 = _clock()
        self.running = True
        _instrument.add(self)
        # The code starting the trace is running now: open its slice.
        who = _instrument.current_who()
        if who is None:
            hub = hub_if_any()
            if hub is not None:
                self.hub_enter(hub)
        else:
            self.run(who)
        return self

    def stop(self) -> None:
        """Stop recording, close what is open, and write the file (if a path was given)."""
        if not self.running:
            return
        self.running = False
        _instrument.remove(self)
        ts = self._ts()
        for (pid, tid), name in sorted(self._open.items()):
            self.events.append({"ph": "E", "name": name, "pid": pid, "tid": tid, "ts": ts})
        self._open.clear()
        ended = {e["id"] for e in self.events if e["ph"] == "f"}
        self.events = [e for e in self.events if e["ph"] != "s" or e["id"] in ended]
        for (pid, tid), name in self._names.items():
            self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            self.events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        self._pending.clear()
        self._tracks.clear()
        if self.path is not None:
            with open(self.path, "w", encoding="utf-8") as f:
                f.write(self.dumps())

    def dumps(self) -> str:
        """The trace as JSON text (the Chrome trace-event "JSON object" format)."""
        return json.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"}, separators=(",", ":"))

    def __enter__(self) -> Tracer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tracks --------------------------------------------------------------------------
    def _ts(self) -> float:
        return round((_clock() - self._t0) * 1e6, 3)

    def _pid(self, hub: Any) -> int:
        pid = self._pids.get(hub)
        if pid is None:
            with self._lock:
                pid = self._pids.setdefault(hub, len(self._pids) + 1)
                th = next((t for t in threading.enumerate() if t.ident == hub.thread_ident), None)
                name = f"gofer hub, thread {th.name if th is not None else hub.thread_ident}"
                self.events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
                self._names[(pid, 1)] = "hub loop (I/O, timers, callbacks)"
        return pid

    def _track(self, who: Any) -> tuple[int, int]:
        tr = self._tracks.get(who)
        if tr is None:
            if isinstance(who, Hub):
                tr = (self._pid(who), 1)
            elif who.__class__ is Root:
                tr = (self._pid(who._hub), 2)
                self._names[tr] = "main thread code"
            else:
                tr = (self._pid(who._hub), next(self._tids))
                self._names[tr] = who._label()
            self._tracks[who] = tr
        return tr

    def _begin(self, who: Any, name: str) -> tuple[int, int]:
        pid, tid = tr = self._track(who)
        if tr not in self._open:
            self._open[tr] = name
            self.events.append({"ph": "B", "name": name, "pid": pid, "tid": tid, "ts": self._ts()})
        return tr

    def _end(self, who: Any, args: dict[str, Any]) -> None:
        tr = self._track(who)
        name = self._open.pop(tr, None)
        if name is not None:
            # The name is optional in the format, but viewers such as speedscope
            # match an end to its begin by it.
            self.events.append({"ph": "E", "name": name, "pid": tr[0], "tid": tr[1], "ts": self._ts(), "args": args})

    def _flow_from(self, waker: Any, target: Any, hub: Any, name: str) -> None:
        """Start a flow in the slice running now (``waker``, or the hub's loop)."""
        tr = self._track(waker if waker is not None else hub)
        if tr not in self._open:
            return  # no slice to start it from (the trace began inside it)
        fid = next(self._flows)
        self.events.append({"ph": "s", "id": fid, "name": name, "cat": "gofer", "pid": tr[0], "tid": tr[1], "ts": self._ts()})
        self._pending.setdefault(target, []).append(fid)

    # -- the instrument's callbacks -------------------------------------------------------------
    def spawn(self, task: Any, parent: Any) -> None:
        self._track(task)
        self._flow_from(parent, task, task._hub, "spawn")

    def wake(self, task: Any, waker: Any) -> None:
        self._flow_from(waker, task, task._hub, "wake")

    def run(self, task: Any) -> None:
        tr = self._track(task)
        if task.__class__ is not Root and task.name and self._names.get(tr) != task.name:
            self._names[tr] = task.name
        self._begin(task, self._names.get(tr, "run"))
        flows = self._pending.pop(task, None)
        if flows:
            ts = self.events[-1]["ts"]
            for fid in flows:
                self.events.append({"ph": "f", "bp": "e", "id": fid, "name": "wake", "cat": "gofer", "pid": tr[0], "tid": tr[1], "ts": ts})

    def park(self, task: Any, reason: str, waitable: Any) -> None:
        self._end(task, {"parked": reason, "on": _short(waitable)})

    def finish(self, task: Any) -> None:
        state = getattr(task, "_state", 1)
        self._end(task, {"ended": ("pending", "done", "failed", "cancelled")[state]})
        self._pending.pop(task, None)

    def hub_enter(self, hub: Any) -> None:
        self._begin(hub, "hub")

    def hub_leave(self, hub: Any) -> None:
        self._end(hub, {})


def _short(obj: Any) -> str:
    try:
        r = repr(obj)
    except Exception:
        r = object.__repr__(obj)
    return r if len(r) <= 80 else r[:77] + "..."


def trace(path: str | os.PathLike[str] | None = None) -> Tracer:
    """Record an execution trace while the ``with`` block runs.

    ``with gofer.trace("out.json"): ...`` writes Chrome trace-event JSON
    (open it in https://ui.perfetto.dev or ``chrome://tracing``): a track
    per coroutine with a slice each time it runs, why it parked, and flows
    from the coroutine (or the hub's I/O and timers) that woke it. Every
    hub of the process is traced. Without ``path`` the events stay in
    memory (``tracer.events``, ``tracer.dumps()``). Tracing costs a Python
    call per switch and wake while on, and nothing while off.
    """
    return Tracer(path)


def from_environment() -> None:
    """``GOFER_TRACE=FILE``: trace the whole program, write FILE at exit."""
    path = os.environ.get("GOFER_TRACE")
    if not path:
        return
    t = Tracer(path)
    t.start()
    atexit.register(t.stop)
