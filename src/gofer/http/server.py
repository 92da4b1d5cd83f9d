"""The HTTP/1.1 server: listening, one coroutine per connection, shutdown.

:class:`Server` holds what all its connections share: the application's
dispatch function (native or WSGI), the :class:`~gofer.http.Limits`, the
``Date`` stamp, and the set of live connections. ``serve_socket`` accepts
on a listening socket and starts a coroutine per connection;
``handle_connection`` serves one already-accepted socket (the entry point
for ``gofer.net.serve`` workers).

A single hub timer per server does all housekeeping once per tick: it
refreshes the ``Date`` stamp and ages connections that wait for the network,
cancelling those that exceed the header, keep-alive, read or write timeout.
Requests pay nothing for timeouts.

``shutdown(grace)`` stops accepting, closes idle keep-alive connections at
once, lets requests in progress finish (their responses say
``Connection: close``) and cancels what is left when ``grace`` runs out.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from gofer._hub import get_hub
from gofer._task import Cancelled, _current_tasklike, go, park, sleep, wait_readable
from gofer.http._conn import APP, BODY, HEAD, IDLE, WRITE, ServerConnection
from gofer.http._request import Request
from gofer.http._wire import Limits, Stamp

__all__ = ["Server", "listen", "serve"]

log = logging.getLogger("gofer.http")


class _Stop(Exception):
    """Wakes an accept loop whose listener is being closed."""


def listen(addr: tuple[str, int] | str, backlog: int = 1024, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening TCP socket on ``addr`` (``(host, port)`` or ``"host:port"``)."""
    host, port = parse_addr(addr)
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def parse_addr(addr: tuple[str, int] | str) -> tuple[str, int]:
    """``"host:port"``, ``":port"`` or ``(host, port)`` as ``(host, port)``."""
    if isinstance(addr, tuple):
        host, port = addr
    else:
        host, sep, p = addr.rpartition(":")
        if not sep or not p.isdigit():
            raise ValueError(f"an address must look like 'host:port', not {addr!r}")
        port = int(p)
        host = host.strip("[]")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port!r}")
    return host, port


class Server:
    """An HTTP/1.1 server for a native handler or a WSGI application.

    A server and its connections live on one hub (the thread that runs
    ``serve_socket``); run one server per thread or process to use more
    cores (``gofer serve --workers``).

    ``interface``: ``"native"`` (``handler(request) -> response``) or
    ``"wsgi"`` (PEP 3333). ``limits``: a :class:`~gofer.http.Limits`.
    ``access_log``: a callable ``(request, status, nbytes)`` or None.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        interface: str = "native",
        limits: Limits | None = None,
        server_header: str | None = "gofer",
        drain_limit: int = 65536,
        access_log: Callable[[Request, int, int], None] | None = None,
    ) -> None:
        self.limits = limits if limits is not None else Limits()
        self.stamp = Stamp(server_header.encode("latin-1") if server_header else b"")
        self.drain_limit = drain_limit
        self.access_log = access_log
        self.dispatch = make_dispatch(app, interface, self)
        self.interface = interface
        self.multiprocess = False  # WSGI's wsgi.multiprocess (gofer serve sets it)
        self.script_name = ""  # WSGI's SCRIPT_NAME: where the application is mounted
        self.conns: set[ServerConnection] = set()
        self.draining = False
        self.closed = False
        self._listeners: list[tuple[socket.socket, Any]] = []
        self._timer: Any = None
        self._idle_waiters: list[Any] = []
        lim = self.limits
        # Timeouts fire within two ticks after they are due.
        self.tick = min(1.0, min(lim.header_timeout, lim.keepalive_timeout, lim.read_timeout, lim.write_timeout) / 8)
        self._limits_by_phase = {
            IDLE: lim.keepalive_timeout,
            BODY: lim.read_timeout,
            WRITE: lim.write_timeout,
        }

    # -- housekeeping -------------------------------------------------------------------
    def _start_timer(self) -> None:
        if self._timer is None and not self.closed:
            self.stamp.refresh()  # the timer may have been off for a while
            self._timer = get_hub().call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        self.stamp.refresh()
        tick = self.tick
        by_phase = self._limits_by_phase
        header_timeout = self.limits.header_timeout
        expired = []
        for c in self.conns:
            if c.in_head:
                c.head_age += 1
                if c.head_age * tick > header_timeout:
                    expired.append(c)
                    continue
            phase = c.phase()
            if phase in (APP, HEAD):
                c.ticks = 0
                continue
            cur = c.cur
            mark = (c.requests, c.progress, cur.received if cur is not None else -1)
            if mark != c.mark:
                c.mark = mark  # progress since the last tick
                c.ticks = 0
                continue
            c.ticks += 1
            if c.ticks * tick > by_phase[phase]:
                expired.append(c)
        for c in expired:
            c.timed_out = True
            if c.task is not None:
                c.task.cancel()
        if self.conns or self._listeners:
            self._start_timer()

    # -- connections ------------------------------------------------------------------------
    def handle_connection(self, sock: socket.socket, addr: Any = None) -> None:
        """Serve HTTP on an accepted socket in the calling coroutine until it ends.

        The socket is made non-blocking and is closed at the end.
        """
        if self.closed:
            sock.close()
            return
        if type(sock) is not socket.socket:
            # A gofer socket (e.g. from gofer.net.serve(raw=True)) or another
            # subclass: take its fd over, since the connection drives the fd
            # itself through the kernel's I/O state.
            if hasattr(sock, "cipher"):
                sock.close()
                raise TypeError("gofer.http serves plain TCP; terminate TLS in front of it")
            sock = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket)
        me = _current_tasklike()
        st = me._hub.poller.register(sock.fileno())
        st.label = "http connection"
        conn = ServerConnection(self, sock, addr if addr is not None else _peer(sock), st)
        conn.task = getattr(me, "task", None)
        conn.no_keep = self.draining
        self.conns.add(conn)
        self._start_timer()
        conn.run()

    def _forget(self, conn: ServerConnection) -> None:
        self.conns.discard(conn)
        if not self.conns and self._idle_waiters:
            ws, self._idle_waiters = self._idle_waiters, []
            for w in ws:
                w._hub.ready.append(w)

    # -- accepting ----------------------------------------------------------------------------
    def serve_socket(self, lsock: socket.socket) -> None:
        """Accept connections on ``lsock`` until :meth:`shutdown` (or cancellation)."""
        lsock.setblocking(False)
        hub = get_hub()
        st = hub.poller.register(lsock.fileno())
        st.label = "http listener"
        entry = (lsock, st)
        self._listeners.append(entry)
        self._start_timer()
        handle = self.handle_connection
        try:
            while not self.draining:
                try:
                    sock, addr = lsock.accept()
                except BlockingIOError:
                    st.readable = False
                    wait_readable(st)
                    continue
                except OSError as exc:
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        log.error("gofer.http: accept failed (%s); pausing for 0.1s", exc)
                        sleep(0.1)
                        continue
                    if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                        continue
                    raise
                go(handle, sock, addr)
        except _Stop:
            pass
        finally:
            if entry in self._listeners:
                self._listeners.remove(entry)
            hub.poller.unregister(st)

    def serve(self, addr: tuple[str, int] | str, backlog: int = 1024) -> None:
        """Listen on ``addr`` and serve until :meth:`shutdown`; closes the listener at the end."""
        lsock = listen(addr, backlog)
        try:
            self.serve_socket(lsock)
        finally:
            lsock.close()

    def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, finish requests in progress (up to ``grace`` s), then close all.

        Returns when every connection has ended. Calling it again (from any
        coroutine of the server's hub) waits for the same.
        """
        self.draining = True
        for c in self.conns:
            c.no_keep = True
        for _lsock, st in list(self._listeners):
            st.poller.unregister(st, _Stop())
        for c in list(self.conns):
            if c.phase() == IDLE and c.task is not None:
                c.task.cancel()
        try:
            if self.conns:
                self._wait_idle(grace)
        except TimeoutError:
            for c in list(self.conns):
                if c.task is not None:
                    c.task.cancel()
            if self.conns:
                self._wait_idle(None)
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wait_idle(self, timeout: float | None) -> None:
        while self.conns:
            self._idle_waiters.append(_current_tasklike())
            park(self, timeout)

    def _gofer_abort(self, task: Any) -> bool:
        if task in self._idle_waiters:
            self._idle_waiters.remove(task)
            return True
        return False

    def __repr__(self) -> str:
        return f"<gofer.http.Server {self.interface} connections={len(self.conns)}>"


def _peer(sock: socket.socket) -> Any:
    try:
        return sock.getpeername()
    except OSError:
        return None


def make_dispatch(app: Callable[..., Any], interface: str, server: Server) -> Callable[[ServerConnection, Request], None]:
    if interface == "native":
        from gofer.http.native import make_native_dispatch

        return make_native_dispatch(app)
    if interface == "wsgi":
        from gofer.http.wsgi import make_wsgi_dispatch

        return make_wsgi_dispatch(app, server)
    raise ValueError(f"interface must be 'native' or 'wsgi', not {interface!r}")


def serve(
    app: Callable[..., Any],
    addr: tuple[str, int] | str = ("127.0.0.1", 8000),
    *,
    interface: str = "native",
    limits: Limits | None = None,
) -> None:
    """Serve ``app`` on ``addr`` in the current coroutine until cancelled.

    Cancelling the caller shuts the server down without grace.
    """
    server = Server(app, interface=interface, limits=limits)
    try:
        server.serve(addr)
    except Cancelled:
        for c in list(server.conns):
            if c.task is not None:
                c.task.cancel()
        raise
