"""Driving a program: ``run``, and what a thread's hub still holds at the end.

:func:`run` starts the main coroutine on a fresh hub, waits for it, then
cancels and waits for whatever is left, so that every ``finally`` block runs
before it returns. :func:`dump_tasks` prints this thread's live coroutines;
at interpreter exit, coroutines that plain code started but never let run
are named in a warning.
"""

from __future__ import annotations

import atexit
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent

from gofer._core._hub import Deadlock, Hub
from gofer._core._local import hub_if_any, set_hub
from gofer._core._park import current_tasklike
from gofer._core._task import Task, go

__all__ = ["dump_tasks", "run", "run_with"]

T = TypeVar("T")


def run(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn(*args, **kw)`` as the main coroutine and return its result.

    When it returns, leftover coroutines are cancelled and their ``finally``
    blocks run before ``run`` returns. Ctrl-C cancels everything and raises
    ``KeyboardInterrupt``; a deadlock raises :class:`gofer.Deadlock`.
    """
    return run_with(fn, args, kw)


def run_with(fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any], clock: Any = None) -> T:
    """:func:`run` with options (``clock``: a clock object such as ``gofer.testing.VirtualClock``)."""
    if not callable(fn):
        raise TypeError(f"gofer.run() needs a callable, not {type(fn).__name__}: {fn!r}")
    g = getcurrent()
    hub = hub_if_any()
    if g.parent is not None or (hub is not None and hub._in_run):
        raise RuntimeError("gofer.run() cannot be called from inside a running hub; use gofer.go() there")
    if hub is not None and clock is not None and not hub.closed:
        if hub.tasks or (hub.root is not None and hub.root._wait is not None):
            raise RuntimeError("this thread already has a hub in use; a clock can only be given to a fresh one")
        hub.close()  # idle (left by plain-code waits): make way for one on this clock
    if hub is None or hub.closed:
        hub = Hub(clock)
        set_hub(hub)
    hub._in_run = True
    current_tasklike()  # registers this thread's main code with the hub
    main: Task[T] = go(fn, *args, **kw)  # on the hub just installed
    main.name = "main"
    hub.main = main  # a signal handler's exception is raised in it (Hub.run)
    try:
        try:
            main.join()
        except BaseException:
            _cancel_all(hub)  # main failed, Ctrl-C, or Deadlock: clean up, then raise
            raise
        _cancel_all(hub)
        return main.result()
    finally:
        hub._in_run = False
        hub.main = None
        hub.close()


def _cancel_all(hub: Hub) -> None:
    """Cancel every live task of ``hub`` and wait until they have all finished.

    Their ``finally`` blocks run here. If they cannot finish (a ``Deadlock``
    while waiting) or Ctrl-C is pressed again, that error is raised.
    """
    while tasks := hub.tasks:
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                t.join()
            except (Deadlock, KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                t._report = None  # its error was its own; already reported or not wanted
        # tasks spawned by finally blocks are cancelled in the next round


def dump_tasks(file: Any = None) -> str:
    """Print (to ``file``, default stderr) every live coroutine of this thread's hub.

    Each is shown with what it waits on and its stack. Returns the text.
    """
    hub = hub_if_any()
    lines: list[str] = []
    if hub is None:
        lines.append("gofer: no hub in this thread")
    else:
        lines.append(f"gofer: {len(hub.tasks)} live coroutine(s) on {hub!r}")
        for t in sorted(hub.tasks, key=lambda t: t._label()):
            lines.append(f"- {t._label()}: {t._where()}")
            lines.extend("    " + ln.rstrip().replace("\n", "\n    ") for ln in t.stack)
    text = "\n".join(lines) + "\n"
    print(text, end="", file=file if file is not None else sys.stderr)
    return text


def _warn_never_ran_at_exit() -> None:
    """At interpreter exit, name the coroutines of plain code that never ran.

    ``go()`` outside ``run()`` only queues the coroutine: it runs when the
    thread's code next blocks in gofer. A program that ends first would drop
    it without a word (asyncio warns likewise about pending tasks).
    """
    hub = hub_if_any()
    if hub is None or hub.closed or hub._in_run:
        return
    never = sorted(t._label() for t in hub.tasks if t._never_ran())
    if never:
        warnings.warn(
            f"gofer: {len(never)} coroutine(s) started with go() never ran, because the "
            "program ended before it blocked in gofer (join them, or use gofer.run()): "
            + ", ".join(never[:10]) + (", ..." if len(never) > 10 else ""),
            RuntimeWarning,
            stacklevel=2,
        )


atexit.register(_warn_never_ran_at_exit)
