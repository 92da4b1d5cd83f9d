"""``gofer serve``: workers, interface detection, graceful reload and shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.http.cli import build_parser, detect_interface, load_app

ROOT = Path(__file__).resolve().parent.parent


APP = textwrap.dedent(
    """
    import os
    import gofer

    VERSION = open(os.path.join(os.path.dirname(__file__), "version.txt")).read().strip()

    def handler(req):
        if req.path == "/slow":
            gofer.sleep(1.0)
        return f"{VERSION} {os.getpid()}"

    def wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"wsgi {environ['PATH_INFO']}".encode()]
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode())


def wait_up(url: str, proc: subprocess.Popen[bytes], deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"gofer serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            fetch(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gofer serve did not come up")


@pytest.fixture
def appdir(tmp_path: Path) -> Path:
    (tmp_path / "cliapp.py").write_text(APP)
    (tmp_path / "version.txt").write_text("v1")
    return tmp_path


@pytest.fixture
def serve(appdir: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gofer", "serve", *args, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=appdir, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_up(url + "/", proc)
        return proc, url

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        if p.stderr:
            p.stderr.close()


def test_native_with_workers(serve: object) -> None:
    proc, url = serve("cliapp:handler", "--workers", "2")  # type: ignore[operator]
    pids = {fetch(url + "/").split()[1] for _ in range(40)}
    assert all(fetch(url + "/").startswith("v1 ") for _ in range(3))
    assert 1 <= len(pids) <= 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_wsgi_autodetected(serve: object) -> None:
    proc, url = serve("cliapp:wsgi", "--access-log")  # type: ignore[operator]
    assert fetch(url + "/path") == "wsgi /path"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    assert b"GET /path HTTP/1.1" in (proc.stderr.read() if proc.stderr else b"")


def test_sighup_reload_is_graceful(serve: object, appdir: Path) -> None:
    proc, url = serve("cliapp:handler")  # type: ignore[operator]
    assert fetch(url + "/").startswith("v1 ")
    import threading

    slow: list[str] = []
    th = threading.Thread(target=lambda: slow.append(fetch(url + "/slow")))
    th.start()
    time.sleep(0.3)  # the slow request is in progress in the old worker
    (appdir / "version.txt").write_text("v2")
    proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + 20
    while time.monotonic() < end and not fetch(url + "/").startswith("v2 "):
        time.sleep(0.1)
    assert fetch(url + "/").startswith("v2 ")  # new workers import the app afresh
    th.join(10)
    assert slow and slow[0].startswith("v1 ")  # the old worker finished its request
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_bad_app_reference_exits(appdir: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run(
        [sys.executable, "-m", "gofer", "serve", "cliapp:nope", "--workers", "3", "--bind", f"127.0.0.1:{free_port()}"],
        cwd=appdir, env=env, capture_output=True, timeout=60,
    )
    assert r.returncode == 3  # and every worker is gone (subprocess.run returned)
    assert b"has no attribute" in r.stderr


def test_helpers(appdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(appdir)
    monkeypatch.syspath_prepend(str(appdir))
    assert detect_interface(load_app("cliapp:handler")) == "native"
    assert detect_interface(load_app("cliapp:wsgi")) == "wsgi"
    with pytest.raises(SystemExit):
        load_app("cliapp")
    args = build_parser().parse_args(["m:a", "-w", "3", "--interface", "wsgi", "--timeout-keep-alive", "2"])
    assert (args.workers, args.interface, args.timeout_keep_alive) == (3, "wsgi", 2.0)


@pytest.mark.skipif(pytest.importorskip("flask") is None, reason="flask is not installed")
def test_flask_example_served(serve: object) -> None:
    proc, url = serve("examples.flask_app:app")  # type: ignore[operator]
    assert fetch(url + "/") == "Hello from Flask on gofer!\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
