"""The cooperative socket class behind ``gofer.socket.socket``.

It is a subclass of ``socket.socket`` with the same methods, results,
exceptions and timeout semantics, except that a call that would block parks
the calling coroutine instead of the OS thread. It lives apart from the
module that re-exports it (``gofer.socket``, beside the functions that make
sockets), which keeps both modules to one subject and out of a circle.

How it stays cheap (this is gofer's hottest code):
* The C socket underneath is always non-blocking; the *logical* timeout
  (``None``, ``0.0`` or seconds) lives in ``_timeout``. A fast path is one
  Python frame around one C call: when the hub's readiness flag is set, try
  the system call; only ``BlockingIOError`` (or, for streams, a short read or
  a short send) clears the flag and parks in ``wait_readable`` /
  ``wait_writable`` (see ``docs/kernel.md``).
* The fd is registered with the hub's poller lazily, on the first wait, so a
  socket that never blocks never pays for ``epoll_ctl``. It then belongs to
  the hub of the thread that waited first.
* ``settimeout(0)`` / ``setblocking(False)`` behave exactly like the
  stdlib's non-blocking sockets: ``BlockingIOError``, never a park.
* ``close()`` unregisters the fd before it is closed (so a reused fd number
  is never confused with it) and wakes a coroutine parked on the socket with
  ``OSError(EBADF)`` instead of leaving it parked forever.
* The stdlib's ``ssl.SSLContext.wrap_socket()`` is refused with a
  ``TypeError`` naming ``gofer.ssl``: it would build a stdlib ``SSLSocket``
  on the fd, made blocking, whose every TLS read would block the hub. The
  first thing the stdlib's ``SSLSocket._create`` does is
  ``sock.getsockopt(SOL_SOCKET, SO_TYPE)``, before any second socket object
  owns the fd, so that is where it is caught (a context whose
  ``sslsocket_class`` is ``gofer.ssl.SSLSocket`` is cooperative and allowed).
"""

from __future__ import annotations

import _socket
import errno as _errno
import operator as _operator
import os as _os
import socket as _stdsocket
import sys as _sys
import threading as _threading
from socket import AF_INET, AF_INET6, SOCK_STREAM, SOL_SOCKET, gaierror
from typing import Any

from gofer import dns as _dns
from gofer._core import get_hub as _get_hub
from gofer._core import wait_readable as _wait_readable
from gofer._core import wait_writable as _wait_writable
from gofer._sockio import SocketIOMixin as _SocketIOMixin
from gofer.dns import getaddrinfo

__all__ = ["socket"]

_ss = _socket.socket
_fileno = _ss.fileno
_gettimeout = _ss.gettimeout
_setblocking = _ss.setblocking
_type = _ss.type.__get__
_getsockopt = _ss.getsockopt
_EBADF = _errno.EBADF
_SO_TYPE = _stdsocket.SO_TYPE


class socket(_SocketIOMixin, _stdsocket.socket):
    """A cooperative ``socket.socket``: blocking calls park only the coroutine.

    Same constructor and methods as :class:`socket.socket` (it *is* one, so
    ``isinstance`` checks pass). See the module docstring for the rules.
    """

    __module__ = "gofer.socket"  # where users find it (and what repr() shows)

    __slots__ = ("_fd", "_st", "_stream", "_timeout")

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        self._st: Any = None  # set first: __del__ runs even when the constructor fails
        _stdsocket.socket.__init__(self, family, type, proto, fileno)
        self._timeout: float | None = _gettimeout(self)
        _setblocking(self, False)
        self._stream = _type(self) == SOCK_STREAM
        self._fd = _fileno(self) if self._stream else -1  # see gofer._sockio

    # -- timeouts -------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        """Like :meth:`socket.socket.settimeout` (None: block, 0: non-blocking)."""
        t = _check_timeout(value)
        # The fd stays non-blocking; the call checks it as the stdlib's does
        # (OSError on a closed socket, or on an fd closed behind its back).
        _setblocking(self, False)
        self._timeout = t

    def gettimeout(self) -> float | None:
        return self._timeout

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """Like :meth:`socket.socket.setblocking` (the fd itself stays non-blocking)."""
        _setblocking(self, False)  # OSError on a bad fd, as in the stdlib
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def getsockopt(self, level: int, optname: int, *buflen: int) -> Any:
        """Like :meth:`socket.socket.getsockopt` (see the module docstring on ``ssl``)."""
        if optname == _SO_TYPE and level == SOL_SOCKET and not buflen:
            _refuse_stdlib_ssl(_sys._getframe(1))
        return _getsockopt(self, level, optname, *buflen)

    # -- accept / connect -------------------------------------------------------
    def accept(self) -> tuple[socket, Any]:
        """Wait for a connection; return ``(socket, address)`` (a gofer socket)."""
        st = self._st
        try:
            if st is None or st.readable:
                fd, addr = self._accept()  # type: ignore[attr-defined]
                return socket(self.family, self.type, self.proto, fileno=fd), addr
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
        if self._timeout == 0.0:
            fd, addr = self._accept()  # type: ignore[attr-defined]
            return socket(self.family, self.type, self.proto, fileno=fd), addr
        deadline = self._deadline_once()
        while True:
            self._wait(True, deadline)
            try:
                fd, addr = self._accept()  # type: ignore[attr-defined]
            except BlockingIOError:
                continue
            return socket(self.family, self.type, self.proto, fileno=fd), addr

    def connect(self, address: Any) -> None:
        """Connect to ``address``; host names are resolved without blocking the hub."""
        err = self._connect(address, True)
        assert err == 0

    def connect_ex(self, address: Any) -> int:
        """Like :meth:`connect` but return an errno instead of raising ``OSError``."""
        return self._connect(address, False)

    def _connect(self, address: Any, raise_: bool) -> int:
        address = self._resolve(address)
        if self._timeout == 0.0:
            if raise_:
                _ss.connect(self, address)
                return 0
            return _ss.connect_ex(self, address)
        err = _ss.connect_ex(self, address)
        if err in (_errno.EINPROGRESS, _errno.EWOULDBLOCK, _errno.EAGAIN):
            deadline = self._deadline_once()
            try:
                self._wait(False, deadline)
            except TimeoutError:
                if raise_:
                    raise
                return _errno.EWOULDBLOCK
            err = self.getsockopt(SOL_SOCKET, _stdsocket.SO_ERROR)
        elif err == _errno.EISCONN and self._stream:
            err = 0
        if err and raise_:
            raise OSError(err, _os.strerror(err))
        return err

    def _resolve(self, address: Any) -> Any:
        """Resolve a host name in ``address`` cooperatively (the C call would block)."""
        if (
            isinstance(address, tuple)
            and len(address) >= 2
            and isinstance(address[0], str | bytes)
            and self.family in (AF_INET, AF_INET6)
        ):
            host = address[0]
            if host and host != "<broadcast>" and not _dns.is_numeric_host(host):
                res = getaddrinfo(host, address[1], self.family, self.type, self.proto)
                if not res:
                    raise gaierror(_socket.EAI_NONAME, "Name or service not known")
                sa = res[0][4]
                return (sa[0], *address[1:]) if self.family == AF_INET6 else sa
        return address

    # -- waiting -------------------------------------------------------------------
    def _deadline_once(self) -> float | None:
        t = self._timeout
        return None if t is None else _get_hub().now() + t

    def _wait(self, read: bool, deadline: float | None) -> None:
        """Park until the socket may be ready; ``TimeoutError`` past ``deadline``."""
        st = self._st
        if st is None or st.closed:
            st = self._attach()
        if deadline is None:
            timeout = None
        else:
            timeout = deadline - st.poller.hub.now()
            if timeout <= 0:
                raise TimeoutError("timed out")
        try:
            if read:
                st.readable = False
                _wait_readable(st, timeout)
            else:
                st.writable = False
                _wait_writable(st, timeout)
        except RuntimeError as exc:
            self._rehome(st, exc)
            self._wait(read, deadline)

    def _rehome(self, st: Any, exc: RuntimeError) -> Any:
        """Register the socket with this thread's hub, if another thread's hub
        has it and nobody waits on it there; else re-raise ``exc``.

        A socket may change threads between waits: socketserver's
        ThreadingMixIn accepts (and, with TLS, shakes hands) in one thread and
        serves in a new one. Two threads waiting on one socket at once stay an
        error.
        """
        if st is not self._st or st.closed or st.rwaiter is not None or st.wwaiter is not None:
            raise exc
        if st.poller.hub is _get_hub():
            raise exc
        self._st = None
        _release(st)  # on its own hub's thread: unregistered there
        return self._attach()

    def _attach(self) -> Any:
        fd = _fileno(self)
        if fd < 0:
            raise OSError(_EBADF, "Bad file descriptor")
        st = _get_hub().poller.register(fd)
        st.label = "socket"
        self._st = st
        return st

    # -- closing -------------------------------------------------------------------
    def _real_close(self, _ss: Any = _ss) -> None:
        self._fd = -1
        st = self._st
        if st is not None:
            self._st = None
            _release(st)
        _ss.close(self)

    def detach(self) -> int:
        """Like :meth:`socket.socket.detach` (the fd is left non-blocking)."""
        self._fd = -1
        st = self._st
        if st is not None:
            self._st = None
            _release(st)
        return _stdsocket.socket.detach(self)

    def __del__(self) -> None:
        st = self._st
        if st is not None:
            self._st = None
            _release(st)
        _ss.__del__(self)  # type: ignore[attr-defined]


def _release(st: Any) -> None:
    """Unregister ``st`` from its poller (on its own hub's thread); wake its waiters."""
    if st.closed:
        return
    hub = st.poller.hub
    exc = OSError(_EBADF, "Bad file descriptor (the socket was closed)")
    if hub.thread_ident == _threading.get_ident():
        st.poller.unregister(st, exc)
    else:
        try:
            hub.call_threadsafe(st.poller.unregister, st, exc)
        except RuntimeError:
            pass  # that hub is closed: it dropped its fds already


def _refuse_stdlib_ssl(frame: Any) -> None:
    """Raise if ``frame`` is the stdlib's ``SSLSocket._create`` making a blocking SSLSocket."""
    if frame.f_code.co_name != "_create" or frame.f_globals.get("__name__") != "ssl":
        return
    cls = frame.f_locals.get("cls")
    if isinstance(cls, type) and issubclass(cls, socket):
        return  # gofer.ssl.SSLSocket (or a subclass): cooperative
    raise TypeError(
        "ssl.SSLContext.wrap_socket() cannot wrap a gofer socket: the stdlib's SSLSocket "
        "would block the whole hub on every TLS read and write. Use "
        "gofer.ssl.wrap_socket(sock, context, server_side=..., server_hostname=...) instead "
        "(same arguments), gofer.net.connect(addr, ssl=context), or a context made by "
        "gofer.ssl.client_context()/server_context()"
    )


def _check_timeout(value: Any) -> float | None:
    """Validate a socket timeout exactly as ``socket.settimeout`` does."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:
            raise ValueError("Invalid value NaN (not a number)")
        t = value
    else:
        t = float(_operator.index(value))
    if t < 0:
        raise ValueError("Timeout value out of range")
    return t
