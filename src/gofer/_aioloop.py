"""An asyncio event loop whose waiting is done by the gofer hub.

:class:`GoferEventLoop` is asyncio's own ``SelectorEventLoop`` (so every
transport, stream, subprocess and signal feature of asyncio is the stdlib's)
with one change: its selector, :class:`HubSelector`, never blocks the thread.
The loop keeps a real selector of its own (epoll on Linux, kqueue on BSD and
macOS), level-triggered as asyncio expects; that selector's own fd is
registered once with the hub's poller, and when asyncio would block in
``select(timeout)`` the coroutine running the loop parks on that fd instead,
with the timeout on the hub's clock. While it is parked every other gofer
coroutine of the hub runs; when one of the loop's fds becomes ready the inner
selector's fd becomes readable, the hub wakes the loop's coroutine, and the
loop collects the events with a non-blocking ``select(0)``.

Facts this relies on:

* An epoll (or kqueue) fd is itself pollable: it reads as ready while its
  ready list is not empty, and a new event on it wakes a poller watching it,
  so the hub's edge-triggered epoll sees an edge for every new event. The
  loop always looks (``select(0)``) before it parks, so nothing that was
  already ready is missed.
* asyncio's "running loop" is per thread, not per greenlet: around each park
  the selector clears it and puts it back, so that other coroutines of the
  same thread (another loop, or plain gofer code) do not see this loop.
* Cancelling the gofer coroutine that runs the loop must not tear asyncio's
  loop apart in the middle of an iteration. The selector catches
  ``gofer.Cancelled`` at its park, cancels the future being run (or every
  task), and lets the loop go on shielded until that future is done; then
  ``run_until_complete`` raises the gofer cancellation.

``loop.time()`` is the clock of the hub the loop was made on (virtual under
``gofer.testing``), so asyncio's timers and gofer's agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import threading
import time
from asyncio import events
from collections.abc import Callable, Mapping
from typing import Any

from gofer._core import (
    Cancelled,
    CancelScope,
    IoState,
    RealClock,
    current_tasklike,
    deliverable,
    hub_if_any,
    park,
    wait_readable,
    wake,
)

__all__ = ["GoferEventLoop", "GoferEventLoopPolicy", "HubSelector"]


class HubSelector(selectors.BaseSelector):
    """A selector that parks the calling gofer coroutine instead of the thread.

    ``inner`` is a real selector with a ``fileno()`` (epoll, kqueue, devpoll);
    registrations go to it unchanged.
    """

    def __init__(self, inner: selectors.BaseSelector, loop: GoferEventLoop) -> None:
        if not callable(getattr(inner, "fileno", None)):
            raise TypeError(
                f"gofer's asyncio loop needs a selector with a pollable fileno() (epoll, kqueue), "
                f"not {type(inner).__name__}"
            )
        self._inner = inner
        self._loop = loop
        self._st: IoState | None = None
        self._hub: Any = None  # the hub it last parked on
        self._idle: Any = None  # the task-like parked with nothing to do

    # -- registrations: the inner selector's --------------------------------
    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def fileno(self) -> int:
        return self._inner.fileno()  # type: ignore[attr-defined, no-any-return]

    # -- waiting ----------------------------------------------------------------
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        inner = self._inner
        # Say which hub will be parked on before looking: a thread that adds
        # work after the look below then wakes that hub (wake_threadsafe).
        t = current_tasklike()  # raises the named errors outside gofer
        self._hub = t._hub
        ready = inner.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        self._park(t, timeout)
        return inner.select(0)

    def _park(self, t: Any, timeout: float | None) -> None:
        loop = self._loop
        # With no timer and no fd but the loop's self-pipe, only a wake() can
        # bring work: park on this object, not on I/O, so that a loop with
        # nothing to do hides no deadlock from the hub.
        idle = timeout is None and loop._gofer_idle()
        running = events._get_running_loop()
        events._set_running_loop(None)
        try:
            if loop._gofer_exc is None:
                try:
                    self._wait(t, idle, timeout)
                except Cancelled as exc:
                    loop._gofer_cancelled(exc)
            else:
                with CancelScope(shield=True):
                    self._wait(t, idle, timeout)
        except TimeoutError:
            pass
        finally:
            events._set_running_loop(running)

    def _wait(self, t: Any, idle: bool, timeout: float | None) -> None:
        if idle:
            self._idle = t
            park(self)
        else:
            wait_readable(self._io_state(t._hub), timeout)

    def _gofer_abort(self, t: Any) -> bool:  # the waitable of an idle park
        if self._idle is t:
            self._idle = None
            return True
        return False

    def __repr__(self) -> str:
        return (
            "<asyncio loop with nothing to do>"
            if self._idle is not None
            else "<asyncio loop selector>"
        )

    def _io_state(self, hub: Any) -> IoState:
        st = self._st
        if st is None or st.closed or st.poller.hub is not hub:
            if st is not None:
                self._drop(st)
            st = self._st = hub.poller.register(self._inner.fileno())  # type: ignore[attr-defined]
            st.label = "asyncio loop"
        return st

    def wake(self) -> None:
        """Wake the coroutine parked in :meth:`select`, if any (its hub's thread only)."""
        t = self._idle
        if t is not None:
            self._idle = None
            wake(t)
            return
        st = self._st
        t = st.rwaiter if st is not None else None
        if t is not None and st is not None and st._gofer_abort(t):
            wake(t)

    def wake_threadsafe(self) -> None:
        """:meth:`wake` from any thread."""
        hub = self._hub
        if hub is None:
            return  # never parked yet: the next select() looks first
        if hub.thread_ident == threading.get_ident():
            self.wake()
        else:
            with contextlib.suppress(RuntimeError):  # that hub is gone
                hub.call_threadsafe(self.wake)

    @staticmethod
    def _drop(st: IoState) -> None:
        if st.closed:
            return
        hub: Any = st.poller.hub
        if hub.thread_ident == threading.get_ident():
            st.poller.unregister(st, None)
        else:
            with contextlib.suppress(RuntimeError):  # that hub is gone already
                hub.call_threadsafe(st.poller.unregister, st, None)

    def close(self) -> None:
        st, self._st = self._st, None
        if st is not None:
            self._drop(st)  # before the fd is closed: its number may be reused
        self._inner.close()


class GoferEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, waiting on the gofer hub of its thread.

    Run it from a gofer coroutine or a thread's main code (``gofer.aio.run``
    does, on one loop per hub; under ``gofer.aio.install_policy()``
    ``asyncio.run()`` and ``asyncio.new_event_loop()`` make these). ``selector``
    is the inner selector to use; it must have a pollable ``fileno()``.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._gofer_exc: Cancelled | None = None
        self._gofer_raise = False
        self._gofer_target: asyncio.Future[Any] | None = None
        hub = hub_if_any()
        clock = None if hub is None or hub.closed else hub.clock
        self._gofer_now: Callable[[], float] = (
            time.monotonic if clock is None or isinstance(clock, RealClock) else clock.now
        )
        inner = selector if selector is not None else selectors.DefaultSelector()
        self._hub_selector = HubSelector(inner, self)
        super().__init__(self._hub_selector)

    def time(self) -> float:
        return self._gofer_now()

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:  # type: ignore[override]
        handle: Any = super().call_soon_threadsafe(callback, *args, context=context)
        if handle._source_traceback:  # debug mode: hide this frame, as asyncio hides its own
            del handle._source_traceback[-1]
        self._hub_selector.wake_threadsafe()  # the self-pipe alone misses an idle park
        return handle

    def _gofer_idle(self) -> bool:
        """Nothing but a wake() can give the loop work (no fd but its self-pipe)."""
        return len(self._hub_selector.get_map()) <= 1 and not getattr(
            self, "_signal_handlers", None
        )

    def wake(self) -> None:
        """Let the loop see callbacks added with ``call_soon`` from the same thread.

        Cheaper than ``call_soon_threadsafe`` (no write to the self-pipe) when
        the caller is another gofer coroutine of the loop's own hub.
        """
        self._hub_selector.wake()

    # -- gofer cancellation ---------------------------------------------------
    def _gofer_cancelled(self, exc: Cancelled) -> None:
        """The coroutine running the loop was cancelled at the loop's park."""
        self._gofer_exc = exc
        self._gofer_raise = True
        target = self._gofer_target
        if target is not None:
            target.cancel()
        else:
            for task in asyncio.all_tasks(self):
                if not task.cancelling():  # a second cancel would cut its clean-up short
                    task.cancel()
            self.stop()

    def _gofer_begin(self) -> None:
        # A cancellation seen earlier still holds while it is deliverable to
        # the running coroutine (asyncio.run's clean-up after a cancel); once
        # the coroutine has left the cancelled scope the loop may be cancelled
        # afresh.
        if self._gofer_exc is not None:
            with contextlib.suppress(RuntimeError):
                if deliverable(current_tasklike()) is None:
                    self._gofer_exc = None
        self._gofer_raise = False

    def _gofer_end(self) -> None:
        if self._gofer_raise:
            self._gofer_raise = False
            exc = self._gofer_exc
            assert exc is not None
            raise exc

    def run_forever(self) -> None:
        outer = self._gofer_target is not None  # called by run_until_complete
        if not outer:
            self._gofer_begin()
        super().run_forever()
        if not outer:
            self._gofer_end()

    def run_until_complete(self, future: Any) -> Any:
        # asyncio's own checks, before a task is made that would then leak.
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")
        self._gofer_begin()
        new_task = not asyncio.isfuture(future)
        fut = asyncio.ensure_future(future, loop=self)
        self._gofer_target = fut
        try:
            result = super().run_until_complete(fut)
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                fut.exception()  # retrieved: no "never retrieved" warning
            self._gofer_target = None
            self._gofer_end()
            raise
        self._gofer_target = None
        self._gofer_end()
        return result

    def __repr__(self) -> str:
        return f"<GoferEventLoop running={self.is_running()} closed={self.is_closed()}>"


class GoferEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, with :class:`GoferEventLoop` as its loop."""

    _loop_factory = GoferEventLoop
