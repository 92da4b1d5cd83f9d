"""The networking examples in examples/, each run as a script against real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def start() -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def _start(name: str, *args: str) -> tuple[str, int]:
        p = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line, p.stderr.read() if p.stderr else "no output"
        host, _, port = line.split()[-1].rpartition(":")
        return host, int(port)

    yield _start
    for p in procs:
        p.kill()
        p.communicate()


def test_echo_server(start: object) -> None:
    addr = start("echo_server.py", "127.0.0.1:0")  # type: ignore[operator]
    clients = [socket.create_connection(addr, timeout=10) for _ in range(3)]
    for i, c in enumerate(clients):
        c.sendall(b"hello %d" % i)
    for i, c in enumerate(clients):
        assert c.recv(100) == b"hello %d" % i
        big = bytes(range(256)) * 400
        c.sendall(big)
        got = b""
        while len(got) < len(big):
            got += c.recv(65536)
        assert got == big
        c.close()


def test_line_client() -> None:
    ls = socket.create_server(("127.0.0.1", 0))

    def server() -> None:
        conn, _ = ls.accept()
        with conn:
            conn.sendall(b"hello from the server")

    th = threading.Thread(target=server)
    th.start()
    host, port = ls.getsockname()
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "line_client.py"), f"{host}:{port}"], capture_output=True, text=True, timeout=30
    )
    th.join()
    ls.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from the server\n"


def test_chat_server(start: object) -> None:
    addr = start("chat_server.py", "127.0.0.1:0")  # type: ignore[operator]
    ann = socket.create_connection(addr, timeout=10)
    bob = socket.create_connection(addr, timeout=10)
    a_in, b_in = ann.makefile("rb"), bob.makefile("rb")
    assert a_in.readline() == b"name?\n"
    ann.sendall(b"ann\n")
    # The welcome comes once the broker has ann: only then may bob join, or
    # ann could miss "bob joined" (the two names may arrive in one poll).
    assert a_in.readline() == b"* welcome, ann\n"
    assert b_in.readline() == b"name?\n"
    bob.sendall(b"bob\n")
    assert b_in.readline() == b"* welcome, bob\n"
    assert a_in.readline() == b"* bob joined\n"
    ann.sendall(b"hi bob\n")
    assert b_in.readline() == b"ann: hi bob\n"
    bob.sendall(b"hi ann\n")
    assert a_in.readline() == b"bob: hi ann\n"
    b_in.close()
    bob.close()
    assert a_in.readline() == b"* bob left\n"
    a_in.close()
    ann.close()


def test_port_scanner() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    open_ports = sorted(s.getsockname()[1] for s in listeners)
    spec = ",".join(str(p) for p in [*open_ports, closed.getsockname()[1]])
    closed.close()
    try:
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "port_scanner.py"), "127.0.0.1", spec, "--workers", "2", "--timeout", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for s in listeners:
            s.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:-1] == [f"{p} open" for p in open_ports]


def test_port_scanner_bounds_concurrency() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("port_scanner", EXAMPLES / "port_scanner.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.parse_ports("1-3,8080,2") == [1, 2, 3, 8080]
    with pytest.raises(ValueError, match="bad port range"):
        mod.parse_ports("10-5")

    import gofer

    active = peak = 0
    real = mod.is_open

    def counting(host: str, port: int, timeout: float) -> bool:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            gofer.sleep(0.001)
            return bool(real(host, port, timeout))
        finally:
            active -= 1

    mod.is_open = counting
    assert gofer.run(mod.scan, "127.0.0.1", list(range(1, 41)), 5, 1.0) == []
    assert peak == 5
