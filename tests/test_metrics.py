"""gofer.metrics(), its Prometheus collector, and the debug endpoints served
beside a real ``gofer serve`` process, read with real HTTP clients (issue 13)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import gofer
from gofer import _monitor


@pytest.fixture(autouse=True)
def _stop_monitor():
    """metrics() starts the monitor thread for lag probes: stop it after each test."""
    yield
    m = _monitor.the_monitor()
    m.lag = False
    m.stop()


def test_hub_figures() -> None:
    def main() -> dict:
        gofer.metrics()  # starts the lag probes
        ch: gofer.Chan = gofer.Chan()
        for _ in range(5):
            gofer.go(ch.recv_ok)
        gofer.get_hub().call_later(60, print)
        a, b = gofer.socket.socketpair()
        for _ in range(200):
            gofer.yield_now()
        gofer.sleep(0.3)  # real time: a few lag probes run
        m = gofer.metrics()
        ch.close()
        a.close()
        b.close()
        return m

    m = gofer.run(main)
    (h,) = [h for h in m["hubs"] if h["thread"] == threading.get_ident()]
    assert h["coroutines"] == 6  # main and the five receivers
    assert h["io_waiters"] == 0 and h["fds"] >= 0
    assert h["timers"] >= 1
    assert h["switches"] >= 200
    assert h["switches_per_second"] > 0
    assert h["loop_lag"]["samples"] >= 1
    assert 0 <= h["loop_lag"]["p50"] <= h["loop_lag"]["p99"] <= h["loop_lag"]["max"]
    assert h["poller"] in ("epoll", "select")
    assert h["thread_jobs"] == 0


def test_prometheus_text_parses() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    from gofer.debug import prometheus_text

    text = gofer.run(lambda: prometheus_text()).decode()
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert "gofer_coroutines" in fams and "gofer_switches" in fams and "gofer_loop_lag_seconds" in fams
    # One sample per hub, labelled by thread: this thread's hub runs the caller.
    mine = [s for s in fams["gofer_coroutines"].samples if s.labels.get("thread") == "MainThread"]
    assert mine and mine[0].value >= 1, fams["gofer_coroutines"].samples


# -- against a real server process ----------------------------------------------------------

APP = '''
import os
import gofer.debug
from gofer.http import HTTPError


def hello(req):
    if req.path == "/missing":
        raise HTTPError(404)
    if req.path == "/slow":
        gofer.sleep(0.05)
    return b"hello " + req.body()


def make():
    srv = gofer.debug.start_server(("127.0.0.1", 0))
    with open(os.environ["DEBUG_PORT_FILE"] + ".tmp", "w") as f:
        f.write(str(srv.address[1]))
    os.replace(os.environ["DEBUG_PORT_FILE"] + ".tmp", os.environ["DEBUG_PORT_FILE"])
    return hello
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path):
    (tmp_path / "obsapp.py").write_text(APP)
    port_file = tmp_path / "debug.port"
    port = _free_port()
    env = {**os.environ, "DEBUG_PORT_FILE": str(port_file), "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "gofer", "serve", "obsapp:make", "--factory", "-i", "native", "-b", f"127.0.0.1:{port}"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert p.poll() is None, p.stdout.read() if p.stdout else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the application port never opened"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _get(url: str, data: bytes | None = None) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def _http_counters_applied() -> bool:
    from gofer import http

    return hasattr(http.Server(lambda req: b""), "stats")


@pytest.mark.skipif(not _http_counters_applied(), reason="the HTTP server counters (/tmp/obs_http.patch) are not applied")
def test_server_metrics_and_debug_endpoints(served) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    app, debug = served
    for _ in range(5):
        assert _get(app + "/")[0] == 200
    assert _get(app + "/", data=b"x" * 1000)[1] == b"hello " + b"x" * 1000
    for _ in range(2):
        assert _get(app + "/missing")[0] == 404

    status, body, ctype = _get(debug + "/debug/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    fams = {f.name: f for f in parser.text_string_to_metric_families(body.decode())}
    app_port = app.rsplit(":", 1)[1]

    def sample(fam: str, **labels: str) -> float:
        for s in fams[fam].samples:
            if s.name.endswith("_created"):
                continue
            if app_port in s.labels.get("server", "") and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"no {fam} sample for the application's server {labels}: {fams[fam].samples}")

    assert sample("gofer_http_requests") == 8
    assert sample("gofer_http_responses", code="2xx") == 6
    assert sample("gofer_http_responses", code="4xx") == 2
    assert sample("gofer_http_connections") == 9  # 8 requests and the fixture's readiness probe
    assert sample("gofer_http_received_bytes") > 1000
    assert sample("gofer_http_sent_bytes") > 6 * len(b"hello ")
    assert sample("gofer_http_requests_in_progress") == 0
    assert sample("gofer_http_open_connections") >= 0
    assert any(s.value >= 1 for s in fams["gofer_coroutines"].samples)

    status, body, ctype = _get(debug + "/debug/metrics?format=json")
    assert status == 200 and ctype == "application/json"
    m = json.loads(body)
    (srv,) = [s for s in m["servers"] if any(app_port in a for a in s["listening"])]
    assert srv["requests"] == 8 and srv["responses"]["4xx"] == 2
    assert len(m["hubs"]) >= 2  # the application's and the debug server's own

    status, body, _ = _get(debug + "/debug/tasks")
    assert status == 200
    text = body.decode()
    assert "live coroutine(s)" in text and "serve_socket" in text

    # A trace of 0.5 s while a client keeps the application busy.
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            _get(app + "/slow")

    th = threading.Thread(target=client)
    th.start()
    try:
        status, body, ctype = _get(debug + "/debug/trace?seconds=0.5")
    finally:
        stop.set()
        th.join()
    assert status == 200 and ctype == "application/json"
    from tests.test_trace import check_trace

    counts = check_trace(json.loads(body))
    assert counts["slices"] > 0

    assert _get(debug + "/debug/trace?seconds=nope")[0] == 400
    assert _get(debug + "/debug/trace?seconds=1000")[0] == 400
    assert _get(debug + "/debug/nothing")[0] == 404
    assert _get(app + "/debug/tasks")[0] == 200  # not served on the application's port
    assert _get(app + "/debug/tasks")[1] == b"hello "
