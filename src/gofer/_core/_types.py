"""The shapes the kernel's parts agree on, as Protocols (for readers and mypy).

A *task-like* is what the scheduler parks, wakes and cancels: the worker
greenlet running a coroutine (``_park.Worker``), or the stand-in for a
thread's main code (``_park.Root``). A *waitable* is the registration a
task parks on: whoever can abort the wait (cancellation, a timeout) calls
its ``_gofer_abort``.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["TaskLike", "Waitable"]


class Waitable(Protocol):
    """A task's registration somewhere, handed to ``park``."""

    def _gofer_abort(self, task: Any) -> bool:
        """Unregister ``task``; True if it was still registered (and is not woken)."""
        ...


class TaskLike(Protocol):
    """What the scheduler needs of a parked or running piece of code."""

    _hub: Any  # its Hub
    _wait: Any  # the Waitable it is parked on, or None while it runs or is ready
    _throw: BaseException | None  # raised by the task itself when it resumes
    # True when a cancellation may be pending (cancel() was called, or a scope
    # around the running code was): hot paths test only this flag and leave
    # the full check (which scope, shielded or not) to when it is set.
    _cancel_hint: bool
    _cancel_req: bool  # cancel() was called on the task itself
    _scopes: tuple[Any, ...]  # the open cancel scopes, innermost last

    def switch(self, *args: Any) -> Any: ...

    def _label(self) -> str: ...
