"""The client's connection pool: idle keep-alive connections and a cap per origin.

Per origin (scheme, host, port, and the thread, since a socket belongs to
its thread's hub) the pool keeps a LIFO stack of idle connections and a
count of open ones. When ``max_connections`` are open, callers queue FIFO;
a released connection (or, if it could not be kept, its slot) is handed
directly to the first waiter, so a newcomer cannot overtake a coroutine that
has been waiting. An idle connection is checked before reuse with a
non-blocking peek: a server that closed it meanwhile shows up as EOF.
"""

from __future__ import annotations

import socket as _stdsocket
import ssl
import threading
from typing import Any

from gofer._core import ParkingLot, get_hub
from gofer.http._client_conn import ClientConnection

__all__ = ["Pool"]


# What a waiter is handed when a connection could not be kept but its slot
# is free: it opens a new connection in that slot.
_SLOT: Any = object()


class _Host:
    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: list[ClientConnection] = []
        self.open = 0
        # Coroutines of this thread's hub waiting for a connection or a slot.
        self.waiters = ParkingLot("waiting for an HTTP connection")


class Pool:
    """Connections of one :class:`~gofer.http.Client` (see the module docstring)."""

    def __init__(self, max_connections: int, max_idle: int, verify: bool, ssl_context: Any, timeout: Any) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.verify = verify
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._hosts: dict[tuple[Any, ...], _Host] = {}
        self.closed = False

    def _context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context  # type: ignore[no-any-return]
        if self.verify:
            return default_context()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def acquire(self, key: tuple[str, str, int], t: Any) -> tuple[ClientConnection, bool]:
        """A connection to ``key`` and whether it was reused; may wait for a slot."""
        if self.closed:
            raise RuntimeError("this HTTP client is closed")
        hk = (threading.get_ident(), *key)
        host = self._hosts.get(hk)
        if host is None:
            host = self._hosts[hk] = _Host()
        hub = get_hub()
        waiters = host.waiters
        while host.idle and waiters.first is None:
            conn = host.idle.pop()
            if conn.hub is hub and _alive(conn):
                return conn, True
            conn.close()
            host.open -= 1
        if host.open < self.max_connections and waiters.first is None:
            host.open += 1
            return self._open(host, key, t), False
        got = waiters.park()
        if got is not _SLOT:
            return got, True
        return self._open(host, key, t), False

    def _open(self, host: _Host, key: tuple[str, str, int], t: Any) -> ClientConnection:
        # The caller holds a slot (host.open counts it); give it back on failure.
        from gofer import socket as gsocket
        from gofer import ssl as gssl

        scheme, hostname, port = key
        try:
            sock = gsocket.create_connection((hostname, port), timeout=t.connect)
            try:
                sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
                stream: Any = sock
                if scheme == "https":
                    # The handshake runs here, under the connect timeout.
                    stream = gssl.wrap_socket(sock, self._context(), server_hostname=hostname)
            except BaseException:
                sock.close()
                raise
        except BaseException:
            self._give_slot(host)
            raise
        conn = ClientConnection(stream, key)
        conn.hub = get_hub()
        return conn

    def release(self, conn: ClientConnection, reusable: bool) -> None:
        """Give ``conn`` back: kept idle if ``reusable``, else closed."""
        hk = (threading.get_ident(), *conn.key)
        host = self._hosts.get(hk)
        if host is None:  # released on another thread than it was made on
            conn.close()
            return
        if reusable and not self.closed:
            conn.prepare_next()
            if host.waiters.first is not None:
                host.waiters.unpark(conn)
                return
            if len(host.idle) < self.max_idle:
                host.idle.append(conn)
                return
        conn.close()
        self._give_slot(host)

    def _give_slot(self, host: _Host) -> None:
        if host.waiters.first is not None:
            host.waiters.unpark(_SLOT)
        else:
            host.open -= 1

    def close(self) -> None:
        """Close the idle connections of this thread."""
        me = threading.get_ident()
        for hk, host in list(self._hosts.items()):
            if hk[0] != me:
                continue
            for conn in host.idle:
                conn.close()
                host.open -= 1
            host.idle.clear()
            if not host.open and not host.waiters:
                del self._hosts[hk]

    def stats(self) -> dict[str, int]:
        return {
            "open": sum(h.open for h in self._hosts.values()),
            "idle": sum(len(h.idle) for h in self._hosts.values()),
            "waiting": sum(len(h.waiters) for h in self._hosts.values()),
        }

    def __repr__(self) -> str:
        return f"<pool {self.stats()}>"


def _alive(conn: ClientConnection) -> bool:
    """False if the server has closed an idle connection (or sent something unasked)."""
    sock = conn.sock
    try:
        # The C-level recv on the fd itself: a peek that neither blocks nor
        # goes through TLS (whose records it must not consume).
        data = _stdsocket.socket.recv(sock, 1, _stdsocket.MSG_PEEK | _stdsocket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    # EOF: closed by the server. Plain HTTP: unasked bytes make the connection
    # unusable. TLS: they may be session tickets, so keep it.
    return bool(data) and isinstance(sock, ssl.SSLSocket)


_default_ctx: ssl.SSLContext | None = None


def default_context() -> ssl.SSLContext:
    """A shared verifying client context (system CA store, host names checked)."""
    global _default_ctx
    if _default_ctx is None:
        ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(["http/1.1"])
        _default_ctx = ctx
    return _default_ctx
