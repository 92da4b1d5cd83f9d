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
``psycogreen``'s), psycopg 3 under gevent ("gevent-psycopg3": psycopg
notices gevent's patched ``select`` and waits with ``poll``, its own gevent
support), and asyncpg on uvloop. The bench
starts a throw-away PostgreSQL server (Debian's ``postgresql`` package) on
loopback, pinned to CPU 1; the figure is queries per second and the
client's CPU time per query.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from bench import Suite, child_env, systems
from bench._util import cpu_seconds, stop

_M = "bench.interop"
T = TypeVar("T")
# fan_out(fn, count, conc): conc copies of fn(count) at once, their results in a list.
FanOut = Callable[[Callable[[int], Any], int, int], list[Any]]

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


def _pin(cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``'s result, wall seconds and this process's CPU seconds (all threads)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_seconds() - c0


# -- the concurrency each system brings --------------------------------------------


def _gofer_fan_out(fn: Callable[[int], Any], count: int, conc: int) -> list[Any]:
    """Inside gofer.run: conc coroutines."""
    import gofer

    ts = [gofer.go(fn, count) for _ in range(conc)]
    return [t.join() for t in ts]


def _gevent_fan_out(fn: Callable[[int], Any], count: int, conc: int) -> list[Any]:
    import gevent

    gs = [gevent.spawn(fn, count) for _ in range(conc)]
    gevent.joinall(gs, raise_error=True)
    return [g.value for g in gs]


def _threads_fan_out(fn: Callable[[int], Any], count: int, conc: int) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(conc) as pool:
        return list(pool.map(lambda _: fn(count), range(conc)))


def _call(fn: Callable[[], T]) -> T:
    return fn()


# -- requests ---------------------------------------------------------------------


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
        stop(proc)


def _worker_loop(url: str, count: int) -> int:
    import requests

    bad = 0
    with requests.Session() as s:
        for _ in range(count):
            r = s.get(url)
            if r.status_code != 200 or r.content != b"Hello, World!":
                bad += 1
    return bad


def _requests(p: dict[str, Any], fan_out: FanOut) -> dict[str, float]:
    """``p['n']`` GETs by ``p['concurrency']`` workers of ``fan_out``; the client's figures."""
    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _http_server() as port:
        url = f"http://127.0.0.1:{port}/"
        _worker_loop(url, 10)  # warm-up: imports, first connection
        bad, wall, cpu = _timed(lambda: sum(fan_out(functools.partial(_worker_loop, url), n // conc, conc)))
    if bad:
        raise RuntimeError(f"{bad} of {n} requests failed")
    return {"wall_s": wall, "cpu_us_per_request": cpu / n * 1e6, "requests_per_s": n / wall}


def requests_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    return _requests(p, lambda fn, count, conc: gofer.run(_gofer_fan_out, fn, count, conc))


def requests_gevent(p: dict[str, Any]) -> dict[str, float]:
    from gevent import monkey

    monkey.patch_all()
    return _requests(p, _gevent_fan_out)


def requests_threads(p: dict[str, Any]) -> dict[str, float]:
    return _requests(p, _threads_fan_out)


# -- PostgreSQL -------------------------------------------------------------------


@contextlib.contextmanager
def _postgres() -> Iterator[int]:
    """A throw-away PostgreSQL server on loopback (CPU 1); yields its port."""
    from gofer.testing.services import start_postgres

    with start_postgres(max_connections=200, cpu=1) as svc:
        yield svc.port


def _pg_dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


def _psycopg3_client(port: int, count: int) -> None:
    import psycopg

    with psycopg.connect(_pg_dsn(port), autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(count):
            cur.execute("SELECT 1")
            cur.fetchone()


def _psycopg2_client(port: int, count: int) -> None:
    import psycopg2

    conn = psycopg2.connect(_pg_dsn(port))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        for _ in range(count):
            cur.execute("SELECT 1")
            cur.fetchone()
    finally:
        conn.close()


def _pg(p: dict[str, Any], client: Callable[[int, int], None], fan_out: FanOut,
        runner: Callable[[Callable[[], Any]], Any] = _call) -> dict[str, float]:
    """``p['n']`` queries by ``p['concurrency']`` clients of ``fan_out``, timed after a warm-up client.

    All of it runs inside ``runner`` (``gofer.run`` for gofer's systems).
    """
    _pin(0)
    n, conc = int(p["n"]), int(p["concurrency"])
    with _postgres() as port:
        one = functools.partial(client, port)

        def main() -> tuple[Any, float, float]:
            one(10)
            return _timed(lambda: fan_out(one, n // conc, conc))

        _, wall, cpu = runner(main)
    return _pg_figures(n, wall, cpu)


def _pg_figures(n: int, wall: float, cpu: float) -> dict[str, float]:
    return {"queries_per_s": n / wall, "cpu_us_per_query": cpu / n * 1e6}


def pg_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    return _pg(p, _psycopg3_client, _gofer_fan_out, gofer.run)


def pg_gofer_psycopg2(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    gofer.patch()
    from gofer import patch_db

    patch_db.patch_psycopg2()  # the wait callback (gofer.patch() sets it where wired)
    return _pg(p, _psycopg2_client, _gofer_fan_out, gofer.run)


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
    import psycopg2.extensions

    psycopg2.extensions.set_wait_callback(_gevent_wait_callback)
    return _pg(p, _psycopg2_client, _gevent_fan_out)


def pg_gevent_psycopg3(p: dict[str, Any]) -> dict[str, float]:
    """psycopg 3 under gevent: psycopg sees the patched ``select`` and waits with ``poll``."""
    from gevent import monkey

    monkey.patch_all()
    return _pg(p, _psycopg3_client, _gevent_fan_out)


def pg_asyncpg_uvloop(p: dict[str, Any]) -> dict[str, float]:
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
            c0, t0 = cpu_seconds(), time.perf_counter()
            await asyncio.gather(*(client(n // conc) for _ in range(conc)))
            return time.perf_counter() - t0, cpu_seconds() - c0

        wall, cpu = uvloop.run(main())
    return _pg_figures(n, wall, cpu)


def _suite(name: str, description: str, metric: str, unit: str, names: tuple[str, ...], n: int,
           quick_n: int, goal: str, lower_is_better: bool = True) -> Suite:
    prefix = name.removeprefix("interop_")
    return Suite(name=name, description=description, metric=metric, unit=unit, lower_is_better=lower_is_better,
                 systems=systems(_M, prefix, *names), params={"n": n, "concurrency": 100}, quick={"n": quick_n},
                 rounds=3, quick_rounds=1, timeout=300.0, goal=goal)


SUITES = [
    _suite("interop_requests", "requests, unchanged: 10,000 GETs, 100 at a time, to a local server (client figures)",
           "cpu_us_per_request", "client CPU us per request", ("gofer", "gevent", "threads"),
           10_000, 2_000, "gofer ahead of gevent (wall time and CPU)"),
    _suite("interop_pg", "100 PostgreSQL clients on their own connections running SELECT 1",
           "queries_per_s", "queries per second", ("gofer", "gofer-psycopg2", "gevent", "gevent-psycopg3", "asyncpg-uvloop"),
           50_000, 10_000, "gofer ahead of gevent; asyncpg on uvloop quoted beside it", lower_is_better=False),
]
