"""``gofer.patch()``: make the stdlib's blocking modules cooperative (opt-in).

Code written for the stdlib (requests, redis-py, smtplib, socketserver,
queue-and-thread programs) calls ``socket``, ``ssl``, ``select``,
``time.sleep``, ``threading``... and would block every coroutine of its hub.
``gofer.patch()`` replaces, in place and once, the blocking parts of those
modules with gofer's cooperative counterparts, so the same code parks only
the calling coroutine. Threads stay threads (``threading.Thread`` starts an
OS thread); the patched locks, events, conditions and queues work between
coroutines and threads. See ``docs/interop.md``.

Areas (keywords of :func:`patch`): ``socket`` (with name lookups), ``ssl``,
``select``, ``selectors``, ``time``, ``threading`` (and ``_thread``),
``queue``, ``subprocess``, ``os`` (``waitpid`` and friends), ``asyncio``
(``asyncio.run()`` and ``new_event_loop()`` build loops that wait on the
hub: :func:`gofer.aio.install_policy`) and ``psycopg`` (psycopg2's wait
callback and psycopg 3's waiting functions, where installed:
:mod:`gofer.patch_db`; these drivers do their I/O in C). Each area
module here holds its replacements; ``_orig`` keeps the originals, which
gofer itself goes on using. Nothing in gofer imports this package.
"""

from __future__ import annotations

import gc
import sys
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent

from gofer._core import hub_if_any
from gofer.patch._orig import original

__all__ = ["AREAS", "PatchWarning", "is_patched", "original", "patch"]


class PatchWarning(RuntimeWarning):
    """``gofer.patch()`` came after objects it cannot convert were made and used."""


def _area(name: str) -> Callable[[], None]:
    def apply() -> None:
        if name in ("socket", "ssl"):
            from gofer.patch import _socket as m
        elif name in ("select", "selectors"):
            from gofer.patch import _select as m  # type: ignore[no-redef]
        elif name in ("threading", "queue"):
            from gofer.patch import _threading as m  # type: ignore[no-redef]
        elif name == "time":
            from gofer.patch import _time as m  # type: ignore[no-redef]
        elif name == "asyncio":
            from gofer import aio

            aio.install_policy()  # asyncio.run() and new_event_loop() build gofer loops
            return
        elif name == "psycopg":
            from gofer import patch_db

            patch_db.patch_all()  # psycopg2's wait callback, psycopg 3's waits (where installed)
            return
        else:
            from gofer.patch import _process as m  # type: ignore[no-redef]
        getattr(m, f"patch_{name}")()

    return apply


# In the order they are applied.
AREAS: tuple[str, ...] = (
    "socket", "ssl", "select", "selectors", "time", "threading", "queue", "subprocess", "os",
    "asyncio", "psycopg",
)
_patched: set[str] = set()
_warned: set[str] = set()
_lock = threading.Lock()


def patch(**only: bool) -> None:
    """Make the stdlib's blocking modules cooperative, in place; a second call is a no-op.

    With no arguments every area is patched. ``name=False`` leaves an area
    out (``patch(subprocess=False)``); if any ``name=True`` is given, only
    the areas given as True are patched (``patch(socket=True, time=True)``).
    An unknown name is a ``TypeError``. Call it first thing, from the main
    thread, before ``gofer.run()``: patching from another thread or while a
    hub is running raises ``RuntimeError``, and objects made and used before
    patching stay blocking (a :class:`PatchWarning` says which module).
    """
    for name, value in only.items():
        if name not in AREAS:
            raise TypeError(f"gofer.patch() got an unexpected keyword argument {name!r} (areas: {', '.join(AREAS)})")
        if not isinstance(value, bool):
            raise TypeError(f"gofer.patch({name}=...) takes True or False, not {value!r}")
    if any(only.values()):
        wanted = [a for a in AREAS if only.get(a)]
    else:
        wanted = [a for a in AREAS if only.get(a, True)]
    with _lock:
        todo = [a for a in wanted if a not in _patched]
        if not todo:
            return
        _check_context()
        late = _late_objects(todo)
        for name in todo:
            _area(name)()
            _patched.add(name)
    for mod, what in late.items():
        if mod not in _warned:
            _warned.add(mod)
            warnings.warn(
                f"gofer.patch() ran after {what} were made with the unpatched {mod!r} module; "
                f"they stay blocking. Call gofer.patch() first thing, before importing the code that uses {mod}.",
                PatchWarning,
                stacklevel=3 if _via_module_call() else 2,
            )


def _via_module_call() -> bool:
    return sys._getframe(2).f_code is _CallableModule.__call__.__code__


def is_patched(name: str) -> bool:
    """True if the area ``name`` (``"socket"``, ``"threading"``...) has been patched."""
    if name not in AREAS:
        raise ValueError(f"unknown gofer.patch area {name!r} (areas: {', '.join(AREAS)})")
    return name in _patched


def _check_context() -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("gofer.patch() must be called from the main thread, at program start-up")
    hub = hub_if_any()
    g = getcurrent()
    running = g.parent is not None or (
        hub is not None and not hub.closed and (hub._in_run or any(w.task is not None for w in hub.workers))
    )
    if running:
        raise RuntimeError(
            "gofer.patch() cannot be called while a gofer hub is running (inside gofer.run() or "
            "with coroutines started); call it at program start-up, before gofer.run()"
        )


def _late_objects(todo: list[str]) -> dict[str, str]:
    """Per module, a description of objects made before patching that stay blocking."""
    late: dict[str, str] = {}
    check = {m for m in ("socket", "ssl", "threading") if m in todo and m in sys.modules}
    if not check:
        return late
    counts: dict[str, int] = dict.fromkeys(check, 0)
    std_socket = sys.modules["socket"].socket if "socket" in check else None
    ssl_mod = sys.modules.get("ssl")
    std_ssl = ssl_mod.SSLSocket if "ssl" in check and ssl_mod is not None else None
    thread_kinds: tuple[type, ...] = ()
    internal: set[int] = set()
    if "threading" in check:
        import queue

        thread_kinds = (threading.Condition, threading.Event, threading.Semaphore, threading.Barrier, queue.Queue)
        for t in threading.enumerate():  # each thread's own start-up event is no user object
            ev = getattr(t, "_started", None)
            if ev is not None:
                internal.update((id(ev), id(ev._cond)))
    found: list[Any] = []
    for obj in gc.get_objects():
        if std_socket is not None and type(obj) is std_socket:
            if obj.fileno() >= 0:
                counts["socket"] += 1
        elif std_ssl is not None and type(obj) is std_ssl:
            if obj.fileno() >= 0:
                counts["ssl"] += 1
        elif thread_kinds and isinstance(obj, thread_kinds):
            found.append(obj)
    for obj in found:  # the conditions inside an Event or a Queue are part of it
        for attr in ("_cond", "not_empty", "not_full", "all_tasks_done"):
            inner = getattr(obj, attr, None)
            if inner is not None:
                internal.add(id(inner))
    if "threading" in check:
        counts["threading"] = sum(1 for obj in found if id(obj) not in internal)
    if "threading" in check:
        others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.name.startswith("gofer-worker")]
        if others:
            late["threading"] = f"{len(others)} running thread(s) and {counts['threading']} lock-like object(s)"
        elif counts["threading"]:
            late["threading"] = f"{counts['threading']} lock-like object(s) (Condition, Event, Semaphore, Barrier, Queue)"
    if counts.get("socket"):
        late["socket"] = f"{counts['socket']} open socket(s)"
    if counts.get("ssl"):
        late["ssl"] = f"{counts['ssl']} open TLS socket(s)"
    return late


class _CallableModule(types.ModuleType):
    """This package, callable: ``gofer.patch(...)`` is :func:`patch`.

    Importing the subpackage binds ``gofer.patch`` to the package itself, so
    the package answers the call that the public API promises.
    """

    def __call__(self, **only: bool) -> None:
        patch(**only)


sys.modules[__name__].__class__ = _CallableModule
