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

from bench._http_harness import (
    free_port,
    gofer_serve_cmd,
    granian_cmd,
    load,
    require_wrk,
    server,
    uvicorn_cmd,
    wrk_suite,
)

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


def _server_cmd(system: str, port: int, cert: str, key: str) -> list[str]:
    if system in ("gofer", "gofer-wsgi"):
        iface = "native" if system == "gofer" else "wsgi"
        return gofer_serve_cmd(port, iface, "--certfile", cert, "--keyfile", key)
    if system == "uvicorn":
        return uvicorn_cmd(port, "--ssl-certfile", cert, "--ssl-keyfile", key)
    if system in ("granian-wsgi", "granian-asgi"):
        return granian_cmd(system.split("-")[1], port, "--ssl-certificate", cert, "--ssl-keyfile", key)
    raise ValueError(f"unknown system {system!r}")


def measure(system: str, p: dict[str, Any]) -> dict[str, float]:
    """Start ``system`` with TLS, load it with wrk over https, return rps, CPU us per request and p99."""
    require_wrk()
    port = free_port()
    path = "/json" if p["kind"] == "json" else "/plaintext"
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False  # we connect to 127.0.0.1; the chain is still checked
        with server(_server_cmd(system, port, cert, key), port, tmp, path, ctx) as proc:
            return load(proc, f"https://127.0.0.1:{port}{path}", p)


_NAMES = ("gofer", "gofer-wsgi", "uvicorn", "granian-wsgi", "granian-asgi")
_GOAL = "gofer (native and WSGI) CPU/request over TLS <= granian's, side by side with uvicorn"

SUITES = [wrk_suite(name, "HTTPS", _M, _NAMES, kind, 1, _GOAL) for name, kind in [("https_plaintext", "plaintext"), ("https_json", "json")]]
