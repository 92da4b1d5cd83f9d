"""HTTPS: ``http.Server(ssl=...)`` and ``gofer serve --certfile``, with real clients.

The certificates are the suite's own (``tests/certs``: a test CA, a server
certificate for localhost/127.0.0.1 and a client certificate).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer import http
from gofer import ssl as gssl
from gofer.http._tls import server_context
from gofer.http.testing import ServerThread

ROOT = Path(__file__).resolve().parent.parent
CERTS = Path(__file__).parent / "certs"
CERT, KEY, CA = str(CERTS / "server.pem"), str(CERTS / "server.key"), str(CERTS / "ca.pem")
CLIENT_CERT, CLIENT_KEY = str(CERTS / "client.pem"), str(CERTS / "client.key")
BIG = bytes(range(256)) * (4 * 4096)  # 4 MiB: more than any socket buffer holds

requests = pytest.importorskip("requests")


def app(req: http.Request) -> Any:
    if req.path == "/big":
        return BIG
    if req.method == "POST":
        body = req.body()
        return f"{len(body)} {hashlib.sha256(body).hexdigest()}"
    return b"hello over TLS"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]


@pytest.fixture
def tls_server() -> Iterator[str]:
    with ServerThread(app, ssl=server_context(CERT, KEY)) as srv:
        yield f"https://127.0.0.1:{srv.port}"


def test_requests_over_https_keep_alive_and_large_bodies(tls_server: str) -> None:
    with requests.Session() as s:
        s.trust_env = False  # a CA bundle in the environment would override verify
        s.verify = CA
        for _ in range(3):  # one connection, kept alive
            r = s.get(tls_server + "/")
            assert (r.status_code, r.content) == (200, b"hello over TLS")
        big = s.get(tls_server + "/big")
        assert big.content == BIG
        upload = os.urandom(3 * 1024 * 1024 + 17)
        r = s.post(tls_server + "/up", data=upload)
        assert r.text == f"{len(upload)} {hashlib.sha256(upload).hexdigest()}"
        r = s.post(tls_server + "/up", data=iter([upload[:100000], upload[100000:]]))  # chunked
        assert r.text == f"{len(upload)} {hashlib.sha256(upload).hexdigest()}"


def test_alpn_is_http11_and_the_handshake_is_verified(tls_server: str) -> None:
    port = int(tls_server.rsplit(":", 1)[1])
    ctx = ssl.create_default_context(cafile=CA)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello over TLS")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server + "/", timeout=10)  # the test CA is not trusted by default


def test_a_bad_or_silent_client_costs_only_its_connection() -> None:
    limits = http.Limits(header_timeout=0.5)
    with ServerThread(app, ssl=gssl.server_context(CERT, KEY, alpn=["http/1.1"]), limits=limits) as srv:
        plain = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain text to a TLS port
        silent = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        started = time.monotonic()
        assert silent.recv(100) == b""  # dropped within the header timeout
        assert time.monotonic() - started < 8  # generous: the timeout is 0.5 s
        try:
            while plain.recv(100):  # perhaps a TLS alert, then the close
                pass
        except ConnectionResetError:
            pass
        r = requests.get(f"https://127.0.0.1:{srv.port}/", verify=CA, timeout=10)
        assert r.text == "hello over TLS"
        assert srv.server is not None and len(srv.server.conns) <= 1
        plain.close()
        silent.close()


def test_wsgi_sees_https() -> None:
    with ServerThread(wsgi_app, interface="wsgi", ssl=server_context(CERT, KEY)) as srv:
        r = requests.get(f"https://127.0.0.1:{srv.port}/", verify=CA, timeout=10)
        assert r.text == "https"


class BioClient:
    """A TLS client on a memory BIO: it decides which records go out in one TCP write."""

    def __init__(self, port: int) -> None:
        ctx = ssl.create_default_context(cafile=CA)
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self.out.read())
                self.inc.write(self.raw.recv(65536) or b"")
        self.raw.sendall(self.out.read())

    def records(self, *plain: bytes) -> bytes:
        """The ciphertext of one record per piece (not sent)."""
        for p in plain:
            self.obj.write(p)
        return self.out.read()

    def close_notify(self) -> bytes:
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def read_all(self) -> bytes:
        """Plain text until the server's close_notify or the TCP end."""
        data = b""
        while True:
            try:
                data += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:  # close_notify, a TCP end, or an alert after a ragged one
                return data
            chunk = self.raw.recv(65536)
            if not chunk:
                return data
            self.inc.write(chunk)

    def read_until(self, n: int, marker: bytes) -> bytes:
        data = b""
        while data.count(marker) < n:
            try:
                data += self.obj.read(65536)
            except ssl.SSLWantReadError:
                chunk = self.raw.recv(65536)
                assert chunk, data
                self.inc.write(chunk)
        return data


GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def test_many_records_in_one_tcp_write_are_all_read(tls_server: str) -> None:
    # One edge for 50 records (pipelined requests): the server must read them
    # all, not stop after the first record and wait for an edge that never comes.
    c = BioClient(int(tls_server.rsplit(":", 1)[1]))
    with c.raw:
        c.raw.sendall(c.records(*[GET] * 50))
        assert c.read_until(50, b"hello over TLS").count(b"HTTP/1.1 200 ") == 50
        # A body in many small records after its head, in one write too.
        body = os.urandom(200000)
        pieces = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        head = b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body)
        c.raw.sendall(c.records(head, *pieces))
        assert c.read_until(1, hashlib.sha256(body).hexdigest().encode()).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("end", ["close_notify", "tcp_fin"])
def test_request_and_the_clients_end_in_one_write(tls_server: str, end: str) -> None:
    # The request, then close_notify (or a bare TCP end, a "ragged EOF"), all in
    # one read on the server: it answers, then sees the end and closes.
    c = BioClient(int(tls_server.rsplit(":", 1)[1]))
    with c.raw:
        data = c.records(GET, GET)
        if end == "close_notify":
            c.raw.sendall(data + c.close_notify())
        else:
            c.raw.sendall(data)
            c.raw.shutdown(socket.SHUT_WR)
        got = c.read_all()
        assert got.count(b"HTTP/1.1 200 ") == 2 and got.endswith(b"hello over TLS")
        assert c.raw.recv(65536) == b""  # and the server closed


# -- gofer serve --certfile ------------------------------------------------------------


@pytest.fixture
def serve_tls(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "tlsapp.py").write_text("def handler(req):\n    return b'served ' + req.path.encode()\n")
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "gofer", "serve", "tlsapp:handler", "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning", "--certfile", CERT, "--keyfile", KEY, *args],
            cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
        p.wait(20)
        if p.stderr:
            p.stderr.close()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_gofer_serve_https_with_curl_and_requests(serve_tls: Any) -> None:
    proc, port = serve_tls("--workers", "2", "--ssl-ciphers", "ECDHE+AESGCM")
    url = f"https://localhost:{port}/x"
    r = _curl("--cacert", CA, "-w", " %{http_version} %{ssl_verify_result}", url, url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "served /x 1.1 0served /x 1.1 0"  # two requests on one kept-alive connection
    r = _curl("--cacert", CA, "--tls-max", "1.2", "-v", url)
    assert r.returncode == 0 and "ECDHE" in r.stderr and "GCM" in r.stderr, r.stderr
    assert "ALPN: server accepted http/1.1" in r.stderr or "ALPN, server accepted to use http/1.1" in r.stderr
    assert requests.get(url, verify=CA, timeout=10).text == "served /x"
    proc.terminate()
    assert proc.wait(20) == 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_gofer_serve_ca_certs_requires_a_client_certificate(serve_tls: Any) -> None:
    _, port = serve_tls("--ca-certs", CA)
    url = f"https://localhost:{port}/m"
    assert _curl("--cacert", CA, url).returncode != 0  # no client certificate: refused
    r = _curl("--cacert", CA, "--cert", CLIENT_CERT, "--key", CLIENT_KEY, url)
    assert (r.returncode, r.stdout) == (0, "served /m"), r.stderr
    r2 = requests.get(url, verify=CA, cert=(CLIENT_CERT, CLIENT_KEY), timeout=10)
    assert r2.text == "served /m"


def test_gofer_serve_tls_options_are_checked_at_start(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    base = [sys.executable, "-m", "gofer", "serve", "m:a", "--bind", "127.0.0.1:0"]
    r = subprocess.run([*base, "--keyfile", KEY], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "need --certfile" in r.stderr
    r = subprocess.run([*base, "--certfile", str(tmp_path / "missing.pem")], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "cannot set up TLS" in r.stderr
    r = subprocess.run([*base, "--certfile", CERT, "--keyfile", KEY, "--ssl-ciphers", "NO-SUCH-CIPHER"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot set up TLS" in r.stderr
