"""Calls into a hub from other threads, and the wake-up fd that carries them.

Another thread hands a hub work with ``Hub.call_threadsafe``:
the call goes on a queue and the hub's wake-up fd (an eventfd, or a pipe)
is written at most once per drain, so a hub asleep in its poller wakes up.
The poller reports the fd, and the hub drains the queue onto its ready
queue. A forked child gives its hub a fresh fd (the parent keeps using the
old one), and ``Hub._release`` closes it from any thread.

The functions here are ``Hub`` methods (the class binds them): a second
base class would lengthen the hub's MRO, which greenlet's type checks walk
on every switch.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gofer._core._hub import Hub

from gofer._core._poll import make_wakeup_fd
from gofer._core._timers import Callback

__all__ = ["after_fork", "call_threadsafe", "drain_threadsafe", "release"]

_SIGNAL = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # one eventfd increment (8 bytes)


def call_threadsafe(self: Hub, fn: Callable[..., Any], *args: Any) -> None:
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

def drain_threadsafe(self: Hub) -> None:
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

def after_fork(self: Hub) -> None:
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

def release(self: Hub) -> None:
    """Close the OS resources (from the hub's thread: ``close()``, or at thread exit)."""
    with self._fd_lock:
        if self.closed:
            return
        self.closed = True
        for fd in {self._wakeup_r, self._wakeup_w}:
            with contextlib.suppress(OSError):
                os.close(fd)
    withdraw_parked(self)
    self.poller.close()


def withdraw_parked(hub: Hub) -> None:
    """Take every parked task-like of ``hub`` out of what it waits on.

    The hub is going (``close()``, or its thread ended with coroutines still
    parked): nothing will run them again, so no channel, queue or lock may
    hand one of them a value or a lock, which would then be lost. Each
    waitable's abort withdraws the record (a channel's, thread-safely).
    """
    parked = [w for w in hub.workers if w._wait is not None]
    root = hub.root
    if root is not None and root._wait is not None:
        parked.append(root)
    for t in parked:
        waitable, t._wait = t._wait, None
        with contextlib.suppress(Exception):
            waitable._gofer_abort(t)
