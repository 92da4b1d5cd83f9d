"""``Server``: accept connections and run a handler coroutine for each.

The accept loop runs in the coroutine that calls ``serve_forever()``; every
connection gets its own coroutine, which closes the connection when the
handler returns. A handler's exception is logged (logger ``gofer.net``) and
ends only its connection. An ``accept`` error is handled by the listener
path's policy (:class:`gofer._listen.AcceptPolicy`): running out of file
descriptors or kernel memory backs off (10 ms up to 1 s, logged at most once
a second) so the server neither crashes nor spins; errors from a client that
vanished before ``accept`` are skipped.

Stopping: ``shutdown(grace)`` closes the listener (no new connections),
waits up to ``grace`` seconds for the running handlers, then cancels the
rest and waits for them to unwind. ``stop(grace)`` asks for the same from
any thread or a signal handler and returns at once.
"""

from __future__ import annotations

import logging
import math
import signal
import socket as _stdsocket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from gofer import _listen
from gofer import socket as gsocket
from gofer._core import ParkingLot, Task, current, go, sleep
from gofer._core import current_tasklike as _current_tasklike
from gofer._stream import Stream

__all__ = ["Server", "worker_body"]

log = logging.getLogger("gofer.net")



class _Flag:
    """A one-shot flag that coroutines of one hub (the server's) can wait on."""

    __slots__ = ("is_set", "lot")

    def __init__(self) -> None:
        self.is_set = False
        self.lot = ParkingLot("server stop")

    def set(self) -> None:
        self.is_set = True
        self.lot.unpark_all()

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False if ``timeout`` seconds pass first."""
        if self.is_set:
            return True
        if timeout is not None and timeout <= 0:
            return False
        try:
            self.lot.park(timeout)
        except TimeoutError:
            return False
        return True


class Server:
    """A stream server: ``handler(conn)`` in a new coroutine per connection.

    ``where`` is an address (see :func:`gofer.net.parse_address`) or an
    already-bound listening socket (stdlib or gofer; the server takes it
    over and closes it when it stops). ``conn`` is a
    :class:`gofer.net.Stream`, or the gofer socket itself with
    ``raw=True``; with ``ssl`` (an ``ssl.SSLContext``) it is TLS, and the
    handshake runs in the connection's coroutine, limited to
    ``handshake_timeout`` seconds.
    """

    def __init__(
        self,
        where: Any,
        handler: Callable[[Any], Any],
        *,
        backlog: int = 1024,
        reuse_port: bool = False,
        ssl: Any = None,
        raw: bool = False,
        handshake_timeout: float | None = 30.0,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"the handler must be callable, not {type(handler).__name__}")
        self._unlink: str | None = None
        if isinstance(where, gsocket.socket):
            self.sock = where
        else:
            if not isinstance(where, _stdsocket.socket):
                where, self._unlink = _listen.bind(
                    where, backlog=backlog, reuse_port=reuse_port, getaddrinfo=gsocket.getaddrinfo
                )
            self.sock = gsocket.socket(where.family, where.type, where.proto, fileno=where.detach())
        self.address: Any = self.sock.getsockname()
        self.handler = handler
        self.ssl = ssl
        self.raw = raw
        self.handshake_timeout = handshake_timeout
        self._tasks: dict[Task[Any], Any] = {}  # connection task -> its socket
        self._state = "idle"  # -> serving -> stopping -> stopped
        self._hub: Any = None
        self._cancel_at = math.inf
        self._timer: Any = None
        self._stopped = _Flag()

    # -- running -------------------------------------------------------------------
    @property
    def connections(self) -> int:
        """Connections being handled now."""
        return len(self._tasks)

    @property
    def serving(self) -> bool:
        return self._state == "serving"

    def serve_forever(self, *, grace: float | None = 10.0, handle_signals: bool = False) -> None:
        """Accept connections until the server is stopped; return once all are done.

        With ``handle_signals`` (main thread only), SIGTERM stops gracefully
        (``grace`` seconds for running connections) and SIGINT at once. If
        the calling coroutine is cancelled, every connection is cancelled.
        """
        if self._state != "idle":
            raise RuntimeError(f"serve_forever() needs a fresh server, this one is {self._state}")
        self._hub = _current_tasklike()._hub
        self._state = "serving"
        restore = self._install_signals(grace) if handle_signals else None
        try:
            try:
                self._accept_loop()
                self._stopped.wait()
            except BaseException:  # cancelled, or the listener failed: stop everything
                self._begin_stop(0)
                self._wait_stopped_shielded()
                raise
        finally:
            if restore is not None:
                restore()

    def _accept_loop(self) -> None:
        accept = self.sock.accept
        policy = _listen.AcceptPolicy(log, "gofer.net", self._hub.now)
        while self._state == "serving":
            try:
                conn, addr = accept()
            except OSError as exc:
                if self._state != "serving":
                    return  # the listener was closed by a stop
                delay = policy.failed(exc)
                if delay:
                    sleep(delay)
                continue
            policy.succeeded()
            t = go(self._run_conn, conn, addr)
            self._tasks[t] = conn
            t.add_done_callback(self._conn_done)

    def _conn_done(self, t: Task[Any]) -> None:
        # A done callback, not a finally: a task cancelled before it started
        # never runs its body, and its socket must be closed all the same.
        sock = self._tasks.pop(t, None)
        if sock is not None:
            sock.close()
        if not self._tasks and self._state == "stopping":
            self._finish()

    def _run_conn(self, sock: Any, addr: Any) -> None:
        conn: Any = sock
        try:
            _listen.set_nodelay(sock)
            if self.ssl is not None:
                from gofer import ssl as gssl

                sock.settimeout(self.handshake_timeout)  # a silent client must not hold on forever
                conn = sock = gssl.wrap_socket(sock, self.ssl, server_side=True)
                sock.settimeout(None)
            if not self.raw:
                conn = Stream(sock)
            self.handler(conn)
        except Exception as exc:
            if isinstance(exc, ConnectionError | TimeoutError) or type(exc).__module__ == "ssl":
                log.info("gofer.net: connection from %s ended: %r", addr, exc)
            else:
                log.exception("gofer.net: handler %r failed on the connection from %s", self.handler, addr)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # -- stopping --------------------------------------------------------------------
    def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, give connections ``grace`` seconds (None: no limit), then cancel them.

        Returns once every connection has ended (at once if called from one
        of the server's own handlers).
        """
        self._begin_stop(grace)
        me = current()
        if me is not None and me in self._tasks:
            return
        self._stopped.wait()

    def close(self) -> None:
        """Stop now: close the listener and cancel every connection."""
        self.shutdown(0)

    def stop(self, grace: float | None = None) -> None:
        """Ask the server to shut down (``grace`` as in :meth:`shutdown`); returns at once.

        Safe from any thread and from signal handlers.
        """
        hub = self._hub
        if hub is None:
            self._begin_stop(grace)
            return
        # Always through the hub's queue: a signal handler may run inside the
        # hub loop or in the middle of the server's own bookkeeping.
        try:
            hub.call_threadsafe(self._begin_stop, grace)
        except RuntimeError:
            pass  # its hub is gone: it has stopped already

    def _begin_stop(self, grace: float | None) -> None:
        if self._state == "stopped":
            return
        if self._state in ("idle", "serving"):
            if self._state == "idle":
                self._state = "stopping"
                self._close_listener()
                self._finish()
                return
            self._state = "stopping"
            self._close_listener()
        when = math.inf if grace is None else self._hub.now() + max(0.0, grace)
        if when < self._cancel_at:
            self._cancel_at = when
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if when <= self._hub.now():
                self._cancel_all()
            elif when != math.inf:
                self._timer = self._hub.call_at(when, self._cancel_all)
        if not self._tasks:
            self._finish()

    def _cancel_all(self) -> None:
        self._timer = None
        for t in list(self._tasks):
            t.cancel()

    def _finish(self) -> None:
        if self._state == "stopped":
            return
        self._state = "stopped"
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stopped.set()

    def _close_listener(self) -> None:
        try:
            self.sock.close()
        finally:
            path, self._unlink = self._unlink, None
            if path:
                import os

                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _wait_stopped_shielded(self) -> None:
        from gofer._core import shield

        with shield():
            self._stopped.wait()

    def _install_signals(self, grace: float | None) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        old = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: self.stop(grace)),
            signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: self.stop(0)),
        }

        def restore() -> None:
            for sig, h in old.items():
                signal.signal(sig, h)

        return restore

    # -- context manager --------------------------------------------------------------
    def __enter__(self) -> Server:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._state == "idle":
            self._begin_stop(0)
        elif self._state != "stopped":
            self.close()

    def __repr__(self) -> str:
        return f"<gofer.net.Server {self.address!r} {self._state} connections={len(self._tasks)}>"


def worker_body(handler: Callable[[Any], Any], *, grace: float | None, ssl: Any, raw: bool) -> Callable[..., None]:
    """What a ``serve(workers=N)`` worker runs: a :class:`Server` on the listener it is given."""

    def body(sock: _stdsocket.socket, ready: Callable[[], None]) -> None:
        from gofer._core import run

        srv = Server(sock, handler, ssl=ssl, raw=raw)
        ready()
        run(srv.serve_forever, grace=grace, handle_signals=True)

    return body
