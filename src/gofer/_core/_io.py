"""Waiting for file descriptors: park on an fd's readiness, or hang a callback on it.

The poller (``_poll``) keeps an ``IoState`` per fd with one waiter slot per
direction. :func:`wait_readable` and :func:`wait_writable` put the running
task in a slot and park it there (the ``IoState`` is the waitable); the
poller takes it out and wakes it when an edge arrives, or throws the error
the fd was closed with into it. :func:`on_readable` puts a callback in the
read slot instead, so that an idle connection holds no coroutine.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from greenlet import getcurrent

from gofer._core._local import hub_if_any
from gofer._core._park import Worker, current_tasklike, park, switch_away
from gofer._core._poll import IoState
from gofer._core._types import TaskLike

__all__ = ["ReadableHandle", "on_readable", "wait_readable", "wait_writable"]

log = logging.getLogger("gofer")


def wait_readable(st: IoState, timeout: float | None = None) -> None:
    """Park until the fd of ``st`` (an ``IoState`` of this hub) may be readable.

    Raises ``TimeoutError`` after ``timeout`` seconds, or the error the fd was
    closed with. Only one coroutine may wait per direction.
    """
    t = getcurrent()
    if t.__class__ is not Worker:
        t = current_tasklike()
    if st.rwaiter is not None or st.closed or st.poller.hub is not t._hub:
        _io_wait_error(st, t, st.rwaiter, "read from")
    st.rwaiter = t
    _io_park(st, t, 1, timeout)


def wait_writable(st: IoState, timeout: float | None = None) -> None:
    """Park until the fd of ``st`` may be writable (see :func:`wait_readable`)."""
    t = getcurrent()
    if t.__class__ is not Worker:
        t = current_tasklike()
    if st.wwaiter is not None or st.closed or st.poller.hub is not t._hub:
        _io_wait_error(st, t, st.wwaiter, "write to")
    st.wwaiter = t
    _io_park(st, t, 2, timeout)


def _io_park(st: IoState, t: TaskLike, mode: int, timeout: float | None) -> None:
    poller = st.poller
    poller.nwaiters += 1
    if poller.interest:  # a level-triggered poller registers interest now
        poller.want(st, mode)
    if timeout is None and not t._cancel_hint:
        # park() without its generality: the socket layer's hottest wait.
        t._wait = st
        switch_away(t._hub, t)
        t._wait = None
    else:
        park(st, timeout)


def _io_wait_error(st: IoState, t: TaskLike, waiter: Any, what: str) -> NoReturn:
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
