"""Patching ``threading``, ``_thread`` and ``queue``.

Threads stay threads: ``threading.Thread`` still starts an OS thread. What
changes is every lock-like object (``Lock``, ``RLock``, ``Condition``,
``Event``, ``Semaphore``, ``BoundedSemaphore``, ``Barrier``, ``Timer``'s
event, the queues): they come from :mod:`gofer.patch._locks` and ``_conds``, so a waiting
coroutine parks instead of blocking its thread, and coroutines and threads
can share them. ``threading.local`` becomes :class:`gofer.local` (one set of
attributes per coroutine). ``Thread.join()`` from a coroutine waits in the
thread pool, parking the coroutine. The stdlib's own pure-Python classes
(``threading.Event`` and friends) look their lock up in the module at call
time, so objects made from them after patching are cooperative too, even
through a reference taken before.

``get_ident()``, ``current_thread()``, ``enumerate()`` and ``main_thread()``
keep answering per OS thread: see docs/interop.md for why.
"""

from __future__ import annotations

import _thread
import os
import queue
import sys
import threading
from typing import Any

from gofer.local import local
from gofer.patch import _conds, _locks
from gofer.patch._orig import _views, save, thread_may_block
from gofer.threads import to_thread

__all__ = ["patch_queue", "patch_threading"]


def _join(self: threading.Thread, timeout: float | None = None) -> None:
    """``Thread.join`` that parks a calling coroutine (the wait runs in the pool)."""
    orig = _orig_join
    if thread_may_block():
        return orig(self, timeout)  # type: ignore[no-any-return]
    if not self._started.is_set():  # type: ignore[attr-defined]
        raise RuntimeError("cannot join thread before it is started")
    if self is threading.current_thread():
        raise RuntimeError("cannot join current thread")
    if timeout is not None and timeout <= 0:
        return orig(self, 0)  # type: ignore[no-any-return]
    if not self.is_alive():
        return orig(self, timeout)  # type: ignore[no-any-return]
    to_thread(orig, self, timeout)
    return None


_orig_join: Any = threading.Thread.join
_orig_start: Any = threading.Thread.start
_oslock = _thread.allocate_lock  # taken now: patching replaces the module's


class _StartedEvent:
    """A thread's start-up event (``Thread._started``) on a real OS lock.

    ``start()`` waits for the new thread to set it, which takes microseconds;
    blocking for that is cheaper than parking, and the hub could not see the
    thread yet (it is not alive until the event is set), so a parked wait
    could be taken for a deadlock.
    """

    __slots__ = ("_flag", "_lock")

    def __init__(self) -> None:
        self._flag = False
        self._lock = _oslock()
        self._lock.acquire()

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._flag and self._lock.acquire(True, -1 if timeout is None else timeout):
            self._lock.release()
        return self._flag

    def _at_fork_reinit(self) -> None:
        self._lock = _oslock()
        if not self._flag:
            self._lock.acquire()


def _start(self: threading.Thread) -> None:
    """``Thread.start`` with a real start-up event (see :class:`_StartedEvent`)."""
    if not self._started.is_set():  # type: ignore[attr-defined]
        self._started = _StartedEvent()  # type: ignore[attr-defined]
    _orig_start(self)


_orig_start_new_thread: Any = _thread.start_new_thread
_orig_get_ident = _thread.get_ident
_orig_enumerate = threading.enumerate
_raw_lock = _oslock()
_raw: dict[int, _RawThread] = {}


class _RawThread:
    """A thread started with ``_thread.start_new_thread``, as the hub's deadlock check sees it."""

    __slots__ = ("ident",)
    daemon = False
    name = "raw thread"

    def __init__(self, ident: int) -> None:
        self.ident = ident

    def is_alive(self) -> bool:
        return True


def start_new_thread(function: Any, args: Any, kwargs: Any = None) -> int:
    """``_thread.start_new_thread``, with the thread counted while it runs.

    ``threading.enumerate()`` does not list such threads (nor do they show
    in it once patched), but one may release a lock a coroutine or the main
    code waits for: gofer's hub must not take that wait for a deadlock.
    """

    token = _RawThread(0)  # counted from now: the thread may not have run yet

    def run(*a: Any, **kw: Any) -> Any:
        ident = _orig_get_ident()
        with _raw_lock:
            _raw.pop(id(token), None)
            _raw[ident] = _RawThread(ident)
        try:
            function(*a, **kw)
        except SystemExit:
            pass  # as _thread: a thread may end itself this way
        except BaseException as exc:
            _unraisable(function, exc)  # as _thread reports it, naming the function
        finally:
            with _raw_lock:
                _raw.pop(ident, None)

    with _raw_lock:
        _raw[id(token)] = token
    try:
        if kwargs is None:
            return int(_orig_start_new_thread(run, args))
        return int(_orig_start_new_thread(run, args, kwargs))
    except BaseException:
        with _raw_lock:
            _raw.pop(id(token), None)
        raise


def _after_fork_in_child() -> None:
    # Only the forking thread lives on in the child, and _raw_lock may have
    # been held by another one (the hub's deadlock check) at the fork.
    global _raw_lock
    _raw_lock = _oslock()
    _raw.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _hook_args_type() -> Any:
    """``sys.UnraisableHookArgs`` (not reachable by name): caught from one report."""
    got: list[Any] = []
    old = sys.unraisablehook
    sys.unraisablehook = got.append

    class _Raises:
        def __del__(self) -> None:
            raise RuntimeError("probe")

    try:
        _Raises()
    finally:
        sys.unraisablehook = old
    return type(got[0])


_HookArgs = _hook_args_type()


def _unraisable(function: Any, exc: BaseException) -> None:
    if sys.version_info >= (3, 13):
        msg, obj = f"Exception ignored in thread started by {function!r}", None
    else:
        msg, obj = "Exception ignored in thread started by", function
    sys.unraisablehook(_HookArgs((type(exc), exc, exc.__traceback__, msg, obj)))


def _enumerate_for_gofer() -> list[Any]:
    """``threading.enumerate()`` plus the raw threads (gofer's own view only)."""
    known: list[Any] = _orig_enumerate()
    with _raw_lock:
        raw = list(_raw.values())
    if raw:
        idents = {t.ident for t in known}
        known.extend(r for r in raw if r.ident not in idents)
    return known


def patch_threading() -> None:
    th = save("threading")
    thr = save("_thread")
    th.Lock = _locks.Lock
    th._allocate_lock = _locks.Lock
    th.RLock = _locks.RLock
    th._CRLock = _locks.RLock
    # Condition, Event, Semaphore, BoundedSemaphore, Barrier and Timer stay the
    # stdlib's classes: they build on the names above at call time.
    threading.Condition.wait = _conds.condition_wait  # type: ignore[method-assign]
    th.local = local
    threading.Thread.join = _join  # type: ignore[method-assign]
    threading.Thread.start = _start  # type: ignore[method-assign]
    thr.start_new_thread = start_new_thread
    if hasattr(thr, "start_new"):
        thr.start_new = start_new_thread
    view = _views.get("threading")
    if view is not None:
        view.enumerate = _enumerate_for_gofer  # type: ignore[attr-defined]  # read by the hub's deadlock check
    thr.allocate_lock = _locks.Lock
    thr.LockType = _locks.Lock
    if hasattr(thr, "RLock"):
        thr.RLock = _locks.RLock
    thr._local = local


def patch_queue() -> None:
    q = save("queue")
    queue.Queue.__init__ = _conds.queue_init  # type: ignore[method-assign]
    q.SimpleQueue = _conds.SimpleQueue
