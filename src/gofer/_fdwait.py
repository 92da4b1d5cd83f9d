"""Waiting on an fd a C database driver owns: two ways at once, and kept registrations.

:mod:`gofer.patch_db` makes libpq's waits (psycopg 2 and 3) park on the
hub's poller; this module holds the two kinds of wait it needs beyond
``wait_readable``/``wait_writable``. :func:`wait_both` parks until the fd
is readable *or* writable (psycopg 3 asks for that while a long query is
sent), woken once by whichever comes first. :func:`keep` and
:func:`wait_kept` keep one fd registration per database connection across
its waits, instead of a registration per wait (see the comment above
:class:`Kept` for why that is safe with an edge-triggered poller).
"""

from __future__ import annotations

import select
import weakref
from typing import Any

from gofer._core import (
    IoState,
    OSThreadLocal,
    current_tasklike,
    get_hub,
    hub_if_any,
    park,
    wait_readable,
    wait_writable,
)

__all__ = ["BOTH", "READ", "WRITE", "Kept", "keep", "kept", "wait_both", "wait_kept"]

READ, WRITE, BOTH = 1, 2, 3


class _Slot:
    """Stands in the poller's slot for one direction of a two-way wait."""

    __slots__ = ("_throw", "both", "mode")

    def __init__(self, both: _Both, mode: int) -> None:
        self.both = both
        self.mode = mode
        # Set by Hub.throw_into when the fd is unregistered under the wait
        # (closed, or its number reused): the parked task raises it.
        self._throw: BaseException | None = None

    def switch(self) -> None:  # run by the hub when this direction is ready (or failed)
        exc, self._throw = self._throw, None
        t = self.both.fire(self.mode)
        if t is not None:
            if exc is not None:
                t._throw = exc
            t.switch()


class _Both:
    """The waitable of a wait for readable-or-writable: woken once, by either."""

    __slots__ = ("fired", "r", "st", "t", "w")

    def __init__(self, st: IoState, t: Any) -> None:
        self.st = st
        self.t = t
        self.fired = 0
        self.r = _Slot(self, READ)
        self.w = _Slot(self, WRITE)

    def fire(self, mode: int) -> Any:
        if self.fired:
            return None
        self.fired = mode
        self._drop_slots()
        return self.t

    def _drop_slots(self) -> None:
        st = self.st
        if st.rwaiter is self.r:
            st._gofer_abort(self.r)
        if st.wwaiter is self.w:
            st._gofer_abort(self.w)

    def _gofer_abort(self, task: Any) -> bool:
        if self.fired:
            return False
        self.fired = -1
        self._drop_slots()
        return True

    def __repr__(self) -> str:
        return f"<fd {self.st.fd} readable or writable>"


def wait_both(st: IoState, timeout: float | None) -> int:
    t = current_tasklike()
    if st.rwaiter is not None or st.wwaiter is not None:
        raise RuntimeError(f"another coroutine is already waiting on fd {st.fd}")
    both = _Both(st, t)
    poller = st.poller
    st.rwaiter = both.r
    st.wwaiter = both.w
    poller.nwaiters += 2
    if poller.interest:
        poller.want(st, READ)
    park(both, timeout)
    return both.fired


# -- registrations kept across waits -------------------------------------------
#
# A query waits on its connection's fd once or more; registering the fd with
# the hub's epoll and unregistering it again for every wait costs two
# epoll_ctl calls, a getpid and an IoState per wait. So a connection that is
# set up (its fd no longer changes) keeps one registration, found by fd and
# checked against the connection it was made for (a closed connection's fd
# number is soon reused). The poller is edge-triggered, and libpq's reads are
# out of sight: it may leave bytes in the socket whose edge was already seen.
# So a kept wait parks without looking only where an edge is sure to come,
# the first read wait after psycopg2 sent a query (its reply makes one);
# every other wait first asks the kernel with a zero-timeout poll(2), one
# system call instead of two. An edge seen since the last wait (the
# ``readable`` flag) ends the wait at once: the caller asks libpq again.


class Kept(weakref.ref[Any]):
    """The registration of one connection's fd on this thread's hub.

    A weak reference to the connection it was made for: when that is freed,
    the registration is dropped (:func:`_owner_gone`).
    """

    __slots__ = ("probe", "st", "tag")

    def __new__(cls, owner: Any, st: IoState, tag: int) -> Kept:
        return super().__new__(cls, owner, _owner_gone)

    def __init__(self, owner: Any, st: IoState, tag: int) -> None:  # ref.__new__ took the referent
        self.st = st
        self.tag = tag  # the server process's id: a reconnect on the same fd number changes it
        self.probe = select.poll()  # holds only the fd's number: no kernel state
        self.probe.register(st.fd, select.POLLIN | select.POLLOUT)


kept = OSThreadLocal()  # .fds: {fd: Kept} of this thread's hub (an AttributeError until the first)
_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_POLL_OUT = select.POLLOUT | select.POLLHUP | select.POLLERR


def _kept_fds() -> dict[int, Kept]:
    try:
        return kept.fds  # type: ignore[no-any-return]
    except AttributeError:
        fds: dict[int, Kept] = {}
        kept.fds = fds
        return fds


def keep(fd: int, owner: Any, tag: int = 0) -> Kept | None:
    """The kept registration of ``fd`` for the connection ``owner``, made on first use.

    None where the hub's poller is level-triggered: that one registers
    interest only while a waiter is parked, so a registration per wait costs
    no system call there.
    """
    fds = _kept_fds()
    k = fds.get(fd)
    if k is not None:
        if k() is owner and k.tag == tag and not k.st.closed:
            return k
        _forget(k)  # the fd number's previous connection (or hub) is gone
    poller = get_hub().poller
    if poller.interest:
        return None
    st = poller.register(fd)
    st.label = "database connection fd"
    # Not the poller's optimistic start: registering reports the fd's state
    # as an edge, and the connection's owner has read what was there.
    st.readable = 0
    fds[fd] = k = Kept(owner, st, tag)
    return k


def _forget(k: Kept) -> None:
    fds = _kept_fds()
    if fds.get(k.st.fd) is k:
        del fds[k.st.fd]
    # The poller ignores a closed fd (the kernel dropped it) and one whose
    # number another registration took over since.
    k.st.poller.unregister(k.st, None)


def _owner_gone(k: Any) -> None:
    """The connection was freed (its fd closed): drop the registration it kept.

    Only on the hub's own thread (where a connection is nearly always
    freed): the poller is not thread-safe. Elsewhere the registration stays
    until its fd number is kept again or the hub closes; the kernel dropped
    the closed fd from the epoll set already, so it costs a little memory.
    """
    if hub_if_any() is k.st.poller.hub:
        _forget(k)


def wait_kept(k: Kept, mode: int, look: bool = True, timeout: float | None = None) -> int:
    """Wait until the kept fd may be ready for ``mode``; return the direction.

    ``look=False`` (read waits only) parks without asking the kernel first,
    for a wait that an edge is sure to end (see the comment above).
    """
    st = k.st
    if mode == READ:
        if st.readable:
            st.readable = 0  # consumed: the caller reads now
            return READ
        if look and _probe(k) & _POLL_IN:
            return READ
        wait_readable(st, timeout)
        st.readable = 0  # the edge that woke us: the caller reads now
        return READ
    if mode == WRITE:
        if not _probe(k) & _POLL_OUT:
            wait_writable(st, timeout)
        return WRITE
    if mode == BOTH:
        if st.readable:
            st.readable = 0
            return READ
        ev = _probe(k)
        if ev & _POLL_IN:
            return READ
        if ev & _POLL_OUT:
            return WRITE
        fired = wait_both(st, timeout)
        if fired == READ:
            st.readable = 0
        return fired
    raise ValueError(f"wait mode must be 1 (read), 2 (write) or 3 (both), not {mode!r}")


def _probe(k: Kept) -> int:
    """The fd's poll(2) events now (a zero timeout)."""
    for _, ev in k.probe.poll(0):
        return int(ev)
    return 0
