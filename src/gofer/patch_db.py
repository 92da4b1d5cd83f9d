"""Cooperative waiting for database drivers whose I/O is in C (libpq).

psycopg 2 and psycopg 3 do their network I/O inside libpq, which the
patched ``socket`` module cannot reach. Both let Python decide how to wait
for the connection's fd, and this module makes that wait park the gofer
coroutine instead of the thread:

* psycopg 2: :func:`patch_psycopg2` installs a wait callback with
  ``psycopg2.extensions.set_wait_callback``; every connection then runs in
  libpq's non-blocking mode, and each wait parks on the hub's poller. If the
  coroutine is cancelled while a query runs, the query is cancelled on the
  server (``conn.cancel()``) and ``Cancelled`` raised; psycopg2 then closes
  that connection (it always closes a connection whose wait callback
  raises), which a pool discards.
* psycopg 3: :func:`patch_psycopg` replaces ``psycopg.waiting.wait`` and
  ``wait_conn``, the functions psycopg's sync connections call (at call
  time) to drive their non-blocking generators, and wraps
  ``Connection.wait`` so that a query whose coroutine is cancelled is
  cancelled on the server and drained: the connection stays usable.

:func:`wait_fd` is the building block: wait until an fd someone else owns is
readable, writable, or either. ``gofer.patch()`` calls :func:`patch_all`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Generator
from typing import Any

from gofer._core import (
    Cancelled,
    CancelScope,
    IoState,
    current_tasklike,
    get_hub,
    move_on_after,
    park,
    wait_readable,
    wait_writable,
)

__all__ = [
    "is_patched",
    "patch_all",
    "patch_psycopg",
    "patch_psycopg2",
    "unpatch_psycopg",
    "unpatch_psycopg2",
    "wait_fd",
]

READ, WRITE, BOTH = 1, 2, 3


class _Slot:
    """Stands in the poller's slot for one direction of a two-way wait."""

    __slots__ = ("_throw", "both", "mode")

    def __init__(self, both: _Both, mode: int) -> None:
        self.both = both
        self.mode = mode
        # Set by Hub.throw_into when the fd is unregistered under the wait
        # (closed, or its number reused): the parked task raises it.
        self._throw: BaseException | None = None

    def switch(self) -> None:  # run by the hub when this direction is ready (or failed)
        exc, self._throw = self._throw, None
        t = self.both.fire(self.mode)
        if t is not None:
            if exc is not None:
                t._throw = exc
            t.switch()


class _Both:
    """The waitable of a wait for readable-or-writable: woken once, by either."""

    __slots__ = ("fired", "r", "st", "t", "w")

    def __init__(self, st: IoState, t: Any) -> None:
        self.st = st
        self.t = t
        self.fired = 0
        self.r = _Slot(self, READ)
        self.w = _Slot(self, WRITE)

    def fire(self, mode: int) -> Any:
        if self.fired:
            return None
        self.fired = mode
        self._drop_slots()
        return self.t

    def _drop_slots(self) -> None:
        st = self.st
        if st.rwaiter is self.r:
            st._gofer_abort(self.r)
        if st.wwaiter is self.w:
            st._gofer_abort(self.w)

    def _gofer_abort(self, task: Any) -> bool:
        if self.fired:
            return False
        self.fired = -1
        self._drop_slots()
        return True

    def __repr__(self) -> str:
        return f"<fd {self.st.fd} readable or writable>"


def _wait_both(st: IoState, timeout: float | None) -> int:
    t = current_tasklike()
    if st.rwaiter is not None or st.wwaiter is not None:
        raise RuntimeError(f"another coroutine is already waiting on fd {st.fd}")
    both = _Both(st, t)
    poller = st.poller
    st.rwaiter = both.r
    st.wwaiter = both.w
    poller.nwaiters += 2
    if poller.interest:
        poller.want(st, READ)
    park(both, timeout)
    return both.fired


def wait_fd(fd: int, mode: int, timeout: float | None = None) -> int:
    """Park until ``fd`` is readable (mode 1), writable (2) or either (3).

    The fd belongs to someone else (a C library): it is registered with the
    hub's poller for the wait only. Returns the direction that became ready
    (for mode 3, one of them); raises ``TimeoutError`` after ``timeout``.
    """
    st = get_hub().poller.register(fd)
    try:
        if mode == READ:
            wait_readable(st, timeout)
        elif mode == WRITE:
            wait_writable(st, timeout)
        elif mode == BOTH:
            return _wait_both(st, timeout)
        else:
            raise ValueError(f"wait_fd mode must be 1 (read), 2 (write) or 3 (both), not {mode!r}")
        return mode
    finally:
        st.poller.unregister(st, None)


# -- psycopg 2 -----------------------------------------------------------------


def _psycopg2_wait(conn: Any) -> None:
    """psycopg2's wait callback: drive ``conn.poll()``, parking between steps."""
    import psycopg2.extensions as ext  # type: ignore[import-untyped, unused-ignore]

    try:
        while True:
            state = conn.poll()
            if state == ext.POLL_OK:
                return
            if state == ext.POLL_READ:
                wait_fd(conn.fileno(), READ)
            elif state == ext.POLL_WRITE:
                wait_fd(conn.fileno(), WRITE)
            else:
                raise ext.OperationalError(f"psycopg2 poll() returned an unknown state {state!r}")
    except Cancelled:
        # psycopg2 closes a connection whose wait callback raises; stop the
        # query on the server first, so that it does not run on for nothing.
        try:
            conn.cancel()
        except Exception:
            pass
        raise


def patch_psycopg2() -> bool:
    """Make psycopg2 cooperative (a wait callback). False if it is not installed."""
    if importlib.util.find_spec("psycopg2") is None:
        return False
    import psycopg2.extensions as ext  # type: ignore[import-untyped, unused-ignore]

    ext.set_wait_callback(_psycopg2_wait)
    return True


def unpatch_psycopg2() -> None:
    if "psycopg2" in sys.modules:
        import psycopg2.extensions as ext  # type: ignore[import-untyped, unused-ignore]

        if ext.get_wait_callback() is _psycopg2_wait:
            ext.set_wait_callback(None)


# -- psycopg 3 -----------------------------------------------------------------


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else get_hub().now() + timeout


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - get_hub().now())


def _psycopg_wait(
    gen: Generator[Any, Any, Any], fileno: int, interval: float = 0.0, timeout: float | None = None
) -> Any:
    """``psycopg.waiting.wait`` on the hub: no thread blocks."""
    from psycopg import errors

    deadline = _deadline(timeout)
    try:
        s = next(gen)
        while True:
            try:
                ready = wait_fd(fileno, int(s), _left(deadline))
            except TimeoutError:
                raise errors._WaitTimeout("wait timeout expired") from None
            s = gen.send(ready)
    except StopIteration as ex:
        return ex.value


def _psycopg_wait_conn(
    gen: Generator[Any, Any, Any], interval: float = 0.0, timeout: float | None = None
) -> Any:
    """``psycopg.waiting.wait_conn`` on the hub (the fd may change while connecting)."""
    from psycopg import errors

    deadline = _deadline(timeout)
    try:
        fileno, s = next(gen)
        while True:
            try:
                ready = wait_fd(fileno, int(s), _left(deadline))
            except TimeoutError:
                raise errors._WaitTimeout("wait timeout expired") from None
            fileno, s = gen.send(ready)
    except StopIteration as ex:
        return ex.value


def _psycopg_conn_wait(self: Any, gen: Any, *args: Any, **kw: Any) -> Any:
    """``psycopg.Connection.wait``: a cancelled query is stopped and drained.

    Without this a coroutine cancelled in mid-query would leave its
    connection inside the command ("another command is already in
    progress"). psycopg does the same for Ctrl-C: ask the server to cancel,
    then read the query's end (a ``QueryCanceled``) before letting the
    interruption through.
    """
    try:
        return _psycopg_saved["conn_wait"](self, gen, *args, **kw)
    except Cancelled:
        from psycopg import errors, pq

        if self.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
            with CancelScope(shield=True), move_on_after(10.0):
                try:
                    cancel = getattr(self, "cancel_safe", None)
                    cancel(timeout=5.0) if cancel is not None else self.cancel()
                    _psycopg_saved["conn_wait"](self, gen)
                except errors.QueryCanceled:
                    pass  # as asked
                except Exception:
                    pass  # the connection is broken: psycopg reports it on next use
        raise


_psycopg_saved: dict[str, Any] = {}


def patch_psycopg() -> bool:
    """Make psycopg 3's sync connections cooperative. False if it is not installed."""
    if importlib.util.find_spec("psycopg") is None:
        return False
    import psycopg
    from psycopg import waiting

    if waiting.wait is not _psycopg_wait:
        _psycopg_saved.update(
            wait=waiting.wait, wait_conn=waiting.wait_conn, conn_wait=psycopg.Connection.wait
        )
        waiting.wait = _psycopg_wait
        waiting.wait_conn = _psycopg_wait_conn
        psycopg.Connection.wait = _psycopg_conn_wait  # type: ignore[method-assign]
    return True


def unpatch_psycopg() -> None:
    if _psycopg_saved and "psycopg.waiting" in sys.modules:
        import psycopg
        from psycopg import waiting

        waiting.wait = _psycopg_saved.pop("wait")
        waiting.wait_conn = _psycopg_saved.pop("wait_conn")
        psycopg.Connection.wait = _psycopg_saved.pop("conn_wait")  # type: ignore[method-assign]


def is_patched(name: str) -> bool:
    """Whether the driver ``name`` ("psycopg2" or "psycopg") is patched."""
    if name == "psycopg2":
        if "psycopg2" not in sys.modules:
            return False
        import psycopg2.extensions as ext  # type: ignore[import-untyped, unused-ignore]

        return ext.get_wait_callback() is _psycopg2_wait
    if name == "psycopg":
        return bool(_psycopg_saved)
    raise ValueError(f"unknown database driver {name!r} (psycopg2 or psycopg)")


def patch_all() -> dict[str, bool]:
    """Patch every supported driver that is installed; say which were."""
    return {"psycopg2": patch_psycopg2(), "psycopg": patch_psycopg()}
