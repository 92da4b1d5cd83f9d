"""Flask, Bottle, Falcon and Django under ``gofer serve`` and gunicorn's sync worker, byte for byte.

Each framework's application (``http_framework_apps``) runs in a real
``gofer serve`` process and a real gunicorn (sync worker) process on
127.0.0.1 ephemeral ports. A raw socket sends each request and reads the
answer to EOF, so what is compared is the bytes on the wire: the status
line, the header fields in order (less ``Date``, ``Server`` and
``Connection``) and the body. Skipped where gunicorn or a framework is
missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
GUNICORN = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
pytestmark = pytest.mark.skipif(
    GUNICORN is None or importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
)

FORM = b"a=1&b=two+words&c=%C3%A9"
JSON = b'{"x": [1, 2, 3], "y": "z"}'


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (5, data[:5], len(data) - 5, data[5:])


REQUESTS = {
    "GET": b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "HEAD": b"HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "form POST": b"POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%b" % (len(FORM), FORM),
    "JSON POST": b"POST /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(JSON), JSON),
    "chunked JSON POST": b"POST /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(JSON),
    "404": b"GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "405": b"DELETE /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
}
FRAMEWORKS = {"flask": "flask", "bottle": "bottle", "falcon": "falcon", "django": "django"}
_SKIP = {b"date", b"server", b"connection"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def _server(argv: list[str], port: int) -> Iterator[int]:
    # One hash seed for both: werkzeug builds its Allow header from a set.
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        parts = []
        while b := s.recv(65536):
            parts.append(b)
    return b"".join(parts)


def _comparable(raw: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *fields = head.split(b"\r\n")
    kept = [f for f in fields if f.partition(b":")[0].strip().lower() not in _SKIP]
    return status, kept, body


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_framework_is_byte_identical_to_gunicorn(framework: str) -> None:
    if importlib.util.find_spec(FRAMEWORKS[framework]) is None:
        pytest.skip(f"{framework} is not installed")
    app = f"http_framework_apps:{framework}_app"
    answers: dict[str, dict[str, bytes]] = {}
    gofer_port, guni_port = _free_port(), _free_port()
    gofer_argv = [sys.executable, "-m", "gofer", "serve", "-i", "wsgi", "-b", f"127.0.0.1:{gofer_port}", app]
    guni_argv = [str(GUNICORN), "-k", "sync", "-w", "1", "-b", f"127.0.0.1:{guni_port}", app]
    for name, argv, port in (("gofer", gofer_argv, gofer_port), ("gunicorn", guni_argv, guni_port)):
        with _server(argv, port):
            answers[name] = {what: _exchange(port, req) for what, req in REQUESTS.items()}
    for what in REQUESTS:
        g = _comparable(answers["gofer"][what])
        u = _comparable(answers["gunicorn"][what])
        assert g == u, f"{framework} {what}:\n gofer    {g}\n gunicorn {u}"
