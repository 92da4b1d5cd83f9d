"""The server's request object: head fields, headers, and the body as a stream.

A :class:`Request` is made by the connection when a request head is
complete, with only what parsing produced (method, raw target, raw header
list); the path, query and the case-insensitive :class:`Headers` view are
computed on first use. Its body is read from the connection on demand, so a
handler can stream a large upload (``for chunk in req.stream()``), read it
whole (``req.body()``, ``req.json()``) or treat the request as a binary file
(``read``/``readline``, which is also what WSGI's ``wsgi.input`` is).
"""

from __future__ import annotations

import json as _json
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_to_bytes

if TYPE_CHECKING:
    from gofer.http._conn import ServerConnection
    from gofer.http._wire import HTTPError

__all__ = ["Headers", "Request"]

_METHODS = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
}


class Headers:
    """Case-insensitive, multi-valued view of header fields (names lower-cased).

    ``h["content-type"]`` (KeyError if absent), ``h.get(name, default)``,
    ``h.getall(name)``, ``name in h``, ``len(h)`` and iteration over
    ``(name, value)`` pairs in the order received.
    """

    __slots__ = ("_items", "_map")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        self._map: dict[str, list[str]] = {}
        for name, value in items or ():
            self.add(name, value)

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        h = cls()
        for name, value in raw:
            h.add(name.decode("latin-1"), value.decode("latin-1").strip(" \t"))
        return h

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        self._items.append((key, value))
        vs = self._map.get(key)
        if vs is None:
            self._map[key] = [value]
        else:
            vs.append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value (several joined with ", "), or ``default``."""
        vs = self._map.get(name.lower())
        if vs is None:
            return default
        return vs[0] if len(vs) == 1 else ", ".join(vs)

    def getall(self, name: str) -> list[str]:
        return list(self._map.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """An HTTP request received by the server (see the module docstring).

    Attributes: ``method`` (str: any token, RFC 9110 §9.1), ``target`` (the
    raw request target, bytes), ``version`` ("1.1" or "1.0"),
    ``keep_alive``, ``remote_addr``; lazily: ``host`` (the authority of an
    absolute-form target, else the Host header), ``path`` (percent-decoded,
    UTF-8), ``query`` (raw query string), ``headers`` (:class:`Headers`).
    A fragment a client sent (``#x``) is in neither ``path`` nor ``query``.
    """

    # Fields every request needs are slots. Body and lazy state rarely set
    # on a plain GET are class-level defaults: assigning one makes the
    # instance dict on first use, so most requests never pay for them.
    __slots__ = (
        "__dict__",
        "chunks",
        "complete",
        "conn",
        "error",
        "keep_alive",
        "method",
        "raw_headers",
        "target",
        "version",
    )

    received = 0  # body bytes parsed so far
    content_length = -1  # from the head, -1 if none
    chunked = False  # Transfer-Encoding: chunked
    wire = 0  # bytes fed while a chunked body was being parsed
    waited = 0.0  # seconds the server waited for the body (counted by the timeout sweep)
    discard = False  # the rest of the body is being dropped
    expect_continue = False  # a 100 Continue is owed before the body
    authority: str | None = None  # of an absolute-form or CONNECT target
    _headers: Headers | None = None
    _buf = b""  # read ahead by readline()/read(n)

    def __init__(
        self,
        conn: ServerConnection,
        method: bytes,
        target: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        version: str,
        keep_alive: bool,
    ) -> None:
        self.conn = conn
        m = _METHODS.get(method)
        self.method: str = m if m is not None else method.decode("ascii")
        self.target = target
        self.raw_headers = raw_headers
        self.version = version
        self.keep_alive = keep_alive
        self.chunks: deque[bytes] | None = None  # made by the first piece of body
        self.complete = False
        self.error: HTTPError | None = None

    # -- head -----------------------------------------------------------------------
    @property
    def headers(self) -> Headers:
        h = self._headers
        if h is None:
            h = self._headers = Headers.from_raw(self.raw_headers)
        return h

    @property
    def host(self) -> str:
        """The authority the request is for: the target's (absolute-form) or the Host header's."""
        a = self.authority
        if a is not None:
            return a
        return self.headers.get("host") or ""

    @property
    def raw_path(self) -> bytes:
        """The path part of the target, still percent-encoded (no fragment, no absolute-form authority)."""
        p = self.target.partition(b"#")[0].partition(b"?")[0]
        if p[:1] != b"/" and self.authority is not None and self.method != "CONNECT":
            p = b"/" + p.partition(b"://")[2].partition(b"/")[2]  # absolute-form
        return p

    @property
    def path(self) -> str:
        """The percent-decoded path (UTF-8; invalid bytes as surrogate escapes)."""
        p = self.raw_path
        if b"%" not in p:
            return p.decode("utf-8", "surrogateescape")
        return unquote_to_bytes(p).decode("utf-8", "surrogateescape")

    @property
    def query(self) -> str:
        """The raw query string (after ``?``, before any ``#``), "" if none."""
        return self.target.partition(b"#")[0].partition(b"?")[2].decode("latin-1")

    @property
    def args(self) -> dict[str, list[str]]:
        """The query string parsed into lists of values."""
        return parse_qs(self.query, keep_blank_values=True)

    @property
    def remote_addr(self) -> Any:
        return self.conn.addr

    # -- body -------------------------------------------------------------------------
    def stream(self) -> Iterator[bytes]:
        """Yield the body in pieces as they arrive (sends ``100 Continue`` if asked)."""
        if self._buf:
            b, self._buf = self._buf, b""
            yield b
        nxt = self.conn.next_body_chunk
        while True:
            c = nxt(self)
            if not c:
                return
            yield c

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes of the body (all of it by default)."""
        nxt = self.conn.next_body_chunk
        if size is None or size < 0:
            parts = [self._buf]
            self._buf = b""
            while True:
                c = nxt(self)
                if not c:
                    return b"".join(parts)
                parts.append(c)
        buf = self._buf
        if len(buf) < size:
            parts = [buf]
            have = len(buf)
            while have < size:
                c = nxt(self)
                if not c:
                    break
                parts.append(c)
                have += len(c)
            buf = b"".join(parts)
        self._buf = buf[size:]
        return buf[:size]

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line of the body (up to ``size`` bytes)."""
        buf = self._buf
        limit = size if size is not None and size >= 0 else None
        parts = [buf]
        while b"\n" not in buf and (limit is None or sum(map(len, parts)) < limit):
            buf = self.conn.next_body_chunk(self)
            if not buf:
                break
            parts.append(buf)
        data = b"".join(parts)
        end = data.find(b"\n") + 1 or len(data)
        if limit is not None:
            end = min(end, limit)
        self._buf = data[end:]
        return data[:end]

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def body(self) -> bytes:
        """The (rest of the) body, read whole."""
        return self.read()

    def text(self, encoding: str = "utf-8") -> str:
        return self.read().decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.read())

    def __repr__(self) -> str:
        return f"<gofer.http.Request {self.method} {self.target.decode('latin-1')!r}>"
