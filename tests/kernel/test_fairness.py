"""Time slices: a yield, a hand-off or a fast path lets due timers and ready I/O run.

These tests use the real clock on purpose: what they check is that CPU time
spent between scheduling points does not starve timers and I/O. Their
bounds are loose (a fifth of the ideal count or less), so that a loaded
machine cannot make them fail; before the time slice existed each count was
0 or 1.
"""

from __future__ import annotations

import socket as std_socket
import time

import gofer
from gofer import socket


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _heartbeat(ticks: list[float], period: float) -> None:
    while True:
        gofer.sleep(period)
        ticks.append(time.perf_counter())


def _ticks_during(work, period: float = 0.005) -> int:
    """How many times a ``period`` heartbeat ran while ``work()`` ran."""

    def main() -> int:
        ticks: list[float] = []
        hb = gofer.go(_heartbeat, ticks, period)
        gofer.sleep(period * 2)  # let it start
        ticks.clear()
        work()
        n = len(ticks)
        hb.cancel()
        return n

    return gofer.run(main)


def test_yield_now_lets_due_timers_run():
    # 20 slices of 5 ms with a yield between them: ideally 20 ticks of 5 ms.
    def work() -> None:
        for _ in range(20):
            _busy(0.005)
            gofer.yield_now()

    assert _ticks_during(work) >= 4


def test_sleep_zero_lets_due_timers_run():
    def work() -> None:
        for _ in range(20):
            _busy(0.005)
            gofer.sleep(0)

    assert _ticks_during(work) >= 4


def test_yield_with_a_partner_ready_still_lets_timers_run():
    # Two CPU-bound coroutines yielding to each other always find the other
    # ready, so the hub's switch budget alone would let timers in only every
    # 256 yields.
    def work() -> None:
        def spinner() -> None:
            for _ in range(10):
                _busy(0.005)
                gofer.yield_now()

        other = gofer.go(spinner)
        spinner()
        other.join()

    assert _ticks_during(work) >= 4


def test_yield_now_serves_ready_io_before_continuing():
    # An echo coroutine must answer while another one computes in 5 ms slices.
    def main() -> float:
        a, b = socket.socketpair()

        def echo() -> None:
            while d := b.recv(100):
                b.sendall(d)

        e = gofer.go(echo)
        worst = [0.0]
        done = [False]

        def client() -> None:
            for _ in range(5):
                t0 = time.perf_counter()
                a.sendall(b"x")
                assert a.recv(1) == b"x"
                worst[0] = max(worst[0], time.perf_counter() - t0)
            done[0] = True

        c = gofer.go(client)
        n = 0
        while not done[0] and n < 400:  # 2 s at most
            _busy(0.005)
            gofer.yield_now()
            n += 1
        c.join()
        a.close()
        e.join()
        b.close()
        return worst[0]

    # Each round trip waits for at most a few slices, not 256 of them (1.3 s).
    assert gofer.run(main) < 0.5


def test_channel_fast_paths_give_way():
    # A buffered channel with room and a value waiting never parks: a loop of
    # send + recv must still let the heartbeat run.
    def work() -> None:
        ch: gofer.Chan[int] = gofer.Chan(4)
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            ch.send(1)
            ch.recv()

    assert _ticks_during(work) >= 4  # ideally 40; 0 without giving way


def test_socket_fast_path_gives_way_to_slow_connections():
    # One connection with far more data already buffered than its reader
    # takes in the test's time, so recv never finds it empty and never parks,
    # among slow ones served by other coroutines: the slow ones must still get
    # their answers.
    def main() -> int:
        fast_a, fast_b = std_socket.socketpair()
        fast_a.setblocking(False)
        try:
            while True:
                fast_a.send(b"x" * 65536)
        except BlockingIOError:
            pass  # the buffers are full
        fast = socket.socket(fileno=fast_b.detach())
        pairs = [socket.socketpair() for _ in range(20)]
        answered = [0]

        def slow_server(s: socket.socket) -> None:
            while d := s.recv(10):
                s.sendall(d)

        def slow_client(s: socket.socket) -> None:
            for _ in range(3):
                s.sendall(b"ping")
                if s.recv(10) == b"ping":
                    answered[0] += 1

        servers = [gofer.go(slow_server, b) for _, b in pairs]
        clients = [gofer.go(slow_client, a) for a, _ in pairs]

        def reader() -> None:
            # Reads 1 byte at a time: the buffered data lasts far longer than
            # the 3 s this gives the others to get their 60 answers.
            end = time.perf_counter() + 3
            while time.perf_counter() < end and answered[0] < 60:
                assert fast.recv(1)
                _busy(0.0001)  # some work per message

        r = gofer.go(reader)
        r.join()
        n = answered[0]
        fast.close()
        fast_a.close()
        for c in clients:
            c.join()
        for a, _ in pairs:
            a.close()  # the servers see EOF and return
        for t in servers:
            t.join()
        for _, b in pairs:
            b.close()
        return n

    # Without giving way the reader runs for its whole 3 s and nobody else.
    assert gofer.run(main) >= 30
