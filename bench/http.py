"""HTTP server suites: TechEmpower-style plaintext and JSON, with and without pipelining.

Each measurement starts one server pinned to CPU 0 (``taskset``) and drives
it with ``wrk`` pinned to CPU 1, after a short warm-up. Figures: requests
per second, the server's CPU time per request (user+system of its whole
process tree, from ``/proc`` via psutil, so worker processes and runtime
threads count) and wrk's p99 latency. Pipelining sends 16 requests per
write (a wrk Lua script). Peers: uvicorn (uvloop + httptools, a raw ASGI
app), granian (WSGI and ASGI, one worker, one runtime thread), gevent's
pywsgi, and nginx (``return 200``) as the per-core ceiling.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import Suite

_M = "bench.http"

_PIPELINE_LUA = """
init = function(args)
   local r = {}
   local depth = tonumber(args[1]) or 16
   for i = 1, depth do r[i] = wrk.format() end
   req = table.concat(r)
end
request = function() return req end
"""

_NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
        location /json {{ default_type application/json; return 200 '{{"message":"Hello, World!"}}'; }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _command(system: str, port: int, tmp: str, nginx_conf: str = _NGINX_CONF) -> list[str]:
    py = sys.executable
    if system in ("gofer", "gofer-wsgi", "uvicorn", "gevent"):
        mod = {"uvicorn": "uvicorn", "gevent": "gevent"}.get(system)
        if mod is not None:
            __import__(mod)  # ImportError: the peer is not installed
        if system == "uvicorn":
            __import__("uvloop")
        return [py, "-m", "bench._http_apps", system, str(port)]
    if system in ("granian-wsgi", "granian-asgi"):
        __import__("granian")
        iface = system.split("-")[1]
        cmd = [py, "-m", "granian", "--interface", iface, "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--runtime-threads", "1", "--http", "1", "--no-ws", "--log-level", "error",
               "--backlog", "4096"]
        if iface == "wsgi":
            cmd += ["--blocking-threads", "1"]
        else:
            cmd += ["--loop", "uvloop"]
        return [*cmd, f"bench._http_apps:{iface}"]
    if system == "nginx":
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if nginx is None:
            raise ImportError("nginx", name="nginx")
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf.format(dir=tmp, port=port))
        return [nginx, "-c", conf, "-p", tmp]
    raise ValueError(f"unknown system {system!r}")


def _tree_cpu(pid: int) -> float:
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


def _wait_up(
    port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 20.0, ctx: ssl.SSLContext | None = None
) -> None:
    end = time.monotonic() + timeout
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                s = ctx.wrap_socket(raw) if ctx is not None else raw  # ctx: the server speaks TLS
                s.sendall(req)
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _wrk(url: str, p: dict[str, Any], duration: float, lua: str | None) -> dict[str, float]:
    cmd = [*_pin(1), "wrk", "-t1", f"-c{p['connections']}", f"-d{duration}s", "--latency", "-H", "Accept: */*"]
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


def measure(system: str, p: dict[str, Any]) -> dict[str, float]:
    """Start ``system``, load it with wrk, return rps, CPU us per request and p99."""
    if shutil.which("wrk") is None:
        raise ImportError("wrk", name="wrk")
    port = _free_port()
    path = "/json" if p["kind"] == "json" else "/plaintext"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*_pin(0), *_command(system, port, tmp)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            _wait_up(port, path, proc)
            lua = None
            if p["pipeline"] > 1:
                lua = os.path.join(tmp, "pipeline.lua")
                with open(lua, "w") as f:
                    f.write(_PIPELINE_LUA)
            url = f"http://127.0.0.1:{port}{path}"
            _wrk(url, p, p["warmup"], lua)
            cpu0 = _tree_cpu(proc.pid)
            res = _wrk(url, p, p["duration"], lua)
            cpu1 = _tree_cpu(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if proc.stderr:
                proc.stderr.close()
    n = res.pop("requests")
    res["cpu_us_per_req"] = (cpu1 - cpu0) / n * 1e6 if n else float("nan")
    return res


def _system(name: str) -> Any:
    def run(p: dict[str, Any]) -> dict[str, float]:
        return measure(name, p)

    run.__name__ = name
    return run


gofer_native = _system("gofer")
gofer_wsgi = _system("gofer-wsgi")
uvicorn_asgi = _system("uvicorn")
granian_wsgi = _system("granian-wsgi")
granian_asgi = _system("granian-asgi")
gevent_pywsgi = _system("gevent")
nginx = _system("nginx")

_SYSTEMS = {
    "gofer": f"{_M}:gofer_native",
    "gofer-wsgi": f"{_M}:gofer_wsgi",
    "uvicorn": f"{_M}:uvicorn_asgi",
    "granian-wsgi": f"{_M}:granian_wsgi",
    "granian-asgi": f"{_M}:granian_asgi",
    "gevent-pywsgi": f"{_M}:gevent_pywsgi",
    "nginx": f"{_M}:nginx",
}
_GOAL = "gofer (native and WSGI) CPU/request <= granian's and <= 0.55x uvicorn's"


def _suite(name: str, kind: str, pipeline: int) -> Suite:
    what = "plaintext" if kind == "plaintext" else "JSON"
    depth = f", pipelined x{pipeline}" if pipeline > 1 else ""
    return Suite(
        name=name,
        description=f"HTTP hello-world {what}{depth}: server CPU per request (server on CPU 0, wrk on CPU 1)",
        metric="cpu_us_per_req",
        unit="us CPU per request",
        systems=dict(_SYSTEMS),
        params={"kind": kind, "pipeline": pipeline, "connections": 100, "duration": 8, "warmup": 2},
        quick={"duration": 3, "warmup": 1},
        rounds=3,
        quick_rounds=1,
        timeout=90.0,
        goal=_GOAL,
    )


SUITES = [
    _suite("http-plaintext", "plaintext", 1),
    _suite("http-json", "json", 1),
    _suite("http-plaintext-pipelined", "plaintext", 16),
    _suite("http-json-pipelined", "json", 16),
]
