"""gofer.http: an HTTP/1.1 server (native handlers and WSGI) and client.

Server::

    from gofer import http

    def hello(req):
        return b"Hello, World!"

    gofer.run(http.serve, hello, ("127.0.0.1", 8000))

The server parses with ``httptools`` (llhttp), serves each connection in its
own coroutine (keep-alive, pipelining, chunked bodies both ways,
``Expect: 100-continue``), enforces :class:`Limits`, and runs either a
native handler (``handler(request) -> response``, see
:mod:`gofer.http.native`) or a WSGI application (:mod:`gofer.http.wsgi`).
``gofer serve module:app`` runs one from the command line.

Client::

    r = http.get("https://example.org/")
    r.status, r.headers, r.body

See ``docs/http.md``.
"""

from __future__ import annotations

try:
    import httptools  # noqa: F401 - checked here so the error names the extra
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ModuleNotFoundError(
        "gofer.http needs the httptools package: install gofer with its http extra "
        "(pip install 'gofer[http]') or pip install httptools",
        name="httptools",
    ) from exc

from gofer.http._request import Headers, Request
from gofer.http._wire import ClientDisconnected, HTTPError, Limits, ProtocolError
from gofer.http.client import (
    Client,
    ClientResponse,
    HTTPStatusError,
    Timeout,
    TooManyRedirects,
    get,
    post,
    request,
)
from gofer.http.native import Response
from gofer.http.server import Server, listen, serve

__all__ = [
    "Client",
    "ClientDisconnected",
    "ClientResponse",
    "HTTPError",
    "HTTPStatusError",
    "Headers",
    "Limits",
    "ProtocolError",
    "Request",
    "Response",
    "Server",
    "Timeout",
    "TooManyRedirects",
    "get",
    "listen",
    "post",
    "request",
    "serve",
]
