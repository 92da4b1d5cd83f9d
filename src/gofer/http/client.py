"""The HTTP/1.1 client: ``Client`` with a keep-alive pool, and ``get``/``post``/``request``.

A :class:`Client` keeps, per origin (scheme, host, port), a stack of idle
connections and a limit on open ones; coroutines beyond the limit queue in
FIFO order, so thousands of coroutines can share one client. Every call
blocks only its own coroutine. TLS goes through :mod:`gofer.ssl` (the
stdlib's ``ssl`` over a gofer socket) with verification on by default. Timeouts: ``connect`` (TCP and TLS set-up),
``read`` (no byte from the server for that long) and ``total`` (the whole
call, including redirects and, unless streaming, the body). Redirects are
followed up to ``max_redirects``.

The module-level :func:`request`, :func:`get` and :func:`post` use one
default client per thread.
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from gofer._core import OSThreadLocal
from gofer._core import timeout as _timeout_scope
from gofer.http._client_conn import ClientConnection, encode_request_head
from gofer.http._pool import Pool
from gofer.http._request import Headers
from gofer.http._wire import ProtocolError

__all__ = [
    "Client",
    "ClientResponse",
    "HTTPStatusError",
    "Timeout",
    "TooManyRedirects",
    "close_default",
    "get",
    "post",
    "request",
]


class TooManyRedirects(Exception):
    """More redirects than the client's ``max_redirects``."""


class HTTPStatusError(Exception):
    """Raised by :meth:`ClientResponse.raise_for_status` for 4xx and 5xx."""

    def __init__(self, response: ClientResponse) -> None:
        super().__init__(f"{response.status} {response.reason} for {response.url}")
        self.response = response


@dataclass(frozen=True)
class Timeout:
    """Client timeouts in seconds (``None``: no limit)."""

    connect: float | None = 10.0
    read: float | None = 30.0
    total: float | None = None


class ClientResponse:
    """A response: ``status``, ``reason``, ``headers``, ``url``, and the body.

    Unless the request was made with ``stream=True`` the body has been read
    and is in ``body``. A streamed response is read with
    :meth:`iter_bytes` (or :meth:`read`) and must then be closed (use it in a
    ``with`` block) so its connection goes back to the pool.
    """

    def __init__(
        self, client: Client, conn: ClientConnection, status: int, reason: str, headers: Headers, url: str
    ) -> None:
        self._client = client
        self._conn: ClientConnection | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self.history: list[ClientResponse] = []
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = self.read()
        return self._body

    def read(self) -> bytes:
        """Read (the rest of) the body and release the connection."""
        if self._body is not None:
            return self._body
        data = b"".join(self.iter_bytes())
        self._body = data
        return data

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body in pieces as they arrive; releases the connection at the end."""
        conn = self._conn
        if conn is None:
            if self._body:
                yield self._body
            return
        try:
            while True:
                c = conn.next_chunk()
                if not c:
                    break
                yield c
        except BaseException:
            self._release(False)
            raise
        self._release(True)

    def text(self, encoding: str | None = None) -> str:
        enc = encoding or _charset(self.headers.get("content-type")) or "utf-8"
        return self.body.decode(enc, "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def raise_for_status(self) -> ClientResponse:
        if self.status >= 400:
            raise HTTPStatusError(self)
        return self

    def _release(self, ok: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._pool.release(conn, ok and conn.finished())

    def close(self) -> None:
        """Give the connection back (or close it if the body was not read)."""
        self._release(False)

    def __enter__(self) -> ClientResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gofer.http.ClientResponse {self.status} {self.reason} {self.url}>"


def _charset(ct: str | None) -> str | None:
    if not ct:
        return None
    for part in ct.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset":
            return v.strip('"') or None
    return None


_REDIRECTS = (301, 302, 303, 307, 308)
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"))


class Client:
    """An HTTP/1.1 client with a connection pool (see the module docstring).

    ``timeout``: a :class:`Timeout` or a number (used for connect and read);
    ``max_connections``: open connections per origin; ``verify``: check TLS
    certificates (or pass ``ssl_context``); ``headers``: sent with every
    request; ``max_redirects``: 0 disables following redirects.

    One client may be shared by any number of coroutines; used from several
    threads, each thread gets its own connections (a socket belongs to its
    thread's hub).
    """

    def __init__(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_connections: int = 100,
        max_idle: int = 32,
        verify: bool = True,
        ssl_context: Any = None,
        headers: Mapping[str, str] | None = None,
        max_redirects: int = 10,
        user_agent: str = "gofer-http",
    ) -> None:
        if timeout is None:
            timeout = Timeout()
        elif not isinstance(timeout, Timeout):
            timeout = Timeout(connect=timeout, read=timeout)
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.headers = dict(headers or {})
        self.user_agent = user_agent
        self._pool = Pool(max_connections, max_idle, verify, ssl_context, timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str | Iterable[bytes] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: Timeout | float | None = None,
        stream: bool = False,
        follow_redirects: bool = True,
    ) -> ClientResponse:
        """Send a request and return the response (its body read unless ``stream``)."""
        method = method.upper()
        t = self.timeout if timeout is None else timeout if isinstance(timeout, Timeout) else Timeout(timeout, timeout, None)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        hdrs: list[tuple[str, str]] = list(self.headers.items())
        if headers is not None:
            hdrs.extend(headers.items() if isinstance(headers, Mapping) else headers)
        if json is not None:
            if body is not None:
                raise ValueError("pass either body or json, not both")
            body = _json.dumps(json, separators=(",", ":")).encode("utf-8")
            if not any(k.lower() == "content-type" for k, _ in hdrs):
                hdrs.append(("Content-Type", "application/json"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        if t.total is None:
            return self._follow(method, url, hdrs, body, t, stream, follow_redirects)
        with _timeout_scope(t.total):
            resp = self._follow(method, url, hdrs, body, t, stream, follow_redirects)
            return resp

    def _follow(
        self, method: str, url: str, hdrs: list[tuple[str, str]], body: Any, t: Timeout, stream: bool, follow: bool
    ) -> ClientResponse:
        history: list[ClientResponse] = []
        while True:
            resp = self._send(method, url, hdrs, body, t, stream)
            loc = resp.headers.get("location")
            if not follow or resp.status not in _REDIRECTS or not loc or self.max_redirects <= 0:
                resp.history = history
                return resp
            if len(history) >= self.max_redirects:
                resp.close()
                raise TooManyRedirects(f"more than {self.max_redirects} redirects (last: {url})")
            resp.read()  # drain so the connection can be reused
            history.append(resp)
            new = urljoin(url, loc)
            if urlsplit(new).netloc != urlsplit(url).netloc:
                hdrs = [(k, v) for k, v in hdrs if k.lower() not in ("authorization", "cookie")]
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                if method != "HEAD":
                    method = "GET"
                body = None
                hdrs = [(k, v) for k, v in hdrs if k.lower() not in ("content-type", "content-length")]
            elif body is not None and not isinstance(body, bytes | bytearray | memoryview):
                resp.history = history[:-1]
                return resp  # a streamed body cannot be sent twice
            url = new

    def _send(
        self, method: str, url: str, hdrs: list[tuple[str, str]], body: Any, t: Timeout, stream: bool
    ) -> ClientResponse:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r} (use http or https)")
        host = parts.hostname
        if not host:
            raise ValueError(f"no host in URL {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        default_port = port == (443 if scheme == "https" else 80)
        host_hdr = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
        names = {k.lower() for k, _ in hdrs}
        head_headers = [] if "host" in names else [("Host", host_hdr)]
        if "user-agent" not in names and self.user_agent:
            head_headers.append(("User-Agent", self.user_agent))
        head_headers.extend(hdrs)
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                head_headers.append(("Content-Length", "0"))
        elif isinstance(body, bytes | bytearray | memoryview):
            if "content-length" not in names:
                head_headers.append(("Content-Length", str(len(body))))
        elif "content-length" not in names:
            head_headers.append(("Transfer-Encoding", "chunked"))
        head = encode_request_head(method, target, head_headers)
        key = (scheme, host, port)
        # A pooled connection may have been closed by the server just as it
        # was reused: retry once on a fresh connection, for idempotent
        # methods only (RFC 9112 9.3.1), when nothing came back.
        for attempt in (0, 1):
            conn, reused = self._pool.acquire(key, t)
            try:
                conn.sock.settimeout(t.read)
                conn.send_request(head, body)
                status, reason, headers = conn.read_head(method)
            except BaseException as exc:
                self._pool.release(conn, False)
                if reused and attempt == 0 and method in _IDEMPOTENT and _retryable(exc) and _replayable(body):
                    continue
                raise
            break
        resp = ClientResponse(self, conn, status, reason, headers, url)
        if not stream:
            resp.read()
        return resp

    def get(self, url: str, **kw: Any) -> ClientResponse:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> ClientResponse:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> ClientResponse:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> ClientResponse:
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> ClientResponse:
        return self.request("HEAD", url, **kw)

    def close(self) -> None:
        """Close every idle connection (connections in use close when released)."""
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gofer.http.Client {self._pool!r}>"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ProtocolError):
        return exc.retry_safe
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


def _replayable(body: Any) -> bool:
    return body is None or isinstance(body, bytes | bytearray | memoryview)


_local = OSThreadLocal()  # per OS thread, even when gofer.patch() came first


def _default_client() -> Client:
    from gofer._core import get_hub

    hub = get_hub()
    c: Client | None = getattr(_local, "client", None)
    if c is not None and _local.hub is not hub:
        c.close()  # its connections belonged to a hub that is gone
        c = None
    if c is None:
        c = _local.client = Client()
        _local.hub = hub
    return c


def close_default() -> None:
    """Close the idle connections of this thread's default client (used by get/post/request)."""
    c: Client | None = getattr(_local, "client", None)
    if c is not None:
        _local.client = None
        c.close()


def request(method: str, url: str, **kw: Any) -> ClientResponse:
    """Send a request with this thread's default :class:`Client`."""
    return _default_client().request(method, url, **kw)


def get(url: str, **kw: Any) -> ClientResponse:
    """``GET url`` with this thread's default client; returns a :class:`ClientResponse`."""
    return _default_client().request("GET", url, **kw)


def post(url: str, **kw: Any) -> ClientResponse:
    """``POST url`` with this thread's default client (``body=`` or ``json=``)."""
    return _default_client().request("POST", url, **kw)
