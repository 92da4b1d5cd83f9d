"""Channel suites, continued: a select-heavy loop and a coroutine-to-thread hand-off.

The select loop is Go's everyday shape: a consumer selecting over two data
channels and a ``done`` channel that never fires. Its only counterpart among
the peers is ``asyncio.wait(..., FIRST_COMPLETED)`` over pending ``get()``
tasks (gevent and trio have no select over queues). The hand-off suite sends
values from a coroutine to a plain OS thread over one channel, against
``queue.Queue`` between two threads.
"""

from __future__ import annotations

import threading
from typing import Any

from bench import Suite, systems
from bench._util import best_of, timed
from bench.chan import _amedian, _asyncio_runner

# -- select loop ---------------------------------------------------------------------


def select_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, cap, reps = p["n"], p["cap"], p["repeat"]
    half = n // 2

    def main() -> float:
        def batch() -> None:
            a: gofer.Chan[int] = gofer.Chan(cap)
            b: gofer.Chan[int] = gofer.Chan(cap)
            done: gofer.Chan[None] = gofer.Chan()

            def producer(ch: gofer.Chan[int]) -> None:
                send = ch.send
                for i in range(half):
                    send(i)

            ts = [gofer.go(producer, a), gofer.go(producer, b)]
            select, ar, br, dr = gofer.select, a.recv, b.recv, done.recv
            for _ in range(2 * half):
                select(ar, br, dr)
            for t in ts:
                t.join()

        batch()
        return best_of(lambda: timed(batch, 2 * half), reps)

    return {"us_per_select": gofer.run(main) * 1e6}


def _select_asyncio(p: dict[str, Any], uv: bool) -> dict[str, float]:
    import asyncio

    n, cap, reps = p["n"], p["cap"], p["repeat"]
    half = n // 2

    async def batch() -> None:
        a: asyncio.Queue[int] = asyncio.Queue(cap)
        b: asyncio.Queue[int] = asyncio.Queue(cap)
        done = asyncio.Event()

        async def producer(q: asyncio.Queue[int]) -> None:
            for i in range(half):
                await q.put(i)

        ts = [asyncio.create_task(producer(a)), asyncio.create_task(producer(b))]
        ga = asyncio.create_task(a.get())
        gb = asyncio.create_task(b.get())
        gd = asyncio.create_task(done.wait())
        got = 0
        while got < 2 * half:
            finished, _ = await asyncio.wait({ga, gb, gd}, return_when=asyncio.FIRST_COMPLETED)
            if ga in finished:
                got += 1
                ga = asyncio.create_task(a.get())
            if gb in finished:
                got += 1
                gb = asyncio.create_task(b.get())
        for t in (ga, gb, gd):
            t.cancel()
        await asyncio.gather(*ts)

    async def main() -> float:
        return await _amedian(batch, 2 * half, reps)

    return {"us_per_select": _asyncio_runner(uv)(main()) * 1e6}


def select_asyncio(p: dict[str, Any]) -> dict[str, float]:
    return _select_asyncio(p, False)


def select_uvloop(p: dict[str, Any]) -> dict[str, float]:
    return _select_asyncio(p, True)


# -- coroutine -> thread hand-off -----------------------------------------------------------


def handoff_gofer(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, cap, reps = p["n"], p["cap"], p["repeat"]

    def main() -> float:
        def batch() -> None:
            ch: gofer.Chan[int] = gofer.Chan(cap)
            finished: gofer.Chan[None] = gofer.Chan(1)

            def consumer() -> None:  # a plain OS thread: blocks in recv
                recv = ch.recv
                for _ in range(n):
                    recv()
                finished.send(None)

            th = threading.Thread(target=consumer)
            th.start()
            send = ch.send
            for i in range(n):
                send(i)
            finished.recv()
            th.join()

        batch()
        return best_of(lambda: timed(batch, n), reps)

    return {"us_per_item": gofer.run(main) * 1e6}


def handoff_gofer_thread_to_coroutine(p: dict[str, Any]) -> dict[str, float]:
    import gofer

    n, cap, reps = p["n"], p["cap"], p["repeat"]

    def main() -> float:
        def batch() -> None:
            ch: gofer.Chan[int] = gofer.Chan(cap)

            def producer() -> None:  # a plain OS thread: blocks in send
                send = ch.send
                for i in range(n):
                    send(i)

            th = threading.Thread(target=producer)
            th.start()
            recv = ch.recv
            for _ in range(n):
                recv()
            th.join()

        batch()
        return best_of(lambda: timed(batch, n), reps)

    return {"us_per_item": gofer.run(main) * 1e6}


def handoff_threads(p: dict[str, Any]) -> dict[str, float]:
    import queue

    n, cap, reps = p["n"], p["cap"], p["repeat"]

    def batch() -> None:
        q: queue.Queue[int] = queue.Queue(cap)

        def consumer() -> None:
            get = q.get
            for _ in range(n):
                get()

        th = threading.Thread(target=consumer)
        th.start()
        put = q.put
        for i in range(n):
            put(i)
        th.join()

    batch()
    return {"us_per_item": best_of(lambda: timed(batch, n), reps) * 1e6}


_M = "bench.chan_select"

SUITES = [
    Suite(
        name="select_loop",
        description="consumer selecting over 2 buffered data channels + a never-ready done channel",
        metric="us_per_select",
        unit="us per select",
        systems=systems(_M, "select", "gofer", "asyncio", "uvloop"),
        params={"n": 100_000, "cap": 64, "repeat": 5},
        quick={"n": 20_000, "repeat": 3},
        goal="gofer ahead of asyncio.wait(FIRST_COMPLETED) (trio and gevent have no select)",
    ),
    Suite(
        name="chan_thread_handoff",
        description="a coroutine sends to a plain OS thread over one Chan(64) vs queue.Queue(64) thread to thread",
        metric="us_per_item",
        unit="us per item",
        systems=systems(_M, "handoff", "gofer", "gofer-thread-to-coroutine", "threads"),
        params={"n": 100_000, "cap": 64, "repeat": 5},
        quick={"n": 20_000, "repeat": 3},
        goal="gofer at least on par with queue.Queue between two threads",
    ),
]
