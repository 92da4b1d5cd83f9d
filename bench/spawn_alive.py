"""The spawn_alive suite: spawn n coroutines that are all alive at once, then join them.

Each coroutine of a batch parks on one shared event; once all have started
the event is set and all are joined; the figure is the batch's time per
task (median of several batches after a warm-up one). Unlike the spawn
suite's batches of 1,000 (bench.core), where gofer reuses its idle workers,
each coroutine needs a fresh one here, and the cyclic collector traverses
them all as they pile up (issue 12). Beside bench.core's spawn suite, which
it follows, for that module's length.
"""

from __future__ import annotations

from typing import Any

from bench import Suite, systems
from bench._util import best_of, timed


def spawn_alive_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, reps = int(p["n"]), int(p["repeat"])

    def batch() -> None:
        ev = gofer.Event()

        def child() -> None:
            ev.wait()

        ts = [gofer.go(child) for _ in range(n)]
        gofer.yield_now()  # they all start and park
        ev.set()
        for t in ts:
            t.join()

    def main() -> float:
        batch()  # warm-up
        return best_of(lambda: timed(batch, n), reps)

    return {"us_per_task": gofer.run(main) * 1e6}


def _spawn_alive_asyncio(p: dict[str, Any], runner: Any) -> dict[str, float]:
    import asyncio
    import gc
    import time

    n, reps = int(p["n"]), int(p["repeat"])

    async def batch() -> float:
        ev = asyncio.Event()

        async def child() -> None:
            await ev.wait()

        gc.collect()
        t0 = time.perf_counter()
        ts = [asyncio.create_task(child()) for _ in range(n)]
        await asyncio.sleep(0)  # they all start and park
        ev.set()
        await asyncio.gather(*ts)
        return (time.perf_counter() - t0) / n

    async def main() -> float:
        await batch()
        xs = sorted([await batch() for _ in range(reps)])
        return xs[len(xs) // 2]

    return {"us_per_task": runner(main()) * 1e6}


def spawn_alive_asyncio(p: dict[str, Any]) -> dict[str, float]:
    import asyncio

    return _spawn_alive_asyncio(p, asyncio.run)


def spawn_alive_uvloop(p: dict[str, Any]) -> dict[str, float]:
    import uvloop

    return _spawn_alive_asyncio(p, uvloop.run)


def spawn_alive_trio(p: dict[str, Any]) -> dict[str, float]:
    import gc
    import time

    import trio

    n, reps = int(p["n"]), int(p["repeat"])

    async def child(ev: trio.Event) -> None:
        await ev.wait()

    async def main() -> float:
        async def batch() -> float:
            ev = trio.Event()
            gc.collect()
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(child, ev)
                await trio.sleep(0)  # they all start and park
                ev.set()
            return (time.perf_counter() - t0) / n

        await batch()
        xs = sorted([await batch() for _ in range(reps)])
        return xs[len(xs) // 2]

    return {"us_per_task": trio.run(main) * 1e6}


def spawn_alive_gevent(p: dict[str, Any]) -> dict[str, float]:
    import gevent
    import gevent.event

    n, reps = int(p["n"]), int(p["repeat"])

    def batch() -> None:
        ev = gevent.event.Event()

        def child() -> None:
            ev.wait()

        gs = [gevent.spawn(child) for _ in range(n)]
        gevent.sleep(0)  # they all start and park
        ev.set()
        gevent.joinall(gs)

    batch()
    return {"us_per_task": best_of(lambda: timed(batch, n), reps) * 1e6}


_M = "bench.spawn_alive"

SUITES = [
    Suite(
        name="spawn_alive",
        description="spawn n coroutines that are all alive at once (each parks on one event), set it, join them all",
        metric="us_per_task",
        unit="us per task",
        systems=systems(_M, "spawn_alive", "gofer", "uvloop", "asyncio", "trio", "gevent"),
        params={"n": 100_000, "repeat": 5},
        quick={"n": 20_000, "repeat": 3},
        goal="gofer <= 1.0x uvloop",
    ),
]
