"""Debugging a running program: stack dumps, debug endpoints, instruments.

* :func:`install_signal` dumps every coroutine of every hub, with what it
  waits on and its stack, when the process gets ``SIGUSR1`` (Go's SIGQUIT
  dump, without exiting): ``kill -USR1 <pid>``.
* :func:`start_server` serves, on a listener of its own (never the
  application's), ``/debug/tasks`` (that dump), ``/debug/metrics``
  (Prometheus text where ``prometheus_client`` is installed, else JSON;
  ``?format=json`` for JSON) and ``/debug/trace?seconds=N`` (a trace-event
  file of the next N seconds, for Perfetto). It runs in its own thread with
  its own hub, so it answers even while the application's hub is blocked.
  ``gofer serve --debug-bind HOST:PORT`` calls it.
* :func:`add_instrument` / :func:`remove_instrument` register an
  :class:`Instrument` (spawn, run, park, wake and finish callbacks, as
  trio's instruments), the hooks the tracer and APM agents build on.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

from gofer import _instrument
from gofer._core import ignore_thread, unignore_thread
from gofer._instrument import Instrument
from gofer._instrument import add as add_instrument
from gofer._instrument import remove as remove_instrument
from gofer._metrics import Collector, metrics, prometheus_text
from gofer._monitor import MemoryReport, Monitor, StallReport, monitor
from gofer._trace import Tracer, trace

__all__ = [
    "Collector",
    "DebugServer",
    "Instrument",
    "MemoryReport",
    "Monitor",
    "StallReport",
    "Tracer",
    "add_instrument",
    "app",
    "dump_all",
    "install_signal",
    "metrics",
    "monitor",
    "prometheus_text",
    "remove_instrument",
    "start_server",
    "trace",
]

MAX_TRACE_SECONDS = 60.0


# -- the dump ------------------------------------------------------------------------------


def dump_all(file: Any = None) -> str:
    """Every live coroutine of every hub, with its state and stack (as ``dump_tasks``).

    Writes to ``file`` (default: ``sys.stderr``; ``False``: nowhere) and
    returns the text. Safe from any thread and from a signal handler.
    """
    from gofer._monitor import _holder

    frames = sys._current_frames()
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    lines: list[str] = []
    for hub in sorted((h for h in list(_instrument.hubs) if not h.closed), key=lambda h: h.thread_ident):
        tasks = sorted(hub.tasks, key=lambda t: t._label())
        tname = names.get(hub.thread_ident, str(hub.thread_ident))
        lines.append(f"gofer: {len(tasks)} live coroutine(s) on the hub of thread {tname!r} ({hub.poller.name})")
        running: Any = None
        frame = frames.get(hub.thread_ident)
        if hub.thread_ident != me and frame is not None:
            running = _holder(hub, frame)[1]  # the task running in that thread now, if any
        for t in tasks:
            if running is not None and t is running:
                lines.append(f"- {t._label()}: running (in its thread)")
                stack = _format(frame)
            else:
                lines.append(f"- {t._label()}: {t._where()}")
                stack = t.stack
            lines.extend("    " + ln.rstrip().replace("\n", "\n    ") for ln in stack)
    if not lines:
        lines.append("gofer: no live hub")
    text = "\n".join(lines) + "\n"
    if file is not False:
        out = file if file is not None else sys.stderr
        out.write(text)
        out.flush()
    return text


def _format(frame: Any) -> list[str]:
    import traceback

    return traceback.format_stack(frame)


def install_signal(signum: int | None = None, file: Any = None) -> None:
    """Dump every coroutine's stack (:func:`dump_all`) when ``signum`` arrives.

    Default ``SIGUSR1``; ``file`` defaults to ``sys.stderr``. The program
    goes on afterwards. Call it from the main thread (Python's rule for
    signal handlers).
    """
    if signum is None:
        signum = signal.SIGUSR1

    def _dump(sig: int, frame: Any) -> None:
        dump_all(file)

    signal.signal(signum, _dump)


# -- the endpoints ------------------------------------------------------------------------------


def app(request: Any) -> Any:
    """The debug endpoints as a native ``gofer.http`` handler (see the module docstring)."""
    from gofer.http import HTTPError, Response

    path = request.path
    if path in ("/debug/tasks", "/debug/tasks/"):
        return Response(dump_all(False), content_type="text/plain; charset=utf-8")
    if path == "/debug/metrics":
        fmt = request.args.get("format", [""])[0]
        if fmt != "json":
            try:
                return Response(prometheus_text(), content_type="text/plain; version=0.0.4; charset=utf-8")
            except ImportError:
                pass  # no prometheus_client: JSON instead
        return Response(json.dumps(metrics(), indent=1), content_type="application/json")
    if path == "/debug/trace":
        raw = request.args.get("seconds", ["1"])[0]
        try:
            seconds = float(raw)
        except ValueError:
            raise HTTPError(400, f"seconds must be a number, not {raw!r}") from None
        if not 0 < seconds <= MAX_TRACE_SECONDS:
            raise HTTPError(400, f"seconds must be more than 0 and at most {MAX_TRACE_SECONDS:g}")
        import gofer

        with Tracer() as tr:
            gofer.sleep(seconds)
        return Response(
            tr.dumps(),
            content_type="application/json",
            headers=[("Content-Disposition", 'attachment; filename="gofer-trace.json"')],
        )
    if path in ("/debug", "/debug/"):
        return Response(
            "gofer debug endpoints:\n  /debug/tasks\n  /debug/metrics[?format=json]\n  /debug/trace?seconds=N\n"
        )
    raise HTTPError(404, f"no debug endpoint {path!r}")


class DebugServer:
    """The debug endpoints' server thread (see :func:`start_server`)."""

    def __init__(self, addr: Any, reuse_port: bool = False) -> None:
        self.addr = addr
        self.reuse_port = reuse_port
        self.address: Any = None  # the bound address (port 0 resolved)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: Any = None
        self._hub: Any = None
        self._thread = threading.Thread(target=self._main, name="gofer-debug", daemon=True)

    def _main(self) -> None:
        import gofer
        from gofer import http

        def serve() -> None:
            try:
                lsock = http.listen(self.addr, reuse_port=self.reuse_port)
                self.address = lsock.getsockname()
                self._server = http.Server(app, server_header="gofer-debug")
                self._hub = gofer.get_hub()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                raise
            self._ready.set()
            try:
                self._server.serve_socket(lsock)
            finally:
                lsock.close()

        try:
            gofer.run(serve)
        except BaseException as exc:
            if not self._ready.is_set() or self._error is None:
                self._error = exc
            self._ready.set()

    def start(self) -> DebugServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._thread.ident is not None
        # Like the monitor, it never wakes the application's hubs: not a reason
        # for them to skip raising Deadlock.
        ignore_thread(self._thread.ident)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread to end."""
        srv, hub = self._server, self._hub
        if srv is not None and hub is not None and not hub.closed:
            try:
                hub.call_threadsafe(_shutdown, srv)
            except RuntimeError:
                pass  # already gone
        self._thread.join(timeout)
        unignore_thread(self._thread.ident or 0)

    def __enter__(self) -> DebugServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(srv: Any) -> None:
    import gofer

    gofer.go(srv.shutdown, 1.0)


def start_server(addr: Any = ("127.0.0.1", 6060), reuse_port: bool = False) -> DebugServer:
    """Serve the debug endpoints on ``addr`` in a thread of their own; returns the server.

    ``addr`` is ``(host, port)``, ``"host:port"`` or ``"unix:/path"``;
    ``server.address`` is the address bound (for port 0). Bind it to
    localhost or a private interface: the endpoints show code and data.
    ``reuse_port`` lets a reloading process bind the port while the one it
    replaces still holds it (``gofer serve --debug-bind``).
    """
    return DebugServer(addr, reuse_port).start()
