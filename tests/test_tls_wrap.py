"""``ssl.SSLContext.wrap_socket(gofer_socket)`` (issue 8, item 6).

The stdlib's ``SSLSocket`` blocks its OS thread, and so the hub, on every TLS
read: a context from the stdlib refuses a gofer socket with a ``TypeError``
naming ``gofer.ssl`` (and leaves the socket usable), while contexts made by
``gofer.ssl`` (or any context whose ``sslsocket_class`` is
``gofer.ssl.SSLSocket``) wrap cooperatively.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gofer
from gofer import socket as gsocket
from gofer import ssl as gssl

CERTS = Path(__file__).parent / "certs"
SERVER_CERT, SERVER_KEY = str(CERTS / "server.pem"), str(CERTS / "server.key")
CA = str(CERTS / "ca.pem")


def _slow_tls_server(delay: float) -> tuple[int, threading.Thread]:
    """A stdlib TLS server in a thread: one connection, replies after ``delay`` s."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(SERVER_CERT, SERVER_KEY)
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def serve() -> None:
        with lsock:
            c, _ = lsock.accept()
            with sctx.wrap_socket(c, server_side=True) as t:
                time.sleep(delay)
                t.sendall(b"late reply")
                t.recv(1)  # until the client closes

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return port, th


def _client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = False
    return ctx


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_stdlib_context_refuses_a_gofer_socket_by_name() -> None:
    port, th = _slow_tls_server(0.0)

    def main() -> None:
        s = gsocket.create_connection(("127.0.0.1", port))
        with s:
            with pytest.raises(TypeError, match=r"gofer\.ssl\.wrap_socket"):
                _client_context().wrap_socket(s)
            # Refused before anything took the fd over: the socket still works.
            assert s.fileno() >= 0
            tls = gssl.wrap_socket(s, _client_context())
            with tls:
                assert tls.recv(100) == b"late reply"

    gofer.run(main)
    th.join(10)


def test_a_gofer_context_wraps_cooperatively() -> None:
    # A 0.5 s wait for the server's reply: a ticker keeps running meanwhile.
    port, th = _slow_tls_server(0.5)
    ctx = gssl.client_context(CA)

    def main() -> None:
        ticks: list[int] = []
        done = False

        def ticker() -> None:
            while not done:
                gofer.sleep(0.01)
                ticks.append(1)

        t = gofer.go(ticker)
        s = gsocket.create_connection(("127.0.0.1", port))
        tls = ctx.wrap_socket(s, server_hostname="localhost")
        with tls:
            assert isinstance(tls, gssl.SSLSocket)
            assert tls.recv(100) == b"late reply"
        done = True
        t.join()
        assert len(ticks) >= 5  # ideally 50: the hub was not blocked

    gofer.run(main)
    th.join(10)


def test_sslsocket_class_makes_any_context_cooperative() -> None:
    port, th = _slow_tls_server(0.0)
    ctx = _client_context()
    ctx.sslsocket_class = gssl.SSLSocket  # type: ignore[assignment]

    def main() -> Any:
        s = gsocket.create_connection(("127.0.0.1", port))
        with ctx.wrap_socket(s) as tls:
            assert isinstance(tls, gssl.SSLSocket)
            return tls.recv(100)

    assert gofer.run(main) == b"late reply"
    th.join(10)


@pytest.mark.unpatched  # it checks the stdlib's own blocking behaviour
def test_the_stdlib_still_wraps_stdlib_sockets() -> None:
    # The check is on gofer sockets only: nothing changes for plain ones.
    port, th = _slow_tls_server(0.0)
    with socket.create_connection(("127.0.0.1", port)) as s, _client_context().wrap_socket(s) as tls:
        assert type(tls) is ssl.SSLSocket
        assert tls.recv(100) == b"late reply"
    th.join(10)


def test_getsockopt_is_unchanged() -> None:
    s = gsocket.socket()
    with s:
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
        assert len(s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE, 4)) == 4
        with pytest.raises(TypeError):
            s.getsockopt(socket.SOL_SOCKET)  # type: ignore[call-arg]
