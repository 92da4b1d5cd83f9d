"""HTTPS hello-world suites: server CPU per request over TLS, one worker each.

The same workload as :mod:`bench.http` (server pinned to CPU 0, ``wrk``
over ``https://`` pinned to CPU 1, a warm-up, then the server's process-tree
CPU per request, requests/s and p99), with TLS on every server. The
certificate (a self-signed ECDSA P-256 one for ``localhost``, key in PKCS#8
as granian needs) is made at run time with ``openssl req``; keep-alive
connections make the handshakes a negligible part, so the figure is record
encryption plus HTTP. Systems: ``gofer serve --certfile/--keyfile`` (native
and WSGI), uvicorn ``--ssl-certfile/--ssl-keyfile`` (uvloop + httptools) and
granian ``--ssl-certificate/--ssl-keyfile`` (WSGI and ASGI).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from typing import Any

from bench import Suite
from bench.http import _command, _free_port, _pin, _tree_cpu, _wait_up, _wrk
from bench.http_mem import _gofer_serve_cmd, _uvicorn_cmd

_M = "bench.https"


def make_cert(tmp: str) -> tuple[str, str]:
    """A throwaway self-signed certificate and key for localhost; return their paths."""
    if shutil.which("openssl") is None:
        raise ImportError("openssl", name="openssl")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


def _server_cmd(system: str, port: int, tmp: str, cert: str, key: str) -> list[str]:
    if system in ("gofer", "gofer-wsgi"):
        iface = "native" if system == "gofer" else "wsgi"
        return _gofer_serve_cmd(port, iface, "--certfile", cert, "--keyfile", key)
    if system == "uvicorn":
        return _uvicorn_cmd(port, "--ssl-certfile", cert, "--ssl-keyfile", key)
    if system in ("granian-wsgi", "granian-asgi"):
        *opts, app = _command(system, port, tmp)  # the plaintext suite's granian command, less the app
        return [*opts, "--ssl-certificate", cert, "--ssl-keyfile", key, app]
    raise ValueError(f"unknown system {system!r}")


def measure(system: str, p: dict[str, Any]) -> dict[str, float]:
    """Start ``system`` with TLS, load it with wrk over https, return rps, CPU us per request and p99."""
    if shutil.which("wrk") is None:
        raise ImportError("wrk", name="wrk")
    port = _free_port()
    path = "/json" if p["kind"] == "json" else "/plaintext"
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        cmd = [*_pin(0), *_server_cmd(system, port, tmp, cert, key)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False  # we connect to 127.0.0.1; the chain is still checked
            _wait_up(port, path, proc, ctx=ctx)
            url = f"https://127.0.0.1:{port}{path}"
            _wrk(url, p, p["warmup"], None)
            cpu0 = _tree_cpu(proc.pid)
            res = _wrk(url, p, p["duration"], None)
            cpu1 = _tree_cpu(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
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

_SYSTEMS = {
    "gofer": f"{_M}:gofer_native",
    "gofer-wsgi": f"{_M}:gofer_wsgi",
    "uvicorn": f"{_M}:uvicorn_asgi",
    "granian-wsgi": f"{_M}:granian_wsgi",
    "granian-asgi": f"{_M}:granian_asgi",
}


def _suite(name: str, kind: str) -> Suite:
    what = "plaintext" if kind == "plaintext" else "JSON"
    return Suite(
        name=name,
        description=f"HTTPS hello-world {what}: server CPU per request (server on CPU 0, wrk on CPU 1)",
        metric="cpu_us_per_req",
        unit="us CPU per request",
        systems=dict(_SYSTEMS),
        params={"kind": kind, "pipeline": 1, "connections": 100, "duration": 8, "warmup": 2},
        quick={"duration": 3, "warmup": 1},
        rounds=3,
        quick_rounds=1,
        timeout=90.0,
        goal="gofer (native and WSGI) CPU/request over TLS <= granian's, side by side with uvicorn",
    )


SUITES = [_suite("https_plaintext", "plaintext"), _suite("https_json", "json")]
