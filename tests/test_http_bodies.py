"""Large response bodies (issue 11, item 7): no copy, sendmsg, sendfile, slow readers.

A WSGI body given as a list of large buffers is sent as it is (``sendmsg``,
partial writes resumed), ``wsgi.file_wrapper`` with ``os.sendfile``. The
slow-marked test runs 500 clients that do not read an 8 MiB list body and
reports the server's RSS above the body's own size.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from gofer.http.testing import ServerThread

MiB = 1 << 20
BIG = [bytes([65 + i]) * MiB for i in range(8)]  # 8 MiB in eight 1 MiB buffers


def big_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return BIG


def fetch(port: int, request: bytes, slow: bool = False) -> bytes:
    """Send ``request``; read the whole response (into a reused buffer, pausing if ``slow``)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(request)
        buf = bytearray(65536)
        parts = []
        n_reads = 0
        while True:
            n = s.recv_into(buf)
            if not n:
                return b"".join(parts)
            parts.append(bytes(buf[:n]))
            n_reads += 1
            if slow and n_reads % 16 == 0:
                time.sleep(0.001)  # let the server's socket buffer fill: partial sendmsg writes


def test_a_list_of_large_buffers_is_sent_whole_and_in_order() -> None:
    with ServerThread(big_app, interface="wsgi") as srv:
        out = fetch(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", slow=True)
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"Content-Length: %d\r\n" % (8 * MiB) in head
    assert body == b"".join(BIG)


def test_a_list_body_is_not_copied() -> None:
    with ServerThread(big_app, interface="wsgi") as srv:
        fetch(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # warm up
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            tracemalloc.start()
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                buf = bytearray(1 << 16)
                while s.recv_into(buf):
                    pass
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    assert peak < 2 * MiB  # a join would allocate 8 MiB


def test_streamed_large_pieces_are_sent_in_order() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter(BIG)  # streamed: chunked framing around each piece

    with ServerThread(app, interface="wsgi") as srv:
        out = fetch(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", slow=True)
    body = out.split(b"\r\n\r\n", 1)[1]
    expected = b"".join(b"%X\r\n%b\r\n" % (len(p), p) for p in BIG) + b"0\r\n\r\n"
    assert body == expected


def test_file_wrapper_is_sent_with_sendfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3 * MiB + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    calls = []
    real = os.sendfile

    def counting(*a: Any) -> int:
        calls.append(a[3])
        return real(*a)

    monkeypatch.setattr(os, "sendfile", counting)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        f = open(path, "rb")  # noqa: SIM115 - the server closes it (PEP 3333)
        if environ["PATH_INFO"] == "/tail":
            f.seek(1000)
        return environ["wsgi.file_wrapper"](f)

    with ServerThread(app, interface="wsgi") as srv:
        whole = fetch(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", slow=True)
        tail = fetch(srv.port, b"GET /tail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = fetch(srv.port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    h, body = whole.split(b"\r\n\r\n", 1)
    assert b"Content-Length: %d\r\n" % len(data) in h and body == data
    assert tail.split(b"\r\n\r\n", 1)[1] == data[1000:]
    assert b"Content-Length: %d\r\n" % len(data) in head and head.endswith(b"\r\n\r\n")
    assert calls  # os.sendfile did the sending


def test_file_wrapper_without_a_descriptor_is_iterated() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"hello world"), 4)

    with ServerThread(app, interface="wsgi") as srv:
        out = fetch(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"\r\n\r\nhello world")


_SERVER = textwrap.dedent("""
    import sys
    from gofer.http.testing import ServerThread
    BIG = [bytes([65 + i]) * (1 << 20) for i in range(8)]
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return BIG
    srv = ServerThread(app, interface="wsgi", limits=None).start()
    print(srv.port, flush=True)
    sys.stdin.read()
""")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_500_slow_readers_of_an_8mib_list_body_report_rss() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    socks = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = _rss(proc.pid)  # the body is already in it
        for _ in range(500):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        time.sleep(3)  # the server sends until each socket is full, then parks
        peak = _rss(proc.pid)
    finally:
        for s in socks:
            s.close()
        proc.kill()
        proc.wait()
    above = peak - base
    print(f"\n500 slow readers of an 8 MiB list body: worker RSS {peak / MiB:.1f} MiB, "
          f"{above / MiB:.1f} MiB above the idle server (which holds the body)")
    assert above < 100 * MiB
