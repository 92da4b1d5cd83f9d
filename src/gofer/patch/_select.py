"""Patching ``select`` (select, poll, epoll) and ``selectors`` onto the hub's poller.

A thread's plain code with no coroutine to starve makes the original call
(``_orig.thread_may_block``). Otherwise each patched call first asks the
original, non-blocking (timeout 0): that
validates the arguments exactly as the stdlib does and answers at once when
something is ready. Only when nothing is, and the caller would block, does
it wait on the hub: the fds go into a private level-triggered epoll (for a
patched ``epoll`` object, the object itself), whose own fd becomes readable
when any of them is ready; the calling coroutine parks on that one fd, then
asks the original again. The private set is registered afresh for every
wait, so a wake-up is never missed and the hub's own registrations of those
fds (gofer sockets) are not touched.

``selectors.SelectSelector``, ``PollSelector``, ``EpollSelector`` and
``DefaultSelector`` become subclasses built on these; modules that picked a
selector class at import (``subprocess``, ``socketserver``) are pointed at
the patched ones. gofer's own poller keeps the originals (see ``_orig``).
Linux only: elsewhere the patched calls wait for the original in the thread
pool.
"""

from __future__ import annotations

import math
import select as _select
import selectors as _selectors
import sys
from typing import Any

from gofer._core import current_tasklike, get_hub, wait_readable
from gofer.patch._orig import save, thread_may_block
from gofer.threads import to_thread

__all__ = ["EpollSelector", "PollSelector", "SelectSelector", "epoll", "patch_select", "patch_selectors", "poll", "select"]

_orig_select = _select.select
_orig_poll: Any = getattr(_select, "poll", None)
_orig_epoll: Any = getattr(_select, "epoll", None)
_HAVE_EPOLL = _orig_epoll is not None and sys.platform == "linux"


def wait_fd(fd: int, timeout: float | None) -> bool:
    """Park until ``fd`` is readable; False once ``timeout`` seconds have passed."""
    me = current_tasklike()  # BlockingInHubError inside the hub
    st = me._hub.poller.register(fd)
    st.label = "select"
    try:
        wait_readable(st, timeout)
    except TimeoutError:
        return False
    finally:
        st.poller.unregister(st)
    return True


def _fileno(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    return int(obj.fileno())


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else get_hub().now() + timeout


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - get_hub().now())


def select(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> tuple[list[Any], list[Any], list[Any]]:
    """Cooperative :func:`select.select`: same arguments, results and errors."""
    if thread_may_block():
        return _orig_select(rlist, wlist, xlist, timeout)
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise TypeError("timeout must be a float or None") from None
        if timeout != timeout:
            raise ValueError("Invalid value NaN (not a number)")
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
    # Lists and tuples go to the original as they are (it may see them change
    # as it iterates them); other iterables are read once, here.
    rlist, wlist, xlist = (x if isinstance(x, list | tuple) else list(x) for x in (rlist, wlist, xlist))
    ready = _orig_select(rlist, wlist, xlist, 0)
    if ready[0] or ready[1] or ready[2] or timeout == 0:
        return ready
    if not _HAVE_EPOLL:
        return _orig_wait_in_pool(_orig_select, rlist, wlist, xlist, timeout)  # type: ignore[no-any-return]
    masks: dict[int, int] = {}
    for objs, bit in ((rlist, _select.EPOLLIN), (wlist, _select.EPOLLOUT), (xlist, _select.EPOLLPRI)):
        for obj in objs:
            fd = _fileno(obj)
            masks[fd] = masks.get(fd, 0) | bit
    deadline = _deadline(timeout)
    while True:
        with _orig_epoll() as ep:
            for fd, mask in masks.items():
                try:
                    ep.register(fd, mask)
                except OSError:
                    pass  # a file epoll refuses is always ready for select: seen above
            woke = wait_fd(ep.fileno(), _left(deadline))
        ready = _orig_select(rlist, wlist, xlist, 0)
        if ready[0] or ready[1] or ready[2] or not woke:
            return ready


def _orig_wait_in_pool(fn: Any, *args: Any) -> Any:
    return to_thread(fn, *args)


class poll:
    """Cooperative ``select.poll()`` object (register, modify, unregister, poll)."""

    def __init__(self) -> None:
        self._p = _orig_poll()
        self._masks: dict[int, int] = {}
        self._polling = False

    def register(self, fd: Any, eventmask: int = _select.POLLIN | _select.POLLPRI | _select.POLLOUT) -> None:
        self._p.register(fd, eventmask)
        self._masks[_fileno(fd)] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        self._p.modify(fd, eventmask)
        self._masks[_fileno(fd)] = eventmask

    def unregister(self, fd: Any) -> None:
        self._p.unregister(fd)
        del self._masks[_fileno(fd)]

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Like ``poll.poll``: ``timeout`` in milliseconds, None or negative for ever."""
        if thread_may_block():
            return self._p.poll(timeout)  # type: ignore[no-any-return]
        if self._polling:
            raise RuntimeError("concurrent poll() invocation")
        t = _poll_timeout_ms(timeout)
        self._polling = True
        try:
            events: list[tuple[int, int]] = self._p.poll(0)
            if events or t == 0:
                return events
            if not _HAVE_EPOLL:
                return _orig_wait_in_pool(self._p.poll, None if t is None else t * 1000.0)  # type: ignore[no-any-return]
            deadline = _deadline(t)
            while True:
                with _orig_epoll() as ep:
                    for fd, mask in self._masks.items():
                        try:
                            ep.register(fd, mask & ~(_select.POLLNVAL))
                        except OSError:
                            pass  # a closed fd: poll(0) reports POLLNVAL
                    woke = wait_fd(ep.fileno(), _left(deadline))
                events = self._p.poll(0)
                if events or not woke:
                    return events
        finally:
            self._polling = False


def _poll_timeout_ms(timeout: Any) -> float | None:
    """``poll.poll``'s timeout in seconds (None: for ever), validated as the stdlib does."""
    if timeout is None:
        return None
    if not isinstance(timeout, int | float):
        try:
            timeout = timeout.__index__()
        except AttributeError:
            raise TypeError(f"'{type(timeout).__name__}' object cannot be interpreted as an integer") from None
    if timeout != timeout:
        raise ValueError("Invalid value NaN (not a number)")
    if timeout < 0:
        return None
    return float(math.ceil(timeout)) / 1000.0


class epoll:
    """Cooperative ``select.epoll``: ``poll()`` parks the caller while nothing is ready.

    It wraps a real epoll object (the C type cannot be subclassed) and
    forwards everything else to it.
    """

    __slots__ = ("__weakref__", "_ep")

    def __init__(self, sizehint: int = -1, flags: int = 0) -> None:
        self._ep = _orig_epoll(sizehint, flags)

    @classmethod
    def fromfd(cls, fd: int) -> epoll:
        self = cls.__new__(cls)
        self._ep = _orig_epoll.fromfd(fd)
        return self

    @property
    def closed(self) -> bool:
        return bool(self._ep.closed)

    def close(self) -> None:
        self._ep.close()

    def fileno(self) -> int:
        return int(self._ep.fileno())

    def register(self, fd: Any, eventmask: int = _select.EPOLLIN | _select.EPOLLPRI | _select.EPOLLOUT) -> None:
        self._ep.register(fd, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        self._ep.modify(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        self._ep.unregister(fd)

    def __enter__(self) -> epoll:
        self._ep.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ep.__exit__(*exc)

    def poll(self, timeout: float | None = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        """Like ``epoll.poll`` (``timeout`` in seconds; None or negative: for ever)."""
        if thread_may_block():
            return self._ep.poll(timeout, maxevents)  # type: ignore[no-any-return]
        if timeout is None or timeout < 0:
            t = None
        else:
            t = float(timeout)
            if t != t:
                raise ValueError("Invalid value NaN (not a number)")
        ep = self._ep
        events: list[tuple[int, int]] = ep.poll(0, maxevents)
        if events or t == 0:
            return events
        deadline = _deadline(t)
        while True:
            woke = wait_fd(ep.fileno(), _left(deadline))
            events = ep.poll(0, maxevents)
            if events or not woke:
                return events

    def __repr__(self) -> str:
        return f"<gofer.patch epoll fd={self._ep.fileno()}>"


class SelectSelector(_selectors.SelectSelector):
    """``selectors.SelectSelector`` on the cooperative :func:`select`."""

    _select = staticmethod(select)


_PollBase: Any = getattr(_selectors, "PollSelector", _selectors.SelectSelector)
_EpollSelBase: Any = getattr(_selectors, "EpollSelector", _selectors.SelectSelector)


class PollSelector(_PollBase):  # type: ignore[misc]
    """``selectors.PollSelector`` on the cooperative :class:`poll`."""

    _selector_cls = poll


class EpollSelector(_EpollSelBase):  # type: ignore[misc]
    """``selectors.EpollSelector`` on the cooperative :class:`epoll`."""

    _selector_cls = epoll


def patch_select() -> None:
    mod = save("select")
    mod.select = select
    if _orig_poll is not None:
        mod.poll = poll
    if _HAVE_EPOLL:
        mod.epoll = epoll


_BY_NAME = {"SelectSelector": SelectSelector, "PollSelector": PollSelector, "EpollSelector": EpollSelector}


def patch_selectors() -> None:
    mod = save("selectors")
    default_name = _selectors.DefaultSelector.__name__
    for name, cls in _BY_NAME.items():
        if hasattr(_selectors, name) and (name == "SelectSelector" or _HAVE_EPOLL or name == "PollSelector"):
            setattr(mod, name, cls)
    if default_name in _BY_NAME:
        mod.DefaultSelector = _BY_NAME[default_name]
    # Modules that chose their selector class at import time.
    for modname, attr in (("subprocess", "_PopenSelector"), ("socketserver", "_ServerSelector")):
        m = sys.modules.get(modname)
        if m is not None:
            old = getattr(m, attr, None)
            if old is not None and old.__name__ in _BY_NAME:
                setattr(save(modname), attr, _BY_NAME[old.__name__])
