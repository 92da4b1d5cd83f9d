"""Instrumentation hooks: see what the scheduler does, at no cost when unused.

An *instrument* is an object with any of the methods of :class:`Instrument`
(``spawn``, ``run``, ``park``, ``wake``, ``finish``, ``hub_enter``,
``hub_leave``); :func:`add` registers it, :func:`remove` takes it out. The
tracer (``gofer.trace``) is built on them, and so can an APM agent or a test.

The kernel pays nothing for this while no instrument is registered: there
is no check on any hot path. Registering the first instrument, in each
hub's thread, (1) installs a ``greenlet.settrace`` callback, which sees
every switch (run, park and finish are read off the greenlets switched
from and to), and (2) swaps the hub's ready queue for a :class:`_Traced`
deque whose ``append``/``extend`` report every wake (the item made ready and
the greenlet that made it ready). The hub loop notices the new queue once
per iteration (``ready is not self.ready``) and rebinds its locals. Removing
the last instrument undoes both.

The kernel knows nothing of this module: at import, it registers a hook
that each new hub calls (``gofer._core.on_hub_created``). ``hubs`` is the
kernel's registry of hubs, re-exported for the monitor and the metrics.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any

from greenlet import getcurrent

from gofer._core import Hub, Root, Worker, hub_if_any, hubs, on_hub_created

__all__ = ["Instrument", "ServerStats", "add", "hubs", "instruments", "remove", "servers"]

log = logging.getLogger("gofer")

# The registered instruments, in order; a tuple so that dispatch can iterate
# it while another thread adds or removes one.
instruments: tuple[Any, ...] = ()
_lock = threading.Lock()
_tl = threading.local()  # .prev: the greenlet trace function this thread had before ours


class Instrument:
    """The callbacks an instrument may define (each one is optional).

    ``task`` is a :class:`gofer.Task`, or, for the thread's main code taking
    part in scheduling outside any coroutine, an object whose ``name`` is
    ``"main thread code"``. Callbacks run in the hub's thread, inside the
    switch or wake they report: they must be quick, must not block, and
    must not switch; an exception in one is logged and the instrument is
    removed.
    """

    def spawn(self, task: Any, parent: Any) -> None:
        """``task`` was started by ``go()`` in ``parent`` (a task, or None: the hub)."""

    def run(self, task: Any) -> None:
        """``task`` starts or resumes running."""

    def park(self, task: Any, reason: str, waitable: Any) -> None:
        """``task`` stopped running, parked on ``waitable``.

        ``reason`` is one of ``"channel"``, ``"fd"``, ``"timer"``, ``"lock"``,
        ``"join"``, ``"yield"``, ``"thread"`` (a thread-pool job or another
        thread's hub) or ``"other"``.
        """

    def wake(self, task: Any, waker: Any) -> None:
        """``task`` was made ready by ``waker`` (a task, or None: the hub, for I/O,
        a timer, a callback or another thread)."""

    def finish(self, task: Any) -> None:
        """``task`` has ended (``task.done()`` is true)."""

    def hub_enter(self, hub: Any) -> None:
        """The hub's loop (I/O, timers, callbacks) starts running."""

    def hub_leave(self, hub: Any) -> None:
        """The hub's loop hands the thread to a coroutine."""


def add(instrument: Any) -> None:
    """Register ``instrument``; every hub starts reporting to it."""
    global instruments
    with _lock:
        if instrument in instruments:
            return
        first = not instruments
        instruments = (*instruments, instrument)
    if first:
        _for_each_hub(_install)


def remove(instrument: Any) -> None:
    """Unregister ``instrument`` (no error if it was not registered)."""
    global instruments
    with _lock:
        if instrument not in instruments:
            return
        instruments = tuple(i for i in instruments if i is not instrument)
        last = not instruments
    if last:
        _for_each_hub(_uninstall)
        if not instruments:
            _untrace_thread()  # this thread's hub may be closed already (trace around run())


def _hub_created(hub: Any) -> None:
    """Each new hub calls this, in its thread (registered with the kernel below)."""
    if instruments:
        _install(hub)


on_hub_created(_hub_created)


# -- installing the hooks ------------------------------------------------------------


def _for_each_hub(fn: Any) -> None:
    me = threading.get_ident()
    for hub in list(hubs):
        if hub.closed:
            continue
        if hub.thread_ident == me:
            fn(hub)
        else:
            try:
                hub.call_threadsafe(fn, hub)
            except RuntimeError:
                pass  # closed meanwhile


def _install(hub: Any) -> None:
    """In ``hub``'s thread: report its switches and wakes to the instruments."""
    import greenlet

    if not instruments or hub.closed:
        return
    if not hasattr(_tl, "prev"):
        _tl.prev = greenlet.settrace(_on_switch)
    if hub.ready.__class__ is not _Traced:
        _swap(hub, _Traced(hub.ready))


def _uninstall(hub: Any) -> None:

    if instruments:
        return  # one was registered again meanwhile
    _untrace_thread()
    if hub.ready.__class__ is _Traced:
        _swap(hub, deque(hub.ready))


def _untrace_thread() -> None:
    """Give this thread back the greenlet trace function it had before ours."""
    import greenlet

    if hasattr(_tl, "prev"):
        prev = _tl.prev
        del _tl.prev
        greenlet.settrace(prev)


def _swap(hub: Any, new: deque[Any]) -> None:
    old = hub.ready
    hub.ready = new
    old.clear()  # the loop's inner run ends on the emptied queue, then rebinds


# -- dispatch --------------------------------------------------------------------------

_kinds: dict[str, str] = {
    "gofer.chan": "channel",
    "gofer._chanrec": "channel",
    "gofer._select": "channel",
    "gofer._core._poll": "fd",
    "gofer._sockio": "fd",
    "gofer._core._waitq": "lock",
    "gofer.sync": "lock",
    "gofer._events": "lock",
    "gofer._rwlock": "lock",
    "gofer.threads": "thread",
}
_kind_by_class = {
    "TimerHandle": "timer",
    "_JoinWait": "join",
    "_Yield": "yield",
    "RemoteWake": "thread",
}


def park_reason(waitable: Any) -> str:
    """What a coroutine parked on ``waitable`` waits for (see ``Instrument.park``)."""
    if waitable is None:
        return "other"
    cls = waitable.__class__
    kind = _kind_by_class.get(cls.__name__)
    if kind is None:
        kind = _kinds.get(cls.__module__, "other")
    return kind


def _emit(name: str, *args: Any) -> None:
    global instruments
    for inst in instruments:
        fn = getattr(inst, name, None)
        if fn is None:
            continue
        try:
            fn(*args)
        except Exception:
            log.exception("gofer: instrument %r failed in %s(); removing it", inst, name)
            # Not remove(): that may swap queues, which must not happen in here.
            instruments = tuple(i for i in instruments if i is not inst)


def _who(g: Any) -> tuple[str, Any]:
    """Classify greenlet ``g``: ("task", worker), ("main", root), ("hub", hub) or ("", None)."""
    cls = g.__class__
    if cls is Worker:
        return "task", g
    if isinstance(g, Hub):
        return "hub", g
    hub = hub_if_any()
    if hub is not None and hub.root is not None and hub.root.g is g:
        return "main", hub.root
    return "", None


# The task each worker was last seen running (to tell a park from a finish).
_running: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _on_switch(event: str, args: tuple[Any, Any]) -> None:
    prev = getattr(_tl, "prev", None)
    if prev is not None:
        prev(event, args)
    if not instruments:
        # The last instrument went while this thread's hub was closed: remove
        # ourselves at the thread's next switch.
        _untrace_thread()
        return
    try:
        origin, target = args
        _left(origin)
        _entered(target)
    except Exception:  # never let a report break the switch itself
        log.exception("gofer: instrument dispatch failed")


def _left(g: Any) -> None:
    kind, who = _who(g)
    if kind == "task":
        t = _running.pop(g, None)
        if t is None:
            return
        if g.task is t and not t.done():
            w = g._wait
            # A yielding task is ready with no waitable (gofer._core.yield_now).
            _emit("park", t, "yield" if w is None and g in g._hub.ready else park_reason(w), w)
        else:
            _emit("finish", t)
    elif kind == "hub":
        _emit("hub_leave", who)
    elif kind == "main":
        _emit("park", who, park_reason(who._wait), who._wait)


def _entered(g: Any) -> None:
    kind, who = _who(g)
    if kind == "task":
        t = g.task
        if t is not None:
            _running[g] = t
            _emit("run", t)
    elif kind == "hub":
        _emit("hub_enter", who)
    elif kind == "main":
        _emit("run", who)


def current_who() -> Any:
    """The task (or main-code stand-in) running now; None in the hub."""
    kind, who = _who(getcurrent())
    if kind == "task":
        return who.task
    return who if kind == "main" else None


def _made_ready(item: Any) -> None:
    if not instruments:
        return
    try:
        cls = item.__class__
        if cls is Worker:
            t = item.task
            if t is None:
                return
            cur = getcurrent()
            if item is cur:
                return  # a yield: the running task queues itself
            if item._wait is None and getattr(item, "_throw", None) is None and item not in _running:
                _emit("spawn", t, current_who())
            else:
                _emit("wake", t, current_who())
        elif cls is Root:
            if item.g is not getcurrent():
                _emit("wake", item, current_who())
        elif cls.__name__ == "_TimeoutFire":
            t = item.t
            if t is not None and t._wait is item.w:  # it will wake t with TimeoutError
                _emit("wake", t.task if t.__class__ is Worker else t, None)
    except Exception:
        log.exception("gofer: instrument dispatch failed")


class _Traced(deque):  # type: ignore[type-arg]
    """A ready queue that reports what is made ready (only while instrumented)."""

    __slots__ = ()

    def append(self, item: Any) -> None:
        _made_ready(item)
        deque.append(self, item)

    def extend(self, items: Iterable[Any]) -> None:
        items = list(items)
        for item in items:
            _made_ready(item)
        deque.extend(self, items)


# -- servers -----------------------------------------------------------------------------

# Every gofer.http.Server (it adds itself); gofer.metrics() reads their stats.
servers: weakref.WeakSet[Any] = weakref.WeakSet()


class ServerStats:
    """An HTTP server's counters (the server and its connections update them)."""

    __slots__ = ("bytes_in", "bytes_out", "connections", "in_progress", "requests", "responses")

    def __init__(self) -> None:
        self.connections = 0  # accepted, in all
        self.requests = 0  # handed to the application
        self.in_progress = 0  # in the application now
        self.responses = [0] * 6  # by status class: [1] 1xx ... [5] 5xx; [0] unknown
        self.bytes_in = 0
        self.bytes_out = 0
