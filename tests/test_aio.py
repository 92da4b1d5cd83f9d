"""gofer.aio: asyncio code on the hub's loop, and gofer code awaited from asyncio.

Most tests run on the virtual clock (``vrun``): the hub's loop takes its time
from the hub, so ``asyncio.sleep(10)`` and ``gofer.sleep(1)`` interleave
exactly and instantly. The streams tests use real sockets on both pollers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gofer
from gofer import aio


@pytest.fixture
def policy() -> Iterator[None]:
    aio.install_policy()
    try:
        yield
    finally:
        aio.uninstall_policy()


def test_run_returns_result_and_raises_error(vrun: Callable[..., Any]) -> None:
    async def ok() -> int:
        await asyncio.sleep(1)
        return 42

    async def bad() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    def main() -> None:
        assert aio.run(ok()) == 42
        with pytest.raises(KeyError, match="boom"):
            aio.run(bad())
        fut_result = aio.run(asyncio.sleep(0, result="x"))  # any awaitable
        assert fut_result == "x"

    vrun(main)


def test_gofer_runs_while_asyncio_waits(vrun: Callable[..., Any]) -> None:
    beats: list[float] = []

    def heartbeat() -> None:
        for _ in range(10):
            gofer.sleep(1)
            beats.append(gofer.get_hub().now())

    async def slow() -> float:
        await asyncio.sleep(10.5)
        return asyncio.get_running_loop().time()

    def main() -> None:
        t0 = gofer.get_hub().now()
        hb = gofer.go(heartbeat)
        done_at = aio.run(slow())
        assert len(beats) == 10  # all ten beats happened while asyncio slept
        assert done_at - t0 == pytest.approx(10.5)
        hb.join()

    vrun(main)


def test_many_concurrent_runs_share_one_loop(vrun: Callable[..., Any]) -> None:
    loops = set()

    async def job(i: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(1)
        return i

    def main() -> None:
        hub = gofer.get_hub()
        t0 = hub.now()
        tasks = [gofer.go(aio.run, job(i)) for i in range(200)]
        assert [t.join() for t in tasks] == list(range(200))
        assert hub.now() - t0 < 2  # concurrent: one second, not 200
        assert loops == {id(aio.loop())}

    vrun(main)


def test_loop_persists_between_runs(vrun: Callable[..., Any]) -> None:
    async def make() -> asyncio.Queue[int]:
        return asyncio.Queue()

    def main() -> None:
        q = aio.run(make())
        aio.run(q.put(7))
        assert aio.run(q.get()) == 7

    vrun(main)


def test_call_runs_gofer_code(vrun: Callable[..., Any]) -> None:
    def blocking(x: int) -> int:
        ch: gofer.Chan[int] = gofer.Chan()
        gofer.go(lambda: (gofer.sleep(2), ch.send(x * 2)))
        return ch.recv()

    def fails() -> None:
        gofer.sleep(1)
        raise ValueError("from gofer")

    async def main_async() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await aio.call(blocking, 21)
        with pytest.raises(ValueError, match="from gofer"):
            await aio.call(fails)
        return r, loop.time() - t0

    r, took = vrun(aio.run, main_async())
    assert r == 42
    assert took == pytest.approx(3)


def test_cancelling_gofer_caller_cancels_asyncio_task(vrun: Callable[..., Any]) -> None:
    seen: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(1)  # clean-up that itself waits
            seen.append("cleaned up")
            raise

    def main() -> None:
        t0 = gofer.get_hub().now()
        with pytest.raises(TimeoutError), gofer.timeout(5):
            aio.run(forever())
        assert seen == ["cancelled", "cleaned up"]  # waited for the task to finish
        assert gofer.get_hub().now() - t0 == pytest.approx(6)
        t = gofer.go(aio.run, forever())
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()

    vrun(main)


def test_cancelling_awaiting_task_cancels_gofer_coroutine(vrun: Callable[..., Any]) -> None:
    events: list[str] = []

    def slow() -> None:
        try:
            gofer.sleep(100)
        except gofer.Cancelled:
            events.append("gofer cancelled")
            raise
        finally:
            events.append("gofer finally")

    async def main_async() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aio.call(slow), 1)
        events.append("asyncio timed out")

    vrun(aio.run, main_async())
    assert events == ["gofer cancelled", "gofer finally", "asyncio timed out"]


def test_gofer_coroutine_cancelled_elsewhere_is_cancelled_error(vrun: Callable[..., Any]) -> None:
    started: list[gofer.Task[None]] = []

    def victim() -> None:
        started.append(gofer.current())  # type: ignore[arg-type]
        gofer.sleep(100)

    async def main_async() -> None:
        with pytest.raises(asyncio.CancelledError):
            await aio.call(victim)

    def main() -> None:
        t = gofer.go(aio.run, main_async())
        gofer.sleep(1)
        started[0].cancel()
        t.join()

    vrun(main)


def test_misuse_is_named() -> None:
    async def inside() -> None:
        coro = asyncio.sleep(0)
        try:
            aio.run(coro)
        finally:
            coro.close()

    async def call_on_plain_loop() -> None:
        await aio.call(lambda: None)

    with pytest.raises(RuntimeError, match="from asyncio code"):
        gofer.run(aio.run, inside())
    with (
        asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as r,
        pytest.raises(RuntimeError, match="gofer event loop"),
    ):
        r.run(call_on_plain_loop())
    with pytest.raises(TypeError, match="coroutine or awaitable"):
        gofer.run(aio.run, 42)


def test_deadlock_is_not_hidden_by_the_loop(vrun: Callable[..., Any]) -> None:
    def main() -> None:
        aio.run(asyncio.sleep(1))
        gofer.Chan().recv()  # nothing will ever send

    with pytest.raises(gofer.Deadlock):
        vrun(main)


def test_end_of_run_cancels_leftover_asyncio_tasks(vrun: Callable[..., Any]) -> None:
    seen: list[str] = []
    keep: list[asyncio.Task[None]] = []

    async def background() -> None:
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def start() -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        seen.append("started")
        keep.append(loop.create_task(background()))
        await asyncio.sleep(0)
        return loop

    loop = vrun(aio.run, start())
    assert seen == ["started", "cancelled"]
    assert loop.is_closed()


def test_asyncio_run_under_policy(vrun: Callable[..., Any], policy: None) -> None:
    beats: list[int] = []

    async def amain() -> str:
        assert type(asyncio.get_running_loop()).__name__ == "GoferEventLoop"
        await asyncio.sleep(5.5)
        return await aio.call(lambda: f"beats={len(beats)}")

    def main() -> str:
        hb = gofer.go(lambda: [beats.append(gofer.sleep(1)) for _ in range(5)])  # type: ignore[func-returns-value]
        r = asyncio.run(amain())
        hb.join()
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, aio.GoferEventLoop)
        finally:
            loop.close()
        return r

    assert vrun(main) == "beats=5"


def test_asyncio_run_cancelled_from_gofer(vrun: Callable[..., Any], policy: None) -> None:
    seen: list[str] = []

    async def amain() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            await asyncio.sleep(1)
            seen.append("asyncio clean-up ran")
            raise

    def main() -> None:
        with pytest.raises(TimeoutError), gofer.timeout(2):
            asyncio.run(amain())
        assert seen == ["asyncio clean-up ran"]
        assert asyncio.run(asyncio.sleep(1, result="again")) == "again"  # afresh after the scope

    vrun(main)


def test_two_threads_two_hub_loops() -> None:
    results: dict[str, Any] = {}

    async def job(name: str) -> tuple[str, int]:
        await asyncio.sleep(0.01)
        return name, threading.get_ident()

    def thread_main(name: str) -> None:
        results[name] = gofer.run(aio.run, job(name))

    ths = [threading.Thread(target=thread_main, args=(n,)) for n in ("a", "b")]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert results["a"][0] == "a" and results["b"][0] == "b"
    assert results["a"][1] != results["b"][1]


def test_streams_echo_alongside_gofer_sockets() -> None:
    from gofer import net

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while line := await r.readline():
            w.write(line.upper())
            await w.drain()
        w.close()
        await w.wait_closed()

    async def serve() -> tuple[asyncio.Server, int]:
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        return srv, srv.sockets[0].getsockname()[1]

    async def close(srv: asyncio.Server) -> None:
        srv.close()
        await srv.wait_closed()

    async def aclient(port: int, n: int) -> list[bytes]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        out = []
        for i in range(n):
            w.write(b"async %d\n" % i)
            await w.drain()
            out.append(await r.readline())
        w.close()
        await w.wait_closed()
        return out

    def gclient(port: int, n: int) -> list[bytes]:
        out = []
        with net.connect(("127.0.0.1", port)) as c:
            for i in range(n):
                c.write_all(b"gofer %d\n" % i)
                out.append(c.readline())
        return out

    def main() -> None:
        srv, port = aio.run(serve())
        try:
            ts = [gofer.go(gclient, port, 50) for _ in range(5)]
            ts += [gofer.go(aio.run, aclient(port, 50)) for _ in range(5)]
            res = [t.join() for t in ts]
        finally:
            aio.run(close(srv))
        assert res[0] == [b"GOFER %d\n" % i for i in range(50)]
        assert res[-1] == [b"ASYNC %d\n" % i for i in range(50)]

    gofer.run(main)


def test_loop_in_plain_thread_code(policy: None) -> None:
    async def amain() -> int:
        await asyncio.sleep(0.01)
        return await aio.call(lambda: 5)

    assert asyncio.run(amain()) == 5  # no gofer.run: the thread's main code parks


def test_end_of_run_with_runs_in_flight(vrun: Callable[..., Any]) -> None:
    seen: list[str] = []

    async def forever(i: int) -> None:
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # clean-up that waits, while gofer.run is ending
            seen.append(f"cleaned {i}")
            raise

    def main() -> None:
        for i in range(3):
            gofer.go(aio.run, forever(i))
        gofer.sleep(1)  # main returns with three runs in flight

    vrun(main)
    assert sorted(seen) == ["cleaned 0", "cleaned 1", "cleaned 2"]
