"""Request parsing for a server connection: the llhttp callbacks and head checks.

:class:`RequestParsing` is the parsing half of a connection
(:class:`gofer.http._conn.ServerConnection` adds the I/O). ``httptools``
calls its ``on_*`` methods while it parses; they do as little as they can:
``on_header`` appends the raw pair, and only names of a few lengths get a
closer look (``Host``, ``Expect``, ``Upgrade``, ``Connection``,
``Content-Length``, ``Transfer-Encoding``), which marks the head *rare*.
``on_headers_complete`` then checks a plain head with one test and hands
anything unusual to :meth:`RequestParsing._check_head`.

llhttp is strict about framing (it rejects Content-Length together with
Transfer-Encoding, duplicate Content-Length, bare LF, obs-fold, bad chunk
sizes); this module adds what it leaves to the server: the limits (414,
431, 413, also for a head or trailers that never end), exactly one ``Host``
in HTTP/1.1, no Transfer-Encoding in HTTP/1.0, and only HTTP/1.0 and 1.1
(505).
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TYPE_CHECKING

from httptools import HttpRequestParser

from gofer.http._request import Request
from gofer.http._wire import HTTPError

if TYPE_CHECKING:
    from gofer.http._wire import Limits

__all__ = ["BUFSIZE", "RequestParsing"]

BUFSIZE = 65536  # the receive buffer: also the slack of the head-size guard

# Header names the server itself must look at, by length (a cheap first test).
_SPECIAL_LENGTHS = frozenset((4, 6, 7, 10, 14, 17))


class RequestParsing:
    """Parse state of one connection, fed by ``httptools`` (see the module docstring)."""

    __slots__ = (
        "chunk_n",
        "cur",
        "error",
        "head_age",
        "head_fed",
        "headers",
        "host_count",
        "in_head",
        "limits",
        "max_count",
        "max_head",
        "max_line",
        "max_requests",
        "parser",
        "queue",
        "rare",
        "requests",
        "stop_reading",
        "upgraded",
        "url",
        "x_cl",
        "x_expect",
        "x_te",
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parser = HttpRequestParser(self)
        self.queue: deque[Request] = deque()  # heads parsed, not yet answered
        self.cur: Request | None = None  # the request whose body is being parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunk_n = 0  # size of the data being fed
        self.head_fed = 0  # bytes fed while a head was incomplete
        self.head_age = 0  # timeout sweeps since a partial head was seen
        self.in_head = False
        self.host_count = 0
        self.x_cl = -1
        self.x_te = False
        self.x_expect = False
        self.rare = False  # a head had a header that needs a closer look
        self.error: HTTPError | None = None  # a framing error after the queued requests
        self.upgraded = False
        self.stop_reading = False
        self.requests = 0
        self.max_count = limits.max_header_count
        self.max_head = limits.max_header_size
        self.max_line = limits.max_request_line
        self.max_requests = limits.max_requests_per_connection or sys.maxsize

    # -- httptools callbacks -------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        if self.url:
            url = self.url + url
        self.url = url
        if len(url) > self.max_line:
            raise HTTPError(414, close=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept minimal: limits are checked once per head (on_headers_complete)
        # and per recv (fill), which bounds memory all the same.
        self.headers.append((name, value))
        if name == b"Host" or name == b"host":
            self.host_count += 1  # the usual spellings, without a call
        elif len(name) in _SPECIAL_LENGTHS:
            self._special_header(name.lower(), value)

    def _special_header(self, name: bytes, value: bytes) -> None:
        if self.cur is not None:
            return  # a trailer: framing is already decided
        if name == b"host":
            self.host_count += 1
        elif name == b"expect":
            if value.strip().lower() != b"100-continue":
                raise HTTPError(417, close=True)
            self.x_expect = self.rare = True
        elif name == b"content-length":
            self.x_cl = int(value)  # llhttp has checked it is all digits
            self.rare = True
        elif name == b"transfer-encoding":
            self.x_te = self.rare = True
        elif name == b"upgrade":
            self.upgraded = self.rare = True  # no protocol switch: answer, then close
        elif name == b"connection":
            self.rare = True  # the version must be looked at (see on_headers_complete)

    def on_headers_complete(self) -> None:
        p = self.parser
        keep_alive = p.should_keep_alive()
        # llhttp keeps an HTTP/1.0 (or 0.9, 2.0) connection alive only with a
        # Connection header, which makes the head "rare": so a kept-alive,
        # plain head is HTTP/1.1, with no call to get_http_version() (which
        # formats a str).
        version = "1.1" if keep_alive and not self.rare else p.get_http_version()
        headers = self.headers
        url = self.url
        # self is always a ServerConnection (this class is its parsing half).
        req = Request(self, p.get_method(), url, headers, version, keep_alive)  # type: ignore[arg-type]
        self.cur = req
        self.queue.append(req)
        self.headers = []  # trailers, if any, land here and are dropped
        self.url = b""
        # One test for the common case; the details are in _check_head.
        if (
            self.rare
            or version != "1.1"
            or self.host_count != 1
            or len(headers) > self.max_count
            or self.head_fed + self.chunk_n > self.max_head
        ):
            self._check_head(req, version, headers, url)
        self.host_count = 0
        self.in_head = False
        self.head_fed = 0
        self.requests += 1
        if self.requests >= self.max_requests:
            self.stop_reading = True
            req.keep_alive = False

    def _check_head(self, req: Request, version: str, headers: list[tuple[bytes, bytes]], url: bytes) -> None:
        lim = self.limits
        hosts = self.host_count
        self.host_count = 0
        self.in_head = False
        if len(headers) > lim.max_header_count:
            raise HTTPError(431, close=True)
        if self.head_fed + self.chunk_n > lim.max_header_size:
            # The head may be that large: measure it exactly.
            size = len(url) + sum(len(n) + len(v) + 4 for n, v in headers)
            if size > lim.max_header_size:
                raise HTTPError(431, close=True)
        self.rare = False
        cl, self.x_cl = self.x_cl, -1
        te, self.x_te = self.x_te, False
        if self.x_expect:
            req.expect_continue = True
            self.x_expect = False
        if version != "1.1":
            if version != "1.0":
                raise HTTPError(505, close=True)
            if te:
                raise HTTPError(400, "Transfer-Encoding is not allowed in HTTP/1.0", close=True)
        elif hosts != 1:
            raise HTTPError(400, "an HTTP/1.1 request needs exactly one Host header", close=True)
        if cl >= 0:
            req.content_length = cl
            mx = lim.max_body_size
            if mx is not None and cl > mx:
                raise HTTPError(413, close=True)
        elif te:
            req.chunked = True
        if self.upgraded:
            # No protocol switch: answer this one, then close.
            self.stop_reading = True
            req.keep_alive = False

    def on_body(self, body: bytes) -> None:
        req = self.cur
        assert req is not None
        req.received += len(body)
        req.expect_continue = False  # the client did not wait for 100 Continue
        if not req.discard:
            chunks = req.chunks
            if chunks is None:
                req.chunks = chunks = deque()
            chunks.append(body)
        mx = self.limits.max_body_size
        if mx is not None and req.received > mx:
            raise HTTPError(413, close=True)

    def on_message_complete(self) -> None:
        req = self.cur
        if req is not None:
            req.complete = True
            self.cur = None
        if self.headers:
            self.headers = []  # drop trailers
            self.host_count = 0  # a "Host" trailer counts for nothing

    # -- guards, run after each feed when needed ---------------------------------------
    def _partial_head(self, n: int) -> bool:
        # A head still incomplete: llhttp buffers a header field in progress,
        # so bound what one head may take (BUFSIZE of slack because this recv
        # may also hold earlier requests).
        if not self.in_head:
            self.in_head = True
            self.head_age = 0
            self.head_fed = 0
        self.head_fed += n
        if self.head_fed > self.limits.max_header_size + BUFSIZE:
            self._framing_error(HTTPError(431, close=True))
            return False
        return True

    def _chunked_guard(self, cur: Request, n: int) -> bool:
        # Chunk framing and trailers are not body bytes: bound them too.
        cur.wire += n
        lim = self.limits
        mx = lim.max_body_size
        if mx is not None and cur.wire > mx + lim.max_header_size + BUFSIZE:
            self._framing_error(HTTPError(413, close=True))
            return False
        if len(self.headers) > lim.max_header_count:
            self._framing_error(HTTPError(431, close=True))
            return False
        return True

    def _framing_error(self, err: HTTPError) -> None:
        cur = self.cur
        if cur is not None and not cur.complete:
            cur.error = err  # its body is broken: its reader gets the error
        else:
            self.error = err
        self.in_head = False
        self.stop_reading = True

