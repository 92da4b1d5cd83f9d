"""A cooperative drop-in counterpart of the standard :mod:`socket` module.

``gofer.socket.socket`` is a subclass of ``socket.socket`` with the same
methods, results, exceptions and timeout semantics, except that a call that
would block parks the calling coroutine instead of the OS thread. Code
written for the stdlib socket works unchanged when handed one; everything
the module does not redefine (constants, ``inet_pton``, ``gaierror``...) is
the stdlib's own object.

The socket class itself is in ``gofer._sockclass`` (how it stays cheap is
written down there). The functions that make sockets (``socketpair``,
``fromfd``, ``create_connection``, ``create_server``) are their stdlib
namesakes returning gofer sockets, with name resolution and connection
attempts that park instead of blocking; like the stdlib's, they use this
module's ``socket`` as it is when called.
"""

from __future__ import annotations

import _socket
import os as _os
import socket as _stdsocket

# Re-exported as the stdlib's own objects (the rest through __getattr__).
from socket import AF_INET as AF_INET
from socket import AF_INET6 as AF_INET6
from socket import AF_UNIX as AF_UNIX
from socket import SO_REUSEADDR as SO_REUSEADDR
from socket import SOCK_DGRAM as SOCK_DGRAM
from socket import SOCK_STREAM as SOCK_STREAM
from socket import SOL_SOCKET as SOL_SOCKET
from socket import AddressFamily as AddressFamily
from socket import SocketKind as SocketKind
from socket import error as error
from socket import gaierror as gaierror
from socket import getdefaulttimeout as getdefaulttimeout
from socket import herror as herror
from socket import setdefaulttimeout as setdefaulttimeout
from socket import timeout as timeout
from typing import Any

from gofer._core import get_hub as _get_hub
from gofer._sockclass import _release as _release
from gofer._sockclass import socket as socket
from gofer.dns import getaddrinfo as getaddrinfo
from gofer.dns import getfqdn as getfqdn
from gofer.dns import gethostbyaddr as gethostbyaddr
from gofer.dns import gethostbyname as gethostbyname
from gofer.dns import gethostbyname_ex as gethostbyname_ex
from gofer.dns import getnameinfo as getnameinfo

__all__ = sorted(
    set(_stdsocket.__all__)
    | {"SocketIO", "socket", "wait_readable", "wait_writable"}
)

SocketType = socket
SocketIO = _stdsocket.SocketIO


def wait_readable(sock: Any, timeout: float | None = None) -> None:
    """Park until ``sock`` (a gofer socket) may be readable."""
    sock._wait(True, None if timeout is None else _get_hub().now() + timeout)


def wait_writable(sock: Any, timeout: float | None = None) -> None:
    """Park until ``sock`` (a gofer socket) may be writable."""
    sock._wait(False, None if timeout is None else _get_hub().now() + timeout)


def socketpair(
    family: int | None = None, type: int = SOCK_STREAM, proto: int = 0
) -> tuple[socket, socket]:
    """Like :func:`socket.socketpair`, returning gofer sockets."""
    if not hasattr(_socket, "socketpair"):
        return _fallback_socketpair(AF_INET if family is None else family, type, proto)
    if family is None:
        family = AF_UNIX if hasattr(_socket, "AF_UNIX") else AF_INET
    a, b = _socket.socketpair(family, type, proto)
    return socket(family, type, proto, a.detach()), socket(family, type, proto, b.detach())


def _fallback_socketpair(family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> tuple[socket, socket]:
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
    lsock = socket(family, type, proto)
    try:
        lsock.bind((host, 0))
        lsock.listen()
        addr, port = lsock.getsockname()[:2]
        csock = socket(family, type, proto)
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


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """Like :func:`socket.fromfd`: a gofer socket on a duplicate of ``fd``."""
    return socket(family, type, proto, _os.dup(fd))


_GLOBAL_DEFAULT_TIMEOUT: Any = _stdsocket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def create_connection(
    address: tuple[str | None, int],
    timeout: float | None = _GLOBAL_DEFAULT_TIMEOUT,
    source_address: tuple[str, int] | None = None,
    *,
    all_errors: bool = False,
) -> socket:
    """Like :func:`socket.create_connection` (cooperative resolution and connect)."""
    host, port = address
    errors: list[OSError] = []
    for af, socktype, proto, _canon, sa in getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = socket(af, socktype, proto)
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
) -> socket:
    """Like :func:`socket.create_server`, returning a gofer socket."""
    if reuse_port and not hasattr(_socket, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not _stdsocket.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = socket(family, SOCK_STREAM)
    try:
        if _os.name not in ("nt", "cygwin"):
            try:
                sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
            except OSError:
                pass
        if reuse_port:
            sock.setsockopt(SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if _stdsocket.has_ipv6 and family == AF_INET6:
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


def __getattr__(name: str) -> Any:
    # Everything else is the stdlib's: constants, inet_*, htons, exceptions...
    try:
        return getattr(_stdsocket, name)
    except AttributeError:
        raise AttributeError(f"module 'gofer.socket' has no attribute {name!r}") from None
