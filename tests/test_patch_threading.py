"""gofer.patch() and threading/queue: threads stay threads, waits park, state is per coroutine."""

from __future__ import annotations

from tests._patchutil import run_patched

# A coroutine that counts while another one waits: if the wait blocked the
# hub, the count stays near zero (ideal: ~30 in 0.3 s).
HEARTBEAT = """
import threading, time, queue, _thread
beats = [0]
def heartbeat():
    while True:
        gofer.sleep(0.01)
        beats[0] += 1
def later(fn, delay=0.3):
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    t.start()
    return t
def check(name, wait):
    hb = gofer.go(heartbeat)
    beats[0] = 0
    result = wait()
    hb.cancel()
    print(name, beats[0] >= 5, result)
"""


def test_waits_park_the_coroutine_and_a_thread_wakes_them():
    out = run_patched(HEARTBEAT + """
def main():
    lock = threading.Lock(); lock.acquire()
    t = later(lock.release); check("Lock", lambda: lock.acquire()); t.join()
    rl = threading.RLock()
    def hold():
        rl.acquire(); time.sleep(0.3); rl.release()
    t = threading.Thread(target=hold); t.start(); time.sleep(0.05)
    check("RLock", lambda: rl.acquire(timeout=5)); rl.release(); t.join()
    ev = threading.Event()
    t = later(ev.set); check("Event", lambda: ev.wait(5)); t.join()
    cond = threading.Condition()
    def notify():
        with cond:
            cond.notify_all()
    t = later(notify)
    with cond:
        check("Condition", lambda: cond.wait(5))
    t.join()
    sem = threading.Semaphore(0)
    t = later(sem.release); check("Semaphore", lambda: sem.acquire(timeout=5)); t.join()
    bar = threading.Barrier(2)
    t = later(bar.wait); check("Barrier", lambda: bar.wait(5) in (0, 1)); t.join()
    q = queue.Queue()
    t = later(lambda: q.put(42)); check("Queue", lambda: q.get(timeout=5)); t.join()
    sq = queue.SimpleQueue()
    t = later(lambda: sq.put(43)); check("SimpleQueue", lambda: sq.get(timeout=5)); t.join()
    t = threading.Thread(target=time.sleep, args=(0.3,)); t.start()
    check("join", lambda: t.join())
    fired = []
    tm = threading.Timer(0.3, lambda: fired.append(1)); tm.start()
    check("Timer", lambda: (tm.join(), fired)[1])
gofer.run(main)
""")
    assert out.splitlines() == [
        "Lock True True", "RLock True True", "Event True True", "Condition True True",
        "Semaphore True True", "Barrier True True", "Queue True 42", "SimpleQueue True 43",
        "join True None", "Timer True [1]",
    ]


def test_threads_stay_os_threads_and_a_thread_waits_for_a_coroutine():
    out = run_patched("""
        import threading, time, _thread
        def main():
            ev = threading.Event()
            seen = []
            def worker():
                seen.append(_thread.get_ident())
                seen.append(ev.wait(5))  # a plain thread blocks until the coroutine sets it
            t = threading.Thread(target=worker); t.start()
            gofer.go(lambda: (time.sleep(0.1), ev.set()))
            t.join()
            print(seen[0] != _thread.get_ident(), seen[1])
            # get_ident answers per OS thread: two coroutines of one thread agree.
            a = gofer.go(threading.get_ident); b = gofer.go(threading.get_ident)
            print(a.join() == b.join() == threading.get_ident())
        gofer.run(main)
    """)
    assert out.split() == ["True", "True", "True"]


def test_threading_local_is_per_coroutine():
    out = run_patched("""
        import threading, time
        loc = threading.local()
        class Sub(threading.local):
            def __init__(self, x):
                self.x = x
        sub = Sub(5)
        def worker(name):
            loc.name = name
            time.sleep(0.01)  # the others run and set theirs meanwhile
            sub.x += 1
            return loc.name, sub.x
        def main():
            tasks = [gofer.go(worker, f"c{i}") for i in range(5)]
            print([t.join() for t in tasks])
            print(hasattr(loc, "name"))
        gofer.run(main)
    """)
    lines = out.splitlines()
    assert lines[0] == str([(f"c{i}", 6) for i in range(5)])
    assert lines[1] == "False"


def test_rlock_and_condition_belong_to_the_coroutine():
    out = run_patched("""
        import threading
        rl = threading.RLock()
        cond = threading.Condition()
        def main():
            rl.acquire()
            print(rl.acquire(blocking=False))  # reentrant for its owner
            def other():
                got = rl.acquire(blocking=False)
                try:
                    rl.release()
                except RuntimeError as e:
                    err = str(e)
                try:
                    cond.wait()
                except RuntimeError as e:
                    err2 = str(e)
                return got, err, err2
            print(gofer.go(other).join())
            rl.release(); rl.release()
        gofer.run(main)
    """)
    assert out.splitlines() == [
        "True", "(False, 'cannot release un-acquired lock', 'cannot wait on un-acquired lock')"]


def test_cancelled_condition_wait_gives_the_lock_back():
    out = run_patched("""
        import threading
        cond = threading.Condition(threading.Lock())
        def waiter():
            with cond:
                cond.wait()
        def main():
            t = gofer.go(waiter)
            gofer.sleep(0.05)
            t.cancel()
            try:
                t.join()
            except gofer.Cancelled:
                print("cancelled")
            print(cond.acquire(blocking=False))
        gofer.run(main)
    """)
    assert out.split() == ["cancelled", "True"]


def test_lock_arguments_and_errors_match_the_stdlib():
    out = run_patched("""
        import threading, gofer.patch
        def errs(lock):
            out = []
            for args in ((False, 1), (True, -2)):
                try:
                    lock.acquire(*args)
                except Exception as e:
                    out.append((type(e).__name__, "timeout" in str(e)))
            try:
                lock.release()
            except RuntimeError as e:
                out.append(str(e))
            return out
        orig = gofer.patch.original("_thread", "allocate_lock")()
        print(errs(threading.Lock()) == errs(orig), errs(threading.Lock()))
        l = threading.Lock()
        print(l.acquire(), l.acquire(False), l.acquire(timeout=0.01), l.locked())
        l.release()
        with l:
            print(l.locked())
        try:
            class MyLock(threading.Lock):  # not a base type, as the stdlib's
                pass
        except TypeError:
            print("no subclass")
    """)
    lines = out.splitlines()
    assert lines[0].startswith("True ")
    assert lines[1] == "True False False True"
    assert lines[2:] == ["True", "no subclass"]


def test_a_raw_thread_may_release_what_the_main_code_waits_for():
    # _thread.start_new_thread threads are not in threading.enumerate(): the
    # hub must not report a deadlock while one of them may still wake it.
    out = run_patched("""
        import _thread, threading, time
        lock = threading.Lock(); lock.acquire()
        _thread.start_new_thread(lambda: (time.sleep(0.2), lock.release()), ())
        print(lock.acquire(timeout=10))
    """)
    assert out.strip() == "True"


def test_queue_alone_is_cooperative():
    out = run_patched("""
        import queue, threading
        q = queue.Queue(); sq = queue.SimpleQueue()
        beats = []
        def hb():
            for _ in range(10):
                gofer.sleep(0.01); beats.append(1)
        def main():
            gofer.go(hb)
            threading.Thread(target=lambda: (__import__("time").sleep(0.3), q.put(1), sq.put(2))).start()
            print(q.get(), sq.get(), len(beats) >= 5, threading.Lock.__module__)
            try:
                q.get(timeout=0.01)
            except queue.Empty:
                print("empty")
        gofer.run(main)
    """, patch="gofer.patch(queue=True)")
    assert out.split() == ["1", "2", "True", "_thread", "empty"]


def test_rlock_taken_by_a_finalizer_as_a_task_ends():
    # The logging handler's RLock taken from a __del__ that runs in a worker
    # whose task just ended: the worker then owns it (it once counted as "nobody").
    out = run_patched("""
        import gc, io, logging, sys
        unraisable = []
        sys.unraisablehook = lambda u: unraisable.append(repr(u.exc_value))
        stream = io.StringIO()
        logging.getLogger("gofer").addHandler(logging.StreamHandler(stream))
        def bad():
            raise RuntimeError("nobody joins me")
        def main():
            gofer.go(bad)
            gofer.sleep(0.05)
        gofer.run(main)
        gc.collect()
        print("never retrieved" in stream.getvalue(), unraisable)
    """)
    assert out.strip() == "True []"
