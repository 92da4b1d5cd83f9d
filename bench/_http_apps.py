"""The applications and server launchers of the HTTP benchmark (TechEmpower style).

Every system serves the same two endpoints: ``/plaintext`` (``Hello,
World!`` as text/plain) and ``/json`` (``{"message": "Hello, World!"}``,
serialised on every request). Run ``python -m bench._http_apps SYSTEM
PORT`` to start one server in the foreground (the benchmark pins it to one
core).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

HELLO = b"Hello, World!"

try:
    from gofer.http import Response
except ImportError:  # httptools missing: only the peers can run
    pass


# -- gofer native ---------------------------------------------------------------------


def native(req: Any) -> Any:
    if req.target == b"/json":
        return Response(json.dumps({"message": "Hello, World!"}).encode(), content_type="application/json")
    return Response(HELLO, content_type="text/plain")


# -- WSGI (gofer, granian, gevent) ----------------------------------------------------------


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


# -- raw ASGI (uvicorn, granian) ----------------------------------------------------------------

_PLAIN_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_PLAIN_BODY = {"type": "http.response.body", "body": HELLO}


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    if scope["path"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
        return
    await send(_PLAIN_START)
    await send(_PLAIN_BODY)


# -- launchers --------------------------------------------------------------------------------


def _serve_gofer(port: int, interface: str) -> None:
    import gofer
    from gofer.http import Server, listen

    lsock = listen(("127.0.0.1", port), backlog=4096)
    server = Server(native if interface == "native" else wsgi, interface=interface)
    gofer.run(server.serve_socket, lsock)


def _serve_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(asgi, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="off", backlog=4096)


def _serve_gevent(port: int) -> None:
    from gevent.pywsgi import WSGIServer

    WSGIServer(("127.0.0.1", port), wsgi, log=None, backlog=4096).serve_forever()


def main(argv: list[str]) -> None:
    system, port = argv[0], int(argv[1])
    if system == "gofer":
        _serve_gofer(port, "native")
    elif system == "gofer-wsgi":
        _serve_gofer(port, "wsgi")
    elif system == "uvicorn":
        _serve_uvicorn(port)
    elif system == "gevent":
        _serve_gevent(port)
    else:
        raise SystemExit(f"unknown system {system!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
