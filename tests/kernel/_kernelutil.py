"""Helpers shared by the kernel's tests: a minimal waitable, a park that never ends, _try."""

from __future__ import annotations

from typing import Any

from gofer._core import current_tasklike as _current_tasklike
from gofer._core import park


class _Slot:
    """A minimal reusable waitable (kernel protocol): one waiter slot."""

    def __init__(self) -> None:
        self.waiter: Any = None

    def wait(self, timeout: float | None = None) -> None:
        self.waiter = _current_tasklike()
        park(self, timeout)

    def wake(self) -> bool:
        w, self.waiter = self.waiter, None
        if w is None:
            return False
        w._hub.ready.append(w)
        return True

    def _gofer_abort(self, task: Any) -> bool:
        if self.waiter is task:
            self.waiter = None
            return True
        return False

    def __repr__(self) -> str:
        return "<slot>"


def _forever() -> None:
    """Park on something nothing will ever wake."""
    _Slot().wait()


def _try(fn: Any) -> Any:
    try:
        return fn()
    except BaseException as exc:
        return exc
