"""gofer: Go-style concurrency for Python.

Cheap stackful coroutines on a hub per OS thread, with APIs that read like
plain blocking Python: ``gofer.go(fn)`` starts a coroutine, a blocking gofer
call parks the coroutine instead of the thread, and ``gofer.run(main)`` runs
a program. See ``docs/`` for the guide and the design.
"""

from __future__ import annotations

from gofer._cancel import CancelScope, move_on_after, shield, timeout
from gofer._hub import BlockingInHubError, Deadlock, Hub, get_hub
from gofer._task import Cancelled, Task, current, dump_tasks, go, run, sleep, yield_now
from gofer.local import local
from gofer.scope import Scope, scope
from gofer.threads import to_thread

__version__ = "0.1.0"

__all__ = [
    "BlockingInHubError",
    "CancelScope",
    "Cancelled",
    "Deadlock",
    "Hub",
    "Scope",
    "Task",
    "current",
    "dump_tasks",
    "get_hub",
    "go",
    "local",
    "move_on_after",
    "run",
    "scope",
    "shield",
    "sleep",
    "timeout",
    "to_thread",
    "yield_now",
]
