"""Channel suites: ping-pong, fan-in, a select loop, coroutine-to-thread hand-off.

Each function runs one system's workload in the benchmark subprocess and
returns its figures: the median of several timed batches after a warm-up
batch, with the garbage collector off while timing (as ``_util.timed``
does), in microseconds per operation. The peers use their own closest
counterpart: ``gevent.queue.Queue``, ``asyncio.Queue`` (also on uvloop),
trio memory channels and ``queue.Queue`` between OS threads.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import Suite, systems
from bench._util import best_of, timed

# -- helpers for the async peers -------------------------------------------------


async def _amedian(batch: Callable[[], Awaitable[None]], n: int, reps: int) -> float:
    """Median seconds per op of ``reps`` runs of ``batch`` (after a warm-up), GC off."""
    await batch()
    xs = []
    for _ in range(reps):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            await batch()
            xs.append((time.perf_counter() - t0) / n)
        finally:
            gc.enable()
    xs.sort()
    return xs[len(xs) // 2]


def _asyncio_runner(uv: bool) -> Callable[[Any], Any]:
    if uv:
        import uvloop

        return uvloop.run
    import asyncio

    return asyncio.run


# -- ping-pong: one value back and forth over two channels ---------------------------


def _pingpong_gofer(p: dict[str, Any], cap: int) -> dict[str, float]:
    import gofer

    n, reps = p["n"], p["repeat"]

    def main() -> float:
        a: gofer.Chan[int | None] = gofer.Chan(cap)
        b: gofer.Chan[int | None] = gofer.Chan(cap)

        def pong() -> None:
            recv, send = a.recv, b.send
            while (v := recv()) is not None:
                send(v)

        t = gofer.go(pong)

        def batch() -> None:
            send, recv = a.send, b.recv
            for i in range(n):
                send(i)
                recv()

        batch()
        r = best_of(lambda: timed(batch, n), reps)
        a.send(None)
        t.join()
        return r

    return {"us_per_roundtrip": gofer.run(main) * 1e6}


def pingpong_gofer(p: dict[str, Any]) -> dict[str, float]:
    return _pingpong_gofer(p, 1)


def pingpong_gofer_rendezvous(p: dict[str, Any]) -> dict[str, float]:
    return _pingpong_gofer(p, 0)


def pingpong_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent
    import gevent.queue

    n, reps = p["n"], p["repeat"]
    a: Any = gevent.queue.Queue(1)
    b: Any = gevent.queue.Queue(1)

    def pong() -> None:
        get, put = a.get, b.put
        while (v := get()) is not None:
            put(v)

    g = gevent.spawn(pong)

    def batch() -> None:
        put, get = a.put, b.get
        for i in range(n):
            put(i)
            get()

    batch()
    r = best_of(lambda: timed(batch, n), reps)
    a.put(None)
    g.join()
    return {"us_per_roundtrip": r * 1e6}


def _pingpong_asyncio(p: dict[str, Any], uv: bool) -> dict[str, float]:
    import asyncio

    n, reps = p["n"], p["repeat"]

    async def main() -> float:
        a: asyncio.Queue[int | None] = asyncio.Queue(1)
        b: asyncio.Queue[int | None] = asyncio.Queue(1)

        async def pong() -> None:
            while (v := await a.get()) is not None:
                await b.put(v)

        t = asyncio.create_task(pong())

        async def batch() -> None:
            for i in range(n):
                await a.put(i)
                await b.get()

        r = await _amedian(batch, n, reps)
        await a.put(None)
        await t
        return r

    return {"us_per_roundtrip": _asyncio_runner(uv)(main()) * 1e6}


def pingpong_asyncio(p: dict[str, Any]) -> dict[str, float]:
    return _pingpong_asyncio(p, False)


def pingpong_uvloop(p: dict[str, Any]) -> dict[str, float]:
    return _pingpong_asyncio(p, True)


def pingpong_trio(p: dict[str, Any]) -> dict[str, float]:
    import trio

    n, reps = p["n"], p["repeat"]

    async def main() -> float:
        a_send, a_recv = trio.open_memory_channel[Any](1)
        b_send, b_recv = trio.open_memory_channel[Any](1)

        async def pong() -> None:
            while (v := await a_recv.receive()) is not None:
                await b_send.send(v)

        async def batch() -> None:
            for i in range(n):
                await a_send.send(i)
                await b_recv.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pong)
            r = await _amedian(batch, n, reps)
            await a_send.send(None)
        return r

    return {"us_per_roundtrip": trio.run(main) * 1e6}


def pingpong_threads(p: dict[str, Any]) -> dict[str, float]:
    import queue
    import threading

    n, reps = max(1, p["n"] // 5), p["repeat"]
    a: queue.Queue[int | None] = queue.Queue(1)
    b: queue.Queue[int | None] = queue.Queue(1)

    def pong() -> None:
        while (v := a.get()) is not None:
            b.put(v)

    th = threading.Thread(target=pong)
    th.start()

    def batch() -> None:
        for i in range(n):
            a.put(i)
            b.get()

    batch()
    r = best_of(lambda: timed(batch, n), reps)
    a.put(None)
    th.join()
    return {"us_per_roundtrip": r * 1e6}


# -- fan-in: 8 producers, 1 consumer, one buffered channel ------------------------------


def fanin_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, k, cap, reps = p["n"], p["producers"], p["cap"], p["repeat"]
    per = n // k

    def main() -> float:
        def batch() -> None:
            ch: gofer.Chan[int] = gofer.Chan(cap)

            def producer() -> None:
                send = ch.send
                for i in range(per):
                    send(i)

            ts = [gofer.go(producer) for _ in range(k)]
            recv = ch.recv
            for _ in range(per * k):
                recv()
            for t in ts:
                t.join()

        batch()
        return best_of(lambda: timed(batch, per * k), reps)

    return {"us_per_item": gofer.run(main) * 1e6}


def fanin_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent
    import gevent.queue

    n, k, cap, reps = p["n"], p["producers"], p["cap"], p["repeat"]
    per = n // k

    def batch() -> None:
        q: Any = gevent.queue.Queue(cap)

        def producer() -> None:
            put = q.put
            for i in range(per):
                put(i)

        gs = [gevent.spawn(producer) for _ in range(k)]
        get = q.get
        for _ in range(per * k):
            get()
        gevent.joinall(gs)

    batch()
    return {"us_per_item": best_of(lambda: timed(batch, per * k), reps) * 1e6}


def _fanin_asyncio(p: dict[str, Any], uv: bool) -> dict[str, float]:
    import asyncio

    n, k, cap, reps = p["n"], p["producers"], p["cap"], p["repeat"]
    per = n // k

    async def batch() -> None:
        q: asyncio.Queue[int] = asyncio.Queue(cap)

        async def producer() -> None:
            for i in range(per):
                await q.put(i)

        ts = [asyncio.create_task(producer()) for _ in range(k)]
        for _ in range(per * k):
            await q.get()
        await asyncio.gather(*ts)

    async def main() -> float:
        return await _amedian(batch, per * k, reps)

    return {"us_per_item": _asyncio_runner(uv)(main()) * 1e6}


def fanin_asyncio(p: dict[str, Any]) -> dict[str, float]:
    return _fanin_asyncio(p, False)


def fanin_uvloop(p: dict[str, Any]) -> dict[str, float]:
    return _fanin_asyncio(p, True)


def fanin_trio(p: dict[str, Any]) -> dict[str, float]:
    import trio

    n, k, cap, reps = p["n"], p["producers"], p["cap"], p["repeat"]
    per = n // k

    async def batch() -> None:
        send, recv = trio.open_memory_channel[int](cap)

        async def producer(s: Any) -> None:
            async with s:
                for i in range(per):
                    await s.send(i)

        async with trio.open_nursery() as nursery:
            for _ in range(k):
                nursery.start_soon(producer, send.clone())
            await send.aclose()
            async for _ in recv:
                pass

    async def main() -> float:
        return await _amedian(batch, per * k, reps)

    return {"us_per_item": trio.run(main) * 1e6}


def fanin_threads(p: dict[str, Any]) -> dict[str, float]:
    import queue
    import threading

    n, k, cap, reps = p["n"] // 4, p["producers"], p["cap"], p["repeat"]
    per = n // k

    def batch() -> None:
        q: queue.Queue[int] = queue.Queue(cap)

        def producer() -> None:
            put = q.put
            for i in range(per):
                put(i)

        ts = [threading.Thread(target=producer) for _ in range(k)]
        for t in ts:
            t.start()
        get = q.get
        for _ in range(per * k):
            get()
        for t in ts:
            t.join()

    batch()
    return {"us_per_item": best_of(lambda: timed(batch, per * k), reps) * 1e6}


_M = "bench.chan"

SUITES = [
    Suite(
        name="chan_pingpong",
        description="two coroutines pass one value back and forth over two channels of capacity 1",
        metric="us_per_roundtrip",
        unit="us per round trip",
        systems=systems(_M, "pingpong", "gofer", "gofer-rendezvous", "gevent", "uvloop", "asyncio", "trio", "threads"),
        params={"n": 100_000, "repeat": 7},
        quick={"n": 20_000, "repeat": 3},
        goal="gofer <= 0.6x gevent.queue.Queue(1); ahead of asyncio, trio and threads",
    ),
    Suite(
        name="chan_fanin",
        description="8 producers -> 1 consumer over one buffered channel (capacity 64)",
        metric="us_per_item",
        unit="us per item",
        systems=systems(_M, "fanin", "gofer", "gevent", "uvloop", "asyncio", "trio", "threads"),
        params={"n": 200_000, "producers": 8, "cap": 64, "repeat": 5},
        quick={"n": 40_000, "repeat": 3},
        goal="side by side (no ratio set); gevent's queue is compiled Cython, gofer's is pure Python",
    ),
]
