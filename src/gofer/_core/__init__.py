"""The gofer kernel, and its single face: everything else imports only this.

The kernel is the hub (one scheduler greenlet per OS thread: a ready queue,
timers, a poller, a wake-up fd for other threads), parking, tasks, wait
queues and cancel scopes. The rest of gofer (channels, locks, sockets, HTTP,
threads, asyncio) is built on the names below, and no module outside
``gofer._core`` imports one of its submodules; the kernel in turn imports
nothing of gofer outside itself (``tests/kernel/test_fence.py`` checks
both). The names are the same objects as in the submodules, so going
through the face costs nothing.

Blocking: register the running task-like (``current_tasklike()`` or, in a
primitive that may already be cancelled, ``me_for_park()``) somewhere, then
``park(waitable, timeout)``; whoever takes it out calls ``wake(task)``.
Cancellation and timeouts call ``waitable._gofer_abort(task)``. See
docs/kernel.md for the rules and the debug mode (``GOFER_DEBUG=1``).

The names, by part: the hub (``Hub``, ``get_hub``, ``hub_if_any``, timers
and clocks; ``call_soon``, ``call_at`` and ``call_threadsafe`` are hub
methods), parking and waking, fds (``wait_readable``, ``on_readable``),
time slices (``yield_now``, ``give_way``, ``sleep``), tasks and programs
(``go``, ``run``), wait queues, cancel scopes, and what the layers above
tell the kernel (``on_hub_created``, ``ignore_thread``,
``register_thread_pool``), and which kernel runs (``kernel()``: compiled
or pure Python, see ``_kernel``).
"""

from __future__ import annotations

# First: it decides whether the modules below load compiled or from source.
from gofer._core._kernel import kernel

# isort: split
from gofer._core._cancel import CancelScope, move_on_after, shield, timeout
from gofer._core._hub import BlockingInHubError, Deadlock, Hub, get_hub
from gofer._core._io import on_readable, wait_readable, wait_writable
from gofer._core._local import OSThreadLocal, hub_if_any, os_lock
from gofer._core._lot import ParkingLot
from gofer._core._park import (
    Cancelled,
    RemoteWake,
    Root,
    Worker,
    current_tasklike,
    deliverable,
    interrupt,
    park,
    wake,
)
from gofer._core._poll import IoState, Poller, poller_name
from gofer._core._registry import (
    DEBUG,
    hubs,
    ignore_thread,
    on_hub_created,
    pool_jobs_in_flight,
    register_thread_pool,
    unignore_thread,
)
from gofer._core._run import dump_tasks, run, run_with
from gofer._core._slice import give_way, sleep, yield_now
from gofer._core._task import Task, current, go, run_tasks
from gofer._core._timers import RealClock, TimerHandle
from gofer._core._types import TaskLike, Waitable
from gofer._core._waitq import QueueWaiter, WaitQueue, check_timeout, me_for_park

if kernel() == "compiled":
    # The extension types' fields as member descriptors, which the interpreter
    # specializes (``_members.pyx``). Built with the compiled kernel; without
    # it (a partial build) the fields stay Cython properties: slower, the same.
    try:
        from gofer._core import _members  # type: ignore[attr-defined]  # a .pyx, no stub
    except ImportError:
        pass
    else:
        _members.install()

__all__ = [
    "DEBUG",
    "BlockingInHubError",
    "CancelScope",
    "Cancelled",
    "Deadlock",
    "Hub",
    "IoState",
    "OSThreadLocal",
    "ParkingLot",
    "Poller",
    "QueueWaiter",
    "RealClock",
    "RemoteWake",
    "Root",
    "Task",
    "TaskLike",
    "TimerHandle",
    "WaitQueue",
    "Waitable",
    "Worker",
    "check_timeout",
    "current",
    "current_tasklike",
    "deliverable",
    "dump_tasks",
    "get_hub",
    "give_way",
    "go",
    "hub_if_any",
    "hubs",
    "ignore_thread",
    "interrupt",
    "kernel",
    "me_for_park",
    "move_on_after",
    "on_hub_created",
    "on_readable",
    "os_lock",
    "park",
    "poller_name",
    "pool_jobs_in_flight",
    "register_thread_pool",
    "run",
    "run_tasks",
    "run_with",
    "shield",
    "sleep",
    "timeout",
    "unignore_thread",
    "wait_readable",
    "wait_writable",
    "wake",
    "yield_now",
]
