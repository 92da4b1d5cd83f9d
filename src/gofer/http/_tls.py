"""TLS for the HTTP server: the context ``gofer serve`` builds, the handshake, the socket face.

A server connection drives its fd itself (non-blocking ``recv_into`` and
``send`` on the kernel's I/O state, see :mod:`gofer.http._conn`). Over TLS
it does the same on :class:`TLSSocket`, which gives a non-blocking stdlib
``SSLSocket`` the plain socket's contract: ``BlockingIOError`` when the
network has nothing (``SSLWantReadError`` on a read, ``SSLWantWriteError``
on a send), and a ``recv_into`` that only comes back short when the socket
is drained. That last point matters: the connection clears its "readable"
flag after a short read and waits for the next edge, but one ``SSL_read``
returns a single TLS record, and the rest may already sit in the kernel's
buffer, where no new edge would announce it. So ``recv_into`` reads records
until the buffer is full or the kernel holds no more bytes (``FIONREAD``:
a third of the cost of the failed ``SSL_read`` and its ``SSLWantReadError``
that asked the same before). Reads and writes call the C ``SSLObject``
directly, without ``SSLSocket``'s per-call checks.

The handshake (:func:`handshake`) runs in the connection's coroutine and
counts against the header timeout: a client that connects and stays silent
is dropped when a silent plain-text client would be.
"""

from __future__ import annotations

import socket
import ssl
from array import array
from fcntl import ioctl
from termios import FIONREAD
from typing import Any

from gofer._core import wait_readable, wait_writable

__all__ = ["TLSSocket", "handshake", "server_context"]


def server_context(
    certfile: str,
    keyfile: str | None = None,
    *,
    password: Any = None,
    ca_certs: str | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server context for HTTP/1.1 over TLS (what ``gofer serve --certfile`` uses).

    The stdlib's secure defaults, TLS 1.2 or later, ALPN ``http/1.1``, no
    renegotiation. ``ca_certs``: clients must present a certificate signed
    by one of these CAs (mutual TLS). ``ciphers``: an OpenSSL cipher list
    for TLS 1.2 (TLS 1.3's suites are not configurable this way).
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.load_cert_chain(certfile, keyfile, password)
    if ca_certs is not None:
        ctx.load_verify_locations(ca_certs)
        ctx.verify_mode = ssl.CERT_REQUIRED
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def handshake(tls: ssl.SSLSocket, st: Any, timeout: float) -> TLSSocket:
    """Complete the server handshake on a non-blocking, not yet shaken ``tls``.

    ``st`` is the fd's I/O state on this hub. Raises ``TimeoutError`` after
    ``timeout`` seconds, ``ssl.SSLError`` or ``OSError`` if the handshake
    fails; the caller closes the socket then.
    """
    now = st.poller.hub.now
    deadline = now() + timeout
    while True:
        try:
            tls.do_handshake()
            return TLSSocket(tls, st)
        except ssl.SSLWantReadError:
            st.readable = False
            wait_readable(st, max(0.0, deadline - now()))
        except ssl.SSLWantWriteError:
            st.writable = False
            wait_writable(st, max(0.0, deadline - now()))


class TLSSocket:
    """A server-side TLS connection with a plain non-blocking socket's face."""

    __slots__ = ("eof", "family", "nread", "read", "st", "tls", "write")

    def __init__(self, tls: ssl.SSLSocket, st: Any) -> None:
        self.tls = tls
        self.eof = False
        self.st = st
        self.family = tls.family
        sslobj = tls._sslobj  # type: ignore[attr-defined]  # the C object (set: the socket is connected)
        self.read = sslobj.read
        self.write = sslobj.write
        self.nread = array("i", [0])  # FIONREAD's answer

    def fileno(self) -> int:
        return self.tls.fileno()

    def recv_into(self, buf: Any, nbytes: int = 0) -> int:
        """Read records until ``buf`` is full or the socket is drained; 0 at the end."""
        if self.eof:
            return 0
        size = nbytes or len(buf)
        got = 0
        read = self.read
        while True:
            try:
                n = read(size, buf) if got == 0 else read(size - got, memoryview(buf)[got:size])
            except ssl.SSLWantReadError:
                break  # a record only partly here: its rest comes with a new edge
            except ssl.SSLWantWriteError:  # a post-handshake message to send first
                self._wait(writable=True)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # close_notify, or a TCP end without it
                n = 0
            if n == 0:
                # The end, seen in the same read as data maybe: no edge will announce it again.
                self.eof = True
                self.st.readable = 2
                return got
            got += n
            if got >= size:
                break
            # One record read (without read-ahead OpenSSL takes no more from
            # the kernel): another read only if the kernel holds more bytes.
            ioctl(self.st.fd, FIONREAD, self.nread, True)
            if not self.nread[0]:
                break
        if got == 0:
            raise BlockingIOError("no TLS data to read now")
        return got

    def send(self, data: Any, flags: int = 0) -> int:
        """Send all of ``data`` or raise ``BlockingIOError`` (resend the same bytes then)."""
        while True:
            try:
                return self.write(data)  # type: ignore[no-any-return]
            except ssl.SSLWantWriteError:
                raise BlockingIOError("the TLS connection cannot take more now") from None
            except ssl.SSLWantReadError:  # the peer must speak first (key update)
                self._wait(writable=False)

    def sendall(self, data: Any) -> None:
        self.tls.sendall(data)

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        return self.send(b"".join(buffers))

    def _wait(self, *, writable: bool) -> None:
        st = self.st
        if writable:
            st.writable = False
            wait_writable(st)
        else:
            st.readable = False
            wait_readable(st)

    def shutdown(self, how: int) -> None:
        """Send close_notify (without waiting for the client's), then shut the TCP side."""
        try:
            self.tls.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        self.read = self._read_raw  # what still comes (a lingering close) is dropped unread
        socket.socket.shutdown(self.tls, how)

    def _read_raw(self, nbytes: int, buf: Any) -> int:
        return socket.socket.recv_into(self.tls, buf, nbytes)

    def close(self) -> None:
        self.tls.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tls, name)  # getpeername, getsockname, setsockopt, cipher...

    def __repr__(self) -> str:
        return f"<gofer.http TLS socket fd={self.fileno()}>"
