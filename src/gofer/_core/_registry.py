"""What the kernel is told from outside: hubs, hooks and threads to ignore.

The kernel imports nothing of gofer outside ``gofer._core``; the layers
above tell it what it needs through the registrations here, made by plain
calls at their import, never by assigning into the kernel's namespace:

* :data:`hubs` holds every hub made in this process (weakly), for the
  monitor, the metrics and ``gofer.debug``; :func:`on_hub_created` adds a
  hook each new hub calls in its own thread (the instruments use it).
* The hub raises ``Deadlock`` only when no other thread could still wake it.
  Some threads cannot: gofer's own service threads (the monitor), idle
  thread-pool workers, pytest-timeout's watchdog. :func:`ignore_thread`
  names them, by ident or by a predicate, and :func:`other_threads_alive`
  is the check the hub makes.
* :data:`DEBUG` (``GOFER_DEBUG=1`` in the environment, read once at import)
  turns on the kernel's own consistency checks; off, they cost nothing.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEBUG",
    "hubs",
    "ignore_thread",
    "on_hub_created",
    "other_threads_alive",
    "register_thread_pool",
    "unignore_thread",
]

DEBUG = os.environ.get("GOFER_DEBUG", "") not in ("", "0")

# Every hub made in this process (Hub.__init__ adds itself).
hubs: weakref.WeakSet[Any] = weakref.WeakSet()
_created_hooks: list[Callable[[Any], None]] = []

# Threads that cannot wake a hub: idents, and predicates on (ident, Thread or None).
_ignored_idents: set[int] = set()
_ignored_if: list[Callable[[int, threading.Thread | None], bool]] = []
# The thread pool (gofer.threads): jobs in flight, and its threads' idents.
_pool_jobs: Callable[[], int] = lambda: 0  # noqa: E731
_pool_idents: Callable[[], set[int]] = set
# Threads started through _thread and still running, the main thread aside.
_thread_count: Callable[[], int] = getattr(_thread, "_count", lambda: 0)


def on_hub_created(hook: Callable[[Any], None]) -> None:
    """Call ``hook(hub)`` for each hub made from now on, in the hub's thread.

    It runs last in ``Hub.__init__``: it may swap the hub's ready queue.
    """
    _created_hooks.append(hook)


def hub_created(hub: Any) -> None:
    """Called by ``Hub.__init__``."""
    hubs.add(hub)
    for hook in _created_hooks:
        hook(hub)


def ignore_thread(which: int | Callable[[int, threading.Thread | None], bool]) -> None:
    """Do not count a thread as one that could wake a parked hub.

    ``which`` is a thread ident, or a predicate called with each other
    thread's ident and ``threading.Thread`` (None for a thread ``threading``
    does not know) that returns True for the threads to ignore.
    """
    if isinstance(which, int):
        _ignored_idents.add(which)
    else:
        _ignored_if.append(which)


def unignore_thread(ident: int) -> None:
    """Count thread ``ident`` again (no error if it was not ignored)."""
    _ignored_idents.discard(ident)


def register_thread_pool(jobs_in_flight: Callable[[], int], thread_idents: Callable[[], set[int]]) -> None:
    """Tell the kernel about the thread pool: its idle threads cannot wake a hub."""
    global _pool_jobs, _pool_idents
    _pool_jobs, _pool_idents = jobs_in_flight, thread_idents


def _forget_threads_after_fork() -> None:
    _ignored_idents.clear()  # no thread but the forking one survives fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)


def pool_jobs_in_flight() -> int:
    """Thread-pool jobs in flight, all hubs together (0 without a pool)."""
    return _pool_jobs()


def other_threads_alive() -> bool:
    """True if a thread other than this one and the ignored ones is alive.

    ``sys._current_frames()`` also sees threads started with
    ``_thread.start_new_thread``, which ``threading.enumerate()`` does not
    list; either may wake a parked coroutine.
    """
    me = threading.get_ident()
    pool = _pool_idents()
    busy = _pool_jobs()
    known = {th.ident: th for th in threading.enumerate()}
    seen = {*known, *sys._current_frames()}
    if _thread_count() + 1 > len(seen):
        return True  # a thread that has started but runs no Python code yet
    for ident in seen:
        if ident == me or ident is None or ident in _ignored_idents:
            continue
        th = known.get(ident)
        if th is not None and not th.is_alive():
            continue
        if ident in pool and not busy:
            continue
        if any(pred(ident, th) for pred in _ignored_if):
            continue
        return True
    return False
