"""gofer: Go-style concurrency for Python.

Cheap stackful coroutines on a hub per OS thread, with APIs that read like
plain blocking Python: ``gofer.go(fn)`` starts a coroutine, a blocking gofer
call parks the coroutine instead of the thread, and ``gofer.run(main)`` runs
a program. See ``docs/`` for the guide and the design.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gofer._core import (
    BlockingInHubError,
    Cancelled,
    CancelScope,
    Deadlock,
    Hub,
    Task,
    current,
    dump_tasks,
    get_hub,
    go,
    kernel,
    move_on_after,
    run,
    shield,
    sleep,
    timeout,
    yield_now,
)
from gofer._events import BrokenBarrierError
from gofer._select import default, select
from gofer.chan import Chan, Closed
from gofer.local import local
from gofer.race import race
from gofer.scope import Scope, scope
from gofer.sync import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Mutex,
    Once,
    RwLock,
    Semaphore,
    WaitGroup,
)
from gofer.threads import to_thread
from gofer.timers import Ticker, Timer, after, tick

if TYPE_CHECKING:
    from gofer import debug, dns, http, net, socket, ssl
    from gofer._metrics import metrics
    from gofer._monitor import monitor
    from gofer._trace import trace
    from gofer.patch import is_patched, patch

__version__ = "0.1.0"

# Submodules imported on first use (gofer.net, gofer.socket...): they pull in
# the stdlib's socket and ssl modules, which a program may never need.
_LAZY_SUBMODULES = {"aio", "debug", "dns", "http", "net", "socket", "ssl"}
# Functions whose modules load on first use (the modules are private, so that
# importing one never rebinds the name gofer.monitor to a module).
_LAZY_FUNCTIONS = {"metrics": "gofer._metrics", "monitor": "gofer._monitor", "trace": "gofer._trace"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"gofer.{name}")
    if name in _LAZY_FUNCTIONS:
        import importlib

        return getattr(importlib.import_module(_LAZY_FUNCTIONS[name]), name)
    if name in ("patch", "is_patched"):  # gofer.patch: a callable module (see gofer/patch)
        import gofer.patch as _patch

        return _patch if name == "patch" else _patch.is_patched
    raise AttributeError(f"module 'gofer' has no attribute {name!r}")


__all__ = [
    "Barrier",
    "BlockingInHubError",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "CancelScope",
    "Cancelled",
    "Chan",
    "Closed",
    "Condition",
    "Deadlock",
    "Event",
    "Hub",
    "Mutex",
    "Once",
    "RwLock",
    "Scope",
    "Semaphore",
    "Task",
    "Ticker",
    "Timer",
    "WaitGroup",
    "after",
    "current",
    "debug",
    "default",
    "dns",
    "dump_tasks",
    "get_hub",
    "go",
    "http",
    "is_patched",
    "kernel",
    "local",
    "metrics",
    "monitor",
    "move_on_after",
    "net",
    "patch",
    "race",
    "run",
    "scope",
    "select",
    "shield",
    "sleep",
    "socket",
    "ssl",
    "tick",
    "timeout",
    "to_thread",
    "trace",
    "yield_now",
]

def _observe_from_environment() -> None:
    """Turn on what the environment asks for: GOFER_MONITOR=seconds, GOFER_TRACE=file."""
    if os.environ.get("GOFER_MONITOR"):
        from gofer import _monitor

        _monitor.from_environment()
    if os.environ.get("GOFER_TRACE"):
        from gofer import _trace

        _trace.from_environment()


_observe_from_environment()
