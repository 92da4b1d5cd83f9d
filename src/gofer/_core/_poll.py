"""I/O readiness: an edge-triggered epoll poller and a selectors fallback.

Each file descriptor a hub waits on gets one :class:`IoState`: two readiness
flags (``readable``, ``writable``) and one waiter slot per direction. Callers
(the socket layer) try the system call while a flag is set and only park when
it is clear, so a wait costs no ``epoll_ctl`` and a repeated read after a
short read costs no ``EAGAIN``.

Facts about epoll this module relies on (see epoll(7)):

* With ``EPOLLET`` an event is reported once per transition to ready. We
  therefore keep our own flags: a flag is cleared only by the caller, when a
  system call reports ``EAGAIN`` (or a stream read comes back short), and set
  here when an edge arrives. Registering an fd reports its current state
  once, so flags start optimistic (set) and nothing is missed.
* ``EPOLLHUP`` and ``EPOLLERR`` are always reported; they make both
  directions "ready" so that the next system call reports the real error.
* ``EPOLLRDHUP`` (peer closed its write side) makes reads ready: ``recv``
  then returns ``b""``.
* Closing the last descriptor of an open file removes it from the epoll set
  by itself; ``unregister`` of such an fd raises, which is harmless here.

The fallback (``selectors``, level-triggered) registers interest only while
a coroutine waits, and drops it when the event is delivered, so that a
level-triggered poller does not spin. Both share the same interface; pick
the fallback on Linux with ``GOFER_POLLER=select``. The pollers never switch
greenlets themselves: they put woken waiters on the hub's ready queue.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["EpollPoller", "IoState", "Poller", "SelectorPoller", "make_poller", "make_wakeup_fd", "poller_name"]

READ = 1
WRITE = 2


class _Waker(Protocol):
    """What a poller needs from its hub."""

    ready: deque[Any]

    def throw_into(self, task: Any, exc: BaseException) -> None: ...


class IoState:
    """Readiness flags and waiter slots of one fd on one hub.

    ``rwaiter``/``wwaiter`` hold the task parked for that direction (at
    most one each: two coroutines reading one socket at once is an error, as
    it is in trio). The object is also the *waitable* passed to ``park``: its
    ``_gofer_abort`` unregisters a waiter that is cancelled or times out.
    """

    __slots__ = ("closed", "fd", "label", "poller", "readable", "rwaiter", "writable", "wwaiter")

    def __init__(self, fd: int, poller: Poller) -> None:
        self.fd = fd
        self.poller = poller
        # 1/True: maybe ready; 0/False: wait for an edge; 2: EOF or error seen
        # (no further edge will come, so a short read must not clear it).
        self.readable: int = True
        self.writable: int = True
        self.rwaiter: Any = None
        self.wwaiter: Any = None
        self.closed = False
        self.label = "fd"

    def _gofer_abort(self, task: Any) -> bool:
        if self.rwaiter is task:
            self.rwaiter = None
            self.poller.dropped(self, READ)
            return True
        if self.wwaiter is task:
            self.wwaiter = None
            self.poller.dropped(self, WRITE)
            return True
        return False

    def __repr__(self) -> str:
        what = []
        if self.rwaiter is not None:
            what.append("readable")
        if self.wwaiter is not None:
            what.append("writable")
        return f"<{self.label} {self.fd} {'/'.join(what) or 'idle'}>"


class Poller:
    """The interface both pollers implement (also what a fake poller needs)."""

    __slots__ = ("hub", "nwaiters", "waiting")

    hub: _Waker
    nwaiters: int  # parked I/O waiters; the hub's deadlock check reads it
    # True while poll() blocks in the OS: the monitor reads it, since the
    # compiled kernel leaves no Python frame on the thread to say so.
    waiting: bool
    name = "poller"  # a class attribute: each poller's own (GOFER_POLLER's value)

    def register(self, fd: int) -> IoState:
        raise NotImplementedError

    def unregister(self, st: IoState, exc: BaseException | None = None) -> None:
        """Forget ``st``; wake its waiters with ``exc`` (the fd is being closed)."""
        raise NotImplementedError

    # True if want() must be called when a waiter parks (the waiter has
    # already counted itself in nwaiters); an edge-triggered poller needs not.
    interest = False

    def want(self, st: IoState, mode: int) -> None:
        """A waiter was just put in ``st``'s slot for ``mode`` (if ``interest``)."""

    def dropped(self, st: IoState, mode: int) -> None:
        """A waiter was taken out of its slot without an event (abort)."""
        raise NotImplementedError

    def poll(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds (None: forever) and wake waiters."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def shrink(self) -> None:
        """Rebuild the fd tables at their present size (they keep the largest they had)."""

    def after_fork(self, wakeup_fd: int) -> None:
        """In a forked child: stop sharing kernel state with the parent.

        ``wakeup_fd`` is the hub's new wake-up fd. The fds and their waiters
        stay; their flags become optimistic again.
        """
        raise NotImplementedError

    def _wake_both(self, st: IoState, exc: BaseException | None) -> None:
        # The poller sits below the parking layer and wakes what sits in a
        # slot (a task, or an on_readable handle) by appending it itself.
        hub = self.hub
        for task in (st.rwaiter, st.wwaiter):
            if task is None:
                continue
            self.nwaiters -= 1
            if exc is None:
                hub.ready.append(task)
            else:
                hub.throw_into(task, exc)
        st.rwaiter = st.wwaiter = None


_EP_IN = select.EPOLLIN | select.EPOLLPRI | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR if sys.platform == "linux" else 0
_EP_OUT = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR if sys.platform == "linux" else 0
# EOF or error: no further edge will come for it, so ``readable`` becomes 2, which
# a short stream read must not clear (the socket layer clears only ``True``).
_EP_END = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR if sys.platform == "linux" else 0
# Every fd's mask, and getpid, bound once: under gofer.patch() a lookup in a
# patched module's view that misses costs a formatted AttributeError, and
# register/unregister run once per socket.
_EP_MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET if sys.platform == "linux" else 0
_getpid = os.getpid


class EpollPoller(Poller):
    """Linux epoll, every fd registered once with IN|OUT|RDHUP|ET."""

    __slots__ = ("_ep", "_fds", "_on_wakeup", "_pid", "_wakeup_fd")
    name = "epoll"

    def __init__(self, hub: _Waker, wakeup_fd: int, on_wakeup: Callable[[], None]) -> None:
        self.hub = hub
        self.nwaiters = 0
        self.waiting = False
        self._ep = select.epoll()
        # A forked child shares this epoll instance with its parent: an
        # epoll_ctl(DEL) made there (a hub of a thread that did not survive
        # the fork being closed, a socket closed) would take the fd out of the
        # parent's set too, and the parent's waiter would never be woken.
        self._pid = os.getpid()
        self._fds: dict[int, IoState] = {}
        self._wakeup_fd = wakeup_fd
        self._on_wakeup = on_wakeup
        self._ep.register(wakeup_fd, select.EPOLLIN)  # level-triggered: drained on read

    def register(self, fd: int) -> IoState:
        st = IoState(fd, self)
        mask = _EP_MASK
        try:
            self._ep.register(fd, mask)
        except FileExistsError:
            # A stale registration (fd closed and reused behind our back, or
            # a dup of a registered fd): take the slot over.
            self._ep.modify(fd, mask)
            old = self._fds.get(fd)
            if old is not None:
                old.closed = True
                self._wake_both(old, OSError(errno.EBADF, "file descriptor was reused"))
        self._fds[fd] = st
        return st

    def unregister(self, st: IoState, exc: BaseException | None = None) -> None:
        if st.closed:
            return
        st.closed = True
        if self._fds.get(st.fd) is st:
            del self._fds[st.fd]
            if self._pid == _getpid():  # never in a forked child (see __init__)
                try:
                    self._ep.unregister(st.fd)
                except (OSError, ValueError):
                    pass  # already closed: the kernel dropped it
        self._wake_both(st, exc)

    def dropped(self, st: IoState, mode: int) -> None:
        self.nwaiters -= 1

    def poll(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = -1
        # Read by the monitor thread: a compiled kernel leaves no frame to say it.
        self.waiting = True
        events = self._ep.poll(timeout)
        self.waiting = False
        if not events:
            return
        fds = self._fds
        # The readiness loop wakes waiters by a plain append, not _park.wake:
        # it is the hottest wake of all, and a slot's waiter is taken out of it
        # (so woken once) right here.
        ready = self.hub.ready
        for fd, ev in events:
            st = fds.get(fd)
            if st is None:
                if fd == self._wakeup_fd:
                    self._on_wakeup()
                continue
            if ev & _EP_IN:
                st.readable = 2 if ev & _EP_END else True
                task = st.rwaiter
                if task is not None:
                    st.rwaiter = None
                    self.nwaiters -= 1
                    ready.append(task)
            if ev & _EP_OUT:
                st.writable = True
                task = st.wwaiter
                if task is not None:
                    st.wwaiter = None
                    self.nwaiters -= 1
                    ready.append(task)

    def shrink(self) -> None:
        self._fds = dict(self._fds)  # poll() reads it afresh each time

    def close(self) -> None:
        for st in list(self._fds.values()):
            self.unregister(st, OSError(errno.EBADF, "the hub was closed"))
        self._ep.close()

    def after_fork(self, wakeup_fd: int) -> None:
        # A fresh epoll instance: the inherited one is the parent's too, and
        # each process would take the other's edge-triggered events.
        old = self._ep
        self._ep = select.epoll()
        self._pid = os.getpid()
        old.close()  # only this process's fd of it: the parent keeps its set
        self._wakeup_fd = wakeup_fd
        self._ep.register(wakeup_fd, select.EPOLLIN)
        mask = _EP_MASK
        for fd, st in list(self._fds.items()):
            try:
                self._ep.register(fd, mask)
            except OSError:  # closed behind our back: wake its waiters with the error
                del self._fds[fd]
                st.closed = True
                self._wake_both(st, OSError(errno.EBADF, "file descriptor closed across fork"))
                continue
            st.readable = st.writable = True  # registering reports the current state


class SelectorPoller(Poller):
    """Level-triggered fallback on :mod:`selectors`; interest only while waiting."""

    __slots__ = ("_live", "_on_wakeup", "_sel", "_wakeup_fd")
    name = "select"
    interest = True

    def __init__(self, hub: _Waker, wakeup_fd: int, on_wakeup: Callable[[], None]) -> None:
        self.hub = hub
        self.nwaiters = 0
        self.waiting = False
        # On Linux pick poll(2) so that the fallback really is not epoll.
        cls: type[selectors.BaseSelector]
        if sys.platform == "linux" and hasattr(selectors, "PollSelector"):
            cls = selectors.PollSelector
        else:
            cls = selectors.DefaultSelector
        self._sel = cls()
        self._wakeup_fd = wakeup_fd
        self._on_wakeup = on_wakeup
        self._sel.register(wakeup_fd, selectors.EVENT_READ, None)
        self._live: set[IoState] = set()

    def register(self, fd: int) -> IoState:
        st = IoState(fd, self)
        self._live.add(st)
        return st

    def _update(self, st: IoState) -> None:
        mask = (selectors.EVENT_READ if st.rwaiter is not None else 0) | (
            selectors.EVENT_WRITE if st.wwaiter is not None else 0
        )
        key = self._sel.get_map().get(st.fd)
        try:
            if key is not None and key.data is not st:
                # The fd number now belongs to a newer IoState.
                self._sel.unregister(st.fd)
                key = None
            if mask == 0:
                if key is not None:
                    self._sel.unregister(st.fd)
            elif key is None:
                self._sel.register(st.fd, mask, st)
            elif key.events != mask:
                self._sel.modify(st.fd, mask, st)
        except (OSError, ValueError) as exc:
            # The fd is closed or invalid: wake the waiters with the error.
            self._forget(st)
            self._wake_both(st, OSError(errno.EBADF, f"bad file descriptor: {exc}"))

    def _forget(self, st: IoState) -> None:
        key = self._sel.get_map().get(st.fd)
        if key is not None and key.data is st:
            try:
                self._sel.unregister(st.fd)
            except (OSError, ValueError, KeyError):
                pass

    def unregister(self, st: IoState, exc: BaseException | None = None) -> None:
        if st.closed:
            return
        st.closed = True
        self._live.discard(st)
        self._forget(st)
        self._wake_both(st, exc)

    def want(self, st: IoState, mode: int) -> None:
        self._update(st)

    def dropped(self, st: IoState, mode: int) -> None:
        self.nwaiters -= 1
        self._update(st)

    def poll(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            timeout = 0
        self.waiting = True
        events = self._sel.select(timeout)
        self.waiting = False
        ready = self.hub.ready  # plain appends, as in EpollPoller.poll
        for key, ev in events:
            st = key.data
            if st is None:
                self._on_wakeup()
                continue
            if ev & selectors.EVENT_READ:
                st.readable = True
                task = st.rwaiter
                if task is not None:
                    st.rwaiter = None
                    self.nwaiters -= 1
                    ready.append(task)
            if ev & selectors.EVENT_WRITE:
                st.writable = True
                task = st.wwaiter
                if task is not None:
                    st.wwaiter = None
                    self.nwaiters -= 1
                    ready.append(task)
            self._update(st)

    def shrink(self) -> None:
        self._live = set(self._live)
        # The selector's own maps (its fd-to-key dict, and poll(2)'s fd table
        # inside select.poll) only grow: a new selector takes the keys over.
        old = self._sel
        sel = type(old)()
        for key in old.get_map().values():
            sel.register(key.fileobj, key.events, key.data)
        self._sel = sel
        old.close()

    def close(self) -> None:
        for st in list(self._live):
            self.unregister(st, OSError(errno.EBADF, "the hub was closed"))
        self._sel.close()

    def after_fork(self, wakeup_fd: int) -> None:
        # poll(2) keeps no kernel state: only the wake-up fd changes.
        self._sel.unregister(self._wakeup_fd)
        self._wakeup_fd = wakeup_fd
        self._sel.register(wakeup_fd, selectors.EVENT_READ, None)


def poller_name() -> str:
    """The poller new hubs use: ``GOFER_POLLER`` (epoll|select) or the best one."""
    name = os.environ.get("GOFER_POLLER", "").strip().lower()
    if name in ("", "auto"):
        return "epoll" if hasattr(select, "epoll") else "select"
    if name not in ("epoll", "select"):
        raise ValueError(f"GOFER_POLLER must be 'epoll' or 'select', not {name!r}")
    if name == "epoll" and not hasattr(select, "epoll"):
        raise ValueError("GOFER_POLLER=epoll, but this system has no epoll")
    return name


def make_poller(hub: _Waker, wakeup_fd: int, on_wakeup: Callable[[], None]) -> Poller:
    if poller_name() == "epoll":
        return EpollPoller(hub, wakeup_fd, on_wakeup)
    return SelectorPoller(hub, wakeup_fd, on_wakeup)


def make_wakeup_fd() -> tuple[int, int]:
    """A non-blocking (read, write) pair for waking a hub: one eventfd, or a pipe."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w
