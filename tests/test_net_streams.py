"""The shared stream conformance suite (tests/streams.py) over TCP, Unix and TLS."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import gofer
import streams
from gofer import net
from gofer import socket as gsocket
from gofer import ssl as gssl

CERTS = Path(__file__).parent / "certs"


def _accept_pair(listener: net.Listener, addr: Any, connect: Any) -> tuple[Any, Any]:
    t = gofer.go(listener.accept)
    a = connect(addr)
    b, _ = t.join()
    listener.close()
    return a, b


def tcp_pair() -> tuple[Any, Any]:
    listener = net.listen("127.0.0.1:0")
    return _accept_pair(listener, listener.address, net.connect)


tcp_pair.half_close = True  # type: ignore[attr-defined]


def unix_pair() -> tuple[Any, Any]:
    path = os.path.join(tempfile.mkdtemp(prefix="gofer-"), "s.sock")
    listener = net.listen("unix:" + path)
    try:
        return _accept_pair(listener, "unix:" + path, net.connect)
    finally:
        os.rmdir(os.path.dirname(path))


unix_pair.half_close = True  # type: ignore[attr-defined]


def socketpair_pair() -> tuple[Any, Any]:
    a, b = gsocket.socketpair()
    return net.Stream(a), net.Stream(b)


socketpair_pair.half_close = True  # type: ignore[attr-defined]


def tls_pair() -> tuple[Any, Any]:
    sctx = gssl.server_context(str(CERTS / "server.pem"), str(CERTS / "server.key"))
    # No TLS 1.3 session tickets: a client that closes without reading them
    # would make its kernel send RST instead of FIN (seen with Python 3.13's
    # ssl, gofer or not), and the checks want to see a clean end of stream.
    sctx.num_tickets = 0
    cctx = gssl.client_context(str(CERTS / "ca.pem"))
    listener = net.listen("127.0.0.1:0")

    def server_side() -> Any:
        conn, _ = listener.sock.accept()
        return gssl.wrap_socket(conn, sctx, server_side=True)

    t = gofer.go(server_side)
    raw = gsocket.create_connection(listener.address)
    client = gssl.wrap_socket(raw, cctx, server_hostname="localhost")
    server = t.join()
    listener.close()
    return net.Stream(client), net.Stream(server)


KINDS = {"tcp": tcp_pair, "unix": unix_pair, "socketpair": socketpair_pair, "tls": tls_pair}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("check", streams.CHECKS, ids=streams.ids)
def test_stream_conformance(kind: str, check: streams.Check) -> None:
    streams.run_check(check, KINDS[kind])
