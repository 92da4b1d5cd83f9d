"""Testing helpers for gofer programs (and gofer's own tests).

* :class:`VirtualClock`: a clock for the hub that jumps straight to the next
  timer whenever every coroutine is parked, so tests of timeouts, tickers and
  sleeps run instantly and deterministically.
* :func:`run`: ``gofer.run`` with a virtual clock (or any clock).
* The pytest plugin :mod:`gofer.testing.plugin` (enable with
  ``-p gofer.testing.plugin``) adds fixtures and a leak check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gofer._core import run_with

__all__ = ["VirtualClock", "run"]
T = TypeVar("T")


class VirtualClock:
    """A monotonic clock that only moves when the hub lets it.

    With ``autojump`` (the default) the hub moves it to the next timer's
    deadline whenever nothing is ready and no I/O or thread is pending, so
    ``gofer.sleep(3600)`` returns at once with ``now()`` one hour later.
    """

    def __init__(self, start: float = 0.0, autojump: bool = True) -> None:
        self._now = float(start)
        self.autojump = autojump

    def now(self) -> float:
        return self._now

    def jump_to(self, when: float) -> None:
        if when > self._now:
            self._now = when

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (for manual control)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    def __repr__(self) -> str:
        return f"<VirtualClock now={self._now}>"


def run(fn: Callable[..., T], *args: Any, clock: Any = None, **kw: Any) -> T:
    """Run ``fn`` like ``gofer.run`` on a fresh hub with ``clock`` (default: a VirtualClock)."""
    return run_with(fn, args, kw, clock if clock is not None else VirtualClock())
