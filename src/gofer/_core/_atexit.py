"""Other threads' hubs at interpreter exit: freeze them on their main greenlet.

CPython 3.11 ends a daemon thread that wants the GIL back after finalisation
has begun with ``pthread_exit`` from inside the call that released it. When
that thread is in a greenlet other than its main one (its hub, polling), the
forced unwinding runs greenlet's C++ clean-up code, which drops references
without the GIL while the main thread tears the interpreter down: the heap is
corrupted and the process aborts at exit ("malloc(): unsorted double linked
list corrupted"), seen with greenlet 3.5 and a daemon thread that waits with
a timeout under ``gofer.patch()``. 3.12 and 3.13 do not show it.

So on 3.11, at exit (an ``atexit`` handler: the interpreter is still whole,
and the non-daemon threads have been joined), every other thread's hub is
asked, through its thread-safe queue, to *freeze*: the hub switches to its
thread's main greenlet, which raises nothing and blocks for good on an OS
lock. A thread parked there has no greenlet frames on its C stack and dies
quietly with the process. The exit waits at most ``WAIT`` seconds for the
hubs that are running now to answer; a hub that is not running freezes when
its thread next parks.
"""

from __future__ import annotations

import _thread
import atexit
import sys
import threading
import time
from typing import Any

from greenlet import getcurrent

from gofer._core._registry import hubs

__all__ = ["AtExitFreeze", "freeze_here", "freeze_hubs"]

WAIT = 0.5  # seconds the exit waits, in all, for running hubs to freeze


class AtExitFreeze(BaseException):
    """The marker a frozen thread's main code finds in its ``_throw`` slot."""

    def __init__(self, ack: Any) -> None:
        super().__init__("gofer: frozen at interpreter exit")
        self.ack = ack


def freeze_here(exc: AtExitFreeze) -> None:
    """Block the calling thread for good (its main greenlet), after saying so."""
    exc.ack.release()
    forever = _thread.allocate_lock()
    forever.acquire()
    forever.acquire()  # never released: the process exits around it


def _freeze(hub: Any, ack: Any) -> None:
    # A callback run by the hub, in the hub's greenlet.
    root = hub.root
    if root is None or getcurrent() is not hub or root.g.dead:
        ack.release()
        return
    root._throw = AtExitFreeze(ack)
    try:
        hub.ready.remove(root)
    except ValueError:
        pass
    root.g.switch()  # it raises nothing: freeze_here() blocks it (_park.raise_thrown)


def freeze_hubs(wait: float = WAIT) -> int:
    """Freeze every other thread's hub; the number that answered in time."""
    me = _thread.get_ident()
    # Threads that are alive. A thread whose stack is all compiled code (its
    # hub polling, in the compiled kernel) has no frame in _current_frames.
    running = set(sys._current_frames()) | {t.ident for t in threading.enumerate()}
    acks = []
    for hub in list(hubs):
        if hub.closed or hub.thread_ident == me or hub.thread_ident not in running:
            continue
        ack = _thread.allocate_lock()
        ack.acquire()
        try:
            hub.call_threadsafe(_freeze, hub, ack)
        except RuntimeError:
            continue  # closed meanwhile
        root = hub.root
        if hub._in_run or (root is not None and root._wait is not None):
            acks.append(ack)  # running: in the hub or parked in it now
    deadline = time.monotonic() + wait
    answered = 0
    for ack in acks:
        if ack.acquire(True, max(deadline - time.monotonic(), 0)):
            answered += 1
    return answered


if sys.version_info < (3, 12):
    atexit.register(freeze_hubs)
