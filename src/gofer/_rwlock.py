"""A readers-writer lock for coroutines and threads: ``RwLock``.

Built like the locks in ``gofer.sync`` (state under a ``threading.Lock``, a
FIFO :class:`~gofer._core.WaitQueue` of parked callers). Readers and
writers wait in one queue in arrival order, which is what keeps writers
from starving; see :class:`RwLock`. Exported from ``gofer.sync`` and
``gofer``.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from gofer._core import QueueWaiter, WaitQueue, check_timeout, me_for_park, park, wake

__all__ = ["RwLock"]


class _Guard:
    """A context manager calling ``enter()`` / ``leave()`` (for ``RwLock.read()`` etc.)."""

    __slots__ = ("_enter", "_leave")

    def __init__(self, enter: Any, leave: Any) -> None:
        self._enter = enter
        self._leave = leave

    def __enter__(self) -> None:
        self._enter()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()


_READ, _WRITE = "read", "write"


class RwLock:
    """A readers-writer lock: many readers or one writer (``with rw.read():`` / ``with rw.write():``).

    Waiters are served in arrival order: a reader that arrives while a writer
    waits queues behind the writer, so writers never starve; when a writer
    releases, the readers queued before the next writer all enter together.
    """

    __slots__ = ("__weakref__", "_lock", "_q", "_readers", "_rguard", "_wguard", "_writer")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._writer = False
        self._q = WaitQueue(self._lock, "RwLock", on_abort=self._grant, owner=self)
        self._rguard = _Guard(self.acquire_read, self.release_read)
        self._wguard = _Guard(self.acquire_write, self.release_write)

    def read(self) -> _Guard:
        """``with rw.read():`` holds the lock shared."""
        return self._rguard

    def write(self) -> _Guard:
        """``with rw.write():`` holds the lock exclusively."""
        return self._wguard

    def acquire_read(self, timeout: float | None = None) -> None:
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if not self._writer and not len(self._q):
                self._readers += 1
                return
            w = self._q.push(me_for_park(), _READ)
        park(w, timeout)

    def acquire_write(self, timeout: float | None = None) -> None:
        if timeout is not None:
            check_timeout(timeout)
        with self._lock:
            if not self._writer and not self._readers and not len(self._q):
                self._writer = True
                return
            w = self._q.push(me_for_park(), _WRITE)
        park(w, timeout)

    def release_read(self) -> None:
        with self._lock:
            if not self._readers:
                raise RuntimeError("release_read of a gofer.RwLock that no reader holds")
            self._readers -= 1
            woken = self._grant() if not self._readers else []
        for w in woken:
            wake(w.task)

    def release_write(self) -> None:
        with self._lock:
            if not self._writer:
                raise RuntimeError("release_write of a gofer.RwLock that no writer holds")
            self._writer = False
            woken = self._grant()
        for w in woken:
            wake(w.task)

    def _grant(self) -> list[QueueWaiter]:
        """Let in whoever may enter now, in FIFO order (lock held)."""
        woken: list[QueueWaiter] = []
        q = self._q
        while not self._writer:
            w = q.peek()
            if w is None:
                break
            if w.value is _WRITE:
                if not self._readers:
                    q.pop()
                    self._writer = True
                    woken.append(w)
                break
            q.pop()
            self._readers += 1
            woken.append(w)
        return woken

    def statistics(self) -> dict[str, Any]:
        """``readers`` holding it, ``writer`` flag, and queued ``readers_waiting`` / ``writers_waiting``."""
        with self._lock:
            live = [w for w in self._q.q if w.live]
            return {
                "readers": self._readers,
                "writer": self._writer,
                "readers_waiting": sum(1 for w in live if w.value is _READ),
                "writers_waiting": sum(1 for w in live if w.value is _WRITE),
            }

    def __repr__(self) -> str:
        return (
            f"<gofer.RwLock readers={self._readers} writer={self._writer} waiters={len(self._q)}>"
        )
