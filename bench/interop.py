"""Interop suites: existing blocking libraries made concurrent (issue 9).

``interop_requests``: the ``requests`` library, unchanged, making 10,000 GETs
100 at a time (100 workers, each with its own ``Session`` and keep-alive
connection) against one local HTTP server, under ``gofer.patch()`` (100
coroutines), under gevent's ``monkey.patch_all()`` (100 greenlets) and on a
pool of 100 OS threads. The server is a separate process (gofer's native
HTTP server answering "Hello, World!"), the same for every system and
pinned to CPU 1 while the client is pinned to CPU 0, so the figures are
the client's: wall time for the whole batch and the client process's CPU
time (user + system, all its threads) per request.

``interop_pg``: 100 concurrent PostgreSQL clients, each on its own
connection, running ``SELECT 1`` in a loop: psycopg 3 under
``gofer.patch()`` ("gofer"), psycopg2 under ``gofer.patch()`` with gofer's
wait callback ("gofer-psycopg2", the same driver as gevent's), psycopg2
under gevent with a wait callback (gevent's documented recipe,
``psycogreen``'s), and asyncpg on uvloop. The bench
starts a throw-away PostgreSQL server (Debian's ``postgresql`` package) on
loopback, pinned to CPU 1; the figure is queries per second and the
client's CPU time per query.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench import Suite, child_env

_M = "bench.interop"

_SERVER = """
import gofer
from gofer import http
def hello(req):
    return b"Hello, World!"
def main():
    lsock = http.listen(("127.0.0.1", 0))
    print(lsock.getsockname()[1], flush=True)
    http.Server(hello).serve_socket(lsock)
gofer.run(main)
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pin(cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    """A gofer HTTP server in its own process on CPU 1; yields its port."""
    cmd = [sys.executable, "-c", _SERVER]
    if os.path.exists("/usr/bin/taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=child_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the HTTP server for the bench did not start")
        yield int(line)
    finally:
        proc.terminate()
        proc.wait(10)


def _result(n: int, wall: float, cpu: float, errors: int) -> dict[str, float]:
    if errors:
        raise RuntimeError(f"{errors} of {n} requests failed")
    return {"wall_s": wall, "cpu_us_per_request": cpu / n * 1e6, "requests_per_s": n / wall}


def _worker_loop(url: str, count: int) -> int:
    import requests

    bad = 0
    with requests.Session() as s:
        for _ in range(count):
            r = s.get(url)
            if r.status_code != 200 or r.content != b"Hello, World!":
                bad += 1
    return bad


def requests_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _http_server() as port:
        url = f"http://127.0.0.1:{port}/"
        _worker_loop(url, 10)  # warm-up: imports, first connection

        def main() -> int:
            ts = [gofer.go(_worker_loop, url, n // conc) for _ in range(conc)]
            return sum(t.join() for t in ts)

        c0, t0 = _cpu(), time.perf_counter()
        bad = gofer.run(main)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return _result(n, wall, cpu, bad)


def requests_gevent(p: dict[str, Any]) -> dict[str, float]:
    from gevent import monkey

    monkey.patch_all()
    import gevent

    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _http_server() as port:
        url = f"http://127.0.0.1:{port}/"
        _worker_loop(url, 10)
        c0, t0 = _cpu(), time.perf_counter()
        gs = [gevent.spawn(_worker_loop, url, n // conc) for _ in range(conc)]
        gevent.joinall(gs, raise_error=True)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        bad = sum(g.value for g in gs)
    return _result(n, wall, cpu, bad)


def requests_threads(p: dict[str, Any]) -> dict[str, float]:
    from concurrent.futures import ThreadPoolExecutor

    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _http_server() as port:
        url = f"http://127.0.0.1:{port}/"
        _worker_loop(url, 10)
        c0, t0 = _cpu(), time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            bad = sum(pool.map(lambda _: _worker_loop(url, n // conc), range(conc)))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return _result(n, wall, cpu, bad)


# -- PostgreSQL -------------------------------------------------------------------


@contextlib.contextmanager
def _postgres() -> Iterator[int]:
    """A throw-away PostgreSQL server on loopback (CPU 1); yields its port."""
    from gofer.testing.services import start_postgres

    with start_postgres(max_connections=200, cpu=1) as svc:
        yield svc.port


def _pg_dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


def pg_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    import psycopg

    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _postgres() as port:

        def client(count: int) -> None:
            with psycopg.connect(_pg_dsn(port), autocommit=True) as conn:
                cur = conn.cursor()
                for _ in range(count):
                    cur.execute("SELECT 1")
                    cur.fetchone()

        def main() -> tuple[float, float]:
            client(10)
            c0, t0 = _cpu(), time.perf_counter()
            ts = [gofer.go(client, n // conc) for _ in range(conc)]
            for t in ts:
                t.join()
            return time.perf_counter() - t0, _cpu() - c0

        wall, cpu = gofer.run(main)
    return {"queries_per_s": n / wall, "cpu_us_per_query": cpu / n * 1e6}


def _psycopg2_clients(port: int, n: int, conc: int, spawn: Any, join_all: Any) -> tuple[float, float]:
    """``conc`` psycopg2 clients of ``n // conc`` queries each; (wall, cpu) seconds."""
    import psycopg2

    def client(count: int) -> None:
        conn = psycopg2.connect(_pg_dsn(port))
        conn.autocommit = True
        try:
            cur = conn.cursor()
            for _ in range(count):
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()

    client(10)
    c0, t0 = _cpu(), time.perf_counter()
    join_all([spawn(client, n // conc) for _ in range(conc)])
    return time.perf_counter() - t0, _cpu() - c0


def pg_gofer_psycopg2(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    from gofer import patch_db

    patch_db.patch_psycopg2()  # the wait callback (gofer.patch() sets it where wired)
    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _postgres() as port:

        def main() -> tuple[float, float]:
            return _psycopg2_clients(port, n, conc, gofer.go, lambda ts: [t.join() for t in ts])

        wall, cpu = gofer.run(main)
    return {"queries_per_s": n / wall, "cpu_us_per_query": cpu / n * 1e6}


def _gevent_wait_callback(conn: Any, timeout: Any = None) -> None:
    """psycopg2's wait callback for gevent (the psycogreen recipe)."""
    import psycopg2
    from gevent.socket import wait_read, wait_write

    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            break
        if state == psycopg2.extensions.POLL_READ:
            wait_read(conn.fileno(), timeout=timeout)
        elif state == psycopg2.extensions.POLL_WRITE:
            wait_write(conn.fileno(), timeout=timeout)
        else:
            raise psycopg2.OperationalError(f"bad state from poll: {state}")


def pg_gevent(p: dict[str, Any]) -> dict[str, float]:
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import psycopg2
    import psycopg2.extensions

    psycopg2.extensions.set_wait_callback(_gevent_wait_callback)
    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _postgres() as port:
        wall, cpu = _psycopg2_clients(
            port, n, conc, gevent.spawn, lambda gs: gevent.joinall(gs, raise_error=True)
        )
    return {"queries_per_s": n / wall, "cpu_us_per_query": cpu / n * 1e6}


def pg_asyncpg(p: dict[str, Any]) -> dict[str, float]:
    import asyncio

    import asyncpg
    import uvloop

    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _postgres() as port:

        async def client(count: int) -> None:
            conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
            try:
                for _ in range(count):
                    await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        async def main() -> tuple[float, float]:
            await client(10)
            c0, t0 = _cpu(), time.perf_counter()
            await asyncio.gather(*(client(n // conc) for _ in range(conc)))
            return time.perf_counter() - t0, _cpu() - c0

        wall, cpu = uvloop.run(main())
    return {"queries_per_s": n / wall, "cpu_us_per_query": cpu / n * 1e6}


SUITES = [
    Suite(
        name="interop_requests",
        description="requests, unchanged: 10,000 GETs, 100 at a time, to a local server (client figures)",
        metric="cpu_us_per_request",
        unit="client CPU us per request",
        systems={
            "gofer": f"{_M}:requests_gofer",
            "gevent": f"{_M}:requests_gevent",
            "threads": f"{_M}:requests_threads",
        },
        params={"n": 10_000, "concurrency": 100},
        quick={"n": 2_000},
        rounds=3,
        quick_rounds=1,
        timeout=300.0,
        goal="gofer ahead of gevent (wall time and CPU)",
    ),
    Suite(
        name="interop_pg",
        description="100 PostgreSQL clients on their own connections running SELECT 1",
        metric="queries_per_s",
        unit="queries per second",
        lower_is_better=False,
        systems={
            "gofer": f"{_M}:pg_gofer",
            "gofer-psycopg2": f"{_M}:pg_gofer_psycopg2",
            "gevent": f"{_M}:pg_gevent",
            "asyncpg-uvloop": f"{_M}:pg_asyncpg",
        },
        params={"n": 50_000, "concurrency": 100},
        quick={"n": 10_000},
        rounds=3,
        quick_rounds=1,
        timeout=300.0,
        goal="gofer ahead of gevent; asyncpg on uvloop quoted beside it",
    ),
]
