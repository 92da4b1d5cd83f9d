"""TLS for gofer sockets, on top of the standard :mod:`ssl` module.

:class:`SSLSocket` is the stdlib's ``ssl.SSLSocket`` running over a gofer
socket: OpenSSL reads and writes the non-blocking fd itself, and whenever it
reports ``SSLWantReadError`` / ``SSLWantWriteError`` the coroutine parks on
the fd (with the socket's timeout) and retries. Handshake, reads, writes and
``unwrap()`` (the TLS shutdown) are all cooperative; everything else
(``getpeercert``, ``selected_alpn_protocol``, ``version``...) is the
stdlib's. A short TLS read says nothing about the socket buffer (OpenSSL
reads record by record), so only ``SSLWantReadError`` clears the readiness
flag here.

The stdlib's ``ssl.SSLContext.wrap_socket()`` makes a stdlib ``SSLSocket``,
whose reads block the OS thread and so the hub: given a gofer socket it is
refused with a ``TypeError`` that names this module (see
:mod:`gofer.socket`). The contexts made here (:func:`server_context`,
:func:`client_context`) have ``sslsocket_class = SSLSocket``, so their own
``wrap_socket()`` is cooperative; for any other context, set that attribute
or call :func:`wrap_socket`.

Client sockets verify the server's certificate and host name by default
(``ssl.create_default_context()``). Errors are the stdlib's: a plain-text
peer fails the handshake with ``ssl.SSLError``, a bad certificate with
``ssl.SSLCertVerificationError``.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Iterable

# Re-exported for convenience: build contexts with the stdlib as usual.
from ssl import CERT_NONE as CERT_NONE
from ssl import CERT_OPTIONAL as CERT_OPTIONAL
from ssl import CERT_REQUIRED as CERT_REQUIRED
from ssl import Purpose as Purpose
from ssl import SSLCertVerificationError as SSLCertVerificationError
from ssl import SSLContext as SSLContext
from ssl import SSLEOFError as SSLEOFError
from ssl import SSLError as SSLError
from ssl import SSLWantReadError as SSLWantReadError
from ssl import SSLWantWriteError as SSLWantWriteError
from ssl import SSLZeroReturnError as SSLZeroReturnError
from ssl import create_default_context as create_default_context
from typing import Any

from gofer import socket as gsocket

__all__ = [
    "CERT_NONE",
    "CERT_OPTIONAL",
    "CERT_REQUIRED",
    "Purpose",
    "SSLCertVerificationError",
    "SSLContext",
    "SSLEOFError",
    "SSLError",
    "SSLSocket",
    "SSLWantReadError",
    "SSLWantWriteError",
    "SSLZeroReturnError",
    "client_context",
    "create_default_context",
    "server_context",
    "wrap_socket",
]

# Typed Any: typeshed's SSLSocket and the gofer socket disagree on signatures
# mypy cannot reconcile, and the stdlib's private helpers are used below.
_SSLSocketBase: Any = _ssl.SSLSocket
_WantRead = _ssl.SSLWantReadError
_WantWrite = _ssl.SSLWantWriteError


class SSLSocket(_SSLSocketBase, gsocket.socket):  # type: ignore[misc]
    """A cooperative ``ssl.SSLSocket`` (make one with :func:`wrap_socket`)."""

    _sslobj: Any

    def _retry(self, op: Any, *args: Any) -> Any:
        """``op(*args)``, parking while OpenSSL wants the fd readable or writable."""
        deadline: float | None = None
        first = True
        while True:
            try:
                return op(*args)
            except _WantRead:
                if self._timeout == 0.0:
                    raise
                read = True
            except _WantWrite:
                if self._timeout == 0.0:
                    raise
                read = False
            if first:
                first = False
                deadline = self._deadline_once()
            self._wait(read, deadline)

    def do_handshake(self, block: bool = False) -> None:
        """Run the TLS handshake (parks as needed; ``TimeoutError`` past the timeout)."""
        self._check_connected()
        sslobj: Any = self._sslobj
        self._retry(sslobj.do_handshake)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read up to ``len`` bytes (into ``buffer`` if given); ``b""``/0 at EOF."""
        self._checkClosed()
        sslobj: Any = self._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            if buffer is not None:
                return self._retry(sslobj.read, len, buffer)
            return self._retry(sslobj.read, len)
        except _ssl.SSLError as x:
            if x.args[0] == _ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return 0 if buffer is not None else b""
            raise

    def write(self, data: Any) -> int:
        """Write ``data`` (one TLS write; returns the count), parking as needed."""
        self._checkClosed()
        sslobj: Any = self._sslobj
        if sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        return self._retry(sslobj.write, data)  # type: ignore[no-any-return]

    def send(self, data: Any, flags: int = 0) -> int:
        self._checkClosed()
        if self._sslobj is None:
            return gsocket.socket.send(self, data, flags)
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to send() on {self.__class__}")
        return self.write(data)

    def unwrap(self) -> Any:
        """TLS shutdown (cooperative); returns the plain socket object."""
        sslobj: Any = self._sslobj
        if not sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        s = self._retry(sslobj.shutdown)
        self._sslobj = None
        return s

    def accept(self) -> tuple[SSLSocket, Any]:
        newsock, addr = gsocket.socket.accept(self)
        conn = wrap_socket(
            newsock,
            self.context,
            server_side=True,
            do_handshake_on_connect=self.do_handshake_on_connect,
            suppress_ragged_eofs=self.suppress_ragged_eofs,
        )
        return conn, addr


def wrap_socket(
    sock: Any,
    context: _ssl.SSLContext | None = None,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    do_handshake_on_connect: bool = True,
    suppress_ragged_eofs: bool = True,
    session: Any = None,
) -> SSLSocket:
    """Wrap a gofer (or stdlib) stream socket in TLS; like ``SSLContext.wrap_socket``.

    Without ``context`` a client gets ``ssl.create_default_context()``
    (certificate and host name checked); a server must pass its context.
    A connected socket does its handshake here unless
    ``do_handshake_on_connect=False`` (then: on first use, or call
    ``do_handshake()``). The socket is taken over (detached).
    """
    if context is None:
        if server_side:
            raise ValueError("a server-side TLS socket needs a context with its certificate (see server_context)")
        context = _ssl.create_default_context()
    if not isinstance(sock, gsocket.socket):
        sock = gsocket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    return SSLSocket._create(  # type: ignore[no-any-return]
        sock=sock,
        server_side=server_side,
        do_handshake_on_connect=do_handshake_on_connect,
        suppress_ragged_eofs=suppress_ragged_eofs,
        server_hostname=server_hostname,
        context=context,
        session=session,
    )


def server_context(
    certfile: str,
    keyfile: str | None = None,
    *,
    password: Any = None,
    alpn: Iterable[str] | None = None,
    cafile: str | None = None,
    require_client_cert: bool = False,
) -> _ssl.SSLContext:
    """A server context with the stdlib's secure defaults and this certificate.

    Its ``wrap_socket()`` makes a cooperative :class:`SSLSocket`.

    ``alpn`` lists the protocols offered (e.g. ``["h2", "http/1.1"]``);
    ``cafile`` + ``require_client_cert`` ask clients for a certificate.
    """
    ctx = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH, cafile=cafile)
    ctx.sslsocket_class = SSLSocket
    ctx.load_cert_chain(certfile, keyfile, password)
    if require_client_cert:
        ctx.verify_mode = _ssl.CERT_REQUIRED
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context(
    cafile: str | None = None,
    *,
    alpn: Iterable[str] | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> _ssl.SSLContext:
    """A client context that verifies the server (against ``cafile`` if given).

    Its ``wrap_socket()`` makes a cooperative :class:`SSLSocket`.

    ``certfile``/``keyfile`` present a client certificate; ``alpn`` lists
    the protocols asked for.
    """
    ctx = _ssl.create_default_context(cafile=cafile)
    ctx.sslsocket_class = SSLSocket
    if certfile is not None:
        ctx.load_cert_chain(certfile, keyfile)
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
