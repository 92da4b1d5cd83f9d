"""Core runtime suites: spawn+yield+join, yield round trip, memory per parked coroutine.

Each function runs one system's workload in the benchmark subprocess and
returns its figures. Times are medians over several batches inside the
process (after a warm-up batch), reported in microseconds per operation.
"""

from __future__ import annotations

from typing import Any

from bench import Suite, systems
from bench._util import best_of, rss_bytes, timed

# -- spawn + one yield + join ----------------------------------------------------


def spawn_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, reps = int(p["n"]), int(p["repeat"])

    def child() -> None:
        gofer.yield_now()

    def batch() -> None:
        ts = [gofer.go(child) for _ in range(n)]
        for t in ts:
            t.join()

    def main() -> float:
        batch()  # warm-up
        return best_of(lambda: timed(batch, n), reps)

    return {"us_per_task": gofer.run(main) * 1e6}


def _spawn_asyncio(p: dict[str, Any], runner: Any) -> dict[str, float]:
    import asyncio

    n, reps = int(p["n"]), int(p["repeat"])

    async def child() -> None:
        await asyncio.sleep(0)

    async def main() -> float:
        import time

        async def batch() -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*[asyncio.create_task(child()) for _ in range(n)])
            return (time.perf_counter() - t0) / n

        await batch()
        xs = sorted([await batch() for _ in range(reps)])
        return xs[len(xs) // 2]

    return {"us_per_task": runner(main()) * 1e6}


def spawn_asyncio(p: dict[str, Any]) -> dict[str, float]:
    import asyncio

    return _spawn_asyncio(p, asyncio.run)


def spawn_uvloop(p: dict[str, Any]) -> dict[str, float]:
    import uvloop

    return _spawn_asyncio(p, uvloop.run)


def spawn_trio(p: dict[str, Any]) -> dict[str, float]:
    import time

    import trio

    n, reps = int(p["n"]), int(p["repeat"])

    async def child() -> None:
        await trio.sleep(0)

    async def main() -> float:
        async def batch() -> float:
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(child)
            return (time.perf_counter() - t0) / n

        await batch()
        xs = sorted([await batch() for _ in range(reps)])
        return xs[len(xs) // 2]

    return {"us_per_task": trio.run(main) * 1e6}


def spawn_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent

    n, reps = int(p["n"]), int(p["repeat"])

    def child() -> None:
        gevent.sleep(0)

    def batch() -> None:
        gs = [gevent.spawn(child) for _ in range(n)]
        gevent.joinall(gs)

    batch()
    return {"us_per_task": best_of(lambda: timed(batch, n), reps) * 1e6}


def spawn_threads(p: dict[str, Any]) -> dict[str, float]:
    import threading
    import time

    n, reps = max(1, int(p["n"]) // 10), int(p["repeat"])

    def child() -> None:
        time.sleep(0)

    def batch() -> None:
        ts = [threading.Thread(target=child) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    batch()
    return {"us_per_task": best_of(lambda: timed(batch, n), reps) * 1e6}


# -- yield round trip --------------------------------------------------------------
# A partner coroutine yields in a loop for as long as the measured one does, so
# every measured yield really lets another coroutine run (a yield with nobody
# else ready is nearly free in gofer and would measure nothing).


def yield_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, reps = int(p["n"]), int(p["repeat"])

    def main() -> float:
        stop = [False]

        def partner() -> None:
            while not stop[0]:
                gofer.yield_now()

        other = gofer.go(partner)
        y = gofer.yield_now

        def loop() -> None:
            for _ in range(n):
                y()

        r = best_of(lambda: timed(loop, n), reps)
        stop[0] = True
        other.join()
        return r

    return {"us_per_yield": gofer.run(main) * 1e6}


def yield_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent

    n, reps = int(p["n"]), int(p["repeat"])
    stop = [False]

    def partner() -> None:
        while not stop[0]:
            gevent.sleep(0)

    other = gevent.spawn(partner)

    def loop() -> None:
        s = gevent.sleep
        for _ in range(n):
            s(0)

    r = best_of(lambda: timed(loop, n), reps)
    stop[0] = True
    other.join()
    return {"us_per_yield": r * 1e6}


def _yield_asyncio(p: dict[str, Any], runner: Any) -> dict[str, float]:
    import asyncio
    import time

    n, reps = int(p["n"]), int(p["repeat"])

    async def main() -> float:
        stop = [False]

        async def partner() -> None:
            while not stop[0]:
                await asyncio.sleep(0)

        other = asyncio.create_task(partner())

        async def loop() -> float:
            s = asyncio.sleep
            t0 = time.perf_counter()
            for _ in range(n):
                await s(0)
            return (time.perf_counter() - t0) / n

        xs = sorted([await loop() for _ in range(reps)])
        stop[0] = True
        await other
        return xs[len(xs) // 2]

    return {"us_per_yield": runner(main()) * 1e6}


def yield_asyncio(p: dict[str, Any]) -> dict[str, float]:
    import asyncio

    return _yield_asyncio(p, asyncio.run)


def yield_uvloop(p: dict[str, Any]) -> dict[str, float]:
    import uvloop

    return _yield_asyncio(p, uvloop.run)


def yield_trio(p: dict[str, Any]) -> dict[str, float]:
    import time

    import trio

    n, reps = int(p["n"]), int(p["repeat"])

    async def main() -> float:
        stop = [False]

        async def partner() -> None:
            while not stop[0]:
                await trio.lowlevel.checkpoint()

        async def loop() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                await trio.lowlevel.checkpoint()
            return (time.perf_counter() - t0) / n

        async with trio.open_nursery() as nursery:
            nursery.start_soon(partner)
            xs = sorted([await loop() for _ in range(reps)])
            stop[0] = True
        return xs[len(xs) // 2]

    return {"us_per_yield": trio.run(main) * 1e6}


# -- memory per parked coroutine -------------------------------------------------------


def mem_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n = int(p["n"])

    def main() -> tuple[float, float]:
        ev = gofer.Event() if hasattr(gofer, "Event") else None
        lock: list[Any] = []

        def idle() -> None:
            if ev is not None:
                ev.wait()
            else:
                gofer.sleep(3600)

        before = rss_bytes()
        ts = [gofer.go(idle) for _ in range(n)]
        gofer.yield_now()  # let them all start and park
        after = rss_bytes()
        # greenlet's copy of each parked coroutine's C stack (part of the
        # figure above): what the compiled kernel's C frames enlarge.
        stack = sum(t._g._stack_saved for t in ts if t._g is not None) / n
        if ev is not None:
            ev.set()
        for t in ts:
            t.cancel()
        lock.clear()
        return (after - before) / n, stack

    per, stack = gofer.run(main)
    return {"bytes_per_coroutine": per, "c_stack_bytes": stack}


def _mem_asyncio(p: dict[str, Any], runner: Any) -> dict[str, float]:
    import asyncio

    n = int(p["n"])

    async def main() -> float:
        ev = asyncio.Event()
        before = rss_bytes()
        ts = [asyncio.create_task(ev.wait()) for _ in range(n)]
        await asyncio.sleep(0)
        after = rss_bytes()
        ev.set()
        await asyncio.gather(*ts)
        return (after - before) / n

    return {"bytes_per_coroutine": runner(main())}


def mem_asyncio(p: dict[str, Any]) -> dict[str, float]:
    import asyncio

    return _mem_asyncio(p, asyncio.run)


def mem_uvloop(p: dict[str, Any]) -> dict[str, float]:
    import uvloop

    return _mem_asyncio(p, uvloop.run)


def mem_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent
    import gevent.event

    n = int(p["n"])
    ev = gevent.event.Event()
    before = rss_bytes()
    gs = [gevent.spawn(ev.wait) for _ in range(n)]
    gevent.sleep(0)
    after = rss_bytes()
    ev.set()
    gevent.joinall(gs)
    return {"bytes_per_coroutine": (after - before) / n}


def mem_trio(p: dict[str, Any]) -> dict[str, float]:
    import trio

    n = int(p["n"])

    async def main() -> float:
        ev = trio.Event()
        before = rss_bytes()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(ev.wait)
            await trio.sleep(0)
            after = rss_bytes()
            ev.set()
        return (after - before) / n

    return {"bytes_per_coroutine": trio.run(main)}


_M = "bench.core"

SUITES = [
    Suite(
        name="spawn",
        description="spawn a coroutine, yield once, join it (batches of n)",
        metric="us_per_task",
        unit="us per task",
        systems=systems(_M, "spawn", "gofer", "uvloop", "asyncio", "trio", "gevent", "threads"),
        params={"n": 1000, "repeat": 30},
        quick={"repeat": 5},
        goal="gofer <= 0.5x uvloop",
    ),
    Suite(
        name="yield",
        description="yield_now with a partner coroutine yielding too (each yield runs the other)",
        metric="us_per_yield",
        unit="us per yield",
        systems=systems(_M, "yield", "gofer", "gevent", "uvloop", "asyncio", "trio"),
        params={"n": 100_000, "repeat": 5},
        quick={"n": 20_000, "repeat": 3},
        goal="gofer < gevent's sleep(0)",
    ),
    Suite(
        name="memory",
        description="resident memory per parked coroutine (n parked at once)",
        metric="bytes_per_coroutine",
        unit="bytes",
        systems=systems(_M, "mem", "gofer", "asyncio", "uvloop", "gevent", "trio"),
        params={"n": 100_000},
        quick={"n": 20_000},
        rounds=3,
        quick_rounds=1,
        goal="gofer <= asyncio's per parked task",
    ),
]
