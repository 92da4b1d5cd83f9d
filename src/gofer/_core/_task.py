"""Coroutines: ``Task``, ``go``, ``run``, ``current`` and introspection.

A :class:`Task` is the user's handle on a coroutine: its result or
exception, its joiners and done callbacks. The coroutine itself runs on a
worker greenlet from :mod:`gofer._park`, which also holds every switch.
``run`` drives a program: it starts the main coroutine, waits for it, then
cancels and waits for whatever is left. ``dump_tasks`` and the hub's
``Deadlock`` message describe what each live coroutine is waiting on.
"""

from __future__ import annotations

import atexit
import contextvars
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from greenlet import getcurrent

from gofer._hub import Deadlock, Hub, _tls, get_hub, hub_if_any, set_hub
from gofer._park import (
    _CANCELLED,
    _DONE,
    _PENDING,
    Cancelled,
    RemoteWake,
    _check_timeout,
    _current_tasklike,
    _deliverable,
    _raise_if_cancelled,
    _Root,
    _switch_away,
    _Unretrieved,
    _Worker,
    give_way,
    interrupt,
    park,
    sleep,
    wait_readable,
    wait_writable,
    yield_now,
)

__all__ = [
    "Cancelled",
    "RemoteWake",
    "Task",
    "_Root",
    "_Worker",
    "_current_tasklike",
    "_deliverable",
    "_raise_if_cancelled",
    "current",
    "dump_tasks",
    "give_way",
    "go",
    "interrupt",
    "park",
    "run",
    "run_with",
    "sleep",
    "wait_readable",
    "wait_writable",
    "yield_now",
]

T = TypeVar("T")
_copy_context = contextvars.copy_context


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

    # The slots are filled by go(), the only maker of tasks.
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
        self._retrieved(exc)
        raise exc

    def exception(self) -> BaseException | None:
        """The exception the coroutine ended with (None if it returned)."""
        st = self._state
        if st == _PENDING:
            raise RuntimeError(f"{self._label()} has not finished; use join() to wait for it")
        if st == _DONE:
            return None
        assert self._exc is not None
        self._retrieved(self._exc)
        return self._exc

    def _retrieved(self, exc: BaseException) -> None:
        """The exception reached someone: do not report it, nor deliver it twice."""
        if self._report is not None:
            self._report.exc = None
            self._report = None
        if self._hub._fatal is exc:
            self._hub._fatal = None

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
        """Call ``fn(task)`` in the hub once the task is done (soon, if it is).

        Safe from any thread (``fn`` always runs in the task's hub thread).
        """
        if self._hub.thread_ident != threading.get_ident():
            self._hub.call_threadsafe(self.add_done_callback, fn)
            return
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
        if g is not None and g is getcurrent():
            return traceback.format_stack(sys._getframe(1))
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
    # object.__new__ plus plain stores: no __init__ frame on this hot path.
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
    g.gr_context = g._ctx = _copy_context()
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
    if hub is not None and clock is not None and not hub.closed:
        if hub.tasks or (hub.root is not None and hub.root._wait is not None):
            raise RuntimeError("this thread already has a hub in use; a clock can only be given to a fresh one")
        hub.close()  # idle (left by plain-code waits): make way for one on this clock
    if hub is None or hub.closed:
        hub = Hub(clock)
        set_hub(hub)
    hub._in_run = True
    _current_tasklike()  # registers this thread's main code with the hub
    main: Task[T] = go(fn, *args, **kw)  # on the hub just installed
    main.name = "main"
    hub.main = main  # a signal handler's exception is raised in it (Hub.run)
    try:
        try:
            main.join()
        except BaseException:
            _cancel_all(hub)  # main failed, Ctrl-C, or Deadlock: clean up, then raise
            raise
        _cancel_all(hub)
        return main.result()
    finally:
        hub._in_run = False
        hub.main = None
        hub.close()


def _cancel_all(hub: Hub) -> None:
    """Cancel every live task of ``hub`` and wait until they have all finished.

    Their ``finally`` blocks run here. If they cannot finish (a ``Deadlock``
    while waiting) or Ctrl-C is pressed again, that error is raised.
    """
    while tasks := hub.tasks:
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                t.join()
            except (Deadlock, KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                t._report = None  # its error was its own; already reported or not wanted
        # tasks spawned by finally blocks are cancelled in the next round


# -- introspection ---------------------------------------------------------------


def _never_ran(t: Task[Any]) -> bool:
    """True if ``t`` is live but its body has not started yet."""
    g = t._g
    if g is None or g is getcurrent():
        return False
    fr = g.gr_frame
    # A fresh worker has no frame; a reused one waits in its idle loop's
    # switch until it runs the task it was given.
    return fr is None or (fr.f_code is _switch_away.__code__ and fr.f_back is not None
                          and fr.f_back.f_code is _Worker.run.__code__)


def _state_of(t: Task[Any], hub: Hub) -> str:
    g = t._g
    if g is not None and g is getcurrent():
        return "running"  # checked first: a running greenlet has no gr_frame
    if g is None or _never_ran(t):
        return "not started"
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


def _warn_never_ran_at_exit() -> None:
    """At interpreter exit, name the coroutines of plain code that never ran.

    ``go()`` outside ``run()`` only queues the coroutine: it runs when the
    thread's code next blocks in gofer. A program that ends first would drop
    it without a word (asyncio warns likewise about pending tasks).
    """
    hub = hub_if_any()
    if hub is None or hub.closed or hub._in_run:
        return
    never = sorted(t._label() for t in hub.tasks if _never_ran(t))
    if never:
        warnings.warn(
            f"gofer: {len(never)} coroutine(s) started with go() never ran, because the "
            "program ended before it blocked in gofer (join them, or use gofer.run()): "
            + ", ".join(never[:10]) + (", ..." if len(never) > 10 else ""),
            RuntimeWarning,
            stacklevel=2,
        )


atexit.register(_warn_never_ran_at_exit)
