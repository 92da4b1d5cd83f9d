"""Every primitive across OS threads: plain threads and coroutines on several hubs."""

from __future__ import annotations

import threading
import time

import gofer
from gofer import Barrier, Condition, Event, Mutex, Once, RwLock, Semaphore, WaitGroup


def _threads(fn, n):
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return ts


def _on_hub(fn, *args):
    """Run fn in a new thread that runs its own hub (a coroutine there)."""
    th = threading.Thread(target=gofer.run, args=(fn, *args))
    th.start()
    return th


def test_mutex_counter_threads_and_coroutines():
    mu = Mutex()
    count = [0]
    n = 2000

    def bump():
        for _ in range(n):
            with mu:
                v = count[0]
                if v % 7 == 0:  # let the others run while we hold it
                    if gofer.current() is None:
                        time.sleep(0)
                    else:
                        gofer.yield_now()
                count[0] = v + 1

    def coro_side():
        ts = [gofer.go(bump) for _ in range(3)]
        for t in ts:
            t.join()

    ths = [*_threads(lambda i: bump(), 2), _on_hub(coro_side)]
    gofer.run(coro_side)
    for t in ths:
        t.join()
    assert count[0] == n * (2 + 3 + 3)
    assert not mu.locked() and mu.statistics()["waiters"] == 0


def test_event_set_by_thread_wakes_coroutines_and_threads():
    ev = Event()
    woke = []

    def main():
        ths = _threads(lambda i: (ev.wait(), woke.append("thread")), 2)
        ts = [gofer.go(lambda: (ev.wait(), woke.append("coro"))) for _ in range(3)]
        setter = threading.Thread(target=ev.set)
        setter.start()
        for t in ts:
            t.join()
        for t in [*ths, setter]:
            t.join()

    gofer.run(main)
    assert sorted(woke) == ["coro"] * 3 + ["thread"] * 2


def test_waitgroup_done_from_threads():
    wg = WaitGroup()
    n = 8
    wg.add(n)

    def main():
        ths = _threads(lambda i: wg.done(), n)
        wg.wait(timeout=30)
        for t in ths:
            t.join()
        assert wg.count == 0

    gofer.run(main)


def test_semaphore_and_rwlock_across_threads():
    sem = Semaphore(2)
    rw = RwLock()
    active = [0]
    peak = [0]
    lock = threading.Lock()
    shared = []

    def work(i):
        for _ in range(200):
            with sem:
                with lock:
                    active[0] += 1
                    peak[0] = max(peak[0], active[0])
                with lock:
                    active[0] -= 1
            if i % 2:
                with rw.write():
                    shared.append(i)
                    assert len(shared) == 1
                    shared.pop()
            else:
                with rw.read():
                    assert not shared

    def main():
        ts = [gofer.go(work, i) for i in range(4)]
        for t in ts:
            t.join()

    ths = [*_threads(work, 4), _on_hub(main)]
    for t in ths:
        t.join()
    assert peak[0] <= 2


def test_condition_producer_thread_consumer_coroutines():
    cond = Condition()
    items = []
    got = []
    n = 300

    def producer(_):
        for i in range(n):
            with cond:
                items.append(i)
                cond.notify()

    def consumer():
        while True:
            with cond:
                cond.wait_for(lambda: items)
                v = items.pop(0)
            if v is None:
                return
            got.append(v)

    def main():
        ts = [gofer.go(consumer) for _ in range(3)]
        ths = _threads(producer, 1)
        for t in ths:
            t.join()
        with cond:
            items.extend([None] * 3)
            cond.notify_all()
        for t in ts:
            t.join()

    gofer.run(main)
    assert sorted(got) == list(range(n))


def test_barrier_and_once_across_hubs_and_threads():
    b = Barrier(4)
    once = Once()
    calls = []
    results = []

    def init():
        calls.append(1)
        return "v"

    def party(_=None):
        for _ in range(5):
            b.wait(timeout=30)
        results.append(once.do(init))

    ths = [*_threads(party, 2), _on_hub(party)]
    gofer.run(party)
    for t in ths:
        t.join()
    assert results == ["v"] * 4 and calls == [1]
