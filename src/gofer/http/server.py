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
Requests pay nothing for timeouts. A connection it finds idle between
requests for a whole tick is parked on its fd without a coroutine
(``ServerConnection.go_idle``).

``shutdown(grace)`` stops accepting, lets requests in progress finish
(their responses say ``Connection: close``), closes idle keep-alive
connections once a short window for a request already on its way has
passed, and cancels what is left when ``grace`` runs out.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from gofer import _instrument, _listen
from gofer._core import Cancelled, ParkingLot, get_hub, go, sleep, wait_readable, wake
from gofer._core import current_tasklike as _current_tasklike
from gofer.http._conn import APP, BODY, HEAD, IDLE, WRITE, ServerConnection
from gofer.http._idle import TRIM_FROM, shed_crowd
from gofer.http._request import Request
from gofer.http._wire import Limits, Stamp, status_line
from gofer.http._writer import HeaderBlock, write_full

__all__ = ["Server", "listen", "serve"]

log = logging.getLogger("gofer.http")


# While draining, a connection is closed once it has been idle, with no
# request arriving, for this long (a client may have sent one just before).
_DRAIN_IDLE = 0.5


class _Stop(Exception):
    """Wakes an accept loop whose listener is being closed."""


def listen(addr: Any, backlog: int = 1024, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening socket on ``addr`` (``(host, port)``, ``"host:port"``, ``"unix:/path"``).

    The address grammar is :func:`gofer.net.parse_address`'s (one listener
    path for all of gofer).
    """
    return _listen.bind(addr, backlog=backlog, reuse_port=reuse_port)[0]


class Server:
    """An HTTP/1.1 server for a native handler or a WSGI application.

    A server and its connections live on one hub (the thread that runs
    ``serve_socket``); run one server per thread or process to use more
    cores (``gofer serve --workers``).

    ``interface``: ``"native"`` (``handler(request) -> response``) or
    ``"wsgi"`` (PEP 3333). ``limits``: a :class:`~gofer.http.Limits`.
    ``access_log``: a callable ``(request, status, nbytes)`` or None.
    ``ssl``: a server ``ssl.SSLContext`` to serve HTTPS (for example
    ``gofer.ssl.server_context(cert, key, alpn=["http/1.1"])``); each
    handshake runs in its connection's coroutine within the header timeout.
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
        ssl: Any = None,
    ) -> None:
        self.limits = limits if limits is not None else Limits()
        self.ssl = ssl  # a server SSLContext: serve HTTPS (see gofer.http._tls)
        self.stamp = Stamp(server_header.encode("latin-1") if server_header else b"")
        self.drain_limit = drain_limit
        self.access_log = access_log
        self.dispatch = make_dispatch(app, interface, self)
        lim = self.limits
        busy = b"Retry-After: %d\r\nContent-Type: text/plain; charset=utf-8\r\n" % lim.retry_after
        self._busy_block = HeaderBlock(busy, -1, False)
        self._busy_block_close = HeaderBlock(busy, -1, True)
        self.in_progress = 0  # requests in the application now
        if lim.max_in_progress is not None:
            self.dispatch = self._limit_in_progress(self.dispatch, lim.max_in_progress)
        self.interface = interface
        self.multiprocess = False  # WSGI's wsgi.multiprocess (gofer serve sets it)
        self.script_name = ""  # WSGI's SCRIPT_NAME: where the application is mounted
        self.conns: set[ServerConnection] = set()
        self.stats = _instrument.ServerStats()  # read by gofer.metrics()
        _instrument.servers.add(self)
        self.draining = False
        self.closed = False
        self._listeners: list[tuple[socket.socket, Any]] = []
        self._timer: Any = None
        self._idle_waiters = ParkingLot("the end of every connection", owner=self)
        self._accepted = 0  # accepted connections whose coroutine has not ended
        self._drain_idle: dict[ServerConnection, int] | None = None  # draining: idle conn -> its request count
        self._peak = 0  # most connections since their memory was last shed
        self._crowd = False  # there were TRIM_FROM connections, not all shed yet
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
        now = get_hub().now()
        for c in self.conns:
            if c.in_head and now - c.head_t0 > header_timeout:
                # Counted from the head's first byte.
                expired.append(c)
                continue
            phase = c.phase()
            if phase in (APP, HEAD):
                c.ticks = 0
                continue
            cur = c.cur
            if phase == BODY and cur is not None and self._body_too_slow(cur):
                c.body_cut = True
                expired.append(c)
                continue
            mark = (c.requests, c.progress, cur.received if cur is not None else -1)
            if mark != c.mark:
                c.mark = mark  # progress since the last tick
                c.ticks = 0
                continue
            c.ticks += 1
            if c.ticks * tick > by_phase[phase]:
                expired.append(c)
            elif phase == IDLE and c.parkable and c.task is not None and not self.draining:
                c.go_idle()  # idle for a whole tick: give its coroutine back
        for c in expired:
            c.timed_out = True
            c.abort()
        n = len(self.conns)
        if n >= TRIM_FROM:
            self._crowd = True
        if n > self._peak:
            self._peak = n
        elif self._crowd and n <= self._peak // 4 and n < self._peak:
            # Most of a crowd has gone: give its memory back, and again at each
            # further quarter, since those left pin what they were allocated in.
            self._peak = n
            self._crowd = n > 0
            # A set keeps its largest table until it is copied.
            self.conns = set(self.conns)
            shed_crowd()
            self._repark_listeners()
        if self.conns or self._listeners:
            self._start_timer()

    def _repark_listeners(self) -> None:
        # A parked coroutine holds the frame object greenlet made when it last
        # switched away, in the accept loop's case mid-crowd: woken for nothing,
        # it finds no connection and parks again with a new one.
        for _lsock, st in self._listeners:
            w = st.rwaiter
            if w is not None and w._wait is st and st._gofer_abort(w):
                wake(w)

    def _body_too_slow(self, req: Request) -> bool:
        # The time this body has been waited for, counted a tick at a time.
        waited = req.waited = req.waited + self.tick
        lim = self.limits
        if lim.body_timeout is not None and waited > lim.body_timeout:
            return True
        rate = lim.min_body_rate
        return rate is not None and waited > lim.header_timeout and req.received < rate * waited

    def _busy(self, conn: ServerConnection, req: Request) -> None:
        """The dispatch of a connection over ``max_connections``: 503, then close."""
        write_full(conn, req, 503, status_line(503), self._busy_block_close, b"Service Unavailable\n")

    def _limit_in_progress(self, inner: Callable[[ServerConnection, Request], None], cap: int) -> Callable[..., None]:
        block = self._busy_block

        def dispatch(conn: ServerConnection, req: Request) -> None:
            if self.in_progress >= cap:
                write_full(conn, req, 503, status_line(503), block, b"Service Unavailable\n")
                return
            self.in_progress += 1
            try:
                inner(conn, req)
            finally:
                self.in_progress -= 1

        return dispatch

    # -- connections ------------------------------------------------------------------------
    def handle_connection(self, sock: socket.socket, addr: Any = None) -> None:
        """Serve HTTP on an accepted socket in the calling coroutine until it ends.

        The socket is made non-blocking and is closed at the end.
        """
        self._handle(sock, addr, False)

    def _handle(self, sock: socket.socket, addr: Any, parkable: bool) -> None:
        # parkable: the connection may outlive the calling coroutine, parked on
        # its fd while idle (only serve_socket's own, whose caller is gofer.go).
        if self.closed:
            sock.close()
            return
        if type(sock) is not socket.socket:
            # A gofer socket (e.g. from gofer.net.serve(raw=True)) or another
            # subclass: take its fd over, since the connection drives the fd
            # itself through the kernel's I/O state.
            if hasattr(sock, "cipher"):
                sock.close()
                raise TypeError("give gofer.http the plain accepted socket; Server(ssl=context) does the TLS")
            sock = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        sock.setblocking(False)
        _listen.set_nodelay(sock)
        me = _current_tasklike()
        st = me._hub.poller.register(sock.fileno())
        st.label = "http connection"
        if self.ssl is not None:
            tls = _tls_handshake(self, sock, st)
            if tls is None:
                return
            sock = tls  # a TLSSocket has the face a connection needs
        conn = ServerConnection(self, sock, addr if addr is not None else _peer(sock), st)
        conn.task = getattr(me, "task", None)
        conn.parkable = parkable and self.ssl is None and conn.task is not None
        conn.no_keep = self.draining
        self.conns.add(conn)
        self.stats.connections += 1
        self._start_timer()
        cap = self.limits.max_connections
        conn.run(self._busy if cap is not None and len(self.conns) > cap else None)

    def _serve_accepted(self, sock: socket.socket, addr: Any) -> None:
        # Counted from accept() on, so that shutdown() waits for a connection
        # accepted just before it, whose coroutine has not started yet.
        try:
            self._handle(sock, addr, True)
        finally:
            self._accepted -= 1
            self._wake_if_idle()

    def _forget(self, conn: ServerConnection) -> None:
        self.conns.discard(conn)
        self._wake_if_idle()

    def _wake_if_idle(self) -> None:
        if not self.conns and not self._accepted and self._idle_waiters.first is not None:
            self._idle_waiters.unpark_all()

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
        handle = self._serve_accepted
        policy = _listen.AcceptPolicy(log, "gofer.http", hub.now)
        try:
            while not self.draining:
                sock: socket.socket | None
                try:
                    sock, addr = lsock.accept()
                except BlockingIOError:
                    st.readable = False
                    sock = None
                except OSError as exc:
                    delay = policy.failed(exc)  # raises what is not an accept hiccup
                    if delay:
                        sleep(delay)
                    continue
                if sock is None:
                    # Parked out of the except clause: the error would stay
                    # alive (made mid-crowd, pinning its arena) while it waits.
                    wait_readable(st)
                    continue
                policy.succeeded()
                self._accepted += 1
                go(handle, sock, addr)
                del sock, addr  # not kept by this loop while it waits for the next
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
        if self._drain_idle is None:
            self._drain_idle = {}
            self._close_idle()
        try:
            self._wait_idle(grace)
        except TimeoutError:
            for c in list(self.conns):
                c.abort()
            self._wait_idle(None)
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_idle(self) -> None:
        """While draining, every ``_DRAIN_IDLE`` s: close what stayed idle through a whole window.

        A request may be on its way on an idle keep-alive connection (or a
        just-accepted one): one that arrives is served, with
        ``Connection: close``.
        """
        seen, self._drain_idle = self._drain_idle or {}, {}
        for c in list(self.conns):
            if c.phase() == IDLE and (c.task is not None or c.handle is not None) and not _input_waiting(c.sock):
                if seen.get(c) == c.requests:
                    c.abort()
                else:
                    self._drain_idle[c] = c.requests
        if self.conns or self._accepted:
            get_hub().call_later(_DRAIN_IDLE, self._close_idle)

    def _wait_idle(self, timeout: float | None) -> None:
        while self.conns or self._accepted:
            self._idle_waiters.park(timeout)

    def __repr__(self) -> str:
        return f"<gofer.http.Server {self.interface} connections={len(self.conns)}>"


def _input_waiting(sock: Any) -> bool:
    """Whether bytes (a request) wait unread on an idle connection's socket."""
    try:
        return bool(socket.socket.recv(sock.tls if hasattr(sock, "tls") else sock, 1, socket.MSG_PEEK))
    except OSError:
        return False


def _tls_handshake(server: Server, sock: socket.socket, st: Any) -> Any:
    """The TLS side of an accepted connection, or None (closed) if the handshake failed."""
    from gofer.http._tls import handshake

    tls = None
    try:
        tls = server.ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return handshake(tls, st, server.limits.header_timeout)
    except BaseException as exc:
        st.poller.unregister(st)
        (tls or sock).close()
        if isinstance(exc, OSError | TimeoutError):  # ssl.SSLError is an OSError
            log.debug("gofer.http: TLS handshake with %s failed: %r", _peer(sock), exc)
            return None
        raise


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
    ssl: Any = None,
) -> None:
    """Serve ``app`` on ``addr`` in the current coroutine until cancelled.

    ``ssl``: a server ``ssl.SSLContext`` to serve HTTPS. Cancelling the
    caller shuts the server down without grace.
    """
    server = Server(app, interface=interface, limits=limits, ssl=ssl)
    try:
        server.serve(addr)
    except Cancelled:
        for c in list(server.conns):
            c.abort()
        raise
