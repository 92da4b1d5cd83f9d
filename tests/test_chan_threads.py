"""Channels across OS threads: plain threads, coroutines on other hubs, exactly-once under stress."""

from __future__ import annotations

import collections
import random
import threading

import pytest

import gofer
from gofer import Chan, Closed, select


def _thread(fn, *args):
    t = threading.Thread(target=fn, args=args)
    t.start()
    return t


def test_coroutine_and_plain_thread_talk_both_ways():
    to_thread, from_thread = Chan(), Chan()

    def worker():  # a plain thread: blocks in recv, no gofer.run here
        for v in to_thread:
            from_thread.send(v * 2)
        from_thread.close()

    def main():
        th = _thread(worker)
        out = []

        def feeder():
            for i in range(200):
                to_thread.send(i)
            to_thread.close()

        gofer.go(feeder)
        out = list(from_thread)
        th.join()
        return out

    assert gofer.run(main) == [i * 2 for i in range(200)]


def test_plain_thread_timeout_and_closed():
    ch = Chan()
    errors = []

    def worker():
        try:
            ch.recv(timeout=0.01)
        except TimeoutError:
            errors.append("timeout")
        ch.close()
        with pytest.raises(Closed):
            ch.send(1)
        errors.append("closed")

    th = _thread(worker)
    th.join()
    assert errors == ["timeout", "closed"]


def test_two_hubs_select_against_each_other():
    a, b = Chan(), Chan()
    n = 300

    def hub2():
        def main2():
            got = []
            for _ in range(n):
                got.append(select(a.recv, b.recv))
            return got

        results.append(gofer.run(main2))

    results: list = []
    th = _thread(hub2)

    def main():
        for i in range(n):
            select((a.send, i), (b.send, -i - 1))

    gofer.run(main)
    th.join()
    got = results[0]
    assert sorted(v if i == 0 else -v - 1 for i, v in got) == list(range(n))


def test_thread_blocked_in_send_is_woken_by_coroutine_receiver():
    ch = Chan()
    done = threading.Event()

    def worker():
        ch.send("from thread")
        done.set()

    def main():
        th = _thread(worker)
        v = ch.recv()
        th.join()
        return v

    assert gofer.run(main) == "from thread"
    assert done.is_set()


def _stress(n_values: int, cap: int, seed: int) -> None:
    """Producers and consumers on this hub, another hub and plain threads; random
    timeouts everywhere and random Task.cancel() of this hub's coroutines. Every
    value whose send returned must be received exactly once, and no other."""
    rnd = random.Random(seed)
    ch1, ch2 = Chan(cap), Chan(cap)
    delivered: list[int] = []  # values whose send returned (list.append is atomic)
    received: list[int] = []
    n_producers = 8
    per = n_values // n_producers
    producers_left = [n_producers]
    plock = threading.Lock()
    # approximate counts (threads race on them): only checked to be > 0
    events: collections.Counter[str] = collections.Counter()

    def send_one(v: int, r: random.Random) -> bool:
        """One attempt; False if it timed out (then the value was not delivered)."""
        how = r.random()
        try:
            if how < 0.5:
                ch1.send(v)
            elif how < 0.75:
                select((ch1.send, v), (ch2.send, v))
            elif how < 0.9:
                ch2.send(v, timeout=r.choice((0, 0.0005)))
            else:
                with gofer.timeout(0.0005):
                    select((ch2.send, v), (ch1.send, v))
        except TimeoutError:
            events["send timeout"] += 1
            return False
        return True

    def producer_done() -> None:
        with plock:
            producers_left[0] -= 1
            if not producers_left[0]:
                ch1.close()
                ch2.close()

    def produce(k: int, r: random.Random) -> None:
        try:
            for v in range(k * per, (k + 1) * per):
                while not send_one(v, r):
                    pass
                delivered.append(v)
        finally:
            producer_done()

    def cancellable_producer(pending: collections.deque[int], r: random.Random) -> None:
        # Task.cancel() may interrupt it anywhere; a send that raises Cancelled did not
        # deliver, so the value stays at the head of `pending` for the replacement.
        try:
            while pending:
                if send_one(pending[0], r):
                    delivered.append(pending.popleft())
        except gofer.Cancelled:
            events["producer cancelled"] += 1

    def consume(r: random.Random) -> None:
        open_ = {0: ch1, 1: ch2}
        while open_:
            keys = list(open_)
            try:
                if r.random() < 0.3:
                    k = keys[0]
                    v, ok = open_[k].recv_ok(timeout=r.choice((0, 0.0005)))
                else:
                    i, (v, ok) = select(*(open_[k].recv_ok for k in keys), timeout=0.002)
                    k = keys[i]
            except TimeoutError:
                events["recv timeout"] += 1
                continue  # nothing consumed
            if ok:
                received.append(v)
            else:
                del open_[k]

    def cancellable_consumer(r: random.Random) -> None:
        try:
            consume(r)
        except gofer.Cancelled:
            events["consumer cancelled"] += 1  # a recv interrupted by cancel consumed nothing

    def second_hub() -> None:
        def main2() -> None:
            ts = [
                gofer.go(produce, 6, random.Random(rnd.random())),
                gofer.go(consume, random.Random(rnd.random())),
            ]
            for t in ts:
                t.join()

        gofer.run(main2)

    threads = [
        _thread(produce, 4, random.Random(rnd.random())),
        _thread(produce, 5, random.Random(rnd.random())),
        _thread(consume, random.Random(rnd.random())),
        _thread(second_hub),
    ]

    def main() -> None:
        pendings = [collections.deque(range(k * per, (k + 1) * per)) for k in (0, 1, 2, 3, 7)]
        producers = {
            k: gofer.go(cancellable_producer, p, random.Random(k)) for k, p in enumerate(pendings)
        }
        consumers = [gofer.go(cancellable_consumer, random.Random(rnd.random())) for _ in range(3)]
        # chaos: cancel coroutines at random moments and replace them
        while any(pendings):
            for _ in range(rnd.randrange(1, 100)):
                gofer.yield_now()
            for k, t in list(producers.items()):
                if t.done():
                    if pendings[k]:
                        producers[k] = gofer.go(
                            cancellable_producer, pendings[k], random.Random(rnd.random())
                        )
                    else:
                        del producers[k]
                        producer_done()
            if producers and rnd.random() < 0.5:
                producers[rnd.choice(list(producers))].cancel()
            else:
                victim = rnd.choice(consumers)
                victim.cancel()
                consumers.remove(victim)
                consumers.append(gofer.go(cancellable_consumer, random.Random(rnd.random())))
        for t in producers.values():
            t.join()
        for _ in producers:
            producer_done()
        for t in consumers:
            t.join()

    gofer.run(main)
    for th in threads:
        th.join()
    print(dict(events))
    for what in ("send timeout", "recv timeout", "consumer cancelled", "producer cancelled"):
        assert events[what], f"the stress run had no {what}: {events}"
    assert len(delivered) == n_producers * per
    assert len(received) == len(delivered), "a value was lost or delivered twice"
    assert sorted(received) == sorted(delivered) == list(range(n_producers * per))


@pytest.mark.slow
@pytest.mark.parametrize("cap", [0, 16])
def test_stress_exactly_once_threads_hubs_cancellations(cap):
    _stress(100_000, cap, seed=cap)
