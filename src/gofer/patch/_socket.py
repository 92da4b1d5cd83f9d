"""Patching ``socket`` (and its name lookups) and ``ssl``.

``socket.socket`` becomes a subclass of :class:`gofer.socket.socket`
(itself a subclass of the original, so ``isinstance`` checks hold) that
moves to the hub of the thread that uses it (see :class:`socket`). ``socketpair``, ``fromfd``,
``create_connection``, ``create_server`` and ``socket.dup`` stay the stdlib's
own functions: they look ``socket`` and ``getaddrinfo`` up in the module at
call time, so they build patched sockets and resolve cooperatively, with the
stdlib's behaviour in every detail (and tests that swap ``socket.socket``
for a mock still reach it). Name lookups (``getaddrinfo``,
``gethostbyname``...) go through :mod:`gofer.dns`: numeric hosts inline,
others in the thread pool while the caller parks; a thread's plain code with
no coroutine to starve (a pool thread among them) calls the original.

``ssl``: ``SSLContext.wrap_socket`` returns a :class:`gofer.ssl.SSLSocket`
(through ``SSLContext.sslsocket_class``, set on the class, so contexts made
before patching are covered), whose handshake, reads, writes and shutdown
park. ``ssl.SSLSocket`` itself stays the stdlib's class: ``ssl`` names it in
its own methods (``super(SSLSocket, self)``), and gofer's is a subclass, so
``isinstance`` checks hold.
"""

from __future__ import annotations

import _thread
import socket as _stdsocket
from typing import Any

from gofer import dns as _dns
from gofer import socket as _gsocket
from gofer.patch._orig import save, thread_may_block
from gofer.threads import to_thread

__all__ = ["patch_socket", "patch_ssl"]

_orig = {
    name: getattr(_stdsocket, name)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "getfqdn")
}


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
    """Cooperative :func:`socket.getaddrinfo` (see the module docstring)."""
    if thread_may_block():
        return _orig["getaddrinfo"](host, port, family, type, proto, flags)
    return _dns.getaddrinfo(host, port, family, type, proto, flags)


def gethostbyname(hostname: str) -> str:
    """Cooperative :func:`socket.gethostbyname`."""
    if thread_may_block():
        return _orig["gethostbyname"](hostname)  # type: ignore[no-any-return]
    return _dns.gethostbyname(hostname)


def gethostbyname_ex(hostname: str) -> Any:
    """Cooperative :func:`socket.gethostbyname_ex`."""
    if thread_may_block():
        return _orig["gethostbyname_ex"](hostname)
    return _dns.gethostbyname_ex(hostname)


def gethostbyaddr(ip_address: str) -> Any:
    """Cooperative :func:`socket.gethostbyaddr`."""
    if thread_may_block():
        return _orig["gethostbyaddr"](ip_address)
    return _dns.gethostbyaddr(ip_address)


def getnameinfo(sockaddr: Any, flags: int) -> Any:
    """Cooperative :func:`socket.getnameinfo`."""
    if thread_may_block():
        return _orig["getnameinfo"](sockaddr, flags)
    return _dns.getnameinfo(sockaddr, flags)


def getfqdn(name: str = "") -> str:
    """Cooperative :func:`socket.getfqdn` (the original, in the thread pool)."""
    if thread_may_block():
        return _orig["getfqdn"](name)  # type: ignore[no-any-return]
    return to_thread(_orig["getfqdn"], name)  # type: ignore[no-any-return]


_st_slot: Any = _gsocket.socket.__dict__["_st"]  # the base class's slot for the hub state
_get_ident = _thread.get_ident


_StdSocket: Any = _stdsocket.socket  # the original class (taken before patching)


class _SocketType(type):
    """Metaclass of the patched ``socket.socket``: any socket passes its checks.

    ``isinstance(s, socket.socket)`` is how libraries ask "is this a
    socket?"; under patch it holds for every ``socket.socket`` there is: the
    patched ones, gofer's own (``gofer.net`` connections) and those made
    before patching.
    """

    def __instancecheck__(cls, obj: Any) -> bool:
        if cls is socket:
            return isinstance(obj, _StdSocket)
        return type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: Any) -> bool:
        if cls is socket:
            return issubclass(sub, _StdSocket)
        return type.__subclasscheck__(cls, sub)


class socket(_gsocket.socket, metaclass=_SocketType):
    """:class:`gofer.socket.socket` that follows the thread using it.

    A gofer socket waits on the hub of the thread that first waited on it.
    Code written for threads hands sockets between threads (a connection
    pool shared by a thread pool), so under patch a socket that nobody waits
    on in its old thread moves to the hub of the thread that uses it now.
    """

    __slots__ = ()

    @property
    def _st(self) -> Any:
        st = _st_slot.__get__(self)
        if (
            st is not None
            and st.poller.hub.thread_ident != _get_ident()
            and st.rwaiter is None
            and st.wwaiter is None
            and not st.closed
        ):
            _st_slot.__set__(self, None)
            _gsocket._release(st)  # on its old hub's thread; registered anew on first wait
            return None
        return st

    @_st.setter
    def _st(self, value: Any) -> None:
        _st_slot.__set__(self, value)

    def accept(self) -> tuple[Any, Any]:
        """Like :meth:`socket.socket.accept`; the new socket follows threads too."""
        conn, addr = _gsocket.socket.accept(self)
        conn.__class__ = type(self)
        return conn, addr


def patch_socket() -> None:
    mod = save("socket")
    mod.socket = socket
    for fn in (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, getnameinfo, getfqdn):
        setattr(mod, fn.__name__, fn)


def patch_ssl() -> None:
    from gofer import ssl as _gssl

    mod = save("ssl")
    mod.SSLContext.sslsocket_class = _gssl.SSLSocket
