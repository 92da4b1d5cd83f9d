"""``gofer serve module:app``: run a WSGI application or native handler.

A master process binds the listening socket and forks ``--workers``
processes that each import the application and serve the shared socket on
their own hub (one coroutine per connection). The master only supervises:
it restarts a worker that dies, and

* SIGTERM / SIGINT: graceful shutdown (workers finish requests in progress,
  for up to ``--graceful-timeout`` seconds, then are killed);
* SIGHUP: graceful reload: new workers (importing the application afresh)
  start on the same socket, then the old ones are shut down gracefully, so
  no connection is refused.

Flags follow gunicorn and uvicorn where they overlap (``--bind``,
``--workers``, ``--interface``, ``--timeout-keep-alive``, ``--access-log``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import sys
import time
from typing import Any

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
    ap.add_argument("-b", "--bind", default="127.0.0.1:8000", help="address to listen on, HOST:PORT (default: %(default)s)")
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
    ap.add_argument("--access-log", action="store_true", help="log every request (logger gofer.access, to stderr)")
    ap.add_argument("--no-server-header", action="store_true", help="do not send a Server header")
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
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


def run_worker(args: argparse.Namespace, lsock: Any) -> None:
    """A worker process: import the app, serve ``lsock`` until SIGTERM/SIGINT."""
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
    )
    server.multiprocess = args.workers > 1

    def main() -> None:
        hub = gofer.get_hub()

        def on_signal(signum: int, frame: Any) -> None:
            hub.call_threadsafe(gofer.go, server.shutdown, args.graceful_timeout)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        server.serve_socket(lsock)
        server.shutdown(args.graceful_timeout)

    log.info("gofer worker %d serving %s (%s interface)", os.getpid(), args.app, interface)
    gofer.run(main)


# -- master --------------------------------------------------------------------------


class Master:
    """Forks and supervises workers (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, lsock: Any) -> None:
        self.args = args
        self.lsock = lsock
        self.workers: dict[int, float] = {}  # pid -> start time
        self.retiring: dict[int, float] = {}  # pid -> kill deadline
        self.stopping = False
        self.reload = False
        self.exit_code = 0

    def spawn(self) -> int:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(s, signal.SIG_DFL)
                run_worker(self.args, self.lsock)
            except SystemExit as exc:
                if exc.code:
                    print(exc.code, file=sys.stderr)
                code = 3
            except BaseException:
                log.exception("gofer worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        self.workers[pid] = time.monotonic()
        return pid

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for _ in range(self.args.workers):
            self.spawn()
        failures = 0
        while True:
            if self.stopping:
                deadline = time.monotonic() + self.args.graceful_timeout
                for pid in list(self.workers):
                    self.retiring[pid] = deadline
                    self.workers.pop(pid)
                    _kill(pid, signal.SIGTERM)
            if self.reload:
                self.reload = False
                log.info("gofer serve: reloading workers")
                old = list(self.workers)
                for _ in range(self.args.workers):
                    self.spawn()
                for pid in old:
                    self.workers.pop(pid, None)
                    self.retiring[pid] = time.monotonic() + self.args.graceful_timeout
                    _kill(pid, signal.SIGTERM)
            now = time.monotonic()
            for pid, deadline in list(self.retiring.items()):
                if now > deadline:
                    _kill(pid, signal.SIGKILL)
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
                if self.stopping:
                    return self.exit_code
            if pid:
                self.retiring.pop(pid, None)
                if pid in self.workers:
                    started = self.workers.pop(pid)
                    code = os.waitstatus_to_exitcode(status)
                    log.error("gofer serve: worker %d exited with %s", pid, code)
                    if code == 3:
                        # The application cannot be loaded: stop, do not respawn.
                        self.exit_code = 3
                        self.stopping = True
                        continue
                    failures = failures + 1 if time.monotonic() - started < 1 else 0
                    if failures > 5:
                        log.error("gofer serve: workers keep failing at start; giving up")
                        self.exit_code = 1
                        self.stopping = True
                        continue
                    if not self.stopping:
                        self.spawn()
                continue
            if self.stopping and not self.retiring and not self.workers:
                return self.exit_code
            time.sleep(0.05)

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: Any) -> None:
        self.reload = True


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers == 0:
        args.workers = os.cpu_count() or 1
    if args.workers < 0:
        raise SystemExit("gofer serve: --workers must be 0 (one per core) or more")
    logging.basicConfig(level=args.log_level.upper(), format="[%(asctime)s] %(process)d %(levelname)s %(name)s: %(message)s")
    from gofer.http.server import listen

    try:
        lsock = listen(args.bind, backlog=args.backlog)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"gofer serve: cannot listen on {args.bind}: {exc}") from None
    host, port = lsock.getsockname()[:2]
    log.info("gofer serve: listening on http://%s:%d with %d worker(s)", host, port, args.workers)
    try:
        return Master(args, lsock).run()
    finally:
        lsock.close()
