"""asyncio libraries inside gofer programs: asyncpg and httpx through gofer.aio.run.

Each test runs asyncio clients and plain gofer coroutines side by side in
one gofer program, and checks both made progress at once: the asyncio side
finishes far sooner than serially, and a gofer heartbeat kept beating while
it waited. The bounds are loose (never flaky), the times are printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gofer
from gofer import aio
from services import Service, postgres  # noqa: F401  (a fixture)


def _heartbeat(beats: list[float], stop: gofer.Event) -> None:
    while not stop.is_set():
        gofer.sleep(0.01)
        beats.append(time.monotonic())


def test_asyncpg_concurrent_with_gofer(postgres: Service) -> None:  # noqa: F811
    asyncpg = pytest.importorskip("asyncpg")
    n = 100

    async def one(pool: Any) -> int:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT 1 FROM pg_sleep(0.2)"))

    async def make_pool() -> Any:
        return await asyncpg.create_pool(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            database="postgres",
            min_size=n,
            max_size=n,
        )

    def main() -> tuple[float, int]:
        beats: list[float] = []
        stop = gofer.Event()
        hb = gofer.go(_heartbeat, beats, stop)
        pool = aio.run(make_pool())  # lives on the hub's loop across run() calls
        try:
            t0 = time.monotonic()
            # n gofer coroutines, each running its own asyncio query
            results = [t.join() for t in [gofer.go(aio.run, one(pool)) for _ in range(n)]]
            took = time.monotonic() - t0
            during = sum(1 for b in beats if t0 <= b <= t0 + took)
        finally:
            aio.run(pool.close())
            stop.set()
            hb.join()
        assert results == [1] * n
        return took, during

    took, during = gofer.run(main)
    print(
        f"\nasyncpg: {n} x pg_sleep(0.2) from {n} gofer coroutines in {took:.2f}s; heartbeat beat {during} times meanwhile"
    )
    assert took < 10, f"{n} queries of 0.2 s took {took:.1f}s: they did not overlap"
    assert during >= 5, "the gofer heartbeat did not run while asyncpg waited"


@pytest.fixture
def slow_server() -> Iterator[int]:
    """A gofer HTTP server (on its own thread's hub) answering each GET after 0.5 s."""
    import threading

    pytest.importorskip("httptools")
    from gofer import http

    port_box: list[int] = []
    ready = threading.Event()
    done = gofer.Event()

    def app(req: Any) -> Any:
        gofer.sleep(0.5)
        return http.Response(b"slow " + req.path.encode(), content_type="text/plain")

    def serve() -> None:
        server = http.Server(app)
        lsock = http.listen(("127.0.0.1", 0))
        port_box.append(lsock.getsockname()[1])
        t = gofer.go(server.serve_socket, lsock)
        ready.set()
        done.wait()
        server.shutdown(grace=5)
        t.join()
        lsock.close()  # serve_socket leaves the socket to its owner

    th = threading.Thread(target=gofer.run, args=(serve,), name="slow-http-server")
    th.start()
    ready.wait(30)
    try:
        yield port_box[0]
    finally:
        done.set()
        th.join(30)


def test_httpx_async_client_concurrent_with_gofer(slow_server: int) -> None:
    httpx = pytest.importorskip("httpx")
    n = 100

    async def fetch_all() -> list[str]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{slow_server}", limits=limits, timeout=30
        ) as c:
            rs = await asyncio.gather(*(c.get(f"/{i}") for i in range(n)))
            return [r.text for r in rs]

    def main() -> tuple[float, int]:
        beats: list[float] = []
        stop = gofer.Event()
        hb = gofer.go(_heartbeat, beats, stop)
        t0 = time.monotonic()
        texts = aio.run(fetch_all())
        took = time.monotonic() - t0
        stop.set()
        hb.join()
        assert texts == [f"slow /{i}" for i in range(n)]
        return took, sum(1 for b in beats if t0 <= b <= t0 + took)

    took, during = gofer.run(main)
    print(
        f"\nhttpx.AsyncClient: {n} concurrent GETs (0.5 s each) in {took:.2f}s; heartbeat beat {during} times meanwhile"
    )
    assert took < 10, f"{n} GETs of 0.5 s took {took:.1f}s: they did not overlap"
    assert during >= 5
