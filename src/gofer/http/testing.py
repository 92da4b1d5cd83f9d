"""Run a gofer HTTP server in a background thread, for tests with real clients.

``with ServerThread(app) as srv:`` starts a thread with its own hub serving
``app`` on ``127.0.0.1`` (an ephemeral port: ``srv.port``, ``srv.url``) and,
on exit, shuts it down gracefully and joins the thread, so that blocking
clients (``http.client``, ``urllib``, ``curl``, ``wrk``) can be pointed at
it from the test's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gofer._core import Hub, get_hub, go, run
from gofer.http._wire import Limits
from gofer.http.server import Server, listen

__all__ = ["ServerThread"]


class ServerThread:
    """A :class:`~gofer.http.Server` on its own thread (see the module docstring)."""

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        interface: str = "native",
        limits: Limits | None = None,
        grace: float = 5.0,
        **server_kw: Any,
    ) -> None:
        self.app = app
        self.interface = interface
        self.limits = limits
        self.grace = grace
        self.server_kw = server_kw
        self.server: Server | None = None
        self._lsock = listen(("127.0.0.1", 0))
        self.port: int = self._lsock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._hub: Hub | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"gofer-http-test-{self.port}", daemon=True)

    def _run(self) -> None:
        try:
            run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._lsock.close()
            self._ready.set()

    def _main(self) -> None:
        self._hub = get_hub()
        self.server = Server(self.app, interface=self.interface, limits=self.limits, **self.server_kw)
        task = go(self.server.serve_socket, self._lsock)
        self._ready.set()
        task.join()
        self.server.shutdown(self.grace)  # wait for the connections too

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Shut the server down gracefully and wait for its thread."""
        hub = self._hub
        server = self.server
        if hub is not None and server is not None and not hub.closed:
            try:
                hub.call_threadsafe(go, server.shutdown, self.grace)
            except RuntimeError:
                pass  # the hub is already gone
        self._thread.join(self.grace + 10)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
