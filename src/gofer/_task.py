"""Coroutines and parking: ``Task``, ``go``, ``run``, ``park``, ``sleep``.

This module holds the only switches into the hub. Every blocking gofer call
ends in :func:`park`: the caller registers itself somewhere (a channel's wait
queue, an fd's waiter slot, a timer) and hands that registration to ``park``
as the *waitable*. A waitable has ``_gofer_abort(task) -> bool``, which
unregisters the task and says whether it did; cancellation and timeouts call
it, so no primitive needs try/except clean-up, and a waiter is woken or
aborted exactly once. Whoever takes a waiter out of its registration wakes
it (``hub.ready.append(task)``); resumption values travel in the
registration itself (a channel's waiter record), not through the switch.

A ``Task`` is the coroutine itself (a greenlet subclass), so spawning costs
one object. The thread's main code takes part through a small stand-in
(:class:`_Root`) so that blocking calls also work outside ``run()``.

Cancellation is level-triggered, as in trio: once a task (or a cancel scope
around the running code) is cancelled, every park inside it raises
``Cancelled`` until the code leaves it; ``gofer.shield()`` protects clean-up.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet

from gofer._hub import BlockingInHubError, Hub, _tls, get_hub, hub_if_any, set_hub

__all__ = [
    "Cancelled",
    "RemoteWake",
    "Task",
    "current",
    "dump_tasks",
    "go",
    "park",
    "run",
    "sleep",
    "wait_readable",
    "wait_writable",
    "yield_now",
]

log = logging.getLogger("gofer")
T = TypeVar("T")

_PENDING, _DONE, _FAILED, _CANCELLED = 0, 1, 2, 3
_ids = itertools.count(1)
_copy_context = contextvars.copy_context


class Cancelled(BaseException):
    """Raised inside a coroutine at a park point when it has been cancelled.

    It derives from ``BaseException`` so that ``except Exception`` does not
    swallow it. ``scope`` is the cancel scope that was cancelled (``None`` for
    ``Task.cancel()``).
    """

    def __init__(self, msg: str = "cancelled", scope: Any = None) -> None:
        super().__init__(msg)
        self.scope = scope


class _Yield:
    """The waitable of ``yield_now``: the task is already queued, so no abort."""

    __slots__ = ()

    def _gofer_abort(self, task: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "<yield>"


_YIELD = _Yield()


class _Unretrieved:
    """Logs a task's exception if the task is dropped with it never retrieved."""

    __slots__ = ("exc", "name")

    def __init__(self, name: str, exc: BaseException) -> None:
        self.name = name
        self.exc: BaseException | None = exc

    def __del__(self) -> None:
        exc = self.exc
        if exc is not None:
            self.exc = None
            log.error(
                "gofer: exception in coroutine %s was never retrieved",
                self.name,
                exc_info=(type(exc), exc, exc.__traceback__),
            )


class _Worker(greenlet):  # type: ignore[misc]
    """A greenlet that runs tasks, one after another.

    Starting a fresh greenlet costs an mmap/munmap pair for CPython's frame
    stack (about 10 us), so finished workers wait in their hub's idle pool
    and take the next task instead. While running a task the worker is the
    "task-like" the scheduler parks and wakes: it carries the cancellation
    state of the task it runs.
    """

    __slots__ = ("_cancel_req", "_hint", "_hub", "_scopes", "_wait", "task")

    def __init__(self, hub: Hub) -> None:
        greenlet.__init__(self, None, hub)
        hub.workers.add(self)
        self._hub = hub
        self.task: Any = None
        self._wait: Any = None
        self._hint = False
        self._cancel_req = False
        self._scopes: list[Any] = []

    def run(self) -> None:
        hub = self._hub
        idle = hub.idle_workers
        ready = hub.ready
        while True:
            t = self.task
            fn, args, kw = t._fn
            # The task body; kept inline (no call per task) as it is the hot path.
            try:
                if self._hint:
                    _raise_if_cancelled(self)
                # A call without * or ** stays in the same C eval frame (3.11+):
                # that keeps the coroutine's C stack, so each switch, small.
                if kw:
                    t._result = fn(*args, **kw)
                elif not args:
                    t._result = fn()
                elif len(args) == 1:
                    t._result = fn(args[0])
                elif len(args) == 2:
                    t._result = fn(args[0], args[1])
                else:
                    t._result = fn(*args)
                t._state = _DONE
            except (Cancelled, GreenletExit) as exc:
                t._exc = exc if isinstance(exc, Cancelled) else Cancelled("the hub was closed")
                t._state = _CANCELLED
            except BaseException as exc:
                t._exc = exc
                t._state = _FAILED
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    hub._fatal = exc
                else:
                    t._report = _Unretrieved(t._label(fn), exc)
            t._fn = t._g = None
            js = t._joiners
            if js is not None:
                t._joiners = None
                ready.extend(js)
            if t._callbacks is not None:
                t._run_callbacks()
            # Drop references so that an idle worker keeps nothing alive.
            t = fn = args = kw = js = None
            self.task = None
            self._wait = None
            if self._hint:
                self._hint = self._cancel_req = False
                self._scopes = []
            if len(idle) >= _MAX_IDLE or hub.closed:
                hub.workers.discard(self)
                return
            idle.append(self)
            _switch_away(hub)

    def _label(self) -> str:
        t = self.task
        return t._label() if t is not None else "idle worker"

    def __repr__(self) -> str:
        return f"<gofer worker of {self._label()}>"


_MAX_IDLE = 1024


class Task(Generic[T]):
    """A coroutine started by :func:`go`.

    ``join()`` waits for it and returns its result or re-raises its error;
    ``cancel()`` raises :class:`Cancelled` inside it at its next park point.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_exc",
        "_fn",
        "_g",
        "_hub",
        "_joiners",
        "_report",
        "_result",
        "_state",
        "name",
    )

    # The slots are filled by _spawn(), the only maker of tasks.
    _hub: Hub
    _fn: Any
    _state: int
    _result: Any
    _exc: BaseException | None
    _joiners: list[Any] | None
    _callbacks: list[Callable[[Task[T]], Any]] | None
    _report: _Unretrieved | None
    _g: _Worker | None
    name: str

    def __init__(self) -> None:
        raise TypeError("gofer.Task cannot be made directly; start coroutines with gofer.go()")

    def _run_callbacks(self) -> None:
        cbs = self._callbacks
        self._callbacks = None
        for cb in cbs or ():
            self._hub.call_soon(cb, self)

    def _label(self, fn: Any = None) -> str:
        if self.name:
            return self.name
        f = fn if fn is not None else (self._fn[0] if self._fn else None)
        what = getattr(f, "__qualname__", None) or (repr(f) if f is not None else "finished")
        return f"Task-{id(self):x} ({what})"

    # -- public API ----------------------------------------------------------
    def done(self) -> bool:
        """True once the coroutine has returned, failed or been cancelled."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """True if the coroutine ended with :class:`Cancelled`."""
        return self._state == _CANCELLED

    def result(self) -> T:
        """The return value; re-raises the coroutine's exception.

        Raises ``RuntimeError`` if the task has not finished yet.
        """
        st = self._state
        if st == _DONE:
            return self._result  # type: ignore[no-any-return]
        if st == _PENDING:
            raise RuntimeError(f"{self._label()} has not finished; use join() to wait for it")
        exc = self._exc
        assert exc is not None
        if self._report is not None:
            self._report.exc = None
            self._report = None
        raise exc

    def exception(self) -> BaseException | None:
        """The exception the coroutine ended with (None if it returned)."""
        st = self._state
        if st == _PENDING:
            raise RuntimeError(f"{self._label()} has not finished; use join() to wait for it")
        if st == _DONE:
            return None
        if self._report is not None:
            self._report.exc = None
            self._report = None
        return self._exc

    def join(self, timeout: float | None = None) -> T:
        """Wait for the coroutine to finish; return its result or re-raise its error.

        With ``timeout`` (seconds), raise ``TimeoutError`` if it has not
        finished by then (the task keeps running).
        """
        st = self._state
        if st:
            if st == _DONE:
                return self._result  # type: ignore[no-any-return]
            return self.result()
        if timeout is not None:
            _check_timeout(timeout)
        me = _current_tasklike()
        if me is self._g:
            raise RuntimeError("a coroutine cannot join itself (it would wait forever)")
        hub = self._hub
        if me._hub is hub:
            if self._joiners is None:
                self._joiners = [me]
            else:
                self._joiners.append(me)
            park(_JoinWait(self), timeout)
        else:
            rw = RemoteWake(me)
            hub.call_threadsafe(self._add_remote, rw)
            park(rw, timeout)
        return self.result()

    def _add_remote(self, rw: RemoteWake) -> None:
        if self._state != _PENDING:
            rw.switch()
        elif self._joiners is None:
            self._joiners = [rw]
        else:
            self._joiners.append(rw)

    def cancel(self) -> bool:
        """Ask the coroutine to stop: ``Cancelled`` is raised at its next park point.

        Returns False if it had already finished. Safe from any thread.
        """
        if self._state != _PENDING:
            return False
        hub = self._hub
        if hub.thread_ident != threading.get_ident():
            hub.call_threadsafe(self.cancel)
            return True
        g = self._g
        if g is not None:
            g._cancel_req = g._hint = True
            interrupt(g)
        return True

    def add_done_callback(self, fn: Callable[[Task[T]], Any]) -> None:
        """Call ``fn(task)`` in the hub once the task is done (soon, if it is)."""
        if self._state != _PENDING:
            self._hub.call_soon(fn, self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Task[T]], Any]) -> int:
        """Remove every registration of ``fn``; return how many there were."""
        cbs = self._callbacks or []
        n = len(cbs)
        cbs[:] = [c for c in cbs if c != fn]
        return n - len(cbs)

    @property
    def stack(self) -> list[str]:
        """The coroutine's current stack, formatted (empty if not running)."""
        g = self._g
        frame = g.gr_frame if g is not None else None
        return traceback.format_stack(frame) if frame is not None else []

    def __repr__(self) -> str:
        state = ("pending", "done", "failed", "cancelled")[self._state]
        return f"<gofer.Task {self._label()} {state}>"


class _JoinWait:
    """The waitable of ``Task.join`` on the same hub."""

    __slots__ = ("task",)

    def __init__(self, task: Task[Any]) -> None:
        self.task = task

    def _gofer_abort(self, waiter: Any) -> bool:
        js = self.task._joiners
        if js is not None and waiter in js:
            js.remove(waiter)
            return True
        return False

    def __repr__(self) -> str:
        return f"<join {self.task._label()}>"


class RemoteWake:
    """Wakes a task parked on one hub from another hub or thread.

    ``switch()`` may be called from any thread (usually from a hub's ready
    queue); the wake is delivered on the parked task's own hub, where it is
    dropped if the task was aborted meanwhile (the abort runs there too, so
    the two cannot race).
    """

    __slots__ = ("cancelled", "fired", "task")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.fired = False
        self.cancelled = False

    def switch(self) -> None:
        hub = self.task._hub
        if hub.thread_ident == threading.get_ident():
            self._deliver()
        else:
            try:
                hub.call_threadsafe(self._deliver)
            except RuntimeError:
                pass  # that hub is gone: nobody waits any more

    def _deliver(self) -> None:
        if not self.cancelled and not self.fired:
            self.fired = True
            self.task._hub.ready.append(self.task)

    def _gofer_abort(self, task: Any) -> bool:
        if self.fired:
            return False
        self.cancelled = True
        return True

    def __repr__(self) -> str:
        return "<wake from another thread>"


class _Root:
    """The thread's main code, seen by the scheduler as a task."""

    __slots__ = ("_cancel_req", "_hint", "_hub", "_scopes", "_wait", "g", "name", "switch", "throw")

    def __init__(self, hub: Hub, g: greenlet) -> None:
        self.g = g
        self.switch = g.switch
        self.throw = g.throw
        self._hub = hub
        self._wait: Any = None
        self._hint = False
        self._cancel_req = False
        self._scopes: list[Any] = []
        self.name = "main thread code"

    def _label(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _current_tasklike() -> Any:
    g = getcurrent()
    if g.__class__ is _Worker:
        return g
    hub = hub_if_any()
    if hub is None or hub.closed:
        hub = get_hub()
    elif g is hub:
        raise BlockingInHubError(
            "a blocking gofer call was made inside the hub (from a callback or timer); "
            "start a coroutine with gofer.go() instead"
        )
    root = hub.root
    if root is None or root.g is not g:
        if g.parent is not None:
            raise RuntimeError(
                "gofer blocking calls must run in a gofer coroutine or in a thread's main code, "
                f"not in a foreign greenlet {g!r}"
            )
        root = hub.root = _Root(hub, g)
    return root


# -- parking ------------------------------------------------------------------


def park(waitable: Any, timeout: float | None = None) -> Any:
    """Suspend the current coroutine until something wakes it.

    The caller must already be registered in ``waitable`` (see the module
    docstring). With ``timeout``, raise ``TimeoutError`` if nothing wakes it
    by then (the registration is aborted first).
    """
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if t._hint:
        try:
            _raise_if_cancelled(t)
        except Cancelled:
            waitable._gofer_abort(t)
            raise
    t._wait = waitable
    hub = t._hub
    if timeout is None:
        return _switch_away(hub)
    if timeout <= 0:
        if waitable._gofer_abort(t):
            t._wait = None
            raise TimeoutError("timed out")
        return _switch_away(hub)
    h = hub.timer_at(hub.now() + timeout, _TimeoutFire(t, waitable))
    try:
        return _switch_away(hub)
    finally:
        h.cancel()


def _switch_away(hub: Hub) -> Any:
    """Leave the running (already registered) coroutine for the next ready one.

    When the next ready item is another coroutine, switch to it directly
    instead of through the hub: that halves the switches per wake. The hub
    still gets control after ``_HANDOFFS`` direct switches in a row, so
    timers, I/O and callbacks are never starved.
    """
    ready = hub.ready
    if ready and hub.handoffs > 0:
        nxt = ready[0]
        # Only to a started worker: a new greenlet starts on the C stack of
        # whoever first switches to it, so new ones must start from the hub.
        if nxt.__class__ is _Worker and nxt:
            hub.handoffs -= 1
            ready.popleft()
            return nxt.switch()
    return hub.switch()


class _TimeoutFire:
    __slots__ = ("t", "w")

    def __init__(self, t: Any, w: Any) -> None:
        self.t = t
        self.w = w

    def switch(self) -> None:
        t = self.t
        if t._wait is self.w and self.w._gofer_abort(t):
            t._wait = None
            t.throw(TimeoutError("timed out"))


def _deliverable(t: Any) -> Any:
    """The scope whose cancellation reaches ``t`` now, ``t`` itself, or None."""
    for sc in reversed(t._scopes):
        if sc.cancel_called:
            return sc
        if sc.shield:
            return None
    if t._cancel_req:
        return t
    return None


def _raise_if_cancelled(t: Any) -> None:
    d = _deliverable(t)
    if d is not None:
        raise Cancelled("cancelled", None if d is t else d)


def interrupt(t: Any) -> None:
    """Deliver a pending cancellation to ``t`` now if it is parked (hub thread only)."""
    if t is getcurrent() or (t.__class__ is _Root and t.g is getcurrent()):
        return  # running: it will see it at its next park
    w = t._wait
    if w is None:
        return
    d = _deliverable(t)
    if d is None:
        return
    if w._gofer_abort(t):
        t._wait = None
        t._hub.throw_into(t, Cancelled("cancelled", None if d is t else d))


def wait_readable(st: Any, timeout: float | None = None) -> None:
    """Park until the fd of ``st`` (an ``IoState`` of this hub) may be readable.

    Raises ``TimeoutError`` after ``timeout`` seconds, or the error the fd was
    closed with. Only one coroutine may wait per direction.
    """
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if st.rwaiter is not None:
        raise RuntimeError(f"another coroutine is already waiting to read from {st.label} {st.fd}")
    if st.closed:
        raise OSError(9, "Bad file descriptor (closed while waiting)")
    if st.poller.hub is not t._hub:
        raise RuntimeError(f"{st.label} {st.fd} belongs to another thread's hub")
    st.rwaiter = t
    st.poller.want(st, 1)
    park(st, timeout)


def wait_writable(st: Any, timeout: float | None = None) -> None:
    """Park until the fd of ``st`` may be writable (see :func:`wait_readable`)."""
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if st.wwaiter is not None:
        raise RuntimeError(f"another coroutine is already waiting to write to {st.label} {st.fd}")
    if st.closed:
        raise OSError(9, "Bad file descriptor (closed while waiting)")
    if st.poller.hub is not t._hub:
        raise RuntimeError(f"{st.label} {st.fd} belongs to another thread's hub")
    st.wwaiter = t
    st.poller.want(st, 2)
    park(st, timeout)


def yield_now() -> None:
    """Let every other ready coroutine run once, then continue."""
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if t._hint:
        _raise_if_cancelled(t)
    hub = t._hub
    ready = hub.ready
    if not ready and hub.handoffs > 0:
        hub.handoffs -= 1  # nobody else is ready: no switch, but count it
        return
    ready.append(t)
    t._wait = _YIELD
    _switch_away(hub)


def sleep(seconds: float) -> None:
    """Park the current coroutine for ``seconds`` (0 is ``yield_now``)."""
    if not seconds > 0:
        if seconds == 0:
            yield_now()
            return
        raise ValueError(f"sleep length must be >= 0, not {seconds!r}")
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    hub = t._hub
    park(hub.timer_at(hub.now() + seconds, t))


def _check_timeout(timeout: float) -> None:
    if not timeout >= 0:
        raise ValueError(f"timeout must be a non-negative number of seconds or None, not {timeout!r}")


# -- spawning and running ------------------------------------------------------


def go(fn: Callable[..., T], *args: Any, **kw: Any) -> Task[T]:
    """Start ``fn(*args, **kw)`` as a new coroutine on this thread's hub.

    The coroutine runs in a copy of the caller's ``contextvars`` context. It
    starts when the caller next parks (or yields).
    """
    if not callable(fn):
        raise TypeError(f"gofer.go() needs a callable, not {type(fn).__name__}: {fn!r}")
    try:
        hub = _tls.hub
    except AttributeError:
        hub = get_hub()
    return _spawn(hub, fn, args, kw)


def _spawn(hub: Hub, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> Task[T]:
    # Object.__new__ plus plain stores: no __init__ frame on this hot path.
    t: Task[T] = _new(Task)
    t._hub = hub
    t._fn = (fn, args, kw)
    t._state = _PENDING
    # _result and _exc stay unset until the task ends: readers check _state.
    t._joiners = t._callbacks = t._report = None
    t.name = ""
    idle = hub.idle_workers
    g = idle.pop() if idle else _Worker(hub)
    g.task = t
    g.gr_context = _copy_context()
    t._g = g
    hub.ready.append(g)
    return t


_new = object.__new__


def current() -> Task[Any] | None:
    """The running coroutine, or None in a thread's main code."""
    g = getcurrent()
    return g.task if g.__class__ is _Worker else None


def run(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn(*args, **kw)`` as the main coroutine and return its result.

    When it returns, leftover coroutines are cancelled and their ``finally``
    blocks run before ``run`` returns. Ctrl-C cancels everything and raises
    ``KeyboardInterrupt``; a deadlock raises :class:`gofer.Deadlock`.
    """
    return run_with(fn, args, kw)


def run_with(fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any], clock: Any = None) -> T:
    """:func:`run` with options (``clock``: a clock object such as ``gofer.testing.VirtualClock``)."""
    if not callable(fn):
        raise TypeError(f"gofer.run() needs a callable, not {type(fn).__name__}: {fn!r}")
    g = getcurrent()
    hub = hub_if_any()
    if g.parent is not None or (hub is not None and hub._in_run):
        raise RuntimeError("gofer.run() cannot be called from inside a running hub; use gofer.go() there")
    if hub is not None and clock is not None:
        raise RuntimeError("this thread already has a hub; a clock can only be given to a fresh one")
    if hub is None or hub.closed:
        hub = Hub(clock)
        set_hub(hub)
    hub._in_run = True
    root = _current_tasklike()
    main: Task[T] = _spawn(hub, fn, args, kw)
    main.name = "main"
    try:
        try:
            main.join()
        except BaseException:
            if not main.done():
                _cancel_all(root, hub)
            raise
        _cancel_all(root, hub)
        return main.result()
    finally:
        hub._in_run = False
        hub.close()


def _cancel_all(root: Any, hub: Hub) -> None:
    """Cancel every live task of ``hub`` and wait until they have all finished."""
    while tasks := hub.tasks:
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                t.join()
            except BaseException:
                t._report = None
        # tasks spawned by finally blocks are cancelled in the next round


# -- introspection ---------------------------------------------------------------


def _state_of(t: Task[Any], hub: Hub) -> str:
    g = t._g
    if g is None or (g._wait is None and g.gr_frame is None):
        return "not started"
    if g is getcurrent():
        return "running"
    if g in hub.ready:
        return "ready"
    return f"parked on {g._wait!r}"


def describe_parked(hub: Hub) -> list[str]:
    """One line per live task of ``hub``: its name and what it waits on."""
    out = []
    if hub.root is not None and hub.root._wait is not None:
        out.append(f"{hub.root._label()}: parked on {hub.root._wait!r}")
    for t in sorted(hub.tasks, key=lambda t: t._label()):
        out.append(f"{t._label()}: {_state_of(t, hub)}")
    return out


def dump_tasks(file: Any = None) -> str:
    """Print (to ``file``, default stderr) every live coroutine of this thread's hub.

    Each is shown with what it waits on and its stack. Returns the text.
    """
    import sys

    hub = hub_if_any()
    lines: list[str] = []
    if hub is None:
        lines.append("gofer: no hub in this thread")
    else:
        lines.append(f"gofer: {len(hub.tasks)} live coroutine(s) on {hub!r}")
        for t in sorted(hub.tasks, key=lambda t: t._label()):
            lines.append(f"- {t._label()}: {_state_of(t, hub)}")
            lines.extend("    " + ln.rstrip().replace("\n", "\n    ") for ln in t.stack)
    text = "\n".join(lines) + "\n"
    print(text, end="", file=file if file is not None else sys.stderr)
    return text
