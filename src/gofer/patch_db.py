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

A connection that is set up keeps its fd registered with the hub's poller
from one wait to the next (``gofer._fdwait``), which saves two system calls
per query; while it connects, each wait registers the fd for itself.

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
    OSThreadLocal,
    get_hub,
    move_on_after,
    wait_readable,
    wait_writable,
)
from gofer._fdwait import BOTH, READ, WRITE, keep, kept, wait_both, wait_kept

__all__ = [
    "is_patched",
    "patch_all",
    "patch_psycopg",
    "patch_psycopg2",
    "unpatch_psycopg",
    "unpatch_psycopg2",
    "wait_fd",
]

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
            return wait_both(st, timeout)
        else:
            raise ValueError(f"wait_fd mode must be 1 (read), 2 (write) or 3 (both), not {mode!r}")
        return mode
    finally:
        st.poller.unregister(st, None)


# -- psycopg 2 -----------------------------------------------------------------


# psycopg2.extensions' poll states and STATUS_SETUP (fixed by its C API).
_POLL_OK, _POLL_READ, _POLL_WRITE, _STATUS_SETUP = 0, 1, 2, 0


def _psycopg2_wait(conn: Any) -> None:
    """psycopg2's wait callback: drive ``conn.poll()``, parking between steps."""
    try:
        state = conn.poll()
        if state == _POLL_OK:
            return
        fd = conn.fileno()
        try:
            k = kept.fds.get(fd)  # keep()'s first look, inlined: this runs per query
        except AttributeError:
            k = None
        if k is None or k() is not conn or k.tag or k.st.closed:
            # While it connects, libpq may move to a new socket (another host,
            # a retry without SSL): a registration per wait until it is set up.
            k = keep(fd, conn) if conn.status != _STATUS_SETUP else None
        look = False  # psycopg2 calls back right after sending: the reply makes an edge
        while True:
            if state == _POLL_READ:
                if k is None:
                    wait_fd(conn.fileno(), READ)
                elif look:
                    wait_kept(k, READ)
                else:
                    st = k.st
                    if st.readable:
                        st.readable = 0
                    else:
                        wait_readable(st)
                        st.readable = 0  # the edge that woke us: libpq reads now
                    look = True
            elif state == _POLL_WRITE:
                if k is None:
                    wait_fd(conn.fileno(), WRITE)
                else:
                    wait_kept(k, WRITE)
            else:
                import psycopg2  # type: ignore[import-untyped, unused-ignore]

                raise psycopg2.OperationalError(f"psycopg2 poll() returned an unknown state {state!r}")
            state = conn.poll()
            if state == _POLL_OK:
                return
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

    if (ext.POLL_OK, ext.POLL_READ, ext.POLL_WRITE, ext.STATUS_SETUP) != (0, 1, 2, 0):
        raise RuntimeError("psycopg2's poll states are not the ones gofer knows")
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
    # Called through Connection.wait (_psycopg_conn_wait), the connection is
    # set up and its fd's registration is kept. psycopg's generators may stop
    # with bytes left unread (a streamed result), so every wait looks first.
    k = None
    pgconn = getattr(_hint, "pgconn", None)
    if pgconn is not None:
        _hint.pgconn = None
        k = keep(fileno, pgconn, pgconn.backend_pid)
    deadline = _deadline(timeout)
    try:
        s = next(gen)
        while True:
            try:
                if k is not None:
                    ready = wait_kept(k, s, True, _left(deadline))
                else:
                    ready = wait_fd(fileno, int(s), _left(deadline))
            except TimeoutError:
                from psycopg import errors

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
    # psycopg's Connection.wait calls waiting.wait(gen, self.pgconn.socket)
    # at once, with no switch in between: the hint says whose fd that is.
    _hint.pgconn = self.pgconn
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
    finally:
        _hint.pgconn = None  # unused if Connection.wait failed before waiting


_psycopg_saved: dict[str, Any] = {}
_hint = OSThreadLocal()  # .pgconn: set by _psycopg_conn_wait for _psycopg_wait


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
