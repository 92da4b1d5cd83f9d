"""``gofer serve module:app``: run a WSGI application or native handler.

The pre-fork supervisor of :mod:`gofer._workers` (the one ``net.serve``
uses) binds the listeners and forks ``--workers`` processes that each
import the application and serve their own ``SO_REUSEPORT`` listener (on
Linux; one shared socket elsewhere) on their own hub, one coroutine per
connection. The supervisor restarts a worker that dies, and

* SIGTERM / SIGINT: graceful shutdown: the listeners close at once, requests
  in progress finish (for up to ``--graceful-timeout`` seconds, then the
  workers are killed);
* SIGHUP: graceful reload: new workers (importing the application afresh)
  start on the same listeners and, once all are ready, the old ones are
  shut down gracefully, so no connection is lost.

``--certfile``/``--keyfile`` serve HTTPS (``--ca-certs``: require client
certificates signed by those CAs; ``--ssl-ciphers``: an OpenSSL cipher list).

Flags follow gunicorn and uvicorn where they overlap (``--bind``,
``--workers``, ``--interface``, ``--timeout-keep-alive``, ``--access-log``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from gofer._workers import Supervisor
from gofer.http._wire import Limits

__all__ = ["load_app", "main"]

log = logging.getLogger("gofer.serve")


def load_app(ref: str, factory: bool = False) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted); call it if ``factory``."""
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise SystemExit(f"gofer serve: the application must be given as 'module:attribute', not {ref!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise SystemExit(f"gofer serve: cannot import module {mod_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"gofer serve: module {mod_name!r} has no attribute {attr!r}") from None
    if factory:
        obj = obj()
    if not callable(obj):
        raise SystemExit(f"gofer serve: {ref} is not callable (a WSGI application or a handler is needed)")
    return obj


def detect_interface(app: Any) -> str:
    """'wsgi' for ``app(environ, start_response)``, 'native' for ``handler(request)``."""
    try:
        params = [
            p for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return "wsgi"
    return "native" if len(params) == 1 else "wsgi"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gofer serve", description="Serve a WSGI application or a gofer native handler.")
    ap.add_argument("app", help="the application, as module:attribute")
    ap.add_argument("-b", "--bind", default="127.0.0.1:8000",
                    help="address to listen on, HOST:PORT or unix:/PATH (default: %(default)s)")
    ap.add_argument("-w", "--workers", type=int, default=1,
                    help="worker processes; 0: one per CPU core (default: %(default)s)")
    ap.add_argument("-i", "--interface", choices=("auto", "wsgi", "native"), default="auto",
                    help="application interface (default: auto-detect from the signature)")
    ap.add_argument("--factory", action="store_true", help="the attribute is a factory: call it to get the application")
    ap.add_argument("--backlog", type=int, default=2048, help="listen backlog (default: %(default)s)")
    ap.add_argument("--timeout-keep-alive", type=float, default=5.0, help="idle keep-alive timeout, s (default: %(default)s)")
    ap.add_argument("--timeout-header", type=float, default=10.0, help="time to receive a request head, s (default: %(default)s)")
    ap.add_argument("--timeout-read", type=float, default=60.0, help="body read / response write stall timeout, s (default: %(default)s)")
    ap.add_argument("--graceful-timeout", type=float, default=30.0, help="time given to requests in progress on shutdown, s (default: %(default)s)")
    ap.add_argument("--limit-request-line", type=int, default=8190, help="longest request target (default: %(default)s)")
    ap.add_argument("--limit-request-fields", type=int, default=100, help="most header fields (default: %(default)s)")
    ap.add_argument("--limit-header-size", type=int, default=65536, help="largest request head in bytes (default: %(default)s)")
    ap.add_argument("--limit-body-size", type=int, default=64 * 1024 * 1024, help="largest request body in bytes, 0: none (default: %(default)s)")
    ap.add_argument("--limit-max-requests", type=int, default=0, help="requests per connection before closing it, 0: no limit")
    ap.add_argument("--limit-field-size", type=int, default=8190, help="largest single header field in bytes (default: %(default)s)")
    ap.add_argument("--limit-concurrency", type=int, default=0,
                    help="open connections per worker above which new ones get 503, 0: no limit")
    ap.add_argument("--limit-in-progress", type=int, default=0,
                    help="requests in progress per worker above which new ones get 503, 0: no limit")
    ap.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds sent with those 503s (default: %(default)s)")
    ap.add_argument("--min-body-rate", type=float, default=64.0,
                    help="slowest request body accepted, bytes/s, 0: none (default: %(default)s)")
    ap.add_argument("--timeout-body", type=float, default=0.0, help="time to receive a whole request body, s, 0: none")
    ap.add_argument("--access-log", action="store_true", help="log every request (logger gofer.access, to stderr)")
    ap.add_argument("--no-server-header", action="store_true", help="do not send a Server header")
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    ap.add_argument("--certfile", help="serve HTTPS with this certificate (PEM, chain included)")
    ap.add_argument("--keyfile", help="the certificate's private key (PEM; default: in --certfile)")
    ap.add_argument("--ca-certs", help="require client certificates signed by these CAs (PEM)")
    ap.add_argument("--ssl-ciphers", help="OpenSSL cipher list for TLS 1.2 (default: the stdlib's)")
    ap.add_argument("--debug-bind", metavar="HOST:PORT",
                    help="serve /debug/tasks, /debug/metrics and /debug/trace on this separate listener "
                         "(worker i of --workers N on PORT+i); keep it on localhost")
    return ap


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        max_request_line=args.limit_request_line,
        max_header_count=args.limit_request_fields,
        max_header_size=args.limit_header_size,
        max_body_size=args.limit_body_size or None,
        header_timeout=args.timeout_header,
        keepalive_timeout=args.timeout_keep_alive,
        read_timeout=args.timeout_read,
        write_timeout=args.timeout_read,
        max_requests_per_connection=args.limit_max_requests or None,
        max_field_size=args.limit_field_size,
        max_connections=args.limit_concurrency or None,
        max_in_progress=args.limit_in_progress or None,
        retry_after=args.retry_after,
        min_body_rate=args.min_body_rate or None,
        body_timeout=args.timeout_body or None,
    )


def _access_logger() -> Any:
    alog = logging.getLogger("gofer.access")
    alog.setLevel(logging.INFO)  # asked for explicitly: shown whatever --log-level says

    def access(req: Any, status: int, nbytes: int) -> None:
        addr = req.remote_addr
        host = addr[0] if isinstance(addr, tuple) else "-"
        alog.info('%s "%s %s HTTP/%s" %d %d', host, req.method, req.target.decode("latin-1"), req.version, status, nbytes)

    return access


# -- worker --------------------------------------------------------------------------


def run_worker(args: argparse.Namespace, ssl_ctx: Any, lsock: socket.socket, ready: Callable[[], None]) -> None:
    """A worker process: import the app, serve ``lsock`` until SIGTERM/SIGINT.

    On the signal the listener is closed at once (with the supervisor's copy
    closed too, the port refuses new connections), requests in progress
    finish and are answered with ``Connection: close``, for up to
    ``--graceful-timeout`` seconds.
    """
    import gofer
    from gofer.http.server import Server

    app = load_app(args.app, args.factory)
    interface = detect_interface(app) if args.interface == "auto" else args.interface
    server = Server(
        app,
        interface=interface,
        limits=limits_from(args),
        server_header=None if args.no_server_header else "gofer",
        access_log=_access_logger() if args.access_log else None,
        ssl=ssl_ctx,
    )
    server.multiprocess = args.workers > 1

    def main() -> None:
        hub = gofer.get_hub()

        def on_signal(signum: int, frame: Any) -> None:
            hub.call_threadsafe(gofer.go, server.shutdown, args.graceful_timeout)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            server.serve_socket(lsock)
        finally:
            lsock.close()
        server.shutdown(args.graceful_timeout)

    if args.debug_bind:
        _start_debug(args.debug_bind)
    log.info("gofer worker %d serving %s (%s interface)", os.getpid(), args.app, interface)
    ready()
    gofer.run(main)


def _debug_address(bind: str, slot: int) -> Any:
    """``--debug-bind`` for the worker in ``slot``: the port plus the slot (a path as is)."""
    from gofer._listen import parse_address

    _family, addr = parse_address(bind)
    if isinstance(addr, tuple) and slot and addr[1]:
        return (addr[0], addr[1] + slot)
    return addr if isinstance(addr, tuple) else bind


def _start_debug(bind: str) -> None:
    from gofer import _workers, debug

    addr = _debug_address(bind, _workers.worker_slot or 0)
    try:
        srv = debug.start_server(addr, reuse_port=True)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"gofer serve: cannot serve the debug endpoints on {bind}: {exc}") from None
    log.info("gofer worker %d: debug endpoints on %s", os.getpid(), srv.address)


def tls_context(args: argparse.Namespace) -> Any:
    """The server SSLContext that --certfile/--keyfile/--ca-certs/--ssl-ciphers ask for, or None."""
    if args.certfile is None:
        if args.keyfile or args.ca_certs or args.ssl_ciphers:
            raise SystemExit("gofer serve: --keyfile, --ca-certs and --ssl-ciphers need --certfile")
        return None
    import ssl

    from gofer.http._tls import server_context

    try:
        return server_context(args.certfile, args.keyfile, ca_certs=args.ca_certs, ciphers=args.ssl_ciphers)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SystemExit(f"gofer serve: cannot set up TLS: {exc}") from None


def _describe_address(address: Any, tls: bool) -> str:
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"{'https' if tls else 'http'}://{host}:{address[1]}"
    return f"unix:{address}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers == 0:
        args.workers = os.cpu_count() or 1
    if args.workers < 0:
        raise SystemExit("gofer serve: --workers must be 0 (one per core) or more")
    logging.basicConfig(level=args.log_level.upper(), format="[%(asctime)s] %(process)d %(levelname)s %(name)s: %(message)s")
    try:
        limits_from(args)  # refuse bad limits here, not in every worker
    except ValueError as exc:
        raise SystemExit(f"gofer serve: {exc}") from None
    ssl_ctx = tls_context(args)
    sup = Supervisor(
        args.bind,
        args.workers,
        functools.partial(run_worker, args, ssl_ctx),
        grace=args.graceful_timeout,
        backlog=args.backlog,
        log=log,
    )
    try:
        sup.bind()
    except (OSError, ValueError) as exc:
        raise SystemExit(f"gofer serve: cannot listen on {args.bind}: {exc}") from None
    log.info(
        "gofer serve: listening on %s with %d worker(s)", _describe_address(sup.address, ssl_ctx is not None), args.workers
    )
    return sup.run()
