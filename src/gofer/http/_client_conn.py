"""One client-side HTTP/1.1 connection: write a request, parse its response.

The request head is built as one bytes object and sent with the body (or
the body streamed with chunked framing when its length is unknown). The
response is parsed by ``httptools``' response parser (a fresh one per
response, so no state leaks between exchanges); body pieces are queued by
the parser callbacks and handed out on demand, so a large response can be
streamed. ``1xx`` interim responses are skipped. A connection is reusable
only when its response was complete, framed by length or chunks, and
keep-alive; anything odd (bytes after the response, a read-until-close
body) retires it. A HEAD response ends with its head whatever its
``Content-Length`` says, so its connection is reused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from httptools import HttpParserError, HttpResponseParser

from gofer.http._request import Headers
from gofer.http._wire import ProtocolError, check_header

__all__ = ["ClientConnection", "encode_request_head"]

BUFSIZE = 65536


def encode_request_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """``METHOD target HTTP/1.1`` and header lines, refusing CR/LF/NUL injection."""
    if not method.isalpha() and not all(c.isalnum() or c in "-_!#$%&'*+.^`|~" for c in method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if any(c in target for c in " \r\n\x00"):
        raise ValueError(f"invalid request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class ClientConnection:
    """A connected socket (plain or TLS) to one origin, and its parse state."""

    __slots__ = (
        "_body_framed",
        "_chunks",
        "_complete",
        "_head_done",
        "_headers",
        "_no_body",
        "_parser",
        "_reason",
        "_stray",
        "buf",
        "hub",
        "keep_alive",
        "key",
        "mv",
        "reusable",
        "sock",
        "status",
        "version",
    )

    def __init__(self, sock: Any, key: tuple[str, str, int]) -> None:
        self.sock = sock
        self.key = key
        self.hub: Any = None  # the hub whose poller the socket waits on
        self.buf = bytearray(BUFSIZE)
        self.mv = memoryview(self.buf)
        self.reusable = True
        self._reset()

    def _reset(self) -> None:
        self._parser = HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._head_done = False
        self._complete = False
        self._body_framed = False
        self._stray = False
        self._no_body = False  # a HEAD: the response has no body whatever its head says
        self._reason = b""
        self.status = 0
        self.version = "1.1"
        self.keep_alive = True

    # -- httptools callbacks ------------------------------------------------------------
    def on_status(self, reason: bytes) -> None:
        if self._complete:
            self._stray = True
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head_done:
            self._headers.append((name, value))
            if len(self._headers) > 500:
                raise ProtocolError("the response has more than 500 header fields")

    def on_headers_complete(self) -> None:
        p = self._parser
        status = p.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim response: forget it and parse the final one.
            self._headers = []
            self._reason = b""
            return
        self.status = status
        self.version = p.get_http_version()
        self.keep_alive = p.should_keep_alive()
        self._head_done = True
        if self._no_body or status in (204, 304):
            # llhttp does not know the request was HEAD and would wait for
            # Content-Length bytes: the response ends here (RFC 9110 §9.3.2).
            self._complete = self._body_framed = True
            return
        for name, value in self._headers:
            if len(name) in (14, 17):
                low = name.lower()
                if low == b"content-length" or (low == b"transfer-encoding" and b"chunked" in value.lower()):
                    self._body_framed = True

    def on_body(self, body: bytes) -> None:
        if self._complete:
            self._stray = True  # bytes after a response that has no body
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._head_done:
            self._complete = True
            self._body_framed = True

    # -- exchange ------------------------------------------------------------------------
    def send_request(self, head: bytes, body: bytes | Iterable[bytes] | None) -> None:
        """Send a head (from :func:`encode_request_head`) and the body."""
        sock = self.sock
        if body is None or isinstance(body, bytes | bytearray | memoryview):
            if body and len(body) < 65536:
                sock.sendall(head + bytes(body))
            else:
                sock.sendall(head)
                if body:
                    sock.sendall(body)
            return
        sock.sendall(head)
        for piece in body:
            if isinstance(piece, str):
                piece = piece.encode("utf-8")
            if piece:
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")

    def _fill(self) -> bool:
        """Receive once and feed the parser; False at end of stream."""
        n = self.sock.recv_into(self.buf)
        if n == 0:
            return False
        try:
            self._parser.feed_data(self.mv[:n])
        except HttpParserError as exc:
            self.reusable = False
            raise ProtocolError(f"malformed HTTP response: {exc}") from None
        return True

    def read_head(self, method: str) -> tuple[int, str, Headers]:
        """Read up to the end of the response head; return status, reason, headers."""
        self._no_body = method == "HEAD"
        while not self._head_done:
            if not self._fill():
                self.reusable = False
                raise ProtocolError("the server closed the connection without a response", retry_safe=True)
        if method == "HEAD" or self.status in (204, 304):
            if not self._complete:
                self.reusable = False  # it announced a body we must not read
            self._complete = True
        if not self.keep_alive or self.status == 101:
            self.reusable = False
        return self.status, self._reason.decode("latin-1").strip(), Headers.from_raw(self._headers)

    def next_chunk(self) -> bytes:
        """The next piece of the response body, b"" at its end."""
        chunks = self._chunks
        while True:
            if chunks:
                return chunks.popleft()
            if self._complete:
                return b""
            if not self._fill():
                if self._body_framed:
                    self.reusable = False
                    raise ProtocolError("the server closed the connection in the middle of the body")
                # A body delimited by the end of the connection.
                self._complete = True
                self.reusable = False

    def iter_body(self) -> Iterator[bytes]:
        while True:
            c = self.next_chunk()
            if not c:
                return
            yield c

    def finished(self) -> bool:
        """True if the response was read completely and the connection can be reused."""
        return self._complete and self.reusable and not self._stray and not self._chunks

    def prepare_next(self) -> None:
        self._reset()

    def close(self) -> None:
        self.reusable = False
        try:
            self.sock.close()
        except OSError:
            pass
