"""Request parsing for a server connection: framing, the llhttp callbacks, head checks.

:class:`RequestParsing` is the parsing half of a connection
(:class:`gofer.http._conn.ServerConnection` adds the I/O). :meth:`feed`
walks the received bytes one message part at a time, so it always knows
where a request begins: it finds the end of each head itself (the first
CRLFCRLF; a head split across reads is kept until it is whole) and gives
``httptools`` (llhttp) exactly that head, then exactly the
``Content-Length`` bytes of a body; chunked bodies are decoded by
:mod:`gofer.http._chunked`. Knowing where each request starts lets the
server take what llhttp does not: any token as a method (RFC 9110 §9.1; an
extension method is given to llhttp as ``GET`` and kept for the
application), a TAB ending ``Transfer-Encoding`` (OWS) and whitespace
around chunk extensions.

The callbacks do as little as they can: ``on_header`` appends the raw pair,
and only names of a few lengths get a closer look (``Host``, ``Expect``,
``Upgrade``, ``Connection``, ``Content-Length``, ``Transfer-Encoding``),
which marks the head *rare*. ``on_headers_complete`` checks a plain head
with one test and hands anything unusual to :func:`gofer.http._target.check_head`.

llhttp is strict about framing (it rejects Content-Length together with
Transfer-Encoding, duplicate Content-Length, bare LF, obs-fold); the rest
of RFC 9112 and the limits (414, 431 for the head, a field or trailers,
413) are checked here and in :mod:`gofer.http._target`.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade, HttpRequestParser

from gofer.http._chunked import SIZE, dechunk
from gofer.http._request import Request
from gofer.http._target import check_head, check_host, check_trailers, hosts_ok, is_token
from gofer.http._wire import HTTPError

if TYPE_CHECKING:
    from gofer.http._wire import Limits

__all__ = ["BUFSIZE", "RequestParsing"]

BUFSIZE = 65536  # the receive buffer

# Header names the server itself must look at, by length (a cheap first test).
_SPECIAL_LENGTHS = frozenset((4, 6, 7, 10, 14, 17))
# Methods llhttp is given as they are; any other token is given as GET.
_PASS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ")
_TERM = b"\r\n\r\n"
_CRLF = b"\r\n"
# Whitespace ending a Transfer-Encoding field (OWS; llhttp refuses a TAB there).
_TE_OWS = re.compile(rb"(?im)^(transfer-encoding:[^\r\n]*?)[ \t]+\r\n")
_HIGHER_MINOR = re.compile(rb" HTTP/1\.[2-9]")
MAX_METHOD = 64  # longer methods get 501


class _Realign(Exception):
    """Ends feed()'s whole-read fast path: the read is parsed again, aligned."""


class RequestParsing:
    """Parse state of one connection, fed by :meth:`feed` (see the module docstring)."""

    __slots__ = (
        "buf",
        "ck_left",
        "ck_line",
        "ck_state",
        "ck_trailer",
        "clock",
        "cur",
        "error",
        "head_fed",
        "head_t0",
        "headers",
        "host_count",
        "in_head",
        "last",
        "limits",
        "max_count",
        "max_field",
        "max_head",
        "max_line",
        "max_requests",
        "mv",
        "parser",
        "partial",
        "queue",
        "rare",
        "requests",
        "stop_reading",
        "upgraded",
        "url",
        "whole",
        "x_cl",
        "x_expect",
        "x_method",
        "x_te",
    )

    def __init__(self, limits: Limits, clock: Callable[[], float], buf: bytearray, mv: memoryview) -> None:
        self.limits = limits
        self.clock = clock  # the hub's clock
        self.parser = HttpRequestParser(self)
        self.buf = buf  # the receive buffer: emptied by each feed(), so it may be shared
        self.mv = mv
        self.queue: list[Request] = []  # heads parsed, not yet answered (a few: a list is smaller than a deque)
        self.cur: Request | None = None  # the request whose body is being parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_fed = 0  # bytes of the current head given to llhttp
        self.head_t0 = 0.0  # when its first byte arrived (the header timeout counts from there)
        self.partial: bytearray | None = None  # a head not yet complete, kept until its end arrives
        self.in_head = False
        self.host_count = 0
        self.x_cl = -1
        self.x_te = False
        self.x_expect = False
        self.x_method: bytes | None = None  # an extension method given to llhttp as GET
        self.ck_state = SIZE
        self.ck_left = 0
        self.ck_line = b""
        self.ck_trailer = b""
        self.rare = False  # a head had a header that needs a closer look
        self.error: HTTPError | None = None  # a framing error after the queued requests
        self.upgraded = False
        self.whole = False  # llhttp is parsing a whole read (feed's fast path)
        self.stop_reading = False  # nothing more is read
        self.last = False  # no request after the current one is read
        self.requests = 0
        self.max_count = limits.max_header_count
        self.max_head = limits.max_header_size
        # A head no larger than this cannot break the field or head size limit.
        self.max_field = min(limits.max_field_size, limits.max_header_size)
        self.max_line = limits.max_request_line
        self.max_requests = limits.max_requests_per_connection or sys.maxsize

    # -- framing: what llhttp is given -------------------------------------------------
    def feed(self, n: int) -> None:
        """Parse ``buf[:n]``.

        A read that starts between requests and ends with a head's end
        (a burst of GETs) goes to llhttp whole, in one call; should llhttp
        refuse it or meet a chunked body, what that call queued is undone
        and the read is parsed again one message part at a time
        (:meth:`feed_aligned`), where the server knows where each request
        starts.
        """
        if self.cur is not None or self.partial is not None or self.last or not self.buf.endswith(_TERM, 0, n):
            self.feed_aligned(n)
            return
        queued = len(self.queue)
        requests = self.requests
        self.head_fed = n  # at most: check_head measures a head when this is too much
        self.whole = True
        try:
            self.parser.feed_data(self.mv[:n])
        except HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Realign):
                raise
        except HttpParserUpgrade:
            raise
        except HttpParserError:
            pass
        else:
            return
        finally:
            self.whole = False
        # Undo what the whole read queued (nothing of it was answered yet).
        del self.queue[queued:]
        self.requests = requests
        self.cur = None
        self._fresh_parser()
        self.feed_aligned(n)

    def feed_aligned(self, n: int) -> None:
        """Parse ``buf[:n]``, one message part at a time."""
        buf = self.buf
        mv = self.mv
        pos = 0
        while pos < n:
            cur = self.cur
            if cur is not None:  # in a body
                if cur.chunked:
                    pos = dechunk(self, cur, buf, pos, n)
                else:
                    end = pos + cur.content_length - cur.received
                    if end > n:
                        end = n
                    self.parser.feed_data(mv[pos:end])
                    pos = end
                continue
            if self.last:
                self.stop_reading = True
                return
            part = self.partial
            if part is not None:  # a head begun in an earlier read
                old = len(part)
                part += mv[pos:n]
                end = part.find(_TERM, max(0, old - 3))
                if end < 0:
                    self._check_partial(part)
                    return
                end += 4
                self.partial = None
                self._feed_head(part, 0, end)
                pos += end - old
                continue
            if buf[pos] in _CRLF:
                while pos < n and buf[pos] in _CRLF:
                    pos += 1  # empty lines before a request line are ignored (RFC 9112 §2.2)
                continue
            end = buf.find(_TERM, pos, n)
            if end < 0:
                self.in_head = True
                self.head_t0 = self.clock()
                self.partial = part = bytearray(mv[pos:n])
                self._check_partial(part)
                return
            end += 4
            self._feed_head(buf, pos, end)
            pos = end

    def _feed_head(self, data: bytearray, pos: int, end: int) -> None:
        """Give llhttp the complete head ``data[pos:end]``."""
        self.head_fed = end - pos
        before = self.requests
        failed = None
        if data.startswith(_PASS, pos):
            try:
                self.parser.feed_data(memoryview(data)[pos:end])
            except HttpParserCallbackError:
                raise
            except HttpParserError as exc:
                if self.requests > before + 1:
                    raise
                failed = str(exc)
                if self.requests != before:
                    self._undo_request()  # refused after its head was taken (Transfer-Encoding)
            else:
                if self.requests == before:
                    raise HTTPError(400, "malformed request head", close=True)
                return
        # Outside the except block: errors from here must not chain to llhttp's.
        self._feed_unusual(bytes(data[pos:end]), failed)
        if self.requests == before:
            raise HTTPError(400, "malformed request head", close=True)

    def _feed_unusual(self, head: bytes, failed: str | None) -> None:
        """A head llhttp does not take as it is: an extension method, or what it refused.

        The head's start is known, so it can be given again, fixed, to a
        fresh parser: HTTP/1.2 and up as 1.1 (RFC 9112 §2.3), a TAB ending
        ``Transfer-Encoding`` removed (OWS). An extension method is given as
        GET (and kept for the application).
        """
        for _ in range(3):
            if failed is not None:
                if "version" in failed:
                    eol = head.find(b"\r\n")
                    if not _HIGHER_MINOR.fullmatch(head, eol - 9, eol):
                        raise HTTPError(505, close=True)
                    head = head[: eol - 3] + b"1.1" + head[eol:]
                elif "Transfer-Encoding" in failed and b"\t" in head:
                    head = _TE_OWS.sub(rb"\1\r\n", head)
                else:
                    raise HTTPError(400, failed, close=True)
                self._fresh_parser()
            fed = head
            if not head.startswith(_PASS):
                sp = head.find(b" ")
                method = head[:sp] if sp >= 0 else head
                if not is_token(method):
                    raise HTTPError(400, "the method is not a token", close=True)
                if len(method) > MAX_METHOD:
                    raise HTTPError(501, "the method is too long", close=True)
                self.x_method = method
                fed = b"GET" + head[sp:]
            before = self.requests
            try:
                self.parser.feed_data(fed)
                return
            except HttpParserCallbackError:
                raise
            except HttpParserError as exc:
                failed = str(exc)
                if self.requests != before:
                    self._undo_request()
        raise HTTPError(400, failed or "malformed request head", close=True)

    def realign(self) -> None:
        """Leave feed()'s whole-read fast path (from a callback)."""
        raise _Realign

    def _undo_request(self) -> None:
        self.queue.pop()
        self.cur = None
        self.requests -= 1
        self.last = False  # only this request could have set it: none after it was read

    def _fresh_parser(self) -> None:
        """Forget what a refused head left, for a new parser to take it again."""
        self.parser = HttpRequestParser(self)
        self.last = False
        self.in_head = False
        self.url = b""
        self.headers = []
        self.host_count = 0
        self.x_cl = -1
        self.x_te = self.x_expect = self.rare = self.upgraded = False
        self.x_method = None

    def _check_partial(self, part: bytearray) -> None:
        """Refuse early what a head that is still incomplete already shows."""
        if len(part) > self.max_head:
            raise HTTPError(431, close=True)
        if part.count(b"\n") != part.count(b"\r\n"):
            raise HTTPError(400, "a bare LF in the request head", close=True)
        sp = part.find(b" ", 0, MAX_METHOD + 1)
        method = bytes(part[:sp] if sp >= 0 else part[: MAX_METHOD + 1])
        if method and not is_token(method):
            raise HTTPError(400, "the method is not a token", close=True)
        if sp < 0 and len(part) > MAX_METHOD:
            raise HTTPError(501, "the method is too long", close=True)
        if part.find(b"\r\n", 0, self.max_line + MAX_METHOD + 12) < 0 and len(part) > self.max_line + MAX_METHOD + 12:
            raise HTTPError(414, close=True)

    # -- httptools callbacks -------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        if self.url:
            url = self.url + url
        self.url = url
        if len(url) > self.max_line:
            raise HTTPError(414, close=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept minimal: the count, the size of the head and of each field
        # are checked once per head (on_headers_complete, check_head).
        self.headers.append((name, value))
        if name == b"Host" or name == b"host":
            self.host_count += 1  # the usual spellings, without a call
            if value not in hosts_ok:
                check_host(value)
        elif len(name) in _SPECIAL_LENGTHS:
            self._special_header(name.lower(), value)

    def _special_header(self, name: bytes, value: bytes) -> None:
        if self.cur is not None:
            return  # a trailer: check_trailers looks at them
        if name == b"host":
            self.host_count += 1
            check_host(value)
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
            self.rare = True

    def on_headers_complete(self) -> None:
        p = self.parser
        keep_alive = p.should_keep_alive()
        # llhttp keeps an HTTP/1.0 (or 2.0) connection alive only with a
        # Connection header, which makes the head "rare": so a kept-alive,
        # plain head is HTTP/1.1, with no call to get_http_version() (which
        # formats a str).
        version = "1.1" if keep_alive and not self.rare else p.get_http_version()
        method = self.x_method
        if method is None:
            method = p.get_method()
        else:
            self.x_method = None
        headers = self.headers
        url = self.url
        # self is always a ServerConnection (this class is its parsing half).
        req = Request(self, method, url, headers, version, keep_alive)  # type: ignore[arg-type]
        self.cur = req
        self.queue.append(req)
        self.headers = []  # trailers, if any, land here
        self.url = b""
        # One test for the common case; the details are in check_head.
        if (
            self.rare
            or version != "1.1"
            or self.host_count != 1
            or len(headers) > self.max_count
            or self.head_fed > self.max_field  # a field or the head may be too large: check_head measures
            or url[:1] != b"/"
        ):
            check_head(self, req, headers, url)
        self.host_count = 0
        self.in_head = False
        if not self.whole:
            self.head_fed = 0  # (a whole read's size bounds each of its heads)
        self.requests += 1
        if self.requests >= self.max_requests:
            self.last = True
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
        if self.headers:
            trailers, self.headers = self.headers, []
            self.host_count = 0
            if req is not None:
                check_trailers(self, req, trailers)
        if req is not None:
            req.complete = True
            self.cur = None

    def _framing_error(self, err: HTTPError) -> None:
        cur = self.cur
        if cur is not None and not cur.complete:
            cur.error = err  # its body is broken: its reader gets the error
        else:
            self.error = err
        self.in_head = False
        self.stop_reading = True
