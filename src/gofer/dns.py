"""Name resolution that does not block the hub.

The C resolver (``getaddrinfo(3)``) blocks its thread, so every lookup that
may touch the network or the disk (``/etc/hosts``, ``/etc/services``, DNS)
runs in gofer's thread pool (:func:`gofer.to_thread`) while the calling
coroutine parks. Numeric hosts and ports are the common case in servers and
are resolved inline: ``AI_NUMERICHOST | AI_NUMERICSERV`` makes the C call
return at once without any lookup, so they cost no thread hop.

The functions have the signatures and results of their :mod:`socket`
namesakes and raise the same exceptions (``socket.gaierror`` and friends).
"""

from __future__ import annotations

import _socket
import operator
import socket as _stdsocket
from typing import Any

from gofer.threads import to_thread

__all__ = [
    "getaddrinfo",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
    "is_numeric_host",
]

_NUMERIC = _socket.AI_NUMERICHOST | _socket.AI_NUMERICSERV
_gai = _socket.getaddrinfo
_EAI_NONAME = _socket.EAI_NONAME
AddrInfo = tuple[Any, Any, int, str, Any]


def is_numeric_host(host: object) -> bool:
    """True if ``host`` is an IPv4/IPv6 literal (resolving it needs no lookup)."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str) or not host:
        return False
    for fam in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(fam, host.partition("%")[0] if fam == _socket.AF_INET6 else host)
        except (OSError, ValueError):
            continue
        return True
    return False


def _numeric_port(port: object) -> bool:
    if port is None or isinstance(port, int):
        return True
    if isinstance(port, bytes):
        return port.isdigit()
    return isinstance(port, str) and port.isdigit()


def getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[AddrInfo]:
    """Cooperative :func:`socket.getaddrinfo`: same arguments, same result.

    Numeric hosts (and ``None``) with numeric ports are resolved inline; any
    other lookup runs in a worker thread while the caller parks.
    """
    if (host is None or is_numeric_host(host)) and _numeric_port(port):
        return _wrap(_gai(host, port, family, type, proto, flags | _NUMERIC))
    if flags & _socket.AI_NUMERICHOST:
        return _wrap(_gai(host, port, family, type, proto, flags))  # fails fast, no lookup
    return _wrap(to_thread(_gai, host, port, family, type, proto, flags))


def _wrap(res: list[AddrInfo]) -> list[AddrInfo]:
    # Like socket.getaddrinfo: enums instead of plain ints for family and type.
    conv_f = _stdsocket._intenum_converter  # type: ignore[attr-defined]
    return [
        (conv_f(af, _stdsocket.AddressFamily), conv_f(st, _stdsocket.SocketKind), pr, cn, sa)
        for af, st, pr, cn, sa in res
    ]


def gethostbyname(hostname: str) -> str:
    """Cooperative :func:`socket.gethostbyname`."""
    if is_numeric_host(hostname) and ":" not in hostname:
        return _socket.gethostbyname(hostname)
    return to_thread(_socket.gethostbyname, hostname)


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """Cooperative :func:`socket.gethostbyname_ex`."""
    return to_thread(_socket.gethostbyname_ex, hostname)


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """Cooperative :func:`socket.gethostbyaddr` (a reverse lookup, in a thread)."""
    return to_thread(_socket.gethostbyaddr, ip_address)


def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    """Cooperative :func:`socket.getnameinfo`."""
    if not isinstance(sockaddr, tuple):
        # The C function's error, raised here rather than from a worker thread;
        # dropped first so that the traceback does not keep the object alive.
        del sockaddr
        raise TypeError("getnameinfo() argument 1 must be a tuple")
    flags = operator.index(flags)
    if flags & _socket.NI_NUMERICHOST and flags & _socket.NI_NUMERICSERV:
        return _socket.getnameinfo(sockaddr, flags)
    return to_thread(_socket.getnameinfo, sockaddr, flags)


def getfqdn(name: str = "") -> str:
    """Cooperative :func:`socket.getfqdn`."""
    return to_thread(_stdsocket.getfqdn, name)
