"""``gofer serve`` with real processes: balanced workers, lossless stop and reload.

The application holds a request until the test creates a file, so "in
progress" is a state the test controls, not a race against a sleep.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="needs fork() and /proc/<pid>/task/<tid>/children (Linux)",
)

APP = textwrap.dedent(
    """
    import os
    import time
    import gofer

    HERE = os.path.dirname(os.path.abspath(__file__))
    VERSION = open(os.path.join(HERE, "version.txt")).read().strip()

    def handler(req):
        if req.path == "/hold":
            open(os.path.join(HERE, "holding"), "w").close()
            while not os.path.exists(os.path.join(HERE, "release")):
                gofer.sleep(0.01)
            return f"held {VERSION} {os.getpid()}"
        if req.path == "/block":  # blocks the whole worker, not just this coroutine
            open(os.path.join(HERE, "holding"), "w").close()
            while not os.path.exists(os.path.join(HERE, "release")):
                time.sleep(0.01)
            return f"held {VERSION} {os.getpid()}"
        return f"{VERSION} {os.getpid()}"
    """
)


class Served:
    """A running ``gofer serve`` and its stderr, read by a thread."""

    def __init__(self, appdir: Path, *args: str) -> None:
        self.appdir = appdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gofer", "serve", "app:handler", "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "info", *args],
            cwd=appdir, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"gofer serve exited: {''.join(self.log)}"
            try:
                self.get("/")
                break
            except OSError:
                assert time.monotonic() < deadline, "gofer serve did not come up"
                time.sleep(0.05)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if text in self.lines.get(timeout=max(0.01, deadline - time.monotonic())):
                    return
            except queue.Empty:
                raise AssertionError(f"no log line with {text!r}: {''.join(self.log)}") from None

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return str(r.read().decode())

    def workers(self) -> set[int]:
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return {int(x) for x in f.read().split()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            for pid in self.workers():
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def appdir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "version.txt").write_text("v1")
    return tmp_path


@pytest.fixture
def serve(appdir: Path) -> Iterator[object]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        started.append(Served(appdir, *args))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def _wait_for(cond: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _read_responses(sock: socket.socket) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Every response on ``sock`` until the server closes it (Content-Length framing)."""
    sock.settimeout(20)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        status, *fields = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(b":") for f in fields)}
        n = int(headers[b"content-length"])
        out.append((status, headers, data[:n]))
        data = data[n:]
    return out


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


def test_each_worker_gets_a_fair_share_of_connections(serve: object) -> None:
    srv = serve("--workers", "2")  # type: ignore[operator]
    _wait_for(lambda: len(srv.workers()) == 2, "two workers")
    conns = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(50)]
    served: Counter[bytes] = Counter()
    for c in conns:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for c in conns:
        (_, _, body), = _read_responses(c)
        served[body.split()[1]] += 1
        c.close()
    # Each worker has its own SO_REUSEPORT listener and the kernel hashes
    # connections over them: 50 land about evenly (one shared socket gave
    # [50, 0]). Fewer than 10 on one worker has a chance of about 1e-6.
    assert len(served) == 2 and min(served.values()) >= 10, served


def test_sigterm_refuses_new_connections_and_finishes_requests_in_progress(serve: object, appdir: Path) -> None:
    srv = serve("--workers", "2", "--graceful-timeout", "60")  # type: ignore[operator]
    busy = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    busy.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    _wait_for((appdir / "holding").exists, "the held request to start")
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")  # now an idle keep-alive connection
    srv.proc.send_signal(signal.SIGTERM)
    _wait_for(lambda: _refused(srv.port), "new connections to be refused")
    assert _read_responses(idle) == []  # idle keep-alive connections are closed...
    assert srv.proc.poll() is None  # ...while the held request is still in progress
    (appdir / "release").touch()
    ((status, headers, body),) = _read_responses(busy)
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b"held v1 ")
    assert headers[b"connection"] == b"close"
    assert srv.proc.wait(30) == 0
    busy.close()
    idle.close()


def test_a_request_that_arrived_on_a_keep_alive_connection_is_served(serve: object, appdir: Path) -> None:
    srv = serve("--workers", "1", "--graceful-timeout", "60")  # type: ignore[operator]
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
    busy = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    busy.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
    _wait_for((appdir / "holding").exists, "the worker to block")
    # The worker is stuck in /block: the next request arrives, unread, on the
    # idle keep-alive connection, and the stop comes before the worker runs again.
    idle.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
    srv.proc.send_signal(signal.SIGTERM)
    srv.wait_log("SIGTERM received")  # logged once the worker has been sent it
    (appdir / "release").touch()
    ((status, headers, body),) = _read_responses(idle)
    assert status == b"HTTP/1.1 200 OK" and body.startswith(b"v1 ")
    assert headers[b"connection"] == b"close"
    assert _read_responses(busy)[0][2].startswith(b"held v1 ")
    assert srv.proc.wait(30) == 0
    busy.close()
    idle.close()


def test_sighup_reloads_without_losing_a_connection(serve: object, appdir: Path) -> None:
    srv = serve("--workers", "2")  # type: ignore[operator]
    srv.wait_log("2 worker(s) ready")
    stop = threading.Event()
    errors: list[BaseException] = []
    done = Counter[str]()

    def client(keep_alive: bool) -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        while not stop.is_set():
            try:
                if keep_alive:  # a new connection only when the server said close
                    conn.request("GET", "/")
                    r = conn.getresponse()
                    assert r.status == 200
                    done[r.read().split()[0].decode()] += 1
                else:
                    done[srv.get("/").split()[0]] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=client, args=(k,)) for k in (True, True, False)]
    for t in threads:
        t.start()
    for version in ("v2", "v3", "v4"):
        old = srv.workers()
        (appdir / "version.txt").write_text(version)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log("new worker(s) ready")
        _wait_for(lambda: not (srv.workers() & old) and len(srv.workers()) == 2, "the old workers to stop")  # noqa: B023
        assert srv.get("/").startswith(version + " ")
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert done["v1"] and done["v4"]
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0


def test_a_reload_that_cannot_start_keeps_the_old_workers(serve: object, appdir: Path) -> None:
    srv = serve("--workers", "2")  # type: ignore[operator]
    srv.wait_log("2 worker(s) ready")  # both have imported the application
    old = srv.get("/")
    (appdir / "app.py").write_text("this is not python\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("reload failed")
    assert srv.get("/").startswith("v1 ")
    (appdir / "app.py").write_text(APP)
    (appdir / "version.txt").write_text("v2")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("new worker(s) ready")
    _wait_for(lambda: srv.get("/").startswith("v2 "), "the fixed application")
    assert old.startswith("v1 ")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
