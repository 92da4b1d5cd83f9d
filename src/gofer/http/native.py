"""The native handler interface: ``handler(request) -> response``.

A handler is a plain function run in the connection's coroutine, so it may
block in gofer style (sleep, channels, sockets, the HTTP client) without
holding up other connections. It receives a :class:`~gofer.http.Request`
and returns one of:

* ``bytes`` or ``str``: 200, ``text/plain``;
* a :class:`Response` (status, headers, body); its body may be bytes, str,
  or an iterable of bytes/str, which is streamed (chunked on HTTP/1.1 unless
  a ``Content-Length`` header is given);
* ``None``: 200 with an empty body.

Raising :class:`~gofer.http.HTTPError` sends that status; any other
exception becomes a 500 and a logged traceback, and the server goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gofer.http import _wire
from gofer.http._wire import ClientDisconnected, HTTPError, PeerGone, status_line
from gofer.http._writer import EMPTY, HeaderBlock, encode_header_list, write_full, write_stream

if TYPE_CHECKING:
    from gofer.http._conn import ServerConnection
    from gofer.http._request import Request

__all__ = ["Handler", "Response", "make_native_dispatch"]

log = logging.getLogger("gofer.http")

Handler = Callable[["Request"], Any]

_TEXT = HeaderBlock(b"Content-Type: text/plain; charset=utf-8\r\n", -1, False)
_CT_CACHE: dict[str, bytes] = {}
_CT_BLOCKS: dict[str, HeaderBlock] = {}


def _ct_line(ct: str) -> bytes:
    line = _CT_CACHE.get(ct)
    if line is None:
        if any(c in ct for c in "\r\n\x00"):
            raise ValueError(f"invalid content type {ct!r}")
        line = f"Content-Type: {ct}\r\n".encode("latin-1")
        if len(_CT_CACHE) < 256:
            _CT_CACHE[ct] = line
    return line


class Response:
    """A response from a native handler.

    ``body``: bytes, str (UTF-8) or an iterable of bytes/str (streamed).
    ``headers``: a mapping or a list of ``(name, value)`` pairs.
    ``content_type``: shorthand for the ``Content-Type`` header (default
    ``text/plain; charset=utf-8`` for str bodies, none otherwise).
    """

    __slots__ = ("_block", "body", "status")

    def __init__(
        self,
        body: bytes | str | Iterable[Any] | None = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        if not isinstance(status, int) or not 200 <= status <= 999:
            raise ValueError(f"a response status must be an int from 200 to 999, not {status!r}")
        self.status = status
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
            if content_type is None:
                content_type = "text/plain; charset=utf-8"
        self.body: bytes | Iterable[Any] = body
        if headers is None:
            if content_type is None:
                self._block = EMPTY
            else:
                block = _CT_BLOCKS.get(content_type)
                if block is None:
                    block = HeaderBlock(_ct_line(content_type), -1, False)
                    if len(_CT_BLOCKS) < 256:
                        _CT_BLOCKS[content_type] = block
                self._block = block
            return
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        block = encode_header_list(pairs)
        if content_type is not None:
            ct = _ct_line(content_type)
            block = HeaderBlock(ct + block.data, block.length, block.close, ct + block.data_cl)
        self._block = block

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    ) -> Response:
        """A JSON response (compact encoding, ``application/json``)."""
        return cls(json.dumps(obj, separators=(",", ":")).encode("utf-8"), status, headers, "application/json")

    @property
    def headers(self) -> bytes:
        """The encoded header lines the application set."""
        return self._block.data

    def __repr__(self) -> str:
        kind = f"{len(self.body)} bytes" if isinstance(self.body, bytes) else "streamed"
        return f"<gofer.http.Response {self.status} {kind}>"


def _error_response(err: HTTPError) -> Response:
    return Response(err.message + "\n", err.status if 200 <= err.status <= 999 else 500)


_INTERNAL = b"Internal Server Error\n"


def make_native_dispatch(handler: Handler) -> Callable[[ServerConnection, Request], None]:
    """The connection's dispatch function for a native ``handler``."""
    if not callable(handler):
        raise TypeError(f"an HTTP handler must be callable, not {type(handler).__name__}")

    def dispatch(conn: ServerConnection, req: Request) -> None:
        try:
            resp = handler(req)
        except HTTPError as err:
            if err.close:
                conn.no_keep = True
            resp = _error_response(err)
        except (PeerGone, ClientDisconnected):
            raise
        except Exception:
            log.exception("gofer.http: error in handler for %s %s", req.method, req.target)
            conn.no_keep = True
            write_full(conn, req, 500, status_line(500), _TEXT, _INTERNAL)
            return
        cls = resp.__class__
        if cls is Response:
            body = resp.body
            code = resp.status
            sline = _SLINES.get(code) or status_line(code)
            if body.__class__ is bytes:
                write_full(conn, req, code, sline, resp._block, body)
            else:
                write_stream(conn, req, code, sline, resp._block, body)
        elif cls is bytes:
            write_full(conn, req, 200, _OK, _TEXT, resp)
        elif cls is str:
            write_full(conn, req, 200, _OK, _TEXT, resp.encode("utf-8"))
        elif resp is None:
            write_full(conn, req, 200, _OK, EMPTY, b"")
        else:
            log.error(
                "gofer.http: handler for %s %s returned %s; return bytes, str, None or a Response",
                req.method, req.target, type(resp).__name__,
            )
            conn.no_keep = True
            write_full(conn, req, 500, status_line(500), _TEXT, _INTERNAL)

    return dispatch


_OK = status_line(200)
_SLINES = {code: status_line(code) for code in range(200, 600) if _wire.reason(code)}
