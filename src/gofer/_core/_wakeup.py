"""Calls into a hub from other threads, and the wake-up fd that carries them.

Another thread hands a hub work with :meth:`ThreadCalls.call_threadsafe`:
the call goes on a queue and the hub's wake-up fd (an eventfd, or a pipe)
is written at most once per drain, so a hub asleep in its poller wakes up.
The poller reports the fd, and the hub drains the queue onto its ready
queue. A forked child gives its hub a fresh fd (the parent keeps using the
old one), and :meth:`ThreadCalls._release` closes it from any thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gofer._core._poll import Poller, make_wakeup_fd
from gofer._core._timers import Callback

__all__ = ["ThreadCalls"]

_SIGNAL = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # one eventfd increment (8 bytes)


class ThreadCalls:
    """The part of ``Hub`` other threads touch (the hub's slots hold the state)."""

    # No slots of its own (a second base with slots would clash with greenlet's
    # layout): the state below lives in Hub's. Hidden from mypy, which would
    # then refuse the stores the annotations below declare.
    if not TYPE_CHECKING:
        __slots__ = ()

    closed: bool
    poller: Poller
    ready: deque[Any]
    _tsq: deque[tuple[Callable[..., Any], tuple[Any, ...]]]
    _ts_signalled: bool
    _fd_lock: threading.Lock
    _wakeup_r: int
    _wakeup_w: int

    def call_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in this hub's thread, from any thread."""
        if self.closed:
            raise RuntimeError("the target hub is closed (its thread left gofer.run())")
        self._tsq.append((fn, args))
        if not self._ts_signalled:
            self._ts_signalled = True
            # The lock keeps close() from closing the fd (whose number could then
            # be reused by another file) between the check and the write.
            with self._fd_lock:
                if self.closed:
                    return
                try:
                    os.write(self._wakeup_w, _SIGNAL)
                except BlockingIOError:
                    pass  # already signalled: the counter is full

    def _drain_threadsafe(self) -> None:
        # Consume the signal first, then clear the flag, then drain: a call
        # landing in between either sees the flag still set (and its item is
        # drained below) or sets it again and writes a fresh signal.
        try:
            os.read(self._wakeup_r, 8)
        except (BlockingIOError, InterruptedError):
            pass
        self._ts_signalled = False
        q = self._tsq
        ready = self.ready
        while q:
            fn, args = q.popleft()
            ready.append(Callback(fn, args))

    def _after_fork(self) -> None:
        """In a forked child, for the hub of the thread that forked.

        The epoll instance and the wake-up eventfd came from the parent, which
        still uses them: a wake-up written here would wake the parent, and both
        would take each other's I/O events. Give this hub its own.
        """
        old_r, old_w = self._wakeup_r, self._wakeup_w
        self._wakeup_r, self._wakeup_w = make_wakeup_fd()
        self._ts_signalled = False
        self._fd_lock = threading.Lock()  # may have been held by a thread now gone
        self.poller.after_fork(self._wakeup_r)
        for fd in {old_r, old_w}:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._tsq:  # calls queued before the fork still get to run
            self._ts_signalled = True
            os.write(self._wakeup_w, _SIGNAL)

    def _release(self) -> None:
        """Close the OS resources (safe from any thread, e.g. at thread exit)."""
        with self._fd_lock:
            if self.closed:
                return
            self.closed = True
            for fd in {self._wakeup_r, self._wakeup_w}:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.poller.close()
