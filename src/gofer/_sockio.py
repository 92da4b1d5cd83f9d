"""The data path of :class:`gofer.socket.socket`: recv*/send* and sendfile.

Every method has the same shape: while the hub's readiness flag is set (or
the fd was never registered) try the non-blocking C call; on
``BlockingIOError`` clear the flag and park with the socket's remaining
timeout, then retry. A short read or short send on a stream socket clears the
flag too, because it means the kernel buffer was drained or filled: the next
call then parks at once instead of paying for an ``EAGAIN`` (an exception in
Python costs more than the system call). The epoll poller sets ``readable``
to 2 instead of True when the peer closed or the socket failed: no further
edge will come, so only ``readable is True`` may be cleared by a short read.

``recv``, ``recv_into``, ``send`` and ``sendall`` are written out by hand,
with the common case (a blocking socket already registered with the hub)
calling ``wait_readable``/``wait_writable`` directly: they run once per
message, and every Python call shows in the echo benchmark. Timeouts and the
first registration take the general path in ``socket._wait``.

With a logical timeout of ``0.0`` the methods are the C methods themselves
(``BlockingIOError`` is raised, never a park), as in the stdlib. So they are
with ``MSG_DONTWAIT`` in ``flags``: that call alone is non-blocking, whatever
the socket's timeout.
"""

from __future__ import annotations

import _socket
import errno
import os
from time import monotonic as _monotonic
from typing import Any

from gofer._core import give_way as _give_way
from gofer._core import hub_if_any as _hub_if_any
from gofer._core import wait_readable as _wait_readable

__all__ = ["SocketIOMixin"]

# The C methods, called unbound (typed Any: mypy sees the mixin, not a socket).
_ss: Any = _socket.socket
_recv: Any = _ss.recv
_recv_into: Any = _ss.recv_into
_send: Any = _ss.send
_sendall: Any = _ss.sendall
# For a stream socket with no flags, read(2)/write(2) on the fd are recv/send,
# and os.read/os.write parse their arguments more cheaply (about 500
# instructions less per call, which shows in the echo benchmark). ``_fd`` is
# the fd of a stream socket, -1 for other kinds and once closed or detached
# (those use the socket's C methods). os.read and recv raise the same errors,
# except for a negative size (EINVAL instead of ValueError): _read_failed.
_read: Any = os.read
_write: Any = os.write
# 0 where the platform has no MSG_DONTWAIT (then no flag asks for it).
_DONTWAIT: int = getattr(_socket, "MSG_DONTWAIT", 0)


def _reusable(items: Any) -> Any:
    """``items`` as a list if it is a one-shot iterable (a generator...), else as it is.

    The C methods take any iterable of buffers; a call retried after a park
    must see them again. What is not iterable is passed on for the C
    method's own ``TypeError``.
    """
    if items.__class__ is list or items.__class__ is tuple or not hasattr(items, "__iter__"):
        return items
    return list(items)


def _read_failed(sock: Any, bufsize: Any, exc: OSError) -> bytes:
    """``os.read`` refused the size (e.g. negative): let recv() raise the stdlib's error."""
    if exc.errno == errno.EINVAL:
        return _recv(sock, bufsize)  # type: ignore[no-any-return]
    try:
        raise exc
    finally:
        # exc -> its traceback -> this frame -> exc would be a cycle that keeps
        # the socket alive until the garbage collector runs.
        del exc


class SocketIOMixin:
    """recv/send methods for a subclass of ``socket.socket`` (see the module docstring)."""

    __slots__ = ()
    _fd: int
    _st: Any
    _rehome: Any  # socket._rehome: take the fd over from another thread's hub
    _stream: bool
    _timeout: float | None

    def _wait(self, read: bool, deadline: float | None) -> None:
        raise NotImplementedError

    def _deadline_once(self) -> float | None:
        raise NotImplementedError

    def _resolve(self, address: Any) -> Any:
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Like :meth:`socket.socket.recv`; parks while no data is there."""
        fd = self._fd
        if fd < 0 or flags:
            return self._io(True, flags, _recv, bufsize, flags)  # type: ignore[no-any-return]
        # A stream socket, no flags: read(2) (see _read above).
        st = self._st
        if st is None or st.readable:
            # Data (or room) always there must not starve other coroutines.
            hub = st.poller.hub if st is not None else _hub_if_any()
            if hub is not None and _monotonic() >= hub.slice_end:
                _give_way(hub)
            try:
                data: bytes = _read(fd, bufsize)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
            except OSError as exc:
                return _read_failed(self, bufsize, exc)
            else:
                if len(data) < bufsize and data and st is not None and st.readable is True:
                    st.readable = False
                return data
        if self._timeout is None and st is not None and not st.closed:
            while True:  # the common wait: blocking, registered
                st.readable = False
                try:
                    _wait_readable(st)
                except RuntimeError as exc:
                    st = self._rehome(st, exc)
                    continue
                try:
                    data = _read(fd, bufsize)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    return _read_failed(self, bufsize, exc)
                if len(data) < bufsize and data and st.readable is True:
                    st.readable = False
                return data
        if self._timeout == 0.0:
            return _recv(self, bufsize)  # type: ignore[no-any-return]
        deadline = self._deadline_once()
        while True:
            self._wait(True, deadline)
            try:
                data = _recv(self, bufsize)
            except BlockingIOError:
                continue
            st = self._st
            if len(data) < bufsize and data and st.readable is True:
                st.readable = False
            return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Like :meth:`socket.socket.recv_into`; parks while no data is there."""
        # A short read is n < len(buffer); len() may undercount a buffer with a
        # multi-byte format, which only skips an optimisation.
        st = self._st
        if st is None or st.readable:
            hub = st.poller.hub if st is not None else _hub_if_any()
            if hub is not None and _monotonic() >= hub.slice_end:
                _give_way(hub)
            try:
                n: int = _recv_into(self, buffer, nbytes, flags)
            except BlockingIOError:
                if self._timeout == 0.0 or flags & _DONTWAIT:
                    raise
            else:
                if n and n < (nbytes or len(buffer)) and self._stream and st is not None and st.readable is True:
                    st.readable = False
                return n
        if self._timeout == 0.0 or flags & _DONTWAIT:
            return _recv_into(self, buffer, nbytes, flags)  # type: ignore[no-any-return]
        if self._timeout is None and st is not None and not st.closed:
            while True:
                st.readable = False
                try:
                    _wait_readable(st)
                except RuntimeError as exc:
                    st = self._rehome(st, exc)
                    continue
                try:
                    n = _recv_into(self, buffer, nbytes, flags)
                except BlockingIOError:
                    continue
                if n and n < (nbytes or len(buffer)) and self._stream and st.readable is True:
                    st.readable = False
                return n
        deadline = self._deadline_once()
        while True:
            self._wait(True, deadline)
            try:
                n = _recv_into(self, buffer, nbytes, flags)
            except BlockingIOError:
                continue
            st = self._st
            if n and n < (nbytes or len(buffer)) and self._stream and st.readable is True:
                st.readable = False
            return n

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        """Like :meth:`socket.socket.recvfrom`."""
        return self._io(True, flags, _ss.recvfrom, bufsize, flags)  # type: ignore[no-any-return]

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Like :meth:`socket.socket.recvfrom_into`."""
        return self._io(True, flags, _ss.recvfrom_into, buffer, nbytes, flags)  # type: ignore[no-any-return]

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, list[Any], int, Any]:
        """Like :meth:`socket.socket.recvmsg`."""
        return self._io(True, flags, _ss.recvmsg, bufsize, ancbufsize, flags)  # type: ignore[no-any-return]

    def recvmsg_into(self, buffers: Any, ancbufsize: int = 0, flags: int = 0) -> tuple[int, list[Any], int, Any]:
        """Like :meth:`socket.socket.recvmsg_into`."""
        return self._io(True, flags, _ss.recvmsg_into, _reusable(buffers), ancbufsize, flags)  # type: ignore[no-any-return]

    def _io(self, read: bool, flags: Any, meth: Any, *args: Any) -> Any:
        """``meth(self, *args)``, parking while it would block (datagram-friendly: no flag clearing).

        ``flags`` are the call's flags, for ``MSG_DONTWAIT`` (never a park).
        """
        st = self._st
        if self._timeout == 0.0 or st is None or (st.readable if read else st.writable):
            try:
                return meth(self, *args)
            except BlockingIOError:
                if self._timeout == 0.0 or flags & _DONTWAIT:
                    raise
        elif flags & _DONTWAIT:
            return meth(self, *args)
        deadline = self._deadline_once()
        while True:
            self._wait(read, deadline)
            try:
                return meth(self, *args)
            except BlockingIOError:
                pass

    # -- writing -------------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        """Like :meth:`socket.socket.send`; parks while the send buffer is full."""
        st = self._st
        if st is None or st.writable:
            hub = st.poller.hub if st is not None else _hub_if_any()
            if hub is not None and _monotonic() >= hub.slice_end:
                _give_way(hub)
            fd = self._fd
            try:
                n: int = _write(fd, data) if fd >= 0 and not flags else _send(self, data, flags)
            except BlockingIOError:
                if self._timeout == 0.0 or flags & _DONTWAIT:
                    raise
            else:
                if n < len(data) and self._stream and st is not None:
                    st.writable = False
                return n
        if self._timeout == 0.0 or flags & _DONTWAIT:
            return _send(self, data, flags)  # type: ignore[no-any-return]
        deadline = self._deadline_once()
        while True:
            self._wait(False, deadline)
            try:
                n = _send(self, data, flags)
            except BlockingIOError:
                continue
            if n < len(data) and self._stream:
                self._st.writable = False
            return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Like :meth:`socket.socket.sendall`: one deadline for the whole buffer."""
        st = self._st
        sent = 0
        if st is None or st.writable:
            hub = st.poller.hub if st is not None else _hub_if_any()
            if hub is not None and _monotonic() >= hub.slice_end:
                _give_way(hub)
            fd = self._fd
            try:
                sent = _write(fd, data) if fd >= 0 and not flags else _send(self, data, flags)
            except BlockingIOError:
                if self._timeout == 0.0 or flags & _DONTWAIT:
                    raise
            else:
                if sent == len(data) and (data.__class__ is bytes or data.__class__ is bytearray):
                    return
        self._sendall_rest(data, flags, sent)

    def _sendall_rest(self, data: Any, flags: int, sent: int) -> None:
        with memoryview(data) as m, m.cast("B") as view:
            total = view.nbytes
            if sent >= total:
                return
            if self._timeout == 0.0 or flags & _DONTWAIT:
                _sendall(self, view[sent:], flags)
                return
            deadline = self._deadline_once()
            while True:
                st = self._st
                if st is None or st.writable:
                    try:
                        sent += _send(self, view[sent:], flags)
                    except BlockingIOError:
                        pass
                    else:
                        if sent >= total:
                            return
                self._wait(False, deadline)

    def sendto(self, data: Any, *args: Any) -> int:
        """Like :meth:`socket.socket.sendto`: ``sendto(data[, flags], address)``.

        Host names in ``address`` are resolved cooperatively.
        """
        if len(args) == 1:
            return self._io(False, 0, _ss.sendto, data, self._resolve(args[0]))  # type: ignore[no-any-return]
        if len(args) == 2:
            flags, address = args
            return self._io(False, flags, _ss.sendto, data, flags, self._resolve(address))  # type: ignore[no-any-return]
        raise TypeError(f"sendto() takes 2 or 3 arguments ({len(args) + 1} given)")

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        """Like :meth:`socket.socket.sendmsg`."""
        buffers, ancdata = _reusable(buffers), _reusable(ancdata)
        if address is None:
            return self._io(False, flags, _ss.sendmsg, buffers, ancdata, flags)  # type: ignore[no-any-return]
        return self._io(False, flags, _ss.sendmsg, buffers, ancdata, flags, self._resolve(address))  # type: ignore[no-any-return]

    # -- sendfile --------------------------------------------------------------------
    def _sendfile_use_sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``os.sendfile`` with cooperative waits (the stdlib's version blocks the thread)."""
        import socket as _std

        self._check_sendfile_params(file, offset, count)  # type: ignore[attr-defined]
        giveup = _std._GiveupOnSendfile  # type: ignore[attr-defined]
        sockno = self.fileno()  # type: ignore[attr-defined]
        try:
            fileno = file.fileno()
            fsize = os.fstat(fileno).st_size
        except (AttributeError, OSError, ValueError) as err:
            raise giveup(err)
        if not fsize:
            return 0
        blocksize = min(count or fsize, 2**30)
        if self._timeout == 0:
            raise ValueError("non-blocking sockets are not supported")
        deadline = self._deadline_once()
        total = 0
        try:
            while True:
                if count:
                    blocksize = count - total
                    if blocksize <= 0:
                        break
                try:
                    sent = os.sendfile(sockno, fileno, offset, blocksize)
                except BlockingIOError:
                    self._wait(False, deadline)
                    continue
                except OSError as err:
                    if total == 0:
                        raise giveup(err)
                    raise err from None
                if sent == 0:
                    break
                offset += sent
                total += sent
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset)
