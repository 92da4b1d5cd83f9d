"""WSGI (PEP 3333) on the gofer HTTP server, so Flask and Django run unchanged.

Each request runs the application in the connection's coroutine. The
environ is a copy of a base dict shared by the connections on one local
address (the constant keys and the server's address; an idle connection
holds no dict of its own) plus the peer's address and the request's own
keys; header names map to
``HTTP_*`` keys through a bounded cache. Header names containing ``_`` are
dropped, as nginx and gunicorn do, so that ``X_Forwarded_For`` cannot pose
as ``X-Forwarded-For``. ``wsgi.input`` is the request itself (a binary
stream of the body that sends ``100 Continue`` when first read).

The environ has ``wsgi.input_terminated`` (the input ends at the body's
end, so a chunked body can be read to EOF), ``RAW_URI``/``REQUEST_URI`` (the
raw target), ``PATH_INFO`` without a fragment, and ``HTTP_HOST`` from an
absolute-form target's authority when there is one (RFC 9112 §3.2.2);
``OPTIONS *`` and ``CONNECT host:port`` give their target as ``PATH_INFO``.

A list or tuple result is sent whole with a ``Content-Length`` (with any
other pipelined responses, in one ``send``; large buffers are sent as they
are, not joined); ``wsgi.file_wrapper`` sends a regular file with
``os.sendfile``; any other iterable is streamed
as it is produced (chunked unless the application set ``Content-Length``),
and the head goes out with the first non-empty piece, so an application may
call ``start_response`` lazily. ``write()`` is supported.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes
from wsgiref.util import FileWrapper as _StdFileWrapper

from gofer.http._wire import (
    _WSGI_STATUS,
    ClientDisconnected,
    HTTPError,
    PeerGone,
    parse_status,
    status_line,
)
from gofer.http._writer import (
    HeaderBlock,
    StreamWriter,
    _blocks,
    encode_header_list,
    send_file,
    write_full,
    write_parts,
)

if TYPE_CHECKING:
    from gofer.http._conn import ServerConnection
    from gofer.http._request import Request
    from gofer.http.server import Server

__all__ = ["make_wsgi_dispatch"]

log = logging.getLogger("gofer.http")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_HKEYS: dict[bytes, str] = {}
_TEXT = HeaderBlock(b"Content-Type: text/plain; charset=utf-8\r\n", -1, False)


def _hkey(name: bytes) -> str:
    """The environ key of a header name ("" to drop it)."""
    key = _HKEYS.get(name)
    if key is not None:
        return key
    n = name.decode("latin-1").upper()
    if "_" in n:
        key = ""
    else:
        n = n.replace("-", "_")
        key = n if n in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + n
    if len(_HKEYS) < 1024:
        _HKEYS[name] = key
    return key


_STATUS = _WSGI_STATUS  # "200 OK" -> (200, status line), filled by parse_status


class _Start:
    """``start_response`` of one connection, reset for each of its requests."""

    __slots__ = ("block", "code", "conn", "req", "sline", "writer")

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.req: Request | None = None
        self.block: HeaderBlock | None = None
        self.writer: StreamWriter | None = None

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.writer is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the traceback cycle
        elif self.block is not None:
            raise AssertionError("start_response was already called (pass exc_info to replace the response)")
        hit = _STATUS.get(status)
        if hit is None:
            if not isinstance(status, str):
                raise TypeError(f"a WSGI status must be a str such as '200 OK', not {status!r}")
            hit = parse_status(status)
        if headers.__class__ is not list:
            raise TypeError(f"WSGI response headers must be a list of (name, value) tuples, not {type(headers).__name__}")
        self.code, self.sline = hit
        try:
            block = _blocks.get(tuple(headers))  # encode_header_list's cache, inlined
        except TypeError:
            block = None
        self.block = block if block is not None else encode_header_list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        """The ``write`` callable of PEP 3333 (prefer returning an iterable)."""
        assert self.req is not None
        _write(self.conn, self.req, self, data)


def _conn_environ(server: Server, conn: ServerConnection, bases: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The constant part of the environ for ``conn``'s local address, shared through ``bases``."""
    try:
        host, port = conn.sock.getsockname()[:2]
    except (OSError, ValueError, TypeError):
        host, port = "", 0
    env = bases.get((host, port))
    if env is not None:
        return env
    env = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if server.ssl is not None else "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": server.multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,  # read to EOF without Content-Length (werkzeug needs it)
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": "gofer",
        "SCRIPT_NAME": server.script_name,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
        "SERVER_NAME": str(host),
        "SERVER_PORT": str(port),
        "REMOTE_ADDR": "",  # set per request from a tuple peer address (with REMOTE_PORT)
    }
    if len(bases) < 64:  # a few local addresses; more (odd): not cached
        bases[(host, port)] = env
    return env


def _path_info(path: bytes) -> str:
    if path[:1] != b"/":
        # absolute-form ("http://host/p"); asterisk-form ("*") and CONNECT's
        # authority-form ("host:443") are passed as they are, as gunicorn does.
        _scheme, sep, rest = path.partition(b"://")
        if sep:
            path = b"/" + rest.partition(b"/")[2]
    if b"%" in path:
        path = unquote_to_bytes(path)
    return path.decode("latin-1")


# request target -> (PATH_INFO, QUERY_STRING, RAW_URI, the target's authority or None)
_TARGETS: dict[bytes, tuple[str, str, str, str | None]] = {}


def _split_target(target: bytes, authority: str | None) -> tuple[str, str, str, str | None]:
    path, _, query = target.partition(b"#")[0].partition(b"?")  # a fragment is for the client only
    # The authority follows from the target (the parser checked it), so it is cached with it.
    pq = (_path_info(path), query.decode("latin-1"), target.decode("latin-1"), authority)
    if len(_TARGETS) < 1024 and len(target) <= 256:
        _TARGETS[target] = pq  # apps see the same few targets again and again
    return pq


def make_wsgi_dispatch(app: Callable[..., Any], server: Server) -> Callable[[ServerConnection, Request], None]:
    """The connection's dispatch function for the WSGI application ``app``."""
    if not callable(app):
        raise TypeError(f"a WSGI application must be callable, not {type(app).__name__}")

    bases: dict[Any, dict[str, Any]] = {}  # local address -> the environ's constant part

    def dispatch(conn: ServerConnection, req: Request) -> None:
        base = conn.env
        if base is None:
            base = conn.env = _conn_environ(server, conn, bases)
        env = base.copy()
        addr = conn.addr
        if addr.__class__ is tuple and len(addr) >= 2:
            env["REMOTE_ADDR"] = str(addr[0])
            env["REMOTE_PORT"] = str(addr[1])
        target = req.target
        pq = _TARGETS.get(target)
        if pq is None:
            pq = _split_target(target, req.authority)
        env["PATH_INFO"], env["QUERY_STRING"], env["RAW_URI"], authority = pq
        env["REQUEST_METHOD"] = req.method
        if req.version != "1.1":
            env["SERVER_PROTOCOL"] = "HTTP/1.0"
        env["wsgi.input"] = req
        for name, value in req.raw_headers:
            key = _HKEYS.get(name)
            if key is None:
                key = _hkey(name)
                if not key:
                    continue
            v = value.decode("latin-1").rstrip(" \t")
            if key in env:
                v = env[key] + ("; " if key == "HTTP_COOKIE" else ", ") + v
            env[key] = v
        if authority is not None:
            env["HTTP_HOST"] = authority  # an absolute-form target's authority wins (RFC 9112 §3.2.2)
        start = conn.wsgi_start
        if start is None:
            start = conn.wsgi_start = _Start(conn)
        start.req = req
        start.block = start.writer = None
        result: Any = None
        try:
            result = app(env, start)
            cls = result.__class__
            if (cls is list or cls is tuple) and start.writer is None:
                # The common case: the whole body at once, sent with a length.
                if start.block is None:
                    raise RuntimeError("the WSGI application returned without calling start_response")
                if len(result) == 1 and result[0].__class__ is bytes:
                    write_full(conn, req, start.code, start.sline, start.block, result[0])
                else:
                    parts = list(result)
                    write_parts(conn, req, start.code, start.sline, start.block, parts, _total(parts))
                return
            if (
                cls is FileWrapper
                and start.writer is None
                and start.block is not None
                and send_file(conn, req, start.code, start.sline, start.block, result.filelike)
            ):
                return
            for piece in result:
                if piece:
                    _write(conn, req, start, piece)
            if start.writer is None:
                if start.block is None:
                    raise RuntimeError("the WSGI application returned without calling start_response")
                # An iterable that yielded nothing: framed as a stream (an
                # empty chunked body unless a length was given), as gunicorn does.
                start.writer = StreamWriter(conn, req, start.code, start.sline, start.block)
            start.writer.finish()
        except (PeerGone, ClientDisconnected):
            raise
        except HTTPError as err:
            _fail(conn, req, start, err.status, err.message)
        except Exception:
            log.exception("gofer.http: error in WSGI application for %s %s", req.method, req.target)
            _fail(conn, req, start, 500, "Internal Server Error")
        finally:
            if result.__class__ is not list and result.__class__ is not tuple:
                _close_result(result)

    return dispatch


def _close_result(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("gofer.http: error closing a WSGI response")


def _total(parts: list[Any]) -> int:
    n = 0
    for piece in parts:
        if not isinstance(piece, bytes):
            raise TypeError(f"a WSGI application must yield bytes, not {type(piece).__name__}")
        n += len(piece)
    return n


class FileWrapper(_StdFileWrapper):
    """``wsgi.file_wrapper``: a regular file is sent with ``os.sendfile``, anything else by blocks."""


def _write(conn: ServerConnection, req: Request, start: _Start, data: bytes) -> None:
    if not isinstance(data, bytes):
        raise TypeError(f"a WSGI application must yield bytes, not {type(data).__name__}")
    w = start.writer
    if w is None:
        if start.block is None:
            raise AssertionError("the WSGI application sent body data before calling start_response")
        w = start.writer = StreamWriter(conn, req, start.code, start.sline, start.block)
    w.write(data)


def _fail(conn: ServerConnection, req: Request, start: _Start, status: int, message: str) -> None:
    if start.writer is not None:
        conn.keep = False  # the head is out: all we can do is cut the body short
        return
    if status >= 500:
        conn.no_keep = True
    write_full(conn, req, status, status_line(status), _TEXT, (message + "\n").encode("utf-8", "replace"))
