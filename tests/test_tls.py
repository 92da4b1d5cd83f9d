"""gofer.ssl: cooperative TLS with the stdlib's verification, errors and features."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

import gofer
from gofer import net
from gofer import socket as gsocket
from gofer import ssl as gssl

CERTS = Path(__file__).parent / "certs"
SERVER_CERT, SERVER_KEY = str(CERTS / "server.pem"), str(CERTS / "server.key")
CLIENT_CERT, CLIENT_KEY = str(CERTS / "client.pem"), str(CERTS / "client.key")
CA = str(CERTS / "ca.pem")


def _tls_echo_server(ctx: ssl.SSLContext) -> tuple[net.Listener, gofer.Task[None]]:
    ln = net.listen("127.0.0.1:0", ssl=ctx)

    def serve() -> None:
        for conn in ln:
            gofer.go(_echo, conn)

    return ln, gofer.go(serve)


def _echo(conn: net.Stream) -> None:
    with conn:
        try:
            for line in conn:
                conn.write_all(line)
        except (ssl.SSLError, OSError):
            pass


def test_round_trip_with_verification_and_alpn() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY, alpn=["h2", "http/1.1"])

    def main() -> None:
        ln, t = _tls_echo_server(sctx)
        ctx = gssl.client_context(CA, alpn=["http/1.1"])
        with net.connect(ln.address, ssl=ctx, server_hostname="localhost") as c:
            c.write_all(b"hello\n")
            assert c.readline() == b"hello\n"
            assert c.sock.selected_alpn_protocol() == "http/1.1"
            assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
            assert c.sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        t.cancel()
        ln.close()

    gofer.run(main)


def test_verification_is_on_by_default() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY)

    def main() -> None:
        ln, t = _tls_echo_server(sctx)
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            net.connect(ln.address, ssl=True)  # the test CA is not trusted by default
        with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|IP address mismatch"):
            net.connect(ln.address, ssl=gssl.client_context(CA), server_hostname="example.com")
        raw = gsocket.create_connection(ln.address)
        with pytest.raises(ssl.SSLCertVerificationError):
            gssl.wrap_socket(raw, server_hostname="localhost")
        t.cancel()
        ln.close()

    gofer.run(main)


def test_client_certificates() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY, cafile=CA, require_client_cert=True)
    seen: list[Any] = []

    def main() -> None:
        ln = net.listen("127.0.0.1:0", ssl=sctx)

        def serve() -> None:
            for conn in ln:
                with conn:
                    try:
                        conn.write_all(b"hi\n")
                        seen.append(conn.sock.getpeercert()["subject"])
                    except (ssl.SSLError, OSError) as exc:
                        seen.append(type(exc))

        t = gofer.go(serve)
        good = gssl.client_context(CA, certfile=CLIENT_CERT, keyfile=CLIENT_KEY)
        with net.connect(ln.address, ssl=good, server_hostname="localhost") as c:
            assert c.readline() == b"hi\n"
        anonymous = gssl.client_context(CA)
        # TLS 1.3: the rejection arrives after the client's handshake, on first read
        with pytest.raises((ssl.SSLError, ConnectionResetError)), net.connect(
            ln.address, ssl=anonymous, server_hostname="localhost"
        ) as c:
            c.read()
        while len(seen) < 2:
            gofer.sleep(0.001)
        t.cancel()
        ln.close()

    gofer.run(main)
    assert seen[0] == ((("commonName", "gofer test client"),),)
    assert isinstance(seen[1], type) and issubclass(seen[1], ssl.SSLError)


def _plain_text_server_error(m: Any, wrap: Any) -> str:
    """A TLS server that gets an HTTP request instead of a ClientHello."""
    a, b = m.socketpair()
    with a:
        a.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        ctx = gssl.server_context(SERVER_CERT, SERVER_KEY)
        try:
            wrap(b, ctx).close()
        except Exception as exc:
            return f"{type(exc).__name__}:{getattr(exc, 'reason', None)}"
        finally:
            b.close()
    return "no error"


def test_plain_text_peer_fails_like_the_stdlib() -> None:
    std = _plain_text_server_error(socket, lambda s, ctx: ctx.wrap_socket(s, server_side=True))
    got = gofer.run(_plain_text_server_error, gsocket, lambda s, ctx: gssl.wrap_socket(s, ctx, server_side=True))
    assert got == std
    assert got.startswith("SSLError")


def test_tls_client_against_a_plain_server() -> None:
    def main() -> None:
        ln = net.listen("127.0.0.1:0")

        def plain() -> None:
            conn, _ = ln.accept()
            with conn:
                conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        t = gofer.go(plain)
        with pytest.raises(ssl.SSLError):
            net.connect(ln.address, ssl=gssl.client_context(CA), server_hostname="localhost")
        t.join()
        ln.close()

    gofer.run(main)


def test_handshake_timeout_with_a_silent_server(vrun: Any) -> None:
    def main() -> None:
        ln = net.listen("127.0.0.1:0")
        t = gofer.go(ln.accept)  # accepts, then never says anything
        t0 = gofer.get_hub().now()
        with pytest.raises(TimeoutError):
            net.connect(ln.address, timeout=10, ssl=gssl.client_context(CA), server_hostname="localhost")
        assert gofer.get_hub().now() - t0 == pytest.approx(10)
        conn, _ = t.join()
        conn.close()
        ln.close()

    vrun(main)


def test_read_timeout_and_nonblocking_reads() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY)

    def main() -> None:
        ln, t = _tls_echo_server(sctx)
        c = net.connect(ln.address, ssl=gssl.client_context(CA), server_hostname="localhost")
        c.timeout = 0.02
        with pytest.raises(TimeoutError):
            c.read(10)
        c.sock.settimeout(0)
        with pytest.raises(ssl.SSLWantReadError):
            c.sock.recv(10)
        c.timeout = None
        c.write_all(b"after\n")
        assert c.readline() == b"after\n"
        c.close()
        t.cancel()
        ln.close()

    gofer.run(main)


def test_unwrap_back_to_plain_text() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY)
    cctx = gssl.client_context(CA)

    def main() -> None:
        a, b = gsocket.socketpair()
        ts = gofer.go(gssl.wrap_socket, b, sctx, server_side=True)
        ca = gssl.wrap_socket(a, cctx, server_hostname="localhost")
        sb = ts.join()
        ca.sendall(b"secret")
        assert sb.recv(10) == b"secret"
        tu = gofer.go(sb.unwrap)
        plain_a = ca.unwrap()
        plain_b = tu.join()
        plain_a.sendall(b"clear")
        assert plain_b.recv(10) == b"clear"
        for s in (plain_a, plain_b, ca, sb):
            s.close()

    gofer.run(main)


def test_many_concurrent_handshakes() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY)
    cctx = gssl.client_context(CA)

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), _echo, ssl=sctx)
        st = gofer.go(srv.serve_forever)

        def client(i: int) -> bytes:
            with net.connect(srv.address, ssl=cctx, server_hostname="localhost") as c:
                c.write_all(b"%d\n" % i)
                return c.readline()

        with gofer.scope() as sc:
            tasks = [sc.go(client, i) for i in range(30)]
        assert [t.result() for t in tasks] == [b"%d\n" % i for i in range(30)]
        srv.shutdown(5)
        st.join()

    gofer.run(main)


def test_gofer_tls_with_a_stdlib_tls_peer_in_a_thread() -> None:
    sctx = gssl.server_context(SERVER_CERT, SERVER_KEY)
    ls = socket.create_server(("127.0.0.1", 0))

    def stdlib_server() -> None:
        conn, _ = ls.accept()
        with sctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(tls.recv(100).upper())

    th = threading.Thread(target=stdlib_server)
    th.start()

    def main() -> bytes:
        with net.connect(ls.getsockname(), ssl=gssl.client_context(CA), server_hostname="localhost") as c:
            c.write_all(b"mixed")
            return c.read_exactly(5)

    try:
        assert gofer.run(main) == b"MIXED"
    finally:
        th.join()
        ls.close()


def test_server_side_needs_a_context() -> None:
    def main() -> None:
        a, b = gsocket.socketpair()
        with a, b, pytest.raises(ValueError, match="needs a context"):
            gssl.wrap_socket(b, server_side=True)

    gofer.run(main)
