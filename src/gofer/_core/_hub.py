"""The hub: one scheduler per OS thread.

A hub is a greenlet that owns a ready queue, a timer heap, a poller and a
wake-up fd. Its loop runs ready items (each has a ``switch()`` method: a task
greenlet, a pending exception to throw, or a callback), fires due timers and
polls for I/O, blocking only when nothing is ready. Coroutines are children
of the hub greenlet, so a finished coroutine returns control to the loop.

Other threads hand the hub work with :meth:`Hub.call_threadsafe`, which
queues a callback and writes the wake-up fd at most once per drain.

The hub never parks: a blocking gofer call made from inside it (from a
callback or a timer) raises :class:`BlockingInHubError` at once. When the
hub would block forever (nothing ready, no timers, no I/O waiters, no thread
jobs and no other thread alive that could wake it) it throws
:class:`Deadlock` into the thread's main code, as Go's runtime does.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenlet import GreenletExit, getcurrent, greenlet

from gofer._core._local import _tls, forget_hub, hub_if_any, set_hub
from gofer._core._poll import Poller, make_poller, make_wakeup_fd
from gofer._core._registry import hub_created, other_threads_alive
from gofer._core._timers import INF, SLICE, Callback, RealClock, TimerHandle
from gofer._core._wakeup import after_fork, call_threadsafe, drain_threadsafe, release

if TYPE_CHECKING:
    from gofer._core._park import Root

__all__ = ["BlockingInHubError", "Deadlock", "Hub", "get_hub", "hub_if_any", "set_hub"]

log = logging.getLogger("gofer")


class BlockingInHubError(RuntimeError):
    """A blocking gofer call was made from inside the hub (a callback or timer)."""


class Deadlock(RuntimeError):
    """Every coroutine is parked on something nothing can ever wake."""


_monotonic = time.monotonic
# Idle workers kept when the hub goes to sleep (see Hub._trim_idle).
_IDLE_KEEP = 64
# epoll_wait takes an int of milliseconds; also a sane upper bound for select.
_MAX_POLL = 86400.0
_seq = itertools.count()


class Hub(greenlet):  # type: ignore[misc]
    """The per-thread scheduler. Get the current thread's with :func:`get_hub`."""

    # Slots, not a __dict__: the loop and every park read these attributes.
    __slots__ = (
        "_cancelled_timers",
        "_fatal",
        "_fd_lock",
        "_in_run",
        "_poll_every",
        "_timers",
        "_ts_signalled",
        "_tsq",
        "_wakeup_r",
        "_wakeup_w",
        "clock",
        "closed",
        "handoffs",
        "idle_workers",
        "main",
        "now",
        "pending_jobs",
        "poller",
        "ready",
        "root",
        "slice_end",
        "switches",
        "thread_ident",
        "workers",
    )

    def __init__(self, clock: Any = None) -> None:
        root = getcurrent()
        while root.parent is not None:
            root = root.parent
        super().__init__(None, root)
        self.ready: deque[Any] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._cancelled_timers = 0
        self.clock = clock if clock is not None else RealClock()
        self.now: Callable[[], float] = self.clock.now
        self.thread_ident = threading.get_ident()
        self.workers: set[Any] = set()  # every worker greenlet of this hub
        self.idle_workers: list[Any] = []  # finished worker greenlets, reused
        self.pending_jobs = 0  # to_thread jobs started from this hub and not done
        # Calls from other threads (_wakeup.ThreadCalls): the queue, whether the
        # wake-up fd was written since the last drain, the fd pair, and the lock
        # that keeps close() from closing the fd under a writer.
        self._tsq: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._ts_signalled = False
        self._wakeup_r, self._wakeup_w = make_wakeup_fd()
        self._fd_lock = threading.Lock()
        self.poller: Poller = make_poller(self, self._wakeup_r, self._drain_threadsafe)
        self.root: Root | None = None  # the thread's main code as a task-like, once it parks
        self.closed = False
        self._in_run = False  # gofer.run() is using this hub
        # KeyboardInterrupt/SystemExit of a task nobody joins: raised in the
        # thread's main code by the loop (see _task.run_tasks).
        self._fatal: BaseException | None = None
        self._poll_every = 256  # ready items run between two looks at I/O
        self.handoffs = 0  # direct task-to-task switches left before the hub must run
        self.switches = 0  # ready items run so far (gofer.metrics reads it)
        # SLICE after timers and I/O were last looked at (time.monotonic, even
        # under a virtual clock: it measures how long coroutines have run). A
        # coroutine that yields, hands off or takes a fast path after it lets
        # them run first (_slice.give_way).
        self.slice_end = _monotonic() + SLICE
        self.main: Any = None  # run()'s main Task (its _g is None once it has finished)
        hub_created(self)  # last: a hook (an instrument) may swap self.ready

    # Other threads' calls and the wake-up fd (functions of _wakeup).
    call_threadsafe = call_threadsafe
    _drain_threadsafe = drain_threadsafe
    _after_fork = after_fork
    _release = release

    @property
    def tasks(self) -> set[Any]:
        """The live tasks of this hub (started or not): those held by a worker."""
        return {w.task for w in self.workers if w.task is not None}

    # -- scheduling -----------------------------------------------------
    def throw_into(self, task: Any, exc: BaseException) -> None:
        """Resume the parked ``task`` by raising ``exc`` inside it.

        The exception waits in the task's ``_throw`` slot and the task raises
        it itself when it resumes (see ``_park.switch_away``). Throwing it
        from the hub instead would leave it, and through its traceback the
        task's frames, on the hub's suspended stack until the hub next ran.
        """
        task._throw = exc
        self.ready.append(task)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.ready.append(Callback(fn, args))

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.timer_at(when, Callback(fn, args))

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.timer_at(self.now() + delay, Callback(fn, args))

    def timer_at(self, when: float, target: Any) -> TimerHandle:
        """Queue ``target`` (a ready-queue item) at monotonic time ``when``.

        A timer at infinity never fires and is not queued at all, so that
        ``sleep(inf)`` parks forever (and counts as parked for deadlock
        detection) instead of overflowing the poller's timeout.
        """
        h = TimerHandle(self, when, target)
        if when != INF:
            heapq.heappush(self._timers, (when, next(_seq), h))
        return h

    # -- the loop ---------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                self._loop()
            except GreenletExit:
                return
            except BaseException as exc:
                # Raised while the hub itself ran: by a signal handler (Ctrl-C
                # included) that ran during a poll, or by a bug. The stdlib raises
                # a handler's exception at the interrupted call, so the main
                # coroutine gets it at its park point, as if its call had been
                # interrupted; outside run(), the thread's main code does.
                self._fatal = None
                if not self._interrupt_main(exc):
                    self._throw_root(exc)

    def _interrupt_main(self, exc: BaseException) -> bool:
        """Raise ``exc`` in run()'s main coroutine when it resumes; False if none."""
        t = self.main
        g = t._g if t is not None else None
        if g is None:  # not in run(), or main has finished
            return False
        w = g._wait
        if w is not None and w._gofer_abort(g):  # parked: wake it with the error
            g._wait = None
            g._throw = exc
            self.ready.append(g)
        elif g and g in self.ready:
            # Ready (woken, or yielding): raise it where it resumes, now. A value
            # it was woken with is lost, as the stdlib loses a call's result
            # when a handler raises right after the call returned.
            self.ready.remove(g)
            g.throw(exc)
        else:
            g._throw = exc  # not started yet: at its first park
        return True

    def _throw_root(self, exc: BaseException) -> None:
        root = self.root
        if root is None:
            raise exc
        with contextlib.suppress(ValueError):
            self.ready.remove(root)
        w = root._wait
        if w is not None:
            w._gofer_abort(root)
            root._wait = None
        root.g.throw(exc)

    def _loop(self) -> None:
        ready = self.ready
        pop = ready.popleft
        timers = self._timers
        poller = self.poller
        now = self.now
        clock = self.clock
        budget = self._poll_every
        while True:
            self.slice_end = _monotonic() + SLICE
            if timers:
                self._fire_timers()
            # Run ready items, including ones they make ready, up to a budget
            # of switches shared with direct task-to-task handoffs; then look
            # at timers, other threads and I/O again.
            self.handoffs = budget
            while ready and self.handoffs > 0:
                self.handoffs -= 1
                pop().switch()
            self.switches += budget - self.handoffs
            if ready is not self.ready:
                return  # an instrument swapped the ready queue: run() rebinds the locals
            if self._fatal is not None:
                exc, self._fatal = self._fatal, None
                self._throw_root(exc)
                continue
            if self._tsq:
                self._drain_threadsafe()
            if ready:
                if self.handoffs <= 0:
                    poller.poll(0)
                continue
            if timers:
                if self._cancelled_timers > 64 and self._cancelled_timers * 2 > len(timers):
                    self._compact_timers()
                # A cancelled timer at the head must not set the sleep length.
                while timers and not timers[0][2].active:
                    heapq.heappop(timers)
                    self._cancelled_timers -= 1
                if not timers:
                    continue
                delay = timers[0][0] - now()
                if delay <= 0:
                    poller.poll(0)
                    continue
                if clock.autojump:
                    poller.poll(0)
                    if ready or self._tsq:
                        continue
                    if self.pending_jobs or other_threads_alive():
                        poller.poll(min(delay, 0.01) if self.pending_jobs else 0.001)
                        if ready:
                            continue
                    clock.jump_to(timers[0][0])
                    continue
                if len(self.idle_workers) > _IDLE_KEEP:
                    self._trim_idle()
                poller.poll(min(delay, _MAX_POLL))
                continue
            if poller.nwaiters or self.pending_jobs or self._tsq:
                if len(self.idle_workers) > _IDLE_KEEP:
                    self._trim_idle()
                poller.poll(None)
                continue
            if not other_threads_alive():
                # A thread started a moment ago runs no Python code yet and is
                # seen nowhere (one of _thread's is not even counted): give it
                # a moment before calling this a deadlock.
                poller.poll(0.01)
                if ready or timers or self._tsq or poller.nwaiters:
                    continue
            if other_threads_alive():
                # Another thread may still wake us through the wake-up fd; look
                # again now and then in case it exits without doing so.
                poller.poll(0.25)
                if ready or timers or self._tsq or poller.nwaiters or other_threads_alive():
                    continue
            self._deadlock()

    def _trim_idle(self, keep: int | None = None) -> None:
        """About to sleep: let idle workers above ``keep`` (``_IDLE_KEEP``) go.

        After a burst of coroutines the pool holds up to a thousand finished
        workers (each about 6 KB: a saved C stack and a frame-stack page).
        Keeping them while busy saves a fresh greenlet per spawn; once the hub
        has nothing to do, they are memory a server should give back.
        """
        if keep is None:
            keep = _IDLE_KEEP
        idle = self.idle_workers
        drop = idle[keep:]
        del idle[keep:]
        for w in drop:
            self.workers.discard(w)
            # A suspended greenlet is never collected (greenlets take no part
            # in gc, and its frame holds it): end it, or it leaks its stacks.
            w.throw(GreenletExit)

    def shrink(self) -> None:
        """Give back what a burst of coroutines and fds grew: idle workers, tables, timers.

        For a server whose crowd of connections has gone. Every idle worker
        ends (each was made during the burst, and any one object alive in a
        1 MiB pymalloc arena keeps the whole arena), the next spawns make
        fresh ones. The ``workers`` set, the poller's fd table and the timer
        heap are rebuilt at their present size: a dict, set or list that grew
        keeps its largest table until it is copied.
        """
        if getcurrent() is not self:
            # An ended worker returns to its parent, the hub: thrown from a
            # coroutine, the caller would be left suspended.
            raise RuntimeError("Hub.shrink() runs inside the hub: call it from a callback or timer")
        self._trim_idle(0)
        # The hub's own context was made by the first go() called inside it
        # (copy_context makes one where there is none), maybe mid-burst.
        ctx = self.gr_context
        if ctx is not None and not len(ctx):
            self.gr_context = None
        self.workers = set(self.workers)
        self.poller.shrink()
        self._compact_timers()  # in place: the loop holds the list (a shrunk list is reallocated)

    def _fire_timers(self) -> None:
        """Queue the targets of the timers that are due."""
        timers = self._timers
        ready = self.ready
        t = self.now()
        while timers and timers[0][0] <= t:
            h = heapq.heappop(timers)[2]
            if h.active:
                h.active = False
                ready.append(h.target)
            else:
                self._cancelled_timers -= 1

    def collect(self) -> None:
        """Queue what is due now: timers, other threads' calls and ready I/O.

        A running coroutine calls this before it gives way after a long slice,
        so that what it lets run includes them (pollers never switch).
        """
        self.slice_end = _monotonic() + SLICE
        if self._timers:
            self._fire_timers()
        self.poller.poll(0)
        if self._tsq:
            self._drain_threadsafe()

    def _compact_timers(self) -> None:
        self._timers[:] = [e for e in self._timers if e[2].active]
        heapq.heapify(self._timers)
        self._cancelled_timers = 0

    def describe_parked(self) -> list[str]:
        """One line per live task of this hub: its name and what it waits on."""
        out = []
        root = self.root
        if root is not None and root._wait is not None:
            out.append(f"{root._label()}: parked on {root._wait!r}")
        for t in sorted(self.tasks, key=lambda t: t._label()):
            out.append(f"{t._label()}: {t._where()}")
        return out

    def _deadlock(self) -> None:
        parked = self.describe_parked()
        msg = "all coroutines are asleep - deadlock!"
        if parked:
            msg += "\n" + "\n".join("  " + p for p in parked)
        self._throw_root(Deadlock(msg))

    # -- lifecycle --------------------------------------------------------
    def close(self) -> None:
        """Close the poller and wake-up fd; the thread gets a new hub if needed."""
        if self.closed:
            return
        forget_hub(self)
        self._release()
        if getcurrent() is self:
            return
        if not self.dead:
            with contextlib.suppress(GreenletExit):
                self.throw(GreenletExit)
        # End the coroutines still parked here now (their finally blocks run),
        # rather than whenever the garbage collector meets their greenlets.
        for w in list(self.workers):
            if w and getcurrent() is not w:
                with contextlib.suppress(BaseException):
                    w.throw(GreenletExit)
        self.workers.clear()
        self.idle_workers.clear()

    def stats(self) -> dict[str, int]:
        return {
            "ready": len(self.ready),
            "timers": len(self._timers) - self._cancelled_timers,
            "tasks": len(self.tasks),
            "io_waiters": self.poller.nwaiters,
            "thread_jobs": self.pending_jobs,
        }

    def __repr__(self) -> str:
        return f"<gofer.Hub thread={self.thread_ident} poller={self.poller.name} {self.stats()}>"


def get_hub() -> Hub:
    """The current thread's hub, made on first use."""
    try:
        return _tls.hub  # type: ignore[no-any-return]
    except AttributeError:
        pass
    hub = Hub()
    set_hub(hub)
    return hub
