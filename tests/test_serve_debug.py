"""``gofer serve --debug-bind``: the debug endpoints on their own listener, one port per worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""


def _two_free_ports() -> tuple[int, int]:
    """A free port P such that P+1 is free too (the second worker's)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            with socket.socket() as b:
                # As the debug listener does: a port in TIME_WAIT is no obstacle.
                b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    b.bind(("127.0.0.1", p + 1))
                except OSError:
                    continue
        with socket.socket() as c:
            c.bind(("127.0.0.1", 0))
            return p, c.getsockname()[1]
    pytest.skip("no two consecutive free ports")


def _get(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_debug_endpoints_per_worker_and_not_on_the_app_port(tmp_path: Path) -> None:
    (tmp_path / "dbgapp.py").write_text(APP)
    debug_port, app_port = _two_free_ports()
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable, "-m", "gofer", "serve", "dbgapp:app", "--workers", "2",
        "-b", f"127.0.0.1:{app_port}", "--debug-bind", f"127.0.0.1:{debug_port}",
    ]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        pids = set()
        for port in (debug_port, debug_port + 1):
            status, text = _get(f"http://127.0.0.1:{port}/debug/tasks", deadline)
            assert status == 200 and "live coroutine(s)" in text
            status, metrics = _get(f"http://127.0.0.1:{port}/debug/metrics", deadline)
            assert status == 200 and "gofer_coroutines" in metrics
            pids.add(text)
        assert len(pids) == 2  # two workers, two dumps
        assert _get(f"http://127.0.0.1:{app_port}/", deadline) == (200, "app")
        # The application's port serves the application only.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/debug/tasks", timeout=10) as r:
                assert r.read() == b"app"
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_debug_bind_that_cannot_listen_stops_serve(tmp_path: Path) -> None:
    (tmp_path / "dbgapp.py").write_text(APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        r = subprocess.run(
            [sys.executable, "-m", "gofer", "serve", "dbgapp:app", "-b", "127.0.0.1:0",
             "--debug-bind", f"127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, timeout=60,
        )
    assert r.returncode != 0
    assert "cannot serve the debug endpoints" in r.stderr


def test_limit_flags_reach_the_limits() -> None:
    from gofer.http.cli import build_parser, limits_from

    args = build_parser().parse_args(
        ["m:app", "--limit-concurrency", "100", "--limit-in-progress", "10", "--retry-after", "3",
         "--min-body-rate", "0", "--timeout-body", "30", "--limit-field-size", "4096"]
    )
    lim = limits_from(args)
    assert (lim.max_connections, lim.max_in_progress, lim.retry_after) == (100, 10, 3)
    assert lim.min_body_rate is None and lim.body_timeout == 30 and lim.max_field_size == 4096
    defaults = limits_from(build_parser().parse_args(["m:app"]))
    assert defaults.max_connections is None and defaults.min_body_rate == 64.0 and defaults.body_timeout is None


def test_a_bad_limit_is_refused_before_any_worker_starts() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gofer", "serve", "nosuchmodule:app", "--limit-concurrency", "-5"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "max_connections must be a positive int" in r.stderr
