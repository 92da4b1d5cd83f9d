"""Structured concurrency: ``with gofer.scope() as s: s.go(fn)``.

A scope owns the coroutines started with ``s.go``. Leaving the ``with`` block
waits for all of them. The first failure (an exception other than
``Cancelled``) in a child or in the block itself cancels the block and every
other child; once all have finished, the failures are raised together as an
``ExceptionGroup``. Cancelling the owner cancels the children too, and the
owner still waits for them before its ``Cancelled`` goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from gofer._core import Cancelled, CancelScope, ParkingLot, Task, go, shield

__all__ = ["Scope", "scope"]
T = TypeVar("T")


class Scope:
    """A nursery of coroutines; see :func:`scope`."""

    def __init__(self) -> None:
        self._children: set[Task[Any]] = set()
        self._errors: list[BaseException] = []
        self._cs = CancelScope()
        self._owner: Any = None
        self._lot = ParkingLot("the end of a scope's children")  # where __exit__ waits
        self._closed = False

    def __enter__(self) -> Scope:
        self._cs.__enter__()
        self._owner = self._cs._task
        return self

    def go(self, fn: Callable[..., T], *args: Any, **kw: Any) -> Task[T]:
        """Start ``fn(*args, **kw)`` as a child of this scope."""
        if self._closed:
            raise RuntimeError("this scope has finished; it cannot start new coroutines")
        if self._owner is None:
            raise RuntimeError("use the scope in a 'with' block before starting coroutines in it")
        t = go(fn, *args, **kw)
        self._children.add(t)
        t.add_done_callback(self._child_done)
        if self._cs.cancel_called:
            t.cancel()
        return t

    def cancel(self) -> None:
        """Cancel the block and every child."""
        self._cs.cancel()
        for c in list(self._children):
            c.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cs.cancel_called

    def _child_done(self, t: Task[Any]) -> None:
        self._children.discard(t)
        if not t.cancelled():
            exc = t.exception()
            if exc is not None:
                self._errors.append(exc)
                self.cancel()
        if not self._children:
            self._lot.unpark()  # its one parker: the owner, in __exit__

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> bool:
        own = self._cs.__exit__(et, ev, tb)
        body_cancelled: BaseException | None = None
        if ev is not None and not own:
            if isinstance(ev, Cancelled):
                body_cancelled = ev
            else:
                self._errors.insert(0, ev)
            self.cancel()
        try:
            self._wait_children()
        except Cancelled as exc:
            body_cancelled = body_cancelled or exc
            self.cancel()
            with shield():
                self._wait_children()
        self._closed = True
        if self._errors:
            errors, self._errors = self._errors, []
            raise BaseExceptionGroup("gofer.scope: a coroutine in the scope failed", errors)
        if body_cancelled is not None and body_cancelled is not ev:
            raise body_cancelled
        return own

    def _wait_children(self) -> None:
        while self._children:
            self._lot.park()

    def __repr__(self) -> str:
        return f"<gofer.Scope children={len(self._children)}>"


def scope() -> Scope:
    """Open a structured-concurrency scope (use it in a ``with`` block)."""
    return Scope()
