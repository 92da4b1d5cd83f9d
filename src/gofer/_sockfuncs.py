"""The functions of :mod:`gofer.socket` that make sockets: socketpair, fromfd, create_*.

Each is its stdlib namesake returning :class:`gofer.socket.socket` objects,
with name resolution and connection attempts that park instead of blocking.
They live beside the socket class (``gofer.socket`` re-exports them) to keep
each module to one subject.
"""

from __future__ import annotations

import _socket
import os
import socket as _std
from socket import AF_INET, AF_INET6, AF_UNIX, SO_REUSEADDR, SOCK_STREAM, SOL_SOCKET
from typing import Any

from gofer.dns import getaddrinfo

__all__ = ["create_connection", "create_server", "fromfd", "socketpair"]


def socketpair(
    family: int | None = None, type: int = SOCK_STREAM, proto: int = 0
) -> tuple[_gs.socket, _gs.socket]:
    """Like :func:`socket.socketpair`, returning gofer sockets."""
    if not hasattr(_socket, "socketpair"):
        return _fallback_socketpair(AF_INET if family is None else family, type, proto)
    if family is None:
        family = AF_UNIX if hasattr(_socket, "AF_UNIX") else AF_INET
    a, b = _socket.socketpair(family, type, proto)
    return _gs.socket(family, type, proto, a.detach()), _gs.socket(family, type, proto, b.detach())


def _fallback_socketpair(family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> tuple[_gs.socket, _gs.socket]:
    """The stdlib's socketpair for platforms without one: a TCP connection over loopback.

    As in the stdlib (3.13, and security releases before it), the two ends
    check that they are connected to each other, so that another program
    connecting to the listening port first is not taken for the peer.
    """
    if family == AF_INET:
        host = "127.0.0.1"
    elif family == AF_INET6:
        host = "::1"
    else:
        raise ValueError("Only AF_INET and AF_INET6 socket address families are supported")
    if type != SOCK_STREAM:
        raise ValueError("Only SOCK_STREAM socket type is supported")
    if proto != 0:
        raise ValueError("Only protocol zero is supported")
    lsock = _gs.socket(family, type, proto)
    try:
        lsock.bind((host, 0))
        lsock.listen()
        addr, port = lsock.getsockname()[:2]
        csock = _gs.socket(family, type, proto)
        try:
            # The stdlib's trick: a non-blocking connect, so that csock never
            # waits (and so is bound to no hub: either end may go to another thread).
            csock.setblocking(False)
            try:
                csock.connect((addr, port))
            except (BlockingIOError, InterruptedError):
                pass
            csock.setblocking(True)
            ssock, _ = lsock.accept()
        except BaseException:
            csock.close()
            raise
    finally:
        lsock.close()
    try:
        if ssock.getsockname() != csock.getpeername() or csock.getsockname() != ssock.getpeername():
            raise ConnectionError("Unexpected peer connection")
    except BaseException:
        ssock.close()
        csock.close()
        raise
    return ssock, csock


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> _gs.socket:
    """Like :func:`socket.fromfd`: a gofer socket on a duplicate of ``fd``."""
    return _gs.socket(family, type, proto, os.dup(fd))


_GLOBAL_DEFAULT_TIMEOUT: Any = _std._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def create_connection(
    address: tuple[str | None, int],
    timeout: float | None = _GLOBAL_DEFAULT_TIMEOUT,
    source_address: tuple[str, int] | None = None,
    *,
    all_errors: bool = False,
) -> _gs.socket:
    """Like :func:`socket.create_connection` (cooperative resolution and connect)."""
    host, port = address
    errors: list[OSError] = []
    for af, socktype, proto, _canon, sa in getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = _gs.socket(af, socktype, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
            return sock
        except OSError as exc:
            if not all_errors:
                errors.clear()
            errors.append(exc)
            if sock is not None:
                sock.close()
    if not errors:
        raise OSError("getaddrinfo returns an empty list")
    try:
        if not all_errors:
            raise errors[0]
        raise ExceptionGroup("create_connection failed", errors)
    finally:
        errors = []


def create_server(
    address: Any,
    *,
    family: int = AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> _gs.socket:
    """Like :func:`socket.create_server`, returning a gofer socket."""
    if reuse_port and not hasattr(_socket, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not _std.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = _gs.socket(family, SOCK_STREAM)
    try:
        if os.name not in ("nt", "cygwin"):
            try:
                sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
            except OSError:
                pass
        if reuse_port:
            sock.setsockopt(SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if _std.has_ipv6 and family == AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0 if dualstack_ipv6 else 1)
        try:
            sock.bind(address)
        except OSError as err:
            raise OSError(err.errno, f"{err.strerror} (while attempting to bind on address {address!r})") from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except OSError:
        sock.close()
        raise


# Last, so that either module may be imported first: the functions above only
# use the class when called, and gofer.socket imports them once they exist.
import gofer.socket as _gs  # noqa: E402
