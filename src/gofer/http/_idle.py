"""Idle keep-alive connections without a coroutine (parked on their fd).

A keep-alive connection waiting for its next request needs no coroutine of
its own: its parse state (a parser between two messages, no partial head,
nothing buffered) lives in the :class:`~gofer.http._conn.ServerConnection`.
So once it is idle, the connection is parked on its fd with
:func:`gofer._core.on_readable` and its coroutine ends; the next request's
bytes start a new one (``_wake``), which goes on where the old one stopped.

Two ways in. The server's sweep (every tick) throws :class:`GoIdle` into the
coroutine of a connection it found idle for a whole tick (``go_idle``), so a
quick keep-alive client never pays for it; and above a number of
connections (``gofer.http._conn._PARK_NOW``) a connection parks at once,
so that a burst of thousands of idle clients never holds a coroutine each.
Only plain connections started by ``serve_socket`` park: a TLS layer may
hold decrypted bytes its fd does not show, and ``handle_connection``
promises to serve in its caller's coroutine.

When most of a large crowd of connections has gone, :func:`shed_crowd`
gives its memory back. CPython's allocator keeps a 1 MiB arena while any
object in it lives, so what the crowd left alive goes: the hub's idle
workers and grown tables (``Hub.shrink``), and CPython's free lists of
tuples, floats and the like, which a full ``gc.collect()`` empties. Then
glibc is asked to return its freed pages (``malloc_trim``): free() alone
returns only the top of the heap, and the holes the connections left stay
resident.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import socket
import sys
from collections.abc import Callable
from typing import Any

from gofer._core import get_hub, go, on_readable

__all__ = ["APP", "BODY", "HEAD", "IDLE", "TRIM_FROM", "WRITE", "GoIdle", "IdleParking", "shed_crowd", "trim_heap"]

# Phases, for the timeout sweep: what the connection is waiting for.
APP, IDLE, HEAD, BODY, WRITE = 0, 1, 2, 3, 4

# A server that had at least this many connections sheds their memory each
# time they have fallen to a quarter of the last peak, down to none
# (Server._sweep).
TRIM_FROM = 1024


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # absent from musl (AttributeError)
    except (OSError, AttributeError):
        return None


def trim_heap() -> bool:
    """Give freed heap memory back to the system (glibc's ``malloc_trim(0)``); False if there is none."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def shed_crowd() -> None:
    """Inside the hub, after most of a crowd of connections has gone: give back what it left.

    A full collection (which also empties CPython's free lists) costs a pause
    that grows with the heap: it runs once per fall to a quarter, not per tick.
    """
    get_hub().shrink()
    gc.collect()
    # CPython's attribute cache holds the names it was last asked for, among
    # them strings a C call made afresh (datetime's "dst"): one of those made
    # mid-crowd keeps its arena.
    clear = getattr(sys, "_clear_type_cache", None)
    if clear is not None:
        clear()
    trim_heap()


_malloc_trim()  # looked up now: its ctypes objects would otherwise be made mid-crowd and pin an arena


class GoIdle(Exception):
    """Thrown into a connection's coroutine waiting for its next request: park on the fd."""


class IdleParking:
    """The parking half of a server connection (a mixin of ServerConnection)."""

    __slots__ = ()

    # Provided by ServerConnection and RequestParsing.
    st: Any
    sock: Any
    task: Any
    handle: Any
    closing: Any
    queue: Any
    cur: Any
    in_head: Any
    out: Any

    def phase(self) -> int:
        """What the connection waits for now: APP (nothing), IDLE, HEAD, BODY or WRITE."""
        st = self.st
        if st.wwaiter is not None:
            return WRITE
        if st.rwaiter is not None:
            return HEAD if self.in_head else (IDLE if self.cur is None else BODY)
        return APP

    def run(self, dispatch: Any = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def go_idle(self) -> None:
        """From the sweep: make the coroutine parked for the next request park the connection."""
        st = self.st
        w = st.rwaiter
        # Only the wait in fill() between requests (phase IDLE), not yet woken.
        if w is None or w._wait is not st or getattr(w, "task", None) is not self.task:
            return
        st._gofer_abort(w)
        w._wait = None
        st.poller.hub.throw_into(w, GoIdle())

    def _park_on_fd(self) -> bool:
        if self.st.readable or self.closing or self.queue or self.cur is not None or self.in_head or self.out:
            return False  # something to do after all: stay in the coroutine
        self.task = None
        self.handle = on_readable(self.st, self._wake)
        return True

    def _wake(self) -> None:
        """In the hub: bytes (or EOF, or an error) arrived on a parked connection."""
        h = self.handle
        self.handle = None
        if self.closing:
            return
        if (h is not None and h.error is not None) or (self.st.readable == 2 and not self._input_waiting()):
            self.close()  # closed or failed with nothing to read: no coroutine for that
            return
        self.task = go(self.run)

    def _input_waiting(self) -> bool:
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except BlockingIOError:
            return True  # nothing yet after all: the coroutine waits for it
        except OSError:
            return False

    def abort(self) -> None:
        """End the connection from outside: cancel its coroutine, or close it if parked."""
        if self.task is not None:
            self.task.cancel()
        elif self.handle is not None:
            self.close()
