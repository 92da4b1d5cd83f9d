"""Parking: the only switches between coroutines and the hub.

Every blocking gofer call ends in :func:`park`: the caller registers itself
somewhere (a channel's wait queue, an fd's waiter slot, a timer) and hands that
registration to ``park`` as the *waitable*. A waitable has
``_gofer_abort(task) -> bool``, which unregisters the task and says whether it
did; cancellation and timeouts call it, so no primitive needs try/except
clean-up, and a waiter is woken or aborted exactly once. Whoever takes a
waiter out of its registration wakes it (``hub.ready.append(task)``);
resumption values travel in the registration itself, not through the switch.

Coroutines run on :class:`_Worker` greenlets that are reused from task to
task (a fresh greenlet costs an mmap/munmap pair for CPython's frame stack).
A parking coroutine switches straight to the next ready worker when there is
one (``_switch_away``), sharing the hub's switch budget so that timers and
I/O are still served. The thread's main code takes part through a small
stand-in (:class:`_Root`) so that blocking calls also work outside ``run()``.

Cancellation is level-triggered, as in trio: once a task (or a cancel scope
around the running code) is cancelled, every park inside it raises
``Cancelled`` until the code leaves it; ``gofer.shield()`` protects clean-up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from greenlet import GreenletExit, getcurrent, greenlet

from gofer._hub import SLICE, BlockingInHubError, Hub, get_hub, hub_if_any

__all__ = [
    "SLICE",
    "Cancelled",
    "RemoteWake",
    "give_way",
    "interrupt",
    "on_readable",
    "park",
    "sleep",
    "wait_readable",
    "wait_writable",
    "yield_now",
]

_PENDING, _DONE, _FAILED, _CANCELLED = 0, 1, 2, 3
log = logging.getLogger("gofer")
_monotonic = time.monotonic


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

    __slots__ = ("_cancel_req", "_ctx", "_hint", "_hub", "_scopes", "_throw", "_wait", "task")

    def __init__(self, hub: Hub) -> None:
        greenlet.__init__(self, None, hub)
        hub.workers.add(self)
        self._hub = hub
        self.task: Any = None
        self._ctx: Any = None  # the running task's contextvars.Context
        self._wait: Any = None
        self._throw: BaseException | None = None  # raised when it next resumes
        self._hint = False
        self._cancel_req = False
        self._scopes: list[Any] = []

    def run(self) -> None:
        hub = self._hub
        idle = hub.idle_workers
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
                    # Whoever joins it gets it from join(); with no joiner it
                    # goes to the thread's main code (run() or plain code).
                    if not t._joiners:
                        hub._fatal = exc
                else:
                    t._report = _Unretrieved(t._label(fn), exc)
            t._fn = t._g = None
            js = t._joiners
            if js is not None:
                t._joiners = None
                hub.ready.extend(js)  # not a local: an instrument may swap the queue
            if t._callbacks is not None:
                t._run_callbacks()
            # Drop references so that an idle worker keeps nothing alive.
            t = fn = args = kw = js = None
            self.task = None
            self._wait = None
            # The finished task's context variables must not stay alive with the
            # idle worker; resetting a running greenlet's context is costly, so
            # only when there is something in it.
            ctx = self._ctx
            self._ctx = None
            if ctx:
                self.gr_context = None  # type: ignore[misc]  # a greenlet attribute
            ctx = None
            # No scope left open by the finished task (a suspended generator can
            # leave one on the stack) may reach the next one.
            if self._hint or self._scopes:
                self._hint = self._cancel_req = False
                self._scopes = []
            if self._throw is not None:  # delivered after its last park: moot now
                self._throw = None
            if len(idle) >= _MAX_IDLE or hub.closed:
                hub.workers.discard(self)
                return
            idle.append(self)
            _switch_away(hub, self)

    def _label(self) -> str:
        t = self.task
        return t._label() if t is not None else "idle worker"

    def __repr__(self) -> str:
        return f"<gofer worker of {self._label()}>"


_MAX_IDLE = 1024


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

    __slots__ = ("_cancel_req", "_hint", "_hub", "_scopes", "_throw", "_wait", "g", "name", "switch", "throw")

    def __init__(self, hub: Hub, g: greenlet) -> None:
        self.g = g
        self.switch = g.switch
        self.throw = g.throw
        self._hub = hub
        self._wait: Any = None
        self._throw: BaseException | None = None
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
        r = _switch_away(hub, t)
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
        return _switch_away(hub, t)
    finally:
        t._wait = None
        h.cancel()
        # The timer may already have fired into the ready queue while the task
        # was being woken: disarm it so it cannot hit a later park.
        fire.t = None


def _switch_away(hub: Hub, t: Any) -> Any:
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
            if nxt.__class__ is _Worker and nxt:
                hub.handoffs = n - 1
                ready.popleft()
                r = nxt.switch()
                if t._throw is not None:
                    _raise_thrown(t)
                return r
        else:
            hub.switches -= n  # budget left unspent: not switches (Hub._loop)
            hub.handoffs = 0  # the slice is over: the hub looks at I/O next
    r = hub.switch()
    if t._throw is not None:
        _raise_thrown(t)
    return r


def _raise_thrown(t: Any) -> None:
    exc = t._throw
    t._throw = None
    raise exc


class _TimeoutFire:
    __slots__ = ("t", "w")

    def __init__(self, t: Any, w: Any) -> None:
        self.t = t
        self.w = w

    def switch(self) -> None:
        t = self.t
        if t is not None and t._wait is self.w and self.w._gofer_abort(t):
            t._wait = None
            t._throw = TimeoutError("timed out")
            t.switch()


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
    if st.rwaiter is not None or st.closed or st.poller.hub is not t._hub:
        _io_wait_error(st, t, st.rwaiter, "read from")
    st.rwaiter = t
    _io_park(st, t, 1, timeout)


def wait_writable(st: Any, timeout: float | None = None) -> None:
    """Park until the fd of ``st`` may be writable (see :func:`wait_readable`)."""
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if st.wwaiter is not None or st.closed or st.poller.hub is not t._hub:
        _io_wait_error(st, t, st.wwaiter, "write to")
    st.wwaiter = t
    _io_park(st, t, 2, timeout)


def _io_park(st: Any, t: Any, mode: int, timeout: float | None) -> None:
    poller = st.poller
    poller.nwaiters += 1
    if poller.interest:  # a level-triggered poller registers interest now
        poller.want(st, mode)
    if timeout is None and not t._hint:
        # park() without its generality: the socket layer's hottest wait.
        t._wait = st
        _switch_away(t._hub, t)
        t._wait = None
    else:
        park(st, timeout)


def _io_wait_error(st: Any, t: Any, waiter: Any, what: str) -> None:
    if waiter is not None:
        raise RuntimeError(f"another coroutine is already waiting to {what} {st.label} {st.fd}")
    if st.closed:
        raise OSError(9, "Bad file descriptor (closed while waiting)")
    raise RuntimeError(f"{st.label} {st.fd} belongs to another thread's hub")


class ReadableHandle:
    """A callback parked in an fd's read slot by :func:`on_readable`.

    The poller treats it as a waiter: it queues it on the hub's ready queue
    when an edge arrives (``switch()`` then calls the function), or throws
    the close error into it (``_throw``, kept as ``error``). ``cancel()``
    takes it back out.
    """

    __slots__ = ("_throw", "args", "error", "fn", "st")

    def __init__(self, st: Any, fn: Any, args: tuple[Any, ...]) -> None:
        self.st = st
        self.fn: Any = fn
        self.args: tuple[Any, ...] | None = args
        self._throw: BaseException | None = None
        self.error: BaseException | None = None

    def switch(self) -> None:
        fn = self.fn
        if fn is None:
            return  # cancelled after it was queued
        self.error, self._throw = self._throw, None
        args = self.args or ()
        self.fn = self.args = None  # fires once; keeps nothing alive after
        try:
            fn(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            log.exception("gofer: exception in on_readable callback %r", fn)

    def cancel(self) -> bool:
        """Unregister; True if ``fn`` had not been called (and now never will be)."""
        if self.fn is None:
            return False
        self.fn = self.args = None
        st = self.st
        if st.rwaiter is self:
            st.rwaiter = None
            st.poller.dropped(st, 1)
        return True

    @property
    def pending(self) -> bool:
        """True until the callback has run or been cancelled."""
        return self.fn is not None

    def __repr__(self) -> str:
        return f"<on_readable {self.fn!r} for {self.st.label} {self.st.fd}>"


def on_readable(st: Any, fn: Any, *args: Any) -> ReadableHandle:
    """Call ``fn(*args)`` in the hub once the fd of ``st`` may be readable.

    The callback takes the fd's read slot, as a coroutine in
    :func:`wait_readable` would, but holds no coroutine while it waits: a
    connection waiting for its next request can park itself on its fd and
    start a coroutine (``gofer.go``) only when bytes arrive. ``fn`` also runs
    (once) when the fd is closed or fails while registered; the error is
    then in the handle's ``error``. ``fn`` runs inside the hub, like a
    ``hub.call_soon`` callback: it must not block. The registration counts
    as a parked I/O waiter for deadlock detection until it fires or is
    cancelled (``handle.cancel()``). Call it on the hub's own thread, after
    a read found the fd drained (``st.readable`` cleared): while the flag is
    set, ``fn`` is queued at once, as the bytes may already be there.
    """
    hub = hub_if_any()
    if hub is None or st.rwaiter is not None or st.closed or st.poller.hub is not hub:
        if st.rwaiter is not None:
            raise RuntimeError(f"something is already waiting to read from {st.label} {st.fd}")
        if st.closed:
            raise OSError(9, f"Bad file descriptor: {st.label} {st.fd} is closed")
        raise RuntimeError(f"{st.label} {st.fd} belongs to another thread's hub")
    h = ReadableHandle(st, fn, args)
    if st.readable:
        # No edge may come for bytes already there (epoll is edge-triggered):
        # while the flag says "maybe readable", call at once.
        hub.ready.append(h)
        return h
    st.rwaiter = h
    poller = st.poller
    poller.nwaiters += 1
    if poller.interest:
        poller.want(st, 1)
    return h


def yield_now() -> None:
    """Let every other ready coroutine run once, then continue.

    Once the time slice is over (``SLICE`` since timers and I/O were last
    looked at), due timers and ready I/O run first too. With another
    coroutine ready the clock is read on every 4th yield (as on every 4th
    hand-off in ``_switch_away``); alone, on every yield.
    """
    t = getcurrent()
    if t.__class__ is not _Worker:
        t = _current_tasklike()
    if t._hint:
        _raise_if_cancelled(t)
    hub = t._hub
    ready = hub.ready
    n = hub.handoffs
    if ready and n > 0:
        hub.handoffs = n - 1
        if n & 3 == 0 and _monotonic() >= hub.slice_end:
            _give_way(hub, t)
            return
        # _switch_away inlined: this is the hottest park of all. A task that
        # yields is ready, not parked: it keeps _wait None (nothing to abort)
        # and nothing is thrown into it through _throw (Hub._interrupt_main).
        nxt = ready[0]
        if nxt.__class__ is _Worker and nxt:
            ready.popleft()
            ready.append(t)
            nxt.switch()
            return
    elif _monotonic() >= hub.slice_end:
        _give_way(hub, t)
        return
    elif n > 0:
        hub.handoffs = n - 1
        return  # nobody else is ready: no switch, but it counts
    ready.append(t)
    t._wait = _YIELD
    hub.switch()
    if t._throw is not None:
        _raise_thrown(t)


def _give_way(hub: Hub, t: Any) -> None:
    """Queue what is due (timers, I/O, other threads' calls), let it and every
    other ready coroutine run, then continue. Never raises ``Cancelled``."""
    hub.collect()
    ready = hub.ready
    if not ready:
        return
    ready.append(t)
    t._wait = _YIELD
    _switch_away(hub, t)
    t._wait = None


def give_way(hub: Hub) -> None:
    """Let timers, I/O and other coroutines run if the time slice is over.

    For fast paths (a socket call or channel operation that succeeds at
    once): call it *before* the operation, so that nothing it would return
    can be lost. It never raises ``Cancelled``, and does nothing in the hub
    itself or in a thread whose main code is not taking part.
    """
    if _monotonic() < hub.slice_end:
        return
    t = getcurrent()
    if t.__class__ is not _Worker:
        root = hub.root
        if root is None or root.g is not t:
            return  # the hub, a callback, or a foreign greenlet: never switch
        t = root
    if t._hub is hub:
        _give_way(hub, t)


def sleep(seconds: float) -> None:
    """Park the current coroutine for ``seconds`` (0 is ``yield_now``)."""
    try:
        positive = seconds > 0
    except TypeError:
        raise TypeError(
            f"sleep() takes a number of seconds, not {type(seconds).__name__}: {seconds!r}"
        ) from None
    if not positive:
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
