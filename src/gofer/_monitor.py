"""The monitor thread: a blocking watchdog, a memory watch and loop-lag probes.

A coroutine that calls ``time.sleep``, a C library or a long computation
without parking holds its whole hub: nothing else on that thread runs.
:func:`monitor` starts one daemon thread (``gofer-monitor``) that looks at
every hub a few times per threshold. A hub *makes progress* while its
switch counters (``Hub.switches``, ``Hub.handoffs``) or the time it last
looked at I/O (``Hub.polled_at``) change; a hub whose thread sits in its
poller is idle, not stuck. When a hub has made no progress for longer than
the threshold, the monitor reports once per stall, to the ``gofer`` logger
and to the user's hook: which coroutine holds it, for how long so far, and
its stack, read from ``sys._current_frames()`` of the hub's thread.

The same thread can watch the process's memory (``max_memory``) and, for
``gofer.metrics()``, measure loop lag: every ``LAG_EVERY`` seconds it posts
a probe to each hub (``call_threadsafe``) and records how long the hub took
to run it. The thread is registered as a gofer service thread, so it never
keeps a deadlocked program from raising ``gofer.Deadlock``.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gofer import _instrument
from gofer._core import Hub, Poller, ignore_thread, kernel, run_tasks, unignore_thread

__all__ = ["MemoryReport", "Monitor", "StallReport", "monitor"]

log = logging.getLogger("gofer")
_mono = time.monotonic
LAG_EVERY = 0.05  # seconds between two loop-lag probes of a hub
LAG_SAMPLES = 2048  # the window the lag percentiles are computed over


@dataclass
class StallReport:
    """A hub held by one coroutine (or callback) for longer than the threshold."""

    thread_ident: int
    thread_name: str
    name: str  # the coroutine's label, "hub callback", or "main thread code"
    task: Any  # the gofer.Task, or None
    duration: float  # seconds it has held the hub when reported (at least)
    threshold: float
    stack: list[str] = field(repr=False)  # traceback.format_stack lines, outermost first

    def format(self) -> str:
        return (
            f"gofer: {self.name} has blocked the hub of thread {self.thread_name!r} for "
            f"{self.duration:.3f} s without parking (threshold {self.threshold:g} s); its stack:\n"
            + "".join(self.stack).rstrip()
        )


@dataclass
class MemoryReport:
    """The process's resident memory passed ``max_memory``."""

    rss: int
    max_memory: int

    def format(self) -> str:
        return f"gofer: the process uses {self.rss / 2**20:.1f} MiB, more than max_memory {self.max_memory / 2**20:.1f} MiB"


class _HubState:
    __slots__ = ("lag", "probe_sent", "reported", "sig", "since", "suspect")

    def __init__(self) -> None:
        self.sig: Any = None
        self.since = 0.0
        self.reported = False
        self.suspect = False
        self.lag: deque[float] = deque(maxlen=LAG_SAMPLES)
        self.probe_sent = 0.0  # when the outstanding probe was posted (0: none)


class _StopSignal:
    """A stop flag the monitor thread sleeps on, made of a real OS lock.

    Not ``threading.Event``: under ``gofer.patch()`` an Event waits through
    the patched locks, which would give the monitor's thread a hub of its
    own (seen in metrics and dumps, and a hub to shut down at exit). The lock
    is held while the flag is clear; ``wait`` takes it with a timeout.
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()  # gofer's view: the original, even when patched
        self._lock.acquire()

    def set(self) -> None:
        if self._lock.locked():
            with contextlib.suppress(RuntimeError):
                self._lock.release()

    def clear(self) -> None:
        self._lock.acquire(False)

    def wait(self, timeout: float) -> bool:
        if self._lock.acquire(True, timeout):
            self._lock.release()  # stays set
            return True
        return False


class Monitor:
    """The process's monitor thread (there is at most one; see :func:`monitor`)."""

    def __init__(self) -> None:
        self.threshold: float | None = None
        self.hook: Callable[[Any], Any] | None = None
        self.max_memory: int | None = None
        self.lag = False
        self.reports = 0  # stall reports made
        self._state: weakref.WeakKeyDictionary[Any, _HubState] = weakref.WeakKeyDictionary()
        self._stop = _StopSignal()
        self._thread: threading.Thread | None = None
        self._memory_over = False
        self._next_lag = 0.0
        self._fork_hook = False

    @property
    def interval(self) -> float:
        """How often the thread looks (a quarter of the threshold, 5 to 50 ms)."""
        if self.threshold is None:
            return LAG_EVERY
        return min(max(self.threshold / 4, 0.005), LAG_EVERY)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running():
            return
        if not self._fork_hook:
            self._fork_hook = True
            os.register_at_fork(after_in_child=self._after_fork)
        # Made here, not at import: a module's body runs before gofer.patch's
        # import hook gives it the unpatched _thread (Monitor() is made then).
        self._stop = _StopSignal()
        th = threading.Thread(target=self._main, name="gofer-monitor", daemon=True)
        self._thread = th
        th.start()
        assert th.ident is not None
        ignore_thread(th.ident)

    def _after_fork(self) -> None:
        # Threads do not survive fork(): a forked worker (gofer serve --workers)
        # gets a monitor of its own if the parent had one.
        was_running = self._thread is not None
        self._thread = None
        self._state = weakref.WeakKeyDictionary()
        if was_running:
            self.start()

    def stop(self) -> None:
        """Stop the thread (the watchdog, the memory watch and lag probes)."""
        th = self._thread
        if th is None:
            return
        self._stop.set()
        if th is not threading.current_thread():
            th.join()
        unignore_thread(th.ident or 0)
        self._thread = None

    def lag_samples(self, hub: Any) -> list[float]:
        st = self._state.get(hub)
        return list(st.lag) if st is not None else []

    # -- the thread ----------------------------------------------------------------
    def _main(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the monitor must outlive a bug in itself
                log.exception("gofer: monitor check failed")

    def check(self) -> None:
        """One look at every hub (the thread calls it every ``interval``)."""
        now = _mono()
        frames: dict[int, Any] | None = None
        probe = self.lag and now >= self._next_lag
        if probe:
            self._next_lag = now + LAG_EVERY
        for hub in list(_instrument.hubs):
            if hub.closed:
                continue
            st = self._state.get(hub)
            if st is None:
                st = self._state[hub] = _HubState()
            if probe:
                self._probe(hub, st, now)
            if self.threshold is None:
                continue
            sig = (hub.switches, hub.handoffs, getattr(hub, "slice_end", None), getattr(hub, "polled_at", None))
            if sig != st.sig:
                st.sig, st.since, st.reported, st.suspect = sig, now, False, False
                continue
            if st.reported or now - st.since < self.threshold:
                continue
            if frames is None:
                frames = sys._current_frames()
            frame = frames.get(hub.thread_ident)
            # Waiting for I/O or timers is no stall. A hub's thread with no
            # Python frame runs compiled kernel code (or C it called); in the
            # pure kernel, one has always a frame until it ends.
            idle = getattr(hub.poller, "waiting", False) or (
                _idle(frame) if frame is not None else kernel() == "pure"
            )
            if idle or not (hub._in_run or hub.workers):
                st.since, st.suspect = now, False  # waiting for I/O or timers: not a stall
                continue
            if not st.suspect:
                st.suspect = True  # confirm on the next look (it may have just woken)
                continue
            st.reported = True
            self.reports += 1
            self._report(_stall(hub, frame, now - st.since, self.threshold))
        frames = None
        if self.max_memory is not None:
            self._check_memory()

    def _probe(self, hub: Any, st: _HubState, now: float) -> None:
        if st.probe_sent:
            return  # the last one has not run yet: its lag will say so
        st.probe_sent = now
        try:
            hub.call_threadsafe(_probe_ran, st, now)
        except RuntimeError:
            st.probe_sent = 0.0  # closed meanwhile

    def _check_memory(self) -> None:
        rss = rss_bytes()
        assert self.max_memory is not None
        if rss is None:
            return
        if rss > self.max_memory:
            if not self._memory_over:
                self._memory_over = True
                self._report(MemoryReport(rss, self.max_memory))
        elif rss < self.max_memory * 0.9:
            self._memory_over = False  # report again if it climbs back over

    def _report(self, report: Any) -> None:
        log.warning("%s", report.format())
        hook = self.hook
        if hook is not None:
            try:
                hook(report)
            except Exception:
                log.exception("gofer: monitor hook %r failed", hook)


def _probe_ran(st: _HubState, sent: float) -> None:
    st.lag.append(_mono() - sent)
    st.probe_sent = 0.0


def _poll_codes() -> set[Any]:
    codes = set()
    for cls in Poller.__subclasses__():
        fn = cls.__dict__.get("poll")
        if fn is not None and hasattr(fn, "__code__"):
            codes.add(fn.__code__)
    return codes


_idle_codes: set[Any] = set()


def _idle(frame: Any) -> bool:
    """True if the thread is waiting in a gofer poller (a selector may be below it)."""
    if not _idle_codes:
        _idle_codes.update(_poll_codes())
    f = frame
    for _ in range(3):
        if f is None:
            return False
        if f.f_code in _idle_codes:
            return True
        f = f.f_back
    return False


def _holder(hub: Any, frame: Any) -> tuple[str, Any]:
    """Who runs the innermost ``frame`` of a hub's thread: (name, Task or None)."""
    worker_code = run_tasks.__code__
    loop_codes = {Hub._loop.__code__, Hub.run.__code__}
    f = frame
    while f is not None:
        if f.f_code is worker_code:
            task = getattr(f.f_locals.get("worker"), "task", None)
            return (task._label() if task is not None else "an idle worker"), task
        if f.f_code in loop_codes:
            return "a hub callback or timer", None
        f = f.f_back
    if kernel() == "pure":
        return "main thread code", None
    # The compiled kernel has no frames of its own. A started task keeps its
    # function in _fn: the running one has that function's frame on the
    # stack (below it, only the frames of whoever started the hub).
    try:
        tasks = [w.task for w in list(hub.workers) if w.task is not None]
    except RuntimeError:  # changed size while copied (the hub's thread runs)
        tasks = []
    codes = {getattr(t._fn, "__code__", None): t for t in tasks}
    f = frame
    while f is not None:
        task = codes.get(f.f_code)
        if task is not None:
            return task._label(), task
        f = f.f_back
    root = hub.root
    if hub._in_run or root is None or root._wait is not None:
        return "a hub callback or timer", None  # the thread's main code is parked
    return "main thread code", None


def _stall(hub: Any, frame: Any, duration: float, threshold: float) -> StallReport:
    name, task = _holder(hub, frame)
    th = next((t for t in threading.enumerate() if t.ident == hub.thread_ident), None)
    return StallReport(
        thread_ident=hub.thread_ident,
        thread_name=th.name if th is not None else str(hub.thread_ident),
        name=name,
        task=task,
        duration=duration,
        threshold=threshold,
        stack=traceback.format_stack(frame) if frame is not None else [],
    )


def rss_bytes() -> int | None:
    """The process's resident set size in bytes (None where it cannot be read)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


_monitor = Monitor()


def the_monitor() -> Monitor:
    return _monitor


def monitor(
    threshold: float | None = 0.1,
    *,
    hook: Callable[[Any], Any] | None = None,
    max_memory: int | None = None,
) -> Monitor:
    """Start (or reconfigure) the blocking watchdog; returns the :class:`Monitor`.

    A hub held by one coroutine for more than ``threshold`` seconds without
    parking is reported once per stall: a warning on the ``gofer`` logger
    with the coroutine's name, how long it has held the hub, and its stack,
    and a :class:`StallReport` passed to ``hook`` (called in the monitor
    thread). ``max_memory`` (bytes) also reports, once per excursion, a
    resident size above it (a :class:`MemoryReport`). ``threshold=None``
    turns the watchdog off (lag probes for ``gofer.metrics()`` go on);
    ``gofer.monitor(None).stop()`` stops the thread. The environment
    variable ``GOFER_MONITOR=0.1`` does the same as ``gofer.monitor(0.1)``
    at import.
    """
    if threshold is not None and not threshold > 0:
        raise ValueError(f"threshold must be a positive number of seconds or None, not {threshold!r}")
    if max_memory is not None and max_memory <= 0:
        raise ValueError(f"max_memory must be a positive number of bytes or None, not {max_memory!r}")
    m = _monitor
    m.threshold = threshold
    m.hook = hook
    m.max_memory = max_memory
    m._memory_over = False
    if threshold is not None or max_memory is not None or m.lag:
        m.start()
    return m


def enable_lag() -> Monitor:
    """Start measuring loop lag (``gofer.metrics()`` does, on its first call)."""
    m = _monitor
    if not m.lag:
        m.lag = True
    m.start()
    return m


def from_environment() -> None:
    """``GOFER_MONITOR=SECONDS`` (and ``GOFER_MAX_MEMORY=BYTES``) at import."""
    raw = os.environ.get("GOFER_MONITOR", "")
    try:
        threshold = float(raw)
    except ValueError:
        log.warning("gofer: GOFER_MONITOR=%r is not a number of seconds; the watchdog stays off", raw)
        return
    mem = os.environ.get("GOFER_MAX_MEMORY")
    monitor(threshold, max_memory=int(mem) if mem else None)
