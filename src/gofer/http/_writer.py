"""Writing a response on a server connection: whole bodies and streamed ones.

Both application interfaces end here. A whole body becomes one bytes object
(status line, cached ``Server``/``Date`` stamp, headers, ``Content-Length``,
body) appended to the connection's output, sent together with any other
pipelined responses; a large body, or one given as several large buffers,
is sent as it is with ``sendmsg`` (never joined into a copy), and a
regular file (``wsgi.file_wrapper``) with ``os.sendfile``. A streamed body sends its head at once and then each
piece as it is produced, with chunked framing on HTTP/1.1 when its length is
unknown (close-delimited on HTTP/1.0).

The framing decisions are made here, not by the application: ``HEAD`` and
1xx/204/304 responses carry no body (a HEAD keeps the application's
``Content-Length``), ``Connection: close`` is added when
the connection will end, HTTP/1.0 keep-alive is acknowledged, and
application headers that would break the framing (``Content-Length`` on a
whole body, ``Transfer-Encoding``, ``Connection``, ``Date``, ``Server``)
are replaced by the server's own.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gofer._core import wait_writable
from gofer.http._wire import LAST_CHUNK, ClientDisconnected, PeerGone, check_header

if TYPE_CHECKING:
    from gofer.http._conn import ServerConnection
    from gofer.http._request import Request

__all__ = ["HeaderBlock", "StreamWriter", "encode_header_list", "send_file", "send_many", "write_full", "write_parts", "write_stream"]

log = logging.getLogger("gofer.http")

_CLOSE = b"Connection: close\r\n"
_KEEP = b"Connection: keep-alive\r\n"
_CL_LINES = [b"Content-Length: %d\r\n" % n for n in range(2048)]

# What a header means to the framing: 0 plain, 1 content-length, 2 dropped
# (transfer-encoding, date, server), 3 connection.
_IOV_MAX = 512  # buffers per sendmsg (Linux allows 1024)
_KIND = {"content-length": 1, "transfer-encoding": 2, "date": 2, "server": 2, "connection": 3}
_cache: dict[tuple[str, str], tuple[bytes, int]] = {}


class HeaderBlock:
    """Encoded application headers and what they imply for framing.

    ``data`` leaves out the application's ``Content-Length``; ``data_cl``
    keeps it where and as the application wrote it (sent when it is the
    body's true length, so the bytes match what gunicorn sends).
    """

    __slots__ = ("close", "data", "data_cl", "length")

    def __init__(self, data: bytes, length: int, close: bool, data_cl: bytes | None = None) -> None:
        self.data = data
        self.length = length  # a Content-Length the application gave, or -1
        self.close = close  # the application asked for Connection: close
        if data_cl is None:
            data_cl = data + b"Content-Length: %d\r\n" % length if length >= 0 else data
        self.data_cl = data_cl


EMPTY = HeaderBlock(b"", -1, False)


_blocks: dict[tuple[tuple[str, str], ...], HeaderBlock] = {}


def encode_header_list(headers: Iterable[tuple[str, str]]) -> HeaderBlock:
    """Encode ``(name, value)`` pairs (str), refusing CR/LF/NUL injection.

    Applications send the same few header lists again and again, so whole
    lists are cached (bounded) as well as single pairs.
    """
    try:
        key = tuple(headers)
        block = _blocks.get(key)
    except TypeError:  # unhashable pairs (lists): encoded below, with a clear error if bad
        key = None
        block = None
    if block is not None:
        return block
    block = _encode(key if key is not None else headers)
    if key is not None and len(_blocks) < 512 and len(block.data) < 1024:
        _blocks[key] = block
    return block


def _encode(headers: Iterable[tuple[str, str]]) -> HeaderBlock:
    out = []
    out_cl = []
    length = -1
    close = False
    cache = _cache
    for pair in headers:
        hit = cache.get(pair)
        if hit is None:
            name, value = pair
            if not isinstance(name, str) or not isinstance(value, str):
                if isinstance(value, int) and isinstance(name, str):
                    value = str(value)
                else:
                    raise TypeError(f"header names and values must be str, not {pair!r}")
            check_header(name, value)
            kind = _KIND.get(name.lower(), 0)
            hit = (f"{name}: {value}\r\n".encode("latin-1"), kind)
            if len(cache) < 1024 and len(value) < 200:
                cache[(name, value)] = hit
        data, kind = hit
        if not kind:
            out.append(data)
            out_cl.append(data)
        elif kind == 1:
            out_cl.append(data)
            value = pair[1]
            try:
                length = int(value)
            except ValueError:
                raise ValueError(f"invalid Content-Length header value {value!r}") from None
            if length < 0:
                raise ValueError(f"invalid Content-Length header value {value!r}")
        elif kind == 3:
            close = close or "close" in pair[1].lower()
    return HeaderBlock(b"".join(out), length, close, b"".join(out_cl))


def _conn_line(conn: ServerConnection, req: Request, hb: HeaderBlock) -> bytes:
    if hb.close or not req.keep_alive or conn.no_keep or conn.server.draining or not _drainable(conn, req):
        conn.keep = False
        return _CLOSE
    if req.version == "1.0":
        return _KEEP
    return b""


def _drainable(conn: ServerConnection, req: Request) -> bool:
    """Whether the unread rest of ``req``'s body can be read and dropped after the response."""
    if req.complete:
        return True
    if req.expect_continue or req.content_length < 0:
        return False  # the client waits for 100 Continue, or the length is unknown
    return req.content_length - req.received <= conn.server.drain_limit


def write_full(conn: ServerConnection, req: Request, code: int, sline: bytes, hb: HeaderBlock, body: bytes) -> None:
    """Queue a response with a whole body (sent with the next flush)."""
    if req.keep_alive and req.complete and not conn.no_keep and not hb.close and req.version == "1.1":
        cline = b""  # the common case, decided without a call
    else:
        cline = _conn_line(conn, req, hb)
    n = len(body)
    conn.status = code
    conn.nbytes = n
    if code < 200 or code == 204 or code == 304:
        if code < 200:
            raise ValueError(f"a handler cannot answer with an informational status ({code})")
        # 204 and 304 have no body and no Content-Length.
        conn.out.append(b"".join((sline, conn.stamp.value, hb.data, cline, b"\r\n")))
        return
    if req.method == "HEAD":
        body = b""
        if hb.length >= 0:
            n = hb.length  # what the application says a GET would send (RFC 9110 §9.3.2)
    if hb.length == n:
        data = hb.data_cl  # the application's own Content-Length line, where it put it
        cl = b""
    else:
        data = hb.data
        cl = _CL_LINES[n] if n < 2048 else b"Content-Length: %d\r\n" % n
    if n > 65536:
        conn.out.append(b"".join((sline, conn.stamp.value, data, cl, cline, b"\r\n")))
        conn.out.append(body)
    else:
        conn.out.append(b"".join((sline, conn.stamp.value, data, cl, cline, b"\r\n", body)))


def write_parts(
    conn: ServerConnection, req: Request, code: int, sline: bytes, hb: HeaderBlock, parts: list[Any], n: int
) -> None:
    """Queue a response whose body is ``parts`` (``n`` bytes in all): large ones are not joined."""
    if req.method == "HEAD":
        write_full(conn, req, code, sline, hb if hb.length >= 0 else HeaderBlock(hb.data, n, hb.close), b"")
        return
    if n <= 65536 or code < 200 or code == 204 or code == 304:
        write_full(conn, req, code, sline, hb, b"".join(parts))
        return
    cline = _conn_line(conn, req, hb)
    conn.status = code
    conn.nbytes = n
    data, cl = (hb.data_cl, b"") if hb.length == n else (hb.data, b"Content-Length: %d\r\n" % n)
    conn.out.append(b"".join((sline, conn.stamp.value, data, cl, cline, b"\r\n")))
    conn.out.extend(parts)  # sent by sendmsg as they are (ServerConnection.flush)


def send_file(conn: ServerConnection, req: Request, code: int, sline: bytes, hb: HeaderBlock, filelike: Any) -> bool:
    """Send a regular file's rest with ``os.sendfile``; False if it has no usable descriptor.

    The length is the application's ``Content-Length`` or what is left of
    the file from its current position. Plain TCP only: under TLS the
    kernel would send the file unencrypted.
    """
    if type(conn.sock) is not socket.socket:
        return False
    try:
        fd = filelike.fileno()
        info = os.fstat(fd)
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    except (AttributeError, OSError, ValueError):
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    length = hb.length if hb.length >= 0 else max(0, info.st_size - offset)
    w = StreamWriter(conn, req, code, sline, hb if hb.length == length else HeaderBlock(hb.data, length, hb.close))
    conn.flush()
    if w.head_only:
        return True
    st = conn.st
    out_fd = conn.sock.fileno()
    sent = 0
    while sent < length:
        if st.writable:
            want = min(length - sent, 1 << 30)
            try:
                k = os.sendfile(out_fd, fd, offset + sent, want)
            except BlockingIOError:
                st.writable = False
                continue
            except OSError as exc:
                raise PeerGone(exc) from None
            if k == 0:
                break  # the file is shorter than announced: finish() logs it and closes
            sent += k
            conn.server.stats.bytes_out += k
            conn.nbytes = sent
            if k == want:
                continue
            st.writable = False
        conn.progress += 1
        wait_writable(st)
    w.sent = sent
    w.finish()
    return True


def send_many(conn: ServerConnection, bufs: list[Any]) -> None:
    """Send all of ``bufs`` with ``sendmsg`` (``bufs`` is consumed), parking when full."""
    st = conn.st
    sock = conn.sock
    i = 0
    k = len(bufs)
    while i < k:
        if st.writable:
            batch = bufs[i : i + _IOV_MAX]
            try:
                sent = sock.sendmsg(batch)
            except BlockingIOError:
                st.writable = False
                continue
            except OSError as exc:
                raise PeerGone(exc) from None
            conn.server.stats.bytes_out += sent
            full = sent < sum(map(len, batch))
            while sent and i < k:
                size = len(bufs[i])
                if sent >= size:
                    sent -= size
                    i += 1
                else:
                    bufs[i] = memoryview(bufs[i])[sent:]
                    sent = 0
            if not full:
                continue
            st.writable = False
        conn.progress += 1
        wait_writable(st)


class StreamWriter:
    """A response whose body is sent piece by piece (see the module docstring).

    ``start()`` queues the head; ``write(piece)`` sends a piece now;
    ``finish()`` ends the body (the last chunk goes out with the next flush).
    If the application fails half-way, the connection is closed without the
    last chunk so the client sees a truncated body, never a wrong one.
    """

    __slots__ = ("chunked", "conn", "head_only", "length", "req", "sent")

    def __init__(self, conn: ServerConnection, req: Request, code: int, sline: bytes, hb: HeaderBlock) -> None:
        self.conn = conn
        self.req = req
        self.length = length = hb.length
        self.head_only = head_only = req.method == "HEAD" or code == 204 or code == 304
        self.sent = 0
        if code < 200:
            raise ValueError(f"an application cannot answer with an informational status ({code})")
        data = hb.data
        if head_only or length >= 0:
            framing = b""
            if length >= 0 and code != 204 and code != 304:
                data = hb.data_cl  # the application's Content-Length, in place
            self.chunked = False
        elif req.version == "1.1":
            framing = b"Transfer-Encoding: chunked\r\n"  # before the application's fields, as gunicorn
            self.chunked = True
        else:
            framing = b""
            self.chunked = False
            conn.keep = False  # HTTP/1.0: the end of the body is the end of the connection
        cline = _conn_line(conn, req, hb) if conn.keep else _CLOSE
        conn.status = code
        conn.nbytes = 0
        conn.out.append(b"".join((sline, conn.stamp.value, framing, data, cline, b"\r\n")))

    def write(self, piece: Any) -> None:
        if not isinstance(piece, bytes | bytearray | memoryview):
            if isinstance(piece, str):
                piece = piece.encode("utf-8")
            else:
                raise TypeError(f"a response body must be bytes or str, not {type(piece).__name__}")
        if not piece or self.head_only:
            return
        conn = self.conn
        self.sent += len(piece)
        conn.nbytes = self.sent
        if 0 <= self.length < self.sent:
            conn.keep = False
            raise ValueError(f"the response is longer than its Content-Length {self.length}")
        out = conn.out
        # flush() sends before returning: the piece is not copied.
        if self.chunked:
            out.append(b"%X\r\n" % len(piece))  # upper case, as gunicorn
            out.append(piece)
            out.append(b"\r\n")
        else:
            out.append(piece)
        conn.flush()

    def finish(self) -> None:
        if self.head_only:
            return
        if self.chunked:
            self.conn.out.append(LAST_CHUNK)
        elif 0 <= self.length != self.sent:
            log.error(
                "gofer.http: response to %s %s declared Content-Length %d but sent %d bytes",
                self.req.method, self.req.target, self.length, self.sent,
            )
            self.conn.keep = False


def write_stream(
    conn: ServerConnection, req: Request, code: int, sline: bytes, hb: HeaderBlock, body: Iterable[Any]
) -> None:
    """Send a head now, then each piece of ``body`` as it comes."""
    try:
        w = StreamWriter(conn, req, code, sline, hb)
        if w.head_only:
            return
        for piece in body:
            w.write(piece)
        w.finish()
    except (PeerGone, ClientDisconnected):
        raise
    except Exception:
        log.exception("gofer.http: error while streaming the response to %s %s", req.method, req.target)
        conn.keep = False
    finally:
        _close_iter(body)


def _close_iter(body: Any) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("gofer.http: error closing the response body")
