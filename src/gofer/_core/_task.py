"""Coroutines: ``Task``, ``go``, ``current``, and the worker body that runs them.

A :class:`Task` is the user's handle on a coroutine: its result or
exception, its joiners and done callbacks. :func:`go` puts a task on an
idle worker greenlet (``_park.Worker``) and queues it; :func:`run_tasks`,
the workers' body, runs the task, finishes it (result or error, joiners
woken, done callbacks queued), then parks the worker in the idle pool for
the next one: tasks start and finish here, and nowhere else.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from greenlet import GreenletExit, getcurrent

from gofer._core._hub import Hub, get_hub
from gofer._core._local import _tls
from gofer._core._park import (
    Cancelled,
    RemoteWake,
    Worker,
    current_tasklike,
    interrupt,
    new_worker,
    park,
    raise_if_cancelled,
    switch_away,
)
from gofer._core._waitq import check_timeout

__all__ = ["Task", "current", "go", "run_tasks"]

_PENDING, _DONE, _FAILED, _CANCELLED = 0, 1, 2, 3
log = logging.getLogger("gofer")
_CORE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
T = TypeVar("T")
_copy_context = contextvars.copy_context


class Task(Generic[T]):
    """A coroutine started by :func:`go`.

    ``join()`` waits for it and returns its result or re-raises its error;
    ``cancel()`` raises :class:`Cancelled` inside it at its next park point.
    """

    # No per-task tuple or dict beyond these slots (issue 12): go() stores
    # fn, args and kwargs (None when there are none) apart, and a finished
    # task keeps its result or its exception in one slot, ``_out``.
    __slots__ = (
        "__weakref__",
        "_args",
        "_callbacks",
        "_fn",
        "_g",
        "_hub",
        "_joiners",
        "_kw",
        "_out",
        "_report",
        "_state",
        "name",
    )

    # The slots are filled by go(), the only maker of tasks.
    _hub: Hub
    _fn: Any
    _args: tuple[Any, ...] | None
    _kw: dict[str, Any] | None
    _state: int
    _out: Any  # the result once _DONE, the exception once _FAILED or _CANCELLED (before: go()'s context)
    _joiners: list[Any] | None
    _callbacks: list[Callable[[Task[T]], Any]] | None
    _report: _Unretrieved | None
    _g: Worker | None
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
        f = fn if fn is not None else self._fn
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
            return self._out  # type: ignore[no-any-return]
        if st == _PENDING:
            raise RuntimeError(f"{self._label()} has not finished; use join() to wait for it")
        exc: BaseException = self._out
        self._retrieved(exc)
        try:
            raise exc
        finally:
            # This frame goes into exc's traceback: its locals must not hold
            # the task (which holds exc) nor exc, or they make a cycle.
            del exc, self

    def exception(self) -> BaseException | None:
        """The exception the coroutine ended with (None if it returned)."""
        st = self._state
        if st == _PENDING:
            raise RuntimeError(f"{self._label()} has not finished; use join() to wait for it")
        if st == _DONE:
            return None
        exc: BaseException = self._out
        self._retrieved(exc)
        return exc

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
        if not self._state:
            if timeout is not None:
                check_timeout(timeout)
            me = current_tasklike()
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
        if self._state == _DONE:
            return self._out  # type: ignore[no-any-return]
        try:
            return self.result()  # raises the task's error
        finally:
            # This frame goes into that error's traceback: its locals must not
            # hold the task (which holds the error), or they make a cycle.
            del self

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
            g._cancel_req = g._cancel_hint = True
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
            # From the first frame outside the kernel (a compiled kernel has
            # no frames of its own, so a fixed depth would not do).
            f: Any = sys._getframe(0)
            while f is not None and f.f_code.co_filename.startswith(_CORE_DIR):
                f = f.f_back
            return traceback.format_stack(f)
        frame = g.gr_frame if g is not None else None
        return traceback.format_stack(frame) if frame is not None else []

    def _never_ran(self) -> bool:
        """True if the task is live but its body has not started yet."""
        # go() stores the call's args (a tuple); run_tasks drops them on starting.
        return self._state == _PENDING and self._args is not None

    def _where(self) -> str:
        """What the task is doing: running, not started, ready, or parked on what."""
        g = self._g
        if g is not None and g is getcurrent():
            return "running"  # checked first: a running greenlet has no gr_frame
        if g is None or self._never_ran():
            return "not started"
        if g in self._hub.ready:
            return "ready"
        return f"parked on {g._wait!r}"

    def __repr__(self) -> str:
        state = ("pending", "done", "failed", "cancelled")[self._state]
        return f"<gofer.Task {self._label()} {state}>"


class _JoinWait:
    """The waitable of ``Task.join`` on the same hub.

    Not a ``gofer._core.ParkingLot``, on purpose: ``_joiners`` is one FIFO
    of local joiners and of ``RemoteWake`` wakers of joiners on other
    threads' hubs (added through ``call_threadsafe``), and the finishing
    worker queues them all with one ``ready.extend``. A lot holds task-likes
    of one hub only, and waking through it cost about 2,000 instructions
    (8%) more per spawn+join (callgrind, issue 10 item 3).
    """

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
    t._fn = fn
    t._args = args
    t._kw = kw or None  # ** makes a dict on every call; an empty one is not kept
    t._state = _PENDING
    t._joiners = t._callbacks = t._report = None
    t.name = ""
    idle = hub.idle_workers
    g = idle.pop() if idle else new_worker(hub, run_tasks)
    g.task = t
    # An empty context is not kept: a greenlet without one (an idle worker's
    # is None) makes its own, empty, when its code first sets a variable, as
    # a copy would be. That spares most tasks a Context (64 bytes, gc-tracked).
    # It waits in _out (unused until the task ends) for the worker to enter it
    # when it starts the task (run_tasks): greenlet refuses to set the context
    # of a suspended greenlet with no Python frame, as an idle worker of the
    # compiled kernel has none.
    ctx = _copy_context()
    t._out = ctx if ctx else None
    t._g = g
    hub.ready.append(g)
    return t


_new = object.__new__


def current() -> Task[Any] | None:
    """The running coroutine, or None in a thread's main code."""
    g = getcurrent()
    return g.task if g.__class__ is Worker else None


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


def run_tasks() -> None:
    """The body of every worker greenlet: run the tasks it is given, one after another."""
    worker = cast(Worker, getcurrent())
    hub = worker._hub
    idle = hub.idle_workers
    while True:
        t = worker.task
        fn = t._fn
        args = t._args
        kw = t._kw
        t._args = None  # the task has started (Task._never_ran)
        ctx = t._out  # the task's context, if it has variables (go())
        if ctx is not None:
            worker.gr_context = ctx
            ctx = None
        # The task body; kept inline (no call per task) as it is the hot path.
        try:
            if worker._cancel_hint:
                raise_if_cancelled(worker)
            # A call without * or ** stays in the same C eval frame (3.11+):
            # that keeps the coroutine's C stack, so each switch, small.
            if kw is not None:
                t._out = fn(*args, **kw)
            elif not args:
                t._out = fn()
            elif len(args) == 1:
                t._out = fn(args[0])
            elif len(args) == 2:
                t._out = fn(args[0], args[1])
            else:
                t._out = fn(*args)
            t._state = _DONE
        except (Cancelled, GreenletExit) as exc:
            t._out = exc if isinstance(exc, Cancelled) else Cancelled("the hub was closed")
            t._state = _CANCELLED
        except BaseException as exc:
            t._out = exc
            t._state = _FAILED
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                # Whoever joins it gets it from join(); with no joiner it
                # goes to the thread's main code (run() or plain code).
                if not t._joiners:
                    hub._fatal = exc
            else:
                t._report = _Unretrieved(t._label(fn), exc)
        t._fn = t._args = t._kw = t._g = None
        js = t._joiners
        if js is not None:
            t._joiners = None
            # The joiners' wake, all at once: each is a task of this hub parked in
            # join() or a RemoteWake. hub.ready, not a local: an instrument may
            # swap the queue.
            hub.ready.extend(js)
        if t._callbacks is not None:
            t._run_callbacks()
        # Drop references so that an idle worker keeps nothing alive.
        t = fn = args = kw = js = None
        worker.task = None
        worker._wait = None
        # The finished task's context variables must not stay alive with the
        # idle worker; resetting a running greenlet's context is costly, so
        # only when it has one (given by go(), or made by the task's code).
        if worker.gr_context is not None:
            worker.gr_context = None
        # No scope left open by the finished task (a suspended generator can
        # leave one on the stack) may reach the next one.
        if worker._cancel_hint or worker._scopes:
            worker._cancel_hint = worker._cancel_req = False
            worker._scopes = ()
        if worker._throw is not None:  # delivered after its last park: moot now
            worker._throw = None
        if len(idle) >= _MAX_IDLE or hub.closed:
            hub.workers.discard(worker)
            return
        idle.append(worker)
        switch_away(hub, worker)


_MAX_IDLE = 1024  # idle workers a hub keeps while busy (see Hub._trim_idle)
