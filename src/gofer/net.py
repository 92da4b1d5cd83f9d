"""High-level networking: ``listen``, ``connect``, ``serve``, streams, datagrams.

Addresses are written the same way everywhere:

* ``("host", port)`` or ``"host:port"`` (``"[::1]:port"`` for IPv6,
  ``":port"`` for every interface): TCP (or UDP for the datagram helpers);
* ``"unix:/path/to/socket"`` (or ``"unix:@name"`` for Linux's abstract
  namespace): a Unix-domain socket.

``listen(addr)`` returns a :class:`Listener` whose ``accept()`` gives
``(Stream, address)``; ``connect(addr)`` returns a :class:`Stream` (buffered
``read``/``read_exactly``/``readline``, direct ``write``/``write_all``).
``serve(addr, handler)`` runs a :class:`Server`: one coroutine per
connection, graceful shutdown, and with ``workers=N`` N processes sharing
the port. Host names are resolved without blocking the hub.
"""

from __future__ import annotations

import contextlib
import os
import socket as _stdsocket
import stat
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from gofer import socket as gsocket
from gofer._serve import Server
from gofer._stream import IncompleteReadError, LimitOverrunError, Stream

__all__ = [
    "IncompleteReadError",
    "LimitOverrunError",
    "Listener",
    "Server",
    "Stream",
    "connect",
    "connect_datagram",
    "listen",
    "listen_datagram",
    "parse_address",
    "serve",
]

DEFAULT_BACKLOG = 1024


def parse_address(addr: Any) -> tuple[int, Any]:
    """``(family, sockaddr)`` for an address in any accepted form.

    The host of an internet address is left unresolved (``family`` is
    ``AF_UNSPEC`` for a host name). Raises ``ValueError`` naming the problem.
    """
    if isinstance(addr, tuple):
        if len(addr) < 2 or not isinstance(addr[1], int):
            raise ValueError(f"an internet address is (host, port), not {addr!r}")
        host = addr[0] or ""
        return _host_family(host), (host, *addr[1:])
    if isinstance(addr, os.PathLike):
        addr = os.fspath(addr)
    if not isinstance(addr, str):
        raise TypeError(f"an address is (host, port), 'host:port' or 'unix:/path', not {type(addr).__name__}")
    if addr.startswith("unix:"):
        path = addr[5:]
        if not path:
            raise ValueError("'unix:' needs a path, e.g. 'unix:/tmp/app.sock'")
        return _stdsocket.AF_UNIX, ("\0" + path[1:]) if path.startswith("@") else path
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected 'host:port', ':port' or 'unix:/path', not {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write IPv6 addresses in brackets, e.g. '[::1]:8000', not {addr!r}")
    p = int(port)
    if p > 65535:
        raise ValueError(f"port {p} is out of range (0-65535) in {addr!r}")
    return _host_family(host), (host, p)


def _host_family(host: str) -> int:
    if host and ":" in host:
        return _stdsocket.AF_INET6
    if not host or _is_ipv4(host):
        return _stdsocket.AF_INET
    return _stdsocket.AF_UNSPEC


def _is_ipv4(host: str) -> bool:
    try:
        _stdsocket.inet_pton(_stdsocket.AF_INET, host)
    except OSError:
        return False
    return True


def _resolve(addr: Any, socktype: int, passive: bool) -> tuple[int, Any]:
    family, sa = parse_address(addr)
    if family == _stdsocket.AF_UNIX or (family != _stdsocket.AF_UNSPEC and sa[0]):
        return family, sa
    if not sa[0] and passive:
        return _stdsocket.AF_INET, ("0.0.0.0", sa[1])
    flags = _stdsocket.AI_PASSIVE if passive else 0
    infos = gsocket.getaddrinfo(sa[0] or None, sa[1], family, socktype, 0, flags)
    return infos[0][0], infos[0][4]


# -- stream sockets --------------------------------------------------------------


class Listener:
    """A listening socket: ``accept()`` returns ``(Stream, address)``.

    Iterating yields streams (``for conn in listener: ...``). ``close()``
    stops listening, wakes a coroutine blocked in ``accept`` with ``OSError``
    and removes the socket file of a Unix listener. With ``ssl`` (a server
    ``SSLContext``) the streams are TLS; each handshake happens on the
    stream's first read or write, in the coroutine that uses it, so a slow
    client cannot stall ``accept``.
    """

    def __init__(self, sock: gsocket.socket, unlink: str | None = None, ssl: Any = None) -> None:
        self.sock = sock
        self.ssl = ssl
        self._unlink = unlink

    @property
    def address(self) -> Any:
        """The bound address (the real port when 0 was asked for)."""
        return self.sock.getsockname()

    def accept(self) -> tuple[Stream, Any]:
        conn: Any
        conn, addr = self.sock.accept()
        if conn.family != _stdsocket.AF_UNIX:
            _nodelay(conn)
        if self.ssl is not None:
            from gofer import ssl as gssl

            conn = gssl.wrap_socket(conn, self.ssl, server_side=True, do_handshake_on_connect=False)
        return Stream(conn), addr

    def __iter__(self) -> Iterator[Stream]:
        while True:
            yield self.accept()[0]

    def close(self) -> None:
        self.sock.close()
        path, self._unlink = self._unlink, None
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gofer.net.Listener {self.sock!r}>"


def _nodelay(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)


def listen_socket(addr: Any, *, backlog: int = DEFAULT_BACKLOG, reuse_port: bool = False) -> tuple[gsocket.socket, str | None]:
    """A bound, listening gofer socket for ``addr`` (and a Unix path to remove later)."""
    family, sa = _resolve(addr, _stdsocket.SOCK_STREAM, passive=True)
    if family == _stdsocket.AF_UNIX:
        path = sa if not sa.startswith("\0") else None
        if path:
            _remove_stale_socket(path)
        sock = gsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
        try:
            sock.bind(sa)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock, path
    return gsocket.create_server(sa, family=family, backlog=backlog, reuse_port=reuse_port), None


def _remove_stale_socket(path: str) -> None:
    # A socket file left by a previous run would make bind() fail; other files are kept.
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def listen(addr: Any, *, backlog: int = DEFAULT_BACKLOG, reuse_port: bool = False, ssl: Any = None) -> Listener:
    """Listen for stream connections on ``addr`` (TCP or ``unix:/path``).

    ``ssl``: a server ``SSLContext`` (see :func:`gofer.ssl.server_context`).
    """
    sock, path = listen_socket(addr, backlog=backlog, reuse_port=reuse_port)
    return Listener(sock, path, ssl)


def connect(addr: Any, timeout: float | None = None, *, ssl: Any = None, server_hostname: str | None = None) -> Stream:
    """Connect to ``addr``; return a :class:`Stream`.

    ``timeout`` bounds the connection attempt, TLS handshake included
    (``TimeoutError``); the stream then blocks without limit until its
    ``timeout`` is set. ``ssl=True`` speaks TLS with the default, verifying
    client context; pass an ``SSLContext`` to choose. The certificate is
    checked against ``server_hostname`` (default: the host in ``addr``).
    """
    family, sa = parse_address(addr)
    stream = _connect_plain(family, sa, timeout)
    if not ssl:
        stream.sock.settimeout(None)
        return stream
    from gofer import ssl as gssl

    ctx = None if ssl is True else ssl
    if server_hostname is None and family != _stdsocket.AF_UNIX:
        server_hostname = sa[0]
    try:
        tls = gssl.wrap_socket(stream.sock, ctx, server_hostname=server_hostname)
    except BaseException:
        stream.close()
        raise
    tls.settimeout(None)
    return Stream(tls)


def _connect_plain(family: int, sa: Any, timeout: float | None) -> Stream:
    if family == _stdsocket.AF_UNIX:
        sock = gsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sa)
        except BaseException:
            sock.close()
            raise
    else:
        sock = gsocket.create_connection(sa, timeout=timeout)
        _nodelay(sock)
    return Stream(sock)


# -- datagram sockets --------------------------------------------------------------


def listen_datagram(addr: Any) -> gsocket.socket:
    """A datagram socket bound to ``addr`` (UDP, or a Unix datagram socket).

    Use ``recvfrom``/``sendto`` on it (cooperative, like every gofer socket).
    """
    family, sa = _resolve(addr, _stdsocket.SOCK_DGRAM, passive=True)
    sock = gsocket.socket(family, _stdsocket.SOCK_DGRAM)
    try:
        if family == _stdsocket.AF_UNIX and not sa.startswith("\0"):
            _remove_stale_socket(sa)
        sock.bind(sa)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_datagram(addr: Any, *, local: Any = None) -> gsocket.socket:
    """A datagram socket connected to ``addr`` (``send``/``recv`` talk to it only).

    ``local`` binds the local end first (needed for a Unix datagram socket
    that expects replies).
    """
    family, sa = _resolve(addr, _stdsocket.SOCK_DGRAM, passive=False)
    sock = gsocket.socket(family, _stdsocket.SOCK_DGRAM)
    try:
        if local is not None:
            sock.bind(parse_address(local)[1])
        sock.connect(sa)
    except BaseException:
        sock.close()
        raise
    return sock


# -- serving ----------------------------------------------------------------------


def serve(
    addr: Any,
    handler: Callable[[Any], Any],
    workers: int = 1,
    *,
    grace: float | None = 10.0,
    backlog: int = DEFAULT_BACKLOG,
    ssl: Any = None,
    raw: bool = False,
    ready: Callable[[Any], Any] | None = None,
    worker_init: Callable[[], Any] | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve ``addr``: ``handler(conn)`` runs in its own coroutine per connection.

    ``conn`` is a :class:`Stream` (the raw gofer socket with ``raw=True``),
    closed when the handler returns; a handler's exception is logged and
    closes only its connection. ``ssl`` (an ``ssl.SSLContext``) serves TLS.
    SIGTERM stops gracefully: no new connections, running ones get
    ``grace`` seconds, then they are cancelled; SIGINT stops at once.
    ``ready(address)`` is called once the port is bound.

    ``workers=N`` (N > 1) forks N worker processes that share the port
    (``SO_REUSEPORT`` on Linux, else one inherited socket) and
    supervises them: a worker that dies is replaced, signals are forwarded.
    Call it from the main program, not inside ``gofer.run()``;
    ``worker_init()`` runs first in each worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        srv = Server(addr, handler, backlog=backlog, ssl=ssl, raw=raw)
        if ready is not None:
            ready(srv.address)
        srv.serve_forever(grace=grace, handle_signals=handle_signals)
        return
    from gofer._workers import Supervisor

    Supervisor(
        addr, handler, workers, grace=grace, backlog=backlog, ssl=ssl, raw=raw, worker_init=worker_init
    ).run(ready=ready)
