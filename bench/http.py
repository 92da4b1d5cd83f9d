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
import tempfile
from typing import Any

from bench._http_harness import (
    apps_cmd,
    free_port,
    granian_cmd,
    load,
    nginx_cmd,
    require_wrk,
    server,
    wrk_suite,
)

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


def _command(system: str, port: int, tmp: str) -> list[str]:
    if system in ("gofer", "gofer-wsgi", "uvicorn", "gevent-pywsgi"):
        return apps_cmd(system.removesuffix("-pywsgi"), port)
    if system in ("granian-wsgi", "granian-asgi"):
        return granian_cmd(system.split("-")[1], port)
    if system == "nginx":
        return nginx_cmd(tmp, port)
    raise ValueError(f"unknown system {system!r}")


def measure(system: str, p: dict[str, Any]) -> dict[str, float]:
    """Start ``system``, load it with wrk, return rps, CPU us per request and p99."""
    require_wrk()
    port = free_port()
    path = "/json" if p["kind"] == "json" else "/plaintext"
    with tempfile.TemporaryDirectory() as tmp, server(_command(system, port, tmp), port, tmp, path) as proc:
        lua = None
        if p["pipeline"] > 1:
            lua = os.path.join(tmp, "pipeline.lua")
            with open(lua, "w") as f:
                f.write(_PIPELINE_LUA)
        return load(proc, f"http://127.0.0.1:{port}{path}", p, lua)


_NAMES = ("gofer", "gofer-wsgi", "uvicorn", "granian-wsgi", "granian-asgi", "gevent-pywsgi", "nginx")
_GOAL = "gofer (native and WSGI) CPU/request <= granian's and <= 0.55x uvicorn's"

SUITES = [
    wrk_suite(name, "HTTP", _M, _NAMES, kind, pipeline, _GOAL)
    for name, kind, pipeline in [
        ("http-plaintext", "plaintext", 1),
        ("http-json", "json", 1),
        ("http-plaintext-pipelined", "plaintext", 16),
        ("http-json-pipelined", "json", 16),
    ]
]
