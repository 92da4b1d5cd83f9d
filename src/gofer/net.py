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
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from gofer import _listen
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

DEFAULT_BACKLOG = _listen.DEFAULT_BACKLOG
parse_address = _listen.parse_address


def _resolve(addr: Any, socktype: int, passive: bool) -> tuple[int, Any]:
    return _listen.resolve(addr, socktype, passive=passive, getaddrinfo=gsocket.getaddrinfo)


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
        _listen.set_nodelay(conn)
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


def listen_socket(addr: Any, *, backlog: int = DEFAULT_BACKLOG, reuse_port: bool = False) -> tuple[gsocket.socket, str | None]:
    """A bound, listening gofer socket for ``addr`` (and a Unix path to remove later)."""
    sock, path = _listen.bind(addr, backlog=backlog, reuse_port=reuse_port, getaddrinfo=gsocket.getaddrinfo)
    return gsocket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach()), path


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
        _listen.set_nodelay(sock)
    return Stream(sock)


# -- datagram sockets --------------------------------------------------------------


class _UnixDatagramSocket(gsocket.socket):
    """A gofer datagram socket bound to a Unix path: ``close()`` removes the file.

    Only the file this socket created is removed (same device and inode), so
    a file another process bound at the same path since is left alone; a
    ``dup()`` of it leaves the file to the original.
    """

    __slots__ = ("_bound",)

    def __init__(self, *args: Any, **kw: Any) -> None:
        self._bound: tuple[str, int, int] | None = None
        super().__init__(*args, **kw)

    def _bind_path(self, path: str) -> None:
        _listen.remove_stale_socket(path)
        self.bind(path)
        st = os.stat(path)
        self._bound = (os.path.abspath(path), st.st_dev, st.st_ino)

    def detach(self) -> int:
        """Like :meth:`socket.socket.detach`; the file stays with the fd."""
        self._bound = None
        return super().detach()

    def _real_close(self, *args: Any) -> None:
        super()._real_close(*args)
        bound, self._bound = self._bound, None
        if bound is not None:
            path, dev, ino = bound
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)


def _datagram_socket(family: int, local: Any) -> gsocket.socket:
    """A datagram socket of ``family``, bound to ``local`` (a sockaddr) unless None."""
    if family == _stdsocket.AF_UNIX and isinstance(local, str) and not local.startswith("\0"):
        usock = _UnixDatagramSocket(family, _stdsocket.SOCK_DGRAM)
        try:
            usock._bind_path(local)
        except BaseException:
            usock.close()
            raise
        return usock
    sock = gsocket.socket(family, _stdsocket.SOCK_DGRAM)
    if local is not None:
        try:
            sock.bind(local)
        except BaseException:
            sock.close()
            raise
    return sock


def listen_datagram(addr: Any) -> gsocket.socket:
    """A datagram socket bound to ``addr`` (UDP, or a Unix datagram socket).

    Use ``recvfrom``/``sendto`` on it (cooperative, like every gofer socket).
    A Unix socket file is removed on ``close()`` (and a stale one left by an
    earlier run is replaced).
    """
    family, sa = _resolve(addr, _stdsocket.SOCK_DGRAM, passive=True)
    return _datagram_socket(family, sa)


def connect_datagram(addr: Any, *, local: Any = None) -> gsocket.socket:
    """A datagram socket connected to ``addr`` (``send``/``recv`` talk to it only).

    ``local`` binds the local end first (needed for a Unix datagram socket
    that expects replies); its Unix socket file is removed on ``close()``.
    """
    family, sa = _resolve(addr, _stdsocket.SOCK_DGRAM, passive=False)
    sock = _datagram_socket(family, None if local is None else parse_address(local)[1])
    try:
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
    (one ``SO_REUSEPORT`` listener each on Linux, else one inherited socket)
    and supervises them: a worker that dies is replaced, SIGTERM and SIGINT
    are forwarded, SIGHUP starts fresh workers and then retires the old
    ones (see :mod:`gofer._workers`).
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
    from gofer._serve import worker_body
    from gofer._workers import Supervisor

    body = worker_body(handler, grace=grace, ssl=ssl, raw=raw)
    Supervisor(addr, workers, body, grace=grace, backlog=backlog, worker_init=worker_init).run(ready=ready)
