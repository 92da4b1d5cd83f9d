"""HTTP/1.1 wire details shared by the server and the client.

Status lines, the cached ``Date``/``Server`` stamp, header encoding and
chunked framing live here, in one place, as precomputed bytes where the hot
path needs them: a response head is assembled with a single ``b"".join``.
Also the limits a server enforces (:class:`Limits`) and the error type that
carries an HTTP status (:class:`HTTPError`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

__all__ = [
    "ClientDisconnected",
    "HTTPError",
    "Limits",
    "PeerGone",
    "ProtocolError",
    "check_header",
    "reason",
    "status_line",
]

# -- status lines --------------------------------------------------------------

_REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {
    code: f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1") for code, phrase in _REASONS.items()
}


def reason(status: int) -> str:
    """The standard reason phrase of ``status`` ("" if it has none)."""
    return _REASONS.get(status, "")


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` (cached for the standard codes)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"an HTTP status must be an int from 100 to 999, not {status!r}")
        line = f"HTTP/1.1 {status} {reason(status)}\r\n".encode("latin-1")
    return line


def parse_status(status: str) -> tuple[int, bytes]:
    """A WSGI status string (``"200 OK"``) as (code, status line)."""
    line = _WSGI_STATUS.get(status)
    if line is not None:
        return line
    code_s, _, _ = status.partition(" ")
    if len(code_s) != 3 or not code_s.isdigit() or _BAD_VALUE.search(status):
        raise ValueError(f"a WSGI status must look like '200 OK', not {status!r}")
    if len(_WSGI_STATUS) < 256:
        _WSGI_STATUS[status] = (int(code_s), f"HTTP/1.1 {status}\r\n".encode("latin-1"))
        return _WSGI_STATUS[status]
    return int(code_s), f"HTTP/1.1 {status}\r\n".encode("latin-1")


_WSGI_STATUS: dict[str, tuple[int, bytes]] = {}


# -- Date and Server -------------------------------------------------------------

SERVER_NAME = b"gofer"


class Stamp:
    """The ``Server`` and ``Date`` header lines, refreshed at most once a second.

    ``value`` is read by every response; ``refresh()`` is called by the
    server's once-a-second housekeeping timer, so no request pays for the
    clock or for formatting the date.
    """

    __slots__ = ("server", "value", "when")

    def __init__(self, server: bytes = SERVER_NAME) -> None:
        self.server = server
        self.when = 0
        self.value = b""
        self.refresh()

    def refresh(self) -> bytes:
        now = int(time.time())
        if now != self.when:
            self.when = now
            date = formatdate(now, usegmt=True).encode("ascii")
            if self.server:
                self.value = b"Server: " + self.server + b"\r\nDate: " + date + b"\r\n"
            else:
                self.value = b"Date: " + date + b"\r\n"
        return self.value


# -- headers ----------------------------------------------------------------------

# A field name is a token (RFC 9110 5.6.2); a value may not hold CR, LF or NUL.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def check_header(name: str, value: str) -> None:
    """Refuse header names/values that would split the response (CR, LF, NUL)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid HTTP header name {name!r}")
    if _BAD_VALUE.search(value):
        raise ValueError(f"invalid character in the value of HTTP header {name!r}: {value!r}")


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


# -- limits and errors ---------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a server accepts and how long it waits (seconds).

    ``max_request_line``: longest request target (414 beyond);
    ``max_header_count`` / ``max_header_size``: number of header fields
    (trailer fields included) and total bytes of the head (431 beyond);
    ``max_field_size``: bytes of one header field, name and value (431
    beyond); ``max_body_size``: bytes of a request body (413 beyond;
    ``None``: no limit);
    ``header_timeout``: from the first byte of a request to the end of its
    head; ``keepalive_timeout``: idle time between requests; ``read_timeout``
    / ``write_timeout``: no progress while reading a body / sending a
    response. ``min_body_rate``: bytes per second a request body must
    average over the time the server waits for it, checked once it has
    waited ``header_timeout`` (``None``: no minimum); ``body_timeout``: most
    seconds the server waits for one body in all (``None``: no limit); a
    body cut by either gets 408. ``max_requests_per_connection``: close
    after that many (``None``: never).
    ``max_connections``: connections served at once; a connection beyond
    it is answered 503 with ``Retry-After`` and closed (``None``: no cap).
    ``max_in_progress``: requests in the application at once; a request
    beyond it is answered 503 with ``Retry-After`` (``None``: no cap).
    ``retry_after``: the seconds those 503s ask the client to wait.
    """

    max_request_line: int = 8190
    max_header_count: int = 100
    max_header_size: int = 65536
    max_field_size: int = 8190
    max_body_size: int | None = 64 * 1024 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    max_requests_per_connection: int | None = None
    min_body_rate: float | None = 64.0
    body_timeout: float | None = None
    max_connections: int | None = None
    max_in_progress: int | None = None
    retry_after: int = 1

    def __post_init__(self) -> None:
        for name in ("max_request_line", "max_header_count", "max_header_size", "max_field_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"Limits.{name} must be a positive int, not {v!r}")
        for name in ("header_timeout", "keepalive_timeout", "read_timeout", "write_timeout"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not v > 0:
                raise ValueError(f"Limits.{name} must be a positive number of seconds, not {v!r}")
        for name in ("max_connections", "max_in_progress"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"Limits.{name} must be a positive int or None, not {v!r}")
        for name in ("min_body_rate", "body_timeout"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or not v > 0):
                raise ValueError(f"Limits.{name} must be a positive number or None, not {v!r}")
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise ValueError(f"Limits.retry_after must be an int >= 0, not {self.retry_after!r}")
        if self.max_body_size is not None and self.max_body_size < 0:
            raise ValueError(f"Limits.max_body_size must be >= 0 or None, not {self.max_body_size!r}")


class HTTPError(Exception):
    """An error with an HTTP status: raised by a handler, it becomes that response.

    The server also raises it internally for bad requests (400), limits
    (413/414/431) and so on; ``close`` says the connection must end after
    the response.
    """

    def __init__(self, status: int, message: str = "", *, close: bool = False) -> None:
        super().__init__(message or reason(status))
        self.status = status
        self.message = message or reason(status)
        self.close = close


class ClientDisconnected(ConnectionError):
    """The client went away before the request body was complete."""


class PeerGone(ConnectionError):
    """Internal: sending failed because the peer is gone; the connection just ends."""


class ProtocolError(Exception):
    """The server broke HTTP/1.1 framing or vanished mid-message (client side).

    ``retry_safe`` is True when the server sent nothing at all, so that the
    request can be sent again on a fresh connection (a kept-alive
    connection the server closed just as it was reused).
    """

    def __init__(self, message: str, *, retry_safe: bool = False) -> None:
        super().__init__(message)
        self.retry_safe = retry_safe
