"""``race``: general selection over arbitrary blocking code.

``select`` chooses among channel operations; ``race(fn1, fn2, ...)`` chooses
among whole computations, as May's ``cqueue`` does. Each callable runs as a
coroutine on the caller's hub; the first one to finish (by returning or by
raising) wins, every other one is cancelled, and ``race`` waits for all of
them before it returns, so nothing outlives the call. The winner's value is
returned as ``(index, value)`` and its exception is raised as is. A loser
that fails with something other than ``Cancelled`` (it raced the winner to
the finish, or its clean-up failed) is not dropped: the errors are raised
together in an ``ExceptionGroup``. If the caller is cancelled while waiting,
all the coroutines are cancelled and waited for, and ``Cancelled`` goes on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from gofer._core import Cancelled, ParkingLot, Task, go, me_for_park, shield

__all__ = ["race"]


class _Race(ParkingLot):
    """The first finisher of a ``race``, and the lot where its caller waits."""

    __slots__ = ("n", "winner")

    def __init__(self, n: int) -> None:
        ParkingLot.__init__(self)
        self.n = n
        self.winner = -1

    def __repr__(self) -> str:
        return f"<race of {self.n} coroutines>"


def _finished(st: _Race, i: int, task: Task[Any]) -> None:
    # A done-callback: runs in the hub of the caller (the tasks live there).
    if st.winner < 0:
        st.winner = i
    st.unpark()  # its one parker: the caller


def _wait_all(tasks: list[Task[Any]], st: _Race) -> None:
    while not all(t.done() for t in tasks):
        st.park()


def race(*fns: Callable[[], Any]) -> tuple[int, Any]:
    """Run each callable as a coroutine; return ``(index, value)`` of the first to finish.

    The others are cancelled and waited for before ``race`` returns. If the
    first to finish raised, that exception is raised here. Use
    ``functools.partial`` or a lambda to pass arguments.
    """
    if not fns:
        raise ValueError("race() needs at least one callable")
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"race() argument {i} is not callable: {fn!r}")
    st = _Race(len(fns))
    me_for_park()  # a caller cancelled already starts nothing
    tasks: list[Task[Any]] = []
    for i, fn in enumerate(fns):
        t = go(fn)
        t.add_done_callback(functools.partial(_finished, st, i))
        tasks.append(t)
    try:
        while st.winner < 0:
            st.park()
    finally:
        for t in tasks:
            t.cancel()
        with shield():  # the losers' clean-up must finish even if we are cancelled too
            _wait_all(tasks, st)
    win = tasks[st.winner]
    errors = []
    for i, t in enumerate(tasks):
        if i != st.winner and not t.cancelled():
            exc = t.exception()
            if exc is not None:
                errors.append(exc)
    if errors:
        first = win.exception()
        if first is not None and not isinstance(first, Cancelled):
            errors.insert(0, first)
        raise BaseExceptionGroup("gofer.race: racers other than the winner failed", errors)
    return st.winner, win.result()
