"""Parking: the only switches between coroutines and the hub, and the one wake.

Every blocking gofer call ends in :func:`park`: the caller registers itself
somewhere (a channel's wait queue, an fd's waiter slot, a timer) and hands that
registration to ``park`` as the *waitable* (``_types.Waitable``). A waitable
has ``_gofer_abort(task) -> bool``, which unregisters the task and says
whether it did; cancellation and timeouts call it, so no primitive needs
try/except clean-up, and a waiter is woken or aborted exactly once. Whoever
takes a waiter out of its registration wakes it with :func:`wake`, the one
way to make a parked task runnable (the pollers' readiness loops alone
append to the ready queue themselves, for speed); resumption values travel
in the registration itself, not through the switch. With ``GOFER_DEBUG=1``
``wake`` checks that a task is woken at most once per park.

Coroutines run on :class:`Worker` greenlets that are reused from task to
task (a fresh greenlet costs an mmap/munmap pair for CPython's frame stack);
their body, which runs and finishes tasks, is ``_task.run_tasks``. A parking
coroutine switches straight to the next ready worker when there is one
(:func:`switch_away`), sharing the hub's switch budget so that timers and
I/O are still served. The thread's main code takes part through a small
stand-in (:class:`Root`) so that blocking calls also work outside ``run()``.

Cancellation is level-triggered, as in trio: once a task (or a cancel scope
around the running code) is cancelled, every park inside it raises
``Cancelled`` until the code leaves it; ``gofer.shield()`` protects clean-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from greenlet import getcurrent, greenlet

from gofer._core._atexit import AtExitFreeze, freeze_here
from gofer._core._hub import BlockingInHubError, Hub, get_hub, hub_if_any
from gofer._core._registry import DEBUG
from gofer._core._types import TaskLike

__all__ = [
    "Cancelled",
    "RemoteWake",
    "Root",
    "Worker",
    "current_tasklike",
    "deliverable",
    "interrupt",
    "new_worker",
    "park",
    "raise_if_cancelled",
    "switch_away",
    "wake",
]

_monotonic = time.monotonic
_get_ident = threading.get_ident


class Cancelled(BaseException):
    """Raised inside a coroutine at a park point when it has been cancelled.

    It derives from ``BaseException`` so that ``except Exception`` does not
    swallow it. ``scope`` is the cancel scope that was cancelled (``None`` for
    ``Task.cancel()``).
    """

    def __init__(self, msg: str = "cancelled", scope: Any = None) -> None:
        super().__init__(msg)
        self.scope = scope


class Worker(greenlet):  # type: ignore[misc]
    """A greenlet that runs tasks, one after another (its body: ``_task.run_tasks``).

    Starting a fresh greenlet costs an mmap/munmap pair for CPython's frame
    stack (about 10 us), so finished workers wait in their hub's idle pool
    and take the next task instead. While running a task the worker is the
    task-like (``_types.TaskLike``) the scheduler parks and wakes: it carries
    the cancellation state of the task it runs.
    """

    __slots__ = ("_cancel_hint", "_cancel_req", "_hub", "_scopes", "_throw", "_wait", "task")

    # No __init__: new_worker() makes them. Through an __init__ of ours, a
    # fresh worker cost a Python frame and a second call of greenlet's own
    # (0.12-0.15 us of 0.5), once per task when many are alive at once.
    _hub: Hub
    task: Any
    _wait: Any
    _throw: BaseException | None  # raised when it next resumes
    _cancel_hint: bool  # see _types.TaskLike
    _cancel_req: bool
    # A tuple, replaced on each enter and exit (_cancel): the empty one is
    # shared, so a worker that never enters a scope allocates nothing.
    _scopes: tuple[Any, ...]

    def _label(self) -> str:
        t = self.task
        return t._label() if t is not None else "idle worker"

    def __repr__(self) -> str:
        return f"<gofer worker of {self._label()}>"


def new_worker(hub: Hub, body: Callable[[], None]) -> Worker:
    """A fresh worker of ``hub``; ``body`` runs on its first switch (greenlet drops it once started)."""
    w = Worker(body, hub)  # greenlet's own init: the body and the parent
    hub.workers.add(w)
    w._hub = hub
    w.task = w._wait = w._throw = None
    w._cancel_hint = w._cancel_req = False
    w._scopes = ()
    return w


class Root:
    """The thread's main code, seen by the scheduler as a task (a ``TaskLike``)."""

    __slots__ = (
        "_cancel_hint", "_cancel_req", "_hub", "_scopes", "_throw", "_wait", "g", "name", "switch", "throw",
    )

    def __init__(self, hub: Hub, g: greenlet) -> None:
        self.g = g
        self.switch = g.switch
        self.throw = g.throw
        self._hub = hub
        self._wait: Any = None
        self._throw: BaseException | None = None
        self._cancel_hint = False
        self._cancel_req = False
        self._scopes: tuple[Any, ...] = ()
        self.name = "main thread code"

    def _label(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def current_tasklike() -> TaskLike:
    """The running coroutine's worker, or the :class:`Root` of this thread's main code.

    Raises ``BlockingInHubError`` inside the hub, and ``RuntimeError`` in a
    greenlet gofer did not make.
    """
    g = getcurrent()
    if g.__class__ is Worker:
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
        root = hub.root = Root(hub, g)
    return root


# -- parking ------------------------------------------------------------------


def park(waitable: Any, timeout: float | None = None) -> Any:
    """Suspend the current coroutine until something wakes it.

    The caller must already be registered in ``waitable`` (see the module
    docstring). With ``timeout``, raise ``TimeoutError`` if nothing wakes it
    by then (the registration is aborted first).
    """
    t = getcurrent()
    if t.__class__ is not Worker:
        t = current_tasklike()
    if t._cancel_hint:
        try:
            raise_if_cancelled(t)
        except Cancelled:
            waitable._gofer_abort(t)
            raise
    t._wait = waitable
    hub = t._hub
    if timeout is None:
        r = switch_away(hub, t)
        t._wait = None  # do not keep the registration (and what it holds) alive
        return r
    if timeout <= 0 and waitable._gofer_abort(t):
        t._wait = None
        raise TimeoutError("timed out")
    if timeout != timeout:  # NaN: it would never fire nor compare
        waitable._gofer_abort(t)
        t._wait = None
        raise ValueError("timeout must be a number of seconds or None, not nan")
    fire = _TimeoutFire(t, waitable)
    h = hub.timer_at(hub.now() + timeout, fire)
    try:
        return switch_away(hub, t)
    finally:
        t._wait = None
        h.cancel()
        # The timer may already have fired into the ready queue while the task
        # was being woken: disarm it so it cannot hit a later park.
        fire.t = None


def switch_away(hub: Hub, t: TaskLike) -> Any:
    """Leave the running (already registered) coroutine ``t`` for the next ready one.

    When the next ready item is another coroutine, switch to it directly
    instead of through the hub: that halves the switches per wake. Direct
    switches spend the hub's switch budget (``hub.handoffs``) and stop once
    the time slice is over, so the hub still gets control every few hundred
    switches, or every ``SLICE`` seconds, for timers, I/O and callbacks.

    On resuming, ``t`` raises the exception it was woken with, if any
    (``Hub.throw_into``): raised here, on its own stack, it holds nothing of
    the hub's.
    """
    ready = hub.ready
    n = hub.handoffs
    if ready and n > 0:
        # The clock is read on every 4th hand-off only (a read costs about
        # 50 ns): the end of the slice is noticed at most 3 hand-offs late.
        if n & 3 or _monotonic() < hub.slice_end:
            nxt = ready[0]
            # Only to a started worker: a new greenlet starts on the C stack of
            # whoever first switches to it, so new ones must start from the hub.
            if nxt.__class__ is Worker and nxt:
                hub.handoffs = n - 1
                ready.popleft()
                r = nxt.switch()
                if t._throw is not None:
                    raise_thrown(t)
                return r
        else:
            hub.switches -= n  # budget left unspent: not switches (Hub._loop)
            hub.handoffs = 0  # the slice is over: the hub looks at I/O next
    r = hub.switch()
    if t._throw is not None:
        raise_thrown(t)
    return r


def raise_thrown(t: TaskLike) -> NoReturn:
    """Raise the exception ``t`` was woken with (its ``_throw``), clearing it."""
    exc = t._throw
    t._throw = None
    assert exc is not None
    if exc.__class__ is AtExitFreeze:
        freeze_here(exc)  # a thread's main code, at interpreter exit (_atexit)
    try:
        raise exc
    finally:
        # This frame is in the traceback, and its local would hold the
        # exception, and so the raiser's frames, in a cycle until a full gc.
        del exc


class _TimeoutFire:
    """The timer target of ``park(..., timeout)``: aborts the wait, raises TimeoutError."""

    __slots__ = ("t", "w")

    def __init__(self, t: TaskLike, w: Any) -> None:
        self.t: TaskLike | None = t  # None once the park is over (the timer is then moot)
        self.w = w

    def switch(self) -> None:
        t = self.t
        if t is not None and t._wait is self.w and self.w._gofer_abort(t):
            t._wait = None
            t._throw = TimeoutError("timed out")
            t.switch()


# -- cancellation -----------------------------------------------------------------


def deliverable(t: TaskLike) -> Any:
    """The scope whose cancellation reaches ``t`` now, ``t`` itself, or None."""
    for sc in reversed(t._scopes):
        if sc.cancel_called:
            return sc
        if sc.shield:
            return None
    if t._cancel_req:
        return t
    return None


def raise_if_cancelled(t: TaskLike) -> None:
    """Raise ``Cancelled`` in ``t`` (the running task-like) if a cancellation reaches it."""
    d = deliverable(t)
    if d is not None:
        raise Cancelled("cancelled", None if d is t else d)


def interrupt(t: TaskLike) -> None:
    """Deliver a pending cancellation to ``t`` now if it is parked (hub thread only)."""
    if t is getcurrent() or (t.__class__ is Root and t.g is getcurrent()):
        return  # running: it will see it at its next park
    w = t._wait
    if w is None:
        return
    d = deliverable(t)
    if d is None:
        return
    if w._gofer_abort(t):
        t._wait = None
        t._hub.throw_into(t, Cancelled("cancelled", None if d is t else d))


# -- waking ----------------------------------------------------------------------


def _check_wake(task: TaskLike) -> None:
    """GOFER_DEBUG: a task is woken only while parked, and once per park."""
    if task._wait is None or task in task._hub.ready:
        raise RuntimeError(f"gofer (GOFER_DEBUG): {task!r} woken twice, or while not parked")


def _append_ready(hub: Hub, task: TaskLike) -> None:
    # hub.ready is read here, in the hub's thread, not when the call is queued:
    # an instrument may swap the queue in between (gofer._instrument).
    if DEBUG:
        _check_wake(task)
    hub.ready.append(task)


def wake(task: TaskLike) -> None:
    """Make ``task`` (parked, and just taken out of its registration) runnable.

    Safe from any thread: a task of another thread's hub is woken through
    that hub's ``call_threadsafe``. Whatever the task is to get back must be
    in its registration already.
    """
    hub = task._hub
    if hub.thread_ident == _get_ident():
        hub.ready.append(task)
    else:
        _wake_remote(task)


if DEBUG:

    def wake(task: TaskLike) -> None:  # the checked twin, chosen at import
        hub = task._hub
        if hub.thread_ident == _get_ident():
            _check_wake(task)
            hub.ready.append(task)
        else:
            _wake_remote(task)


def _wake_remote(task: TaskLike) -> None:
    hub = task._hub
    try:
        hub.call_threadsafe(_append_ready, hub, task)
    except RuntimeError:
        pass  # that hub is closed: its thread has left gofer, nobody waits any more


class RemoteWake:
    """Wakes a task parked on one hub from another hub or thread.

    ``switch()`` may be called from any thread (usually from a hub's ready
    queue); the wake is delivered on the parked task's own hub, where it is
    dropped if the task was aborted meanwhile (the abort runs there too, so
    the two cannot race).
    """

    __slots__ = ("cancelled", "fired", "task")

    def __init__(self, task: TaskLike) -> None:
        self.task = task
        self.fired = False
        self.cancelled = False

    def switch(self) -> None:
        hub = self.task._hub
        if hub.thread_ident == _get_ident():
            self._deliver()
        else:
            try:
                hub.call_threadsafe(self._deliver)
            except RuntimeError:
                pass  # that hub is gone: nobody waits any more

    def _deliver(self) -> None:
        if not self.cancelled and not self.fired:
            self.fired = True
            wake(self.task)

    def _gofer_abort(self, task: Any) -> bool:
        if self.fired:
            return False
        self.cancelled = True
        return True

    def __repr__(self) -> str:
        return "<wake from another thread>"
