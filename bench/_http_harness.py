"""What the HTTP suites share: server commands, a server's life, wrk runs, CPU time.

The suites :mod:`bench.http`, :mod:`bench.https` and :mod:`bench.http_mem`
each start one server process pinned to CPU 0 (:func:`server`: started with
the checkout on its path, waited on until it answers 200, stopped after),
and the first two load it with ``wrk`` pinned to CPU 1 (:func:`load`: a
warm-up, then the measured run, with the server's process-tree CPU time
read around it). The command builders start each system the same way in
every suite: the in-process launchers of :mod:`bench._http_apps`,
``gofer serve``, uvicorn's and granian's CLIs, and nginx with a generated
configuration. :func:`wrk_suite` declares a wrk suite.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench import Suite, child_env
from bench._util import stop

APPS = "bench._http_apps"

_NGINX_CONF = """
worker_processes 1;
{limits}daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections {max_conns}; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    {keep_alive}keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
        location /json {{ default_type application/json; return 200 '{{"message":"Hello, World!"}}'; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    """The ``taskset`` prefix that runs a command on ``cpu`` (none on one CPU or without taskset)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise ImportError("wrk", name="wrk")


# -- server commands ----------------------------------------------------------------------


def apps_cmd(system: str, port: int) -> list[str]:
    """One of :mod:`bench._http_apps`'s in-process launchers (gofer, gofer-wsgi, uvicorn, gevent)."""
    for mod in {"uvicorn": ("uvicorn", "uvloop"), "gevent": ("gevent",)}.get(system, ()):
        __import__(mod)  # ImportError: the peer is not installed
    return [sys.executable, "-m", APPS, system, str(port)]


def gofer_serve_cmd(port: int, interface: str, *extra: str) -> list[str]:
    """``gofer serve``, one worker, serving the benchmark's native or WSGI app."""
    app = f"{APPS}:native" if interface == "native" else f"{APPS}:wsgi"
    return [sys.executable, "-m", "gofer", "serve", "-b", f"127.0.0.1:{port}", "-i", interface,
            "--workers", "1", "--backlog", "4096", "--log-level", "warning", *extra, app]


def uvicorn_cmd(port: int, *extra: str) -> list[str]:
    """uvicorn's CLI (uvloop + httptools) serving the benchmark's raw ASGI app."""
    for mod in ("uvicorn", "uvloop", "httptools"):
        __import__(mod)  # ImportError: the peer is not installed
    return [sys.executable, "-m", "uvicorn", f"{APPS}:asgi", "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
            "--no-access-log", "--lifespan", "off", "--backlog", "4096", *extra]


def granian_cmd(interface: str, port: int, *extra: str) -> list[str]:
    """granian (``wsgi`` or ``asgi``), one worker and one runtime thread."""
    __import__("granian")
    cmd = [sys.executable, "-m", "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--runtime-threads", "1", "--http", "1", "--no-ws", "--log-level", "error",
           "--backlog", "4096"]
    cmd += ["--blocking-threads", "1"] if interface == "wsgi" else ["--loop", "uvloop"]
    return [*cmd, *extra, f"{APPS}:{interface}"]


def nginx_cmd(tmp: str, port: int, max_conns: int = 4096, keep_alive_s: int | None = None) -> list[str]:
    """nginx, one worker, answering both endpoints from its configuration (written in ``tmp``)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        raise ImportError("nginx", name="nginx")
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_NGINX_CONF.format(
            dir=tmp, port=port, max_conns=max_conns,
            limits=f"worker_rlimit_nofile {max_conns};\n" if max_conns > 4096 else "",
            keep_alive=f"keepalive_timeout {keep_alive_s}s;\n    " if keep_alive_s else "",
        ))
    return [nginx, "-c", conf, "-p", tmp]


# -- a server's life ----------------------------------------------------------------------


@contextlib.contextmanager
def server(
    cmd: list[str], port: int, tmp: str, path: str = "/plaintext", ctx: ssl.SSLContext | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` on CPU 0 until it answers ``path`` with 200 on ``port``; stop it on leaving.

    ``ctx``: the server speaks TLS. Its stderr goes to a file in ``tmp``,
    whose end is quoted if it exits or never answers.
    """
    err_path = os.path.join(tmp, "server.err")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([*pin(0), *cmd], stdout=subprocess.DEVNULL, stderr=err,
                                env=child_env(PYTHONUNBUFFERED="1"))
    try:
        try:
            _wait_up(port, path, proc, ctx)
        except RuntimeError as exc:
            with open(err_path, "rb") as f:
                tail = f.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{exc}: {tail}" if tail else str(exc)) from None
        yield proc
    finally:
        stop(proc)


def _wait_up(port: int, path: str, proc: subprocess.Popen[bytes], ctx: ssl.SSLContext | None,
             timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                s = ctx.wrap_socket(raw) if ctx is not None else raw
                s.sendall(req)
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


# -- load and CPU time --------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants (workers, runtime threads)."""
    import psutil

    total = 0.0
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def load(proc: subprocess.Popen[bytes], url: str, p: dict[str, Any], lua: str | None = None) -> dict[str, float]:
    """wrk on ``url`` for ``p['warmup']`` s, then measured for ``p['duration']`` s.

    Returns wrk's figures (rps, p99_ms, non_2xx) and ``cpu_us_per_req``,
    the server tree's CPU time over the measured run per request.
    """
    _wrk(url, p, p["warmup"], lua)
    cpu0 = tree_cpu(proc.pid)
    res = _wrk(url, p, p["duration"], lua)
    cpu1 = tree_cpu(proc.pid)
    n = res.pop("requests")
    res["cpu_us_per_req"] = (cpu1 - cpu0) / n * 1e6 if n else float("nan")
    return res


def _wrk(url: str, p: dict[str, Any], duration: float, lua: str | None) -> dict[str, float]:
    cmd = [*pin(1), "wrk", "-t1", f"-c{p['connections']}", f"-d{duration}s", "--latency", "-H", "Accept: */*"]
    if lua:
        cmd += ["-s", lua]
    cmd.append(url)
    if lua:
        cmd += ["--", str(p["pipeline"])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    reqs = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not reqs or not rps:
        raise RuntimeError(f"could not read wrk's output: {out[-300:]!r}")
    res = {"requests": float(reqs.group(1)), "rps": float(rps.group(1))}
    if p99 and float(p99.group(1)) > 0:  # wrk records no latency for a pipelining script
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
        res["p99_ms"] = float(p99.group(1)) * scale
    if errors:
        res["non_2xx"] = float(errors.group(1))
    return res


def wrk_suite(name: str, protocol: str, module: str, names: tuple[str, ...], kind: str, pipeline: int,
              goal: str) -> Suite:
    """A suite whose systems are ``module:measure:name``, loaded by wrk with ``kind`` requests."""
    what = "plaintext" if kind == "plaintext" else "JSON"
    depth = f", pipelined x{pipeline}" if pipeline > 1 else ""
    return Suite(
        name=name,
        description=f"{protocol} hello-world {what}{depth}: server CPU per request (server on CPU 0, wrk on CPU 1)",
        metric="cpu_us_per_req",
        unit="us CPU per request",
        systems={n: f"{module}:measure:{n}" for n in names},
        params={"kind": kind, "pipeline": pipeline, "connections": 100, "duration": 8, "warmup": 2},
        quick={"duration": 3, "warmup": 1},
        rounds=3,
        quick_rounds=1,
        timeout=90.0,
        goal=goal,
    )
