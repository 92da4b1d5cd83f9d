"""The asyncio bridge: asyncio code inside gofer programs, and back.

* ``gofer.aio.run(awaitable)``, from gofer code, runs asyncio code on the
  asyncio event loop of the calling thread's hub and returns its result (or
  raises its error). Other gofer coroutines keep running meanwhile: the loop
  waits through the hub (see :mod:`gofer._aioloop`). Any number of gofer
  coroutines may call it at once; they share the hub's one loop, so asyncio
  objects (an asyncpg pool, an httpx client) stay usable from one call to the
  next. Cancelling the calling coroutine cancels the asyncio task and waits
  for it to finish before ``Cancelled`` is raised.
* ``await gofer.aio.call(fn, *args)``, from asyncio code on such a loop,
  runs the blocking-style ``fn`` as a gofer coroutine and resolves with its
  result. Cancelling the awaiting task cancels the coroutine (and waits for
  it to end).
* :func:`install_policy` makes ``asyncio.run()`` and
  ``asyncio.new_event_loop()`` build gofer loops (``gofer.patch()`` calls it).

How the hub's loop is driven: a gofer coroutine named "gofer.aio loop",
started by the first ``run``, runs it for the rest of the program, so that
an asyncio server or background task started in one ``run`` keeps running
after it. With nothing to do (no fd, no timer) it parks on no I/O, so it
hides no deadlock. When ``gofer.run`` ends it is cancelled like every
coroutine: it cancels the loop's remaining tasks, lets them finish, and
closes the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import GreenletExit

from gofer._aioloop import GoferEventLoop, GoferEventLoopPolicy
from gofer._core import Cancelled, CancelScope, Hub, Task, current_tasklike, go, park, wake

__all__ = [
    "GoferEventLoop",
    "GoferEventLoopPolicy",
    "call",
    "install_policy",
    "loop",
    "run",
    "uninstall_policy",
]

T = TypeVar("T")


# Made on first use, not at import: under gofer.patch() this module's
# ``threading`` is the unpatched one only once the import has finished (a
# patched threading.local would be per coroutine, giving each its own loop).
_tls_box: list[Any] = []


def _tls() -> Any:
    if not _tls_box:
        _tls_box.append(threading.local())
    return _tls_box[0]


class _Wait:
    """The waitable of a coroutine waiting for an asyncio future (same thread)."""

    __slots__ = ("t",)

    def __init__(self, t: Any) -> None:
        self.t = t

    def fire(self, _fut: Any = None) -> None:
        t, self.t = self.t, None
        if t is not None:
            wake(t)

    def _gofer_abort(self, t: Any) -> bool:
        if self.t is t:
            self.t = None
            return True
        return False

    def __repr__(self) -> str:
        return "<asyncio future (gofer.aio.run)>"


class _HubLoop:
    """The asyncio loop of one hub and the coroutine that drives it."""

    __slots__ = ("hub", "loop", "runner")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = GoferEventLoop()
        self.runner: Task[None] | None = None

    def kick(self) -> None:
        """Work was added from outside the loop: make sure it is being driven."""
        if self.runner is None:
            self.runner = go(self._drive)
            self.runner.name = "gofer.aio loop"
        else:
            self.loop.wake()

    def _drive(self) -> None:
        loop = self.loop
        try:
            while True:
                try:
                    loop.run_forever()  # until the end of gofer.run cancels it
                except (KeyboardInterrupt, SystemExit):
                    pass  # stored on its task too: its run() caller raises it
        except Cancelled:
            pass
        except GreenletExit:
            loop.close()  # the hub is closing: nothing can run any more
            raise
        finally:
            if getattr(_tls(), "hubloop", None) is self:
                _tls().hubloop = None
            if not loop.is_closed():
                with CancelScope(shield=True):
                    _shutdown(loop)


def _shutdown(loop: GoferEventLoop) -> None:
    """Cancel what is left on the loop, let it finish, and close the loop."""
    if loop.is_closed():
        return
    try:
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            if not t.cancelling():  # one cancel each: a second would cut its clean-up short
                t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _hub_loop(hub: Hub) -> _HubLoop:
    tls = _tls()
    hl: _HubLoop | None = getattr(tls, "hubloop", None)
    if hl is None or hl.hub is not hub or hl.loop.is_closed():
        hl = tls.hubloop = _HubLoop(hub)
    return hl


def loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop of this thread's hub (the one :func:`run` uses)."""
    return _hub_loop(current_tasklike()._hub).loop


async def _await(aw: Awaitable[T]) -> T:
    return await aw


def run(aw: Awaitable[T]) -> T:
    """Run the awaitable on this hub's asyncio loop; return its result.

    Blocking-style: the calling coroutine parks until the asyncio task is
    done, while the rest of the hub runs. Raises what the awaitable raised.
    If the calling coroutine is cancelled, the asyncio task is cancelled and
    awaited, then ``gofer.Cancelled`` is raised.
    """
    if asyncio._get_running_loop() is not None:
        raise RuntimeError(
            "gofer.aio.run() was called from asyncio code on a running event loop "
            "(it would block that loop); await the coroutine instead"
        )
    if not isinstance(aw, Awaitable):
        raise TypeError(f"gofer.aio.run() needs a coroutine or awaitable, not {type(aw).__name__}")
    me = current_tasklike()
    hl = _hub_loop(me._hub)
    loop = hl.loop
    task = loop.create_task(aw if asyncio.iscoroutine(aw) else _await(aw))
    w = _Wait(me)
    task.add_done_callback(w.fire)
    hl.kick()
    try:
        park(w)
    except Cancelled:
        if task.done():
            raise
        if not task.cancelling():  # the end of gofer.run may have cancelled it already
            task.cancel()
            loop.wake()
        with CancelScope(shield=True):
            while not task.done():
                w = _Wait(me)
                task.add_done_callback(w.fire)
                park(w)
        if not task.cancelled():
            task.exception()  # it ended some other way: retrieved, not reported
        raise
    result: T = task.result()
    return result


async def call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn(*args, **kw)`` as a gofer coroutine; resolve with its result.

    Must be awaited on a gofer event loop (the one of :func:`run`, or one
    made under :func:`install_policy`). Cancelling the awaiting task cancels
    the coroutine; ``CancelledError`` is raised once it has finished.
    """
    aloop = asyncio.get_running_loop()
    if not isinstance(aloop, GoferEventLoop):
        raise RuntimeError(
            f"gofer.aio.call() needs a gofer event loop (gofer.aio.run or gofer.aio.install_policy), "
            f"not {aloop!r}: nothing would run the gofer coroutine"
        )
    done = aloop.create_future()

    def settle(_t: Task[T]) -> None:  # runs in the hub, on the loop's thread
        if not done.done():
            done.set_result(None)
            aloop.wake()

    t = go(fn, *args, **kw)
    t.add_done_callback(settle)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        t.cancel()
        while not t.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                continue
        if t.cancelled() or t.exception() is None:
            raise
        raise t.exception() from None  # type: ignore[misc]
    if t.cancelled():
        t.exception()  # retrieved
        raise asyncio.CancelledError(f"the gofer coroutine {t.name or fn!r} was cancelled")
    result: T = t.result()
    return result


_saved_policy: list[asyncio.AbstractEventLoopPolicy] = []


def install_policy() -> None:
    """Make ``asyncio.run()`` and ``asyncio.new_event_loop()`` build gofer loops.

    Idempotent. Each new loop waits on the hub of the thread that runs it,
    so asyncio code started anywhere in a gofer program (or a thread of it)
    lets the thread's gofer coroutines run. ``gofer.patch()`` calls this.
    """
    current = asyncio.get_event_loop_policy()
    if isinstance(current, GoferEventLoopPolicy):
        return
    _saved_policy.append(current)
    asyncio.set_event_loop_policy(GoferEventLoopPolicy())


def uninstall_policy() -> None:
    """Put back the event loop policy that :func:`install_policy` replaced."""
    if _saved_policy and isinstance(asyncio.get_event_loop_policy(), GoferEventLoopPolicy):
        asyncio.set_event_loop_policy(_saved_policy.pop())
