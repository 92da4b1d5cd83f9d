"""The one listener path: address grammar, listening sockets, accept errors.

Everything in gofer that listens goes through here: ``gofer.net`` (``listen``,
``Server``), the pre-fork supervisor (:mod:`gofer._workers`) and the HTTP
server (``gofer.http.listen``, ``gofer serve``). So an address means the
same thing everywhere, a stale Unix socket is removed the same way, Nagle is
turned off in one place, and one policy decides what an ``accept`` error
means. The module makes plain stdlib sockets and never touches a hub: the
supervisor uses it before it forks, where no hub may exist.

Addresses: ``("host", port)``, ``"host:port"``, ``"[::1]:port"``, ``":port"``
(every interface), ``"unix:/path"`` or ``"unix:@name"`` (Linux's abstract
namespace).

Accept errors (:class:`AcceptPolicy`): running out of file descriptors
(``EMFILE``, ``ENFILE``) or kernel memory (``ENOBUFS``, ``ENOMEM``) is
waited out with an exponential back-off (10 ms up to 1 s), logged at most
once a second with a count of what was suppressed; errors left by a client
that went away before ``accept`` (``ECONNABORTED``, ``EPROTO``...) are
skipped; anything else is the caller's to raise.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEFAULT_BACKLOG",
    "AcceptPolicy",
    "bind",
    "parse_address",
    "remove_stale_socket",
    "resolve",
    "set_nodelay",
]

DEFAULT_BACKLOG = 1024

_BACKOFF_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_SKIP_ERRNOS = frozenset({
    errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.ENETDOWN, errno.EHOSTUNREACH,
})

Resolver = Callable[..., list[Any]]  # getaddrinfo's signature: stdlib or gofer.socket's


# -- addresses -------------------------------------------------------------------------


def parse_address(addr: Any) -> tuple[int, Any]:
    """``(family, sockaddr)`` for an address in any accepted form.

    The host of an internet address is left unresolved (``family`` is
    ``AF_UNSPEC`` for a host name). Raises ``ValueError`` naming the problem.
    """
    if isinstance(addr, tuple):
        if len(addr) < 2 or not isinstance(addr[1], int):
            raise ValueError(f"an internet address is (host, port), not {addr!r}")
        host = addr[0] or ""
        if not 0 <= addr[1] <= 65535:
            raise ValueError(f"port {addr[1]} is out of range (0-65535) in {addr!r}")
        return _host_family(host), (host, *addr[1:])
    if isinstance(addr, os.PathLike):
        addr = os.fspath(addr)
    if not isinstance(addr, str):
        raise TypeError(f"an address is (host, port), 'host:port' or 'unix:/path', not {type(addr).__name__}")
    if addr.startswith("unix:"):
        path = addr[5:]
        if not path:
            raise ValueError("'unix:' needs a path, e.g. 'unix:/tmp/app.sock'")
        return socket.AF_UNIX, ("\0" + path[1:]) if path.startswith("@") else path
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
        return socket.AF_INET6
    if not host or _is_ipv4(host):
        return socket.AF_INET
    return socket.AF_UNSPEC


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return False
    return True


def resolve(addr: Any, socktype: int, *, passive: bool, getaddrinfo: Resolver = socket.getaddrinfo) -> tuple[int, Any]:
    """``(family, sockaddr)`` ready for ``bind`` (``passive``) or ``connect``.

    Only a host name is looked up, with ``getaddrinfo`` (pass gofer's to
    resolve without blocking a hub); an empty host binds every IPv4
    interface.
    """
    family, sa = parse_address(addr)
    if family == socket.AF_UNIX or (family != socket.AF_UNSPEC and sa[0]):
        return family, sa
    if not sa[0] and passive:
        return socket.AF_INET, ("0.0.0.0", sa[1])
    flags = socket.AI_PASSIVE if passive else 0
    infos = getaddrinfo(sa[0] or None, sa[1], family, socktype, 0, flags)
    return infos[0][0], infos[0][4]


# -- listening sockets -------------------------------------------------------------------


def remove_stale_socket(path: str) -> None:
    """Remove a socket file left at ``path`` by a previous run; other files are kept."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def set_nodelay(sock: Any) -> None:
    """Turn Nagle off on a TCP connection (requests and responses are small writes)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def bind(
    addr: Any,
    *,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    listen: bool = True,
    getaddrinfo: Resolver = socket.getaddrinfo,
) -> tuple[socket.socket, str | None]:
    """A bound stdlib socket for ``addr``, listening unless ``listen=False``.

    Returns the socket (non-blocking) and the path of a Unix socket file to
    remove when the last user closes it (None otherwise). A stale socket
    file at that path is removed first. TCP sockets get ``SO_REUSEADDR``
    (a restart does not wait for TIME_WAIT) and, with ``reuse_port``,
    ``SO_REUSEPORT``; an IPv6 socket listens on IPv6 only, as the stdlib's
    ``create_server`` does.
    """
    family, sa = resolve(addr, socket.SOCK_STREAM, passive=True, getaddrinfo=getaddrinfo)
    sock = socket.socket(family, socket.SOCK_STREAM)
    path = None
    try:
        if family == socket.AF_UNIX:
            if not sa.startswith("\0"):
                remove_stale_socket(sa)
                path = sa
        else:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                if not hasattr(socket, "SO_REUSEPORT"):
                    raise ValueError("reuse_port=True needs SO_REUSEPORT, which this system lacks")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sa)
        if listen:
            sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, path


# -- accept errors -----------------------------------------------------------------------


class AcceptPolicy:
    """What an ``accept()`` error means for an accept loop (see the module docstring).

    One per accept loop::

        policy = AcceptPolicy(log, "gofer.net")
        try:
            conn, addr = sock.accept()
        except OSError as exc:
            delay = policy.failed(exc)  # raises exc if it is not an accept hiccup
            if delay:
                sleep(delay)
            continue
        policy.succeeded()
    """

    __slots__ = ("_backoff", "_last_log", "_log", "_name", "_suppressed", "clock")

    def __init__(self, log: logging.Logger, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._name = name
        self._backoff = 0.0
        self._last_log = -1e300
        self._suppressed = 0
        self.clock = clock

    def failed(self, exc: OSError) -> float:
        """Seconds to wait before accepting again (0: at once); re-raises other errors."""
        if exc.errno in _SKIP_ERRNOS:
            return 0.0
        if exc.errno not in _BACKOFF_ERRNOS:
            raise exc
        self._backoff = min(1.0, max(0.01, self._backoff * 2))
        now = self.clock()
        if now - self._last_log >= 1.0:
            more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
            self._log.error("%s: accept() failed: %s; backing off up to 1s%s", self._name, exc, more)
            self._last_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1
        return self._backoff

    def succeeded(self) -> None:
        """A connection was accepted: the next shortage starts its back-off afresh."""
        self._backoff = 0.0
