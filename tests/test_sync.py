"""Locks: Mutex, RwLock, Semaphore, BoundedSemaphore, Condition (coroutines, virtual clock)."""

from __future__ import annotations

import pytest

import gofer
from gofer import BoundedSemaphore, Condition, Mutex, RwLock, Semaphore


def test_mutex_excludes_and_hands_off_in_fifo_order(vrun):
    def main():
        mu = Mutex()
        inside = []
        order = []

        def worker(i):
            with mu:
                inside.append(i)
                assert len(inside) == 1
                order.append(i)
                gofer.sleep(0.1)
                inside.remove(i)

        ts = [gofer.go(worker, i) for i in range(5)]
        for t in ts:
            t.join()
        assert order == [0, 1, 2, 3, 4]
        assert not mu.locked()

    vrun(main)


def test_mutex_errors_timeout_and_statistics(vrun):
    def main():
        mu = Mutex()
        with pytest.raises(RuntimeError, match=r"unlocked gofer\.Mutex"):
            mu.release()
        assert mu.try_acquire()
        assert not mu.try_acquire()
        st = mu.statistics()
        assert st["locked"] and st["owner"] == "main" and st["waiters"] == 0
        with pytest.raises(TimeoutError):
            mu.acquire(timeout=1)
        t = gofer.go(mu.acquire)
        gofer.yield_now()
        assert mu.statistics()["waiters"] == 1
        assert "waiters=1" in repr(mu)
        mu.release()  # handed to t
        t.join()
        assert mu.locked() and mu.statistics()["owner"].startswith("Task-")
        mu.release()  # Go: any coroutine may unlock
        assert not mu.locked()

    vrun(main)


def test_cancelled_mutex_waiter_never_gets_the_lock(vrun):
    def main():
        mu = Mutex()
        mu.acquire()
        t = gofer.go(mu.acquire)
        gofer.yield_now()
        t.cancel()
        gofer.yield_now()
        mu.release()
        assert not mu.locked()  # not handed to the cancelled waiter

    vrun(main)


def test_mutex_handed_to_waiter_then_cancelled_keeps_it(vrun):
    def main():
        mu = Mutex()
        mu.acquire()
        got = []

        def waiter():
            mu.acquire()
            got.append("locked")
            try:
                gofer.yield_now()  # the cancellation arrives here
            finally:
                mu.release()

        t = gofer.go(waiter)
        gofer.yield_now()
        mu.release()
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert got == ["locked"] and not mu.locked()

    vrun(main)


def test_rwlock_readers_share_writer_excludes(vrun):
    def main():
        rw = RwLock()
        log = []

        def reader(i):
            with rw.read():
                log.append(("r+", i))
                gofer.sleep(1)
                log.append(("r-", i))

        def writer():
            with rw.write():
                log.append(("w+", 0))
                gofer.sleep(1)
                log.append(("w-", 0))

        ts = [gofer.go(reader, 0), gofer.go(reader, 1)]
        gofer.yield_now()
        assert rw.statistics()["readers"] == 2
        ts.append(gofer.go(writer))
        for t in ts:
            t.join()
        assert log[:2] == [("r+", 0), ("r+", 1)]
        assert log[4:] == [("w+", 0), ("w-", 0)]

    vrun(main)


def test_rwlock_no_writer_starvation(vrun):
    def main():
        rw = RwLock()
        log = []

        def reader(i, delay):
            gofer.sleep(delay)
            with rw.read():
                log.append(f"r{i}")
                gofer.sleep(1)

        def writer():
            gofer.sleep(0.5)
            with rw.write():
                log.append("w")
                gofer.sleep(1)

        ts = [gofer.go(reader, 0, 0), gofer.go(writer)]
        # a stream of readers arriving after the writer must queue behind it
        ts += [gofer.go(reader, i, 0.6 + i * 0.3) for i in range(1, 5)]
        for t in ts:
            t.join()
        assert log[:2] == ["r0", "w"]
        st = rw.statistics()
        assert st == {"readers": 0, "writer": False, "readers_waiting": 0, "writers_waiting": 0}

    vrun(main)


def test_rwlock_aborted_writer_lets_queued_readers_in(vrun):
    def main():
        rw = RwLock()
        rw.acquire_read()
        w = gofer.go(rw.acquire_write, 1)  # times out after 1s
        gofer.yield_now()
        r = gofer.go(rw.acquire_read)  # queues behind the writer
        gofer.yield_now()
        assert rw.statistics()["readers_waiting"] == 1
        with pytest.raises(TimeoutError):
            w.join()
        r.join()  # admitted once the writer gave up
        assert rw.statistics()["readers"] == 2
        rw.release_read()
        rw.release_read()
        with pytest.raises(RuntimeError, match="no reader holds"):
            rw.release_read()
        with pytest.raises(RuntimeError, match="no writer holds"):
            rw.release_write()

    vrun(main)


def test_semaphore_limits_concurrency(vrun):
    def main():
        sem = Semaphore(2)
        active = [0]
        peak = [0]

        def worker():
            with sem:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                gofer.sleep(1)
                active[0] -= 1

        ts = [gofer.go(worker) for _ in range(6)]
        gofer.yield_now()
        assert sem.statistics() == {"value": 0, "waiters": 4}
        for t in ts:
            t.join()
        assert peak[0] == 2 and sem.value == 2
        assert not Semaphore(0).try_acquire()
        with pytest.raises(TimeoutError):
            Semaphore(0).acquire(timeout=1)
        s = Semaphore(0)
        s.release(3)
        assert s.value == 3
        with pytest.raises(ValueError, match="initial value"):
            Semaphore(-1)
        with pytest.raises(ValueError, match="positive number"):
            s.release(0)

    vrun(main)


def test_bounded_semaphore(vrun):
    def main():
        b = BoundedSemaphore(2)
        b.acquire()
        b.release()
        with pytest.raises(ValueError, match="released too many times"):
            b.release()
        b.acquire()
        b.acquire()
        t = gofer.go(b.acquire)
        gofer.yield_now()
        b.release()  # goes to the waiter, value stays 0
        t.join()
        b.release()
        b.release()
        assert b.value == 2
        assert b.statistics()["bound"] == 2

    vrun(main)


def test_condition_notify_and_wait_for(vrun):
    def main():
        cond = Condition()
        items = []
        got = []

        def consumer():
            with cond:
                cond.wait_for(lambda: items)
                got.append(items.pop())

        ts = [gofer.go(consumer) for _ in range(3)]
        gofer.yield_now()
        assert cond.statistics()["waiters"] == 3
        for i in range(3):
            with cond:
                items.append(i)
                cond.notify()
            gofer.yield_now()
        for t in ts:
            t.join()
        assert sorted(got) == [0, 1, 2]

    vrun(main)


def test_condition_notify_all_timeout_and_cancel_reacquire(vrun):
    def main():
        cond = Condition(Mutex())
        woke = []

        def waiter(i):
            with cond:
                cond.wait()
                woke.append(i)
                assert cond.lock.locked()

        ts = [gofer.go(waiter, i) for i in range(3)]
        gofer.yield_now()
        with cond:
            cond.notify_all()
        for t in ts:
            t.join()
        assert sorted(woke) == [0, 1, 2]
        with cond:
            with pytest.raises(TimeoutError):
                cond.wait(timeout=1)
            assert cond.lock.locked()  # re-taken even after the timeout
            with pytest.raises(TimeoutError, match="predicate"):
                cond.wait_for(lambda: False, timeout=2)

        def cancelled_waiter():
            with cond:
                try:
                    cond.wait()
                finally:
                    assert cond.lock.locked()

        t = gofer.go(cancelled_waiter)
        gofer.yield_now()
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert not cond.lock.locked()
        with pytest.raises(RuntimeError, match="needs its lock held"):
            cond.wait()
        with pytest.raises(TypeError, match=r"gofer\.Mutex"):
            Condition(object())

    vrun(main)
