"""One server-side HTTP/1.1 connection: reading, pipelining, bodies, sending.

A connection is one coroutine running :meth:`ServerConnection.run`. It reads
into a receive buffer that all plain connections of a thread share (each
read is parsed whole before the connection can park, so an idle connection
holds no buffer) with non-blocking ``recv_into`` on the kernel's I/O
state (no socket wrapper on the hot path), feeds ``httptools`` (llhttp),
whose callbacks build :class:`~gofer.http._request.Request` objects with
the least state they can, and queues requests whose head is complete.
Requests are answered strictly in order; responses that are ready are
collected in ``out`` and sent with one ``send`` when no parsed request is
left, so a pipelined burst of 16 requests costs one ``recv`` and one
``send``.

Parsing and the checks on each head are in :mod:`gofer.http._parse`. Any
framing error answers the requests parsed before it, then sends 400 (or
413/414/431) and closes.

Timeouts cost nothing per request: the server's periodic sweep ages
each connection that waits for the network (what it waits for is read off
its I/O state, see ``phase()``) and cancels it when it has made no progress
for too long; the hot path stores nothing for it.

An idle keep-alive connection holds no coroutine: it is parked on its fd
and a coroutine is started when its next request arrives (see
:mod:`gofer.http._idle`).
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade

from gofer._core import Cancelled, OSThreadLocal, wait_readable, wait_writable
from gofer.http._idle import APP, BODY, HEAD, IDLE, WRITE, GoIdle, IdleParking
from gofer.http._linger import linger
from gofer.http._parse import BUFSIZE, RequestParsing
from gofer.http._request import Request
from gofer.http._wire import CONTINUE, ClientDisconnected, HTTPError, PeerGone, status_line
from gofer.http._writer import send_many

if TYPE_CHECKING:
    from gofer.http.server import Server

__all__ = ["APP", "BODY", "HEAD", "IDLE", "WRITE", "ClientDisconnected", "GoIdle", "ServerConnection"]

log = logging.getLogger("gofer.http")

_JOIN_MAX = 65536  # pieces up to this much in all are joined into one send; more go by sendmsg
# Above this many connections an idle one parks on its fd at once, not a sweep
# tick later (gofer.http._idle); below, the cheaper plain park is kept.
_PARK_NOW = 1024


_tls = OSThreadLocal()  # per OS thread, even when gofer.patch() came first


def _thread_buffer() -> tuple[bytearray, memoryview]:
    """The receive buffer all plain connections of this thread's hub share.

    feed() consumes every byte before the connection can park again (a head
    still partial, a piece of body: copied out), so between the recv_into
    and the end of its feed nothing else runs: no connection holds a buffer
    while idle.
    """
    pair: tuple[bytearray, memoryview] | None = getattr(_tls, "pair", None)
    if pair is None:
        buf = bytearray(BUFSIZE)
        pair = _tls.pair = (buf, memoryview(buf))
    return pair


class ServerConnection(RequestParsing, IdleParking):
    """The state of one accepted connection (see the module docstring)."""

    __slots__ = (
        "addr",
        "body_cut",
        "closing",
        "env",
        "eof",
        "fd",
        "handle",
        "keep",
        "mark",
        "nbytes",
        "no_keep",
        "out",
        "parkable",
        "progress",
        "server",
        "sock",
        "st",
        "stamp",
        "status",
        "task",
        "ticks",
        "timed_out",
        "wsgi_start",
    )

    def __init__(self, server: Server, sock: socket.socket, addr: Any, st: Any) -> None:
        if type(sock) is socket.socket:
            buf, mv = _thread_buffer()
        else:
            # A TLS socket's recv_into may park half-way through filling the
            # buffer: that connection keeps a buffer of its own.
            buf = bytearray(BUFSIZE)
            mv = memoryview(buf)
        RequestParsing.__init__(self, server.limits, st.poller.hub.now, buf, mv)
        self.server = server
        self.sock = sock
        self.addr = addr
        self.fd = sock.fileno()
        self.st = st
        self.stamp = server.stamp
        self.out: list[bytes] = []  # responses ready to send
        self.status = 0  # of the last response (access log)
        self.nbytes = 0
        self.eof = False
        self.closing = False
        self.keep = True  # False: close after the current response
        self.no_keep = False  # no more keep-alive (errors, shutdown)
        self.ticks = 0  # timeout sweeps without progress
        self.mark: Any = None  # progress marker seen by the last sweep
        self.progress = 0
        self.timed_out = False
        self.body_cut = False  # the timeout was the body's (min_body_rate, body_timeout)
        self.task: Any = None
        self.parkable = False  # may park on its fd while idle (plain, started by serve_socket)
        self.handle: Any = None  # the on_readable registration of a parked connection
        self.env: dict[str, Any] | None = None  # WSGI: the environ's constant part (shared, see wsgi.py)
        self.wsgi_start: Any = None  # WSGI: start_response, reused request after request

    # -- reading ---------------------------------------------------------------------
    def fill(self) -> bool:
        """Receive once and feed the parser; False at end of stream or on a framing error."""
        if self.stop_reading or (self.last and self.cur is None):
            return False
        st = self.st
        out = self.out
        if out:
            # Send what is ready before reading more (flush(), inlined for
            # one buffer: this is every request's path). Also the
            # back-pressure: a client that pipelines without reading makes
            # us park here, not buffer.
            if len(out) != 1 or not st.writable:
                self.flush()
            else:
                data = out[0]
                out.clear()
                try:
                    sent = self.sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise PeerGone(exc) from None
                self.server.stats.bytes_out += sent
                if sent != len(data):
                    st.writable = False
                    self.send(memoryview(data)[sent:])
                del data  # not kept while this connection waits for its next request
        while True:
            if st.readable:
                try:
                    n = self.sock.recv_into(self.buf)
                except BlockingIOError:
                    st.readable = False
                    continue
                except OSError:
                    n = 0
                if n == 0:
                    self.eof = self.stop_reading = True
                    return False
                if n < BUFSIZE and st.readable is True:
                    # Drained: the next read parks instead of paying for
                    # EAGAIN. (2 means EOF or an error was seen: no further
                    # edge would come, so it stays set.)
                    st.readable = False
                break
            if self.parkable and len(self.server.conns) > _PARK_NOW and self._park_on_fd():
                return False  # many connections: do not hold a coroutine while idle
            try:
                wait_readable(st)
            except GoIdle as exc:
                # Its traceback holds this coroutine's frames (and a frame that
                # holds it): dropped here, a parked connection is freed by its
                # refcount alone when it closes, not at the next full gc.
                exc.__traceback__ = None
                if self._park_on_fd():
                    return False  # run() ends the coroutine; the connection lives on
        self.server.stats.bytes_in += n
        try:
            self.feed(n)
        except HttpParserUpgrade:
            # CONNECT or Connection: upgrade. No tunnel, no protocol switch:
            # answer that request (the last one parsed), then close.
            self.upgraded = self.last = True
            if self.queue:
                self.queue[-1].keep_alive = False
        except HTTPError as exc:
            self._framing_error(exc)
            return False
        except HttpParserCallbackError as exc:
            ctx = exc.__context__
            if isinstance(ctx, HTTPError):
                self._framing_error(ctx)
            else:
                log.error("gofer.http: error in request parsing", exc_info=ctx)
                self._framing_error(HTTPError(400, close=True))
            return False
        except HttpParserError as exc:
            self._framing_error(HTTPError(400, str(exc) or "malformed request", close=True))
            return False
        return True

    def next_body_chunk(self, req: Request) -> bytes:
        """The next piece of ``req``'s body (b"" at its end), reading as needed."""
        while True:
            chunks = req.chunks
            if chunks:
                return chunks.popleft()
            if req.complete:
                return b""
            if req.error is not None:
                raise req.error
            if req.expect_continue:
                req.expect_continue = False
                self.out.append(CONTINUE)
                self.flush()
            if not self.fill() and req.error is None and not req.complete:
                if self.error is not None:
                    raise self.error
                raise ClientDisconnected("the client closed the connection before sending the whole body")

    def finish_body(self, req: Request) -> bool:
        """After the response: read and drop the rest of ``req``'s body.

        Returns False if the connection cannot be reused (body unread and too
        large to drain, a 100-continue that was never answered, or an error).
        """
        if req.complete:
            return req.error is None
        if req.error is not None or req.expect_continue:
            return False
        remaining = req.content_length - req.received if req.content_length >= 0 else -1
        if remaining < 0 or remaining > self.server.drain_limit:
            return False
        req.discard = True
        req.chunks = None
        while not req.complete:
            if not self.fill():
                return False
        return req.error is None

    # -- writing -----------------------------------------------------------------------
    def flush(self) -> None:
        """Send what ``out`` holds: small pieces joined, large ones as they are (no copy)."""
        out = self.out
        if len(out) == 1:
            data = out[0]
        elif sum(map(len, out)) <= _JOIN_MAX:
            data = b"".join(out)
        else:
            bufs = out[:]
            out.clear()
            send_many(self, bufs)
            return
        out.clear()
        self.send(data)

    def send(self, data: bytes | memoryview) -> None:
        """Send all of ``data``, parking while the socket buffer is full."""
        st = self.st
        sock = self.sock
        while True:
            if st.writable:
                try:
                    n = sock.send(data)
                except BlockingIOError:
                    st.writable = False
                    continue
                except OSError as exc:
                    raise PeerGone(exc) from None
                self.server.stats.bytes_out += n
                if n == len(data):
                    return
                data = memoryview(data)[n:]
                st.writable = False
            self.progress += 1
            wait_writable(st)

    # -- the connection's life -----------------------------------------------------------
    def run(self, dispatch: Any = None) -> None:
        """Serve requests until the peer leaves, an error, a timeout or shutdown."""
        server = self.server
        try:
            self._serve(dispatch or server.dispatch)
            if self.handle is not None:
                return  # parked on its fd (the finally leaves it open)
            if not self.eof:
                linger(self.sock, self.st, self.buf)
        except (PeerGone, ClientDisconnected):
            pass
        except Cancelled as exc:
            exc.__traceback__ = None  # its frames hold this connection (see fill's GoIdle)
            if self.timed_out and (self.in_head or (self.body_cut and not self.status)):
                # Cut while the client sent its head or (too slowly) a body
                # no response has begun for.
                self._try_send_now(self._error_bytes(HTTPError(408)))
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.ECONNRESET, errno.EPIPE):
                log.warning("gofer.http: connection from %s failed: %r", self.addr, exc)
        finally:
            if self.handle is None:
                self.close()

    def _serve(self, dispatch: Any) -> None:
        queue = self.queue
        server = self.server
        while True:
            if not queue:
                if self.error is not None:
                    self.out.append(self._error_bytes(self.error))
                    self.flush()
                    return
                if not self.keep:  # a draining server closes idle connections itself
                    if self.out:
                        self.flush()
                    return
                if not self.fill() and not queue:
                    if self.handle is not None:
                        return  # parked on its fd: nothing to send, nothing read
                    if self.out:
                        self.flush()
                    if self.error is None:
                        return
                continue
            req = queue[0]
            if req.error is not None:
                del queue[0]
                self.out.append(self._error_bytes(req.error))
                self.flush()
                return
            self.status = 0  # no response begun (see run: a body cut gets 408 then)
            stats = server.stats
            stats.requests += 1
            stats.in_progress += 1
            try:
                dispatch(self, req)
            finally:
                stats.in_progress -= 1
            stats.responses[self.status // 100 if 100 <= self.status < 600 else 0] += 1
            del queue[0]
            if len(self.out) > 32:
                self.flush()  # a long pipelined burst: do not buffer its responses
            if server.access_log is not None:
                self._log_access(req)
            if not self.keep:
                if self.out:
                    self.flush()
                return
            if not req.complete and not self.finish_body(req):
                self.keep = False
            if self.no_keep:
                self.keep = False
            del req  # an idle connection keeps nothing of its last request

    def _log_access(self, req: Request) -> None:
        try:
            self.server.access_log(req, self.status, self.nbytes)  # type: ignore[misc]
        except Exception:
            log.exception("gofer.http: error in the access log function")

    def want_close(self, req: Request) -> bool:
        """Whether the response to ``req`` must say ``Connection: close``."""
        return not req.keep_alive or self.no_keep or self.server.draining

    def _error_bytes(self, err: HTTPError) -> bytes:
        self.server.stats.responses[err.status // 100 if 100 <= err.status < 600 else 0] += 1
        body = (err.message + "\n").encode("utf-8", "replace")
        return b"".join((
            status_line(err.status),
            self.stamp.value,
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(body),
            body,
        ))

    def _try_send_now(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except OSError:
            pass

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.stop_reading = True
        # Break the cycles through this object (its parser's callbacks are its
        # bound methods; WSGI's start_response holds it), so that it goes as
        # soon as it is dropped: an idle server may run no gc for a long time.
        del self.parser  # nothing parses after close (stop_reading)
        self.wsgi_start = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.server._forget(self)
        self.st.poller.unregister(self.st)
        try:
            self.sock.close()
        except OSError:
            pass

    def __repr__(self) -> str:
        return f"<gofer.http connection from {self.addr} phase={self.phase()}>"
