"""gofer's thread pool: bounded, reuses idle threads, lets them exit when idle (issue 8, item 5).

A resolver lookup (``getaddrinfo`` of a host name) runs in the pool; the
thread must not outlive it by more than the idle timeout, or CPython's
thread-leak checks (``threading_helper.threading_cleanup``, which waits one
second) report it.

The last tests check ``to_thread`` itself: results, errors, parallel jobs,
and a caller cancelled while its job runs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gofer
from gofer import socket as gsocket
from gofer import threads


@pytest.fixture
def idle_timeout() -> Iterator[Any]:
    saved = threads.idle_timeout
    yield threads.set_idle_timeout
    threads.set_idle_timeout(saved)


def _pool_threads() -> int:
    return len(threads._pool_idents())


def _wait_for(cond: Any, limit: float = 30.0) -> bool:
    # A "does it ever happen" bound, generous enough never to flake.
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_a_lookup_passes_cpythons_thread_leak_check() -> None:
    from test import support
    from test.support import threading_helper

    key = threading_helper.threading_setup()
    gofer.run(gsocket.getaddrinfo, "localhost", 80)  # a host name: looked up in the pool
    altered, support.environment_altered = support.environment_altered, False
    try:
        threading_helper.threading_cleanup(*key)  # waits up to 1 s for the count to drop
        assert not support.environment_altered, "a pool thread outlived the lookup"
    finally:
        support.environment_altered = altered


def test_idle_threads_exit_after_the_idle_timeout(idle_timeout: Any) -> None:
    idle_timeout(0.05)
    before = threading.active_count()
    gofer.run(lambda: [t.join() for t in [gofer.go(gofer.to_thread, time.sleep, 0.01) for _ in range(4)]])
    assert _wait_for(lambda: threading.active_count() <= before)
    assert _pool_threads() == 0


def test_an_idle_thread_takes_the_next_job(idle_timeout: Any) -> None:
    idle_timeout(60)
    first = gofer.run(gofer.to_thread, threading.get_ident)
    second = gofer.run(gofer.to_thread, threading.get_ident)
    assert first == second
    idle_timeout(0)  # wakes the idle thread, which then exits
    assert _wait_for(lambda: _pool_threads() == 0)


def test_the_pool_is_bounded(monkeypatch: pytest.MonkeyPatch, idle_timeout: Any) -> None:
    idle_timeout(0.05)
    assert _wait_for(lambda: _pool_threads() == 0)
    monkeypatch.setattr(threads, "max_workers", 2)
    monkeypatch.setattr(threads, "_pool", None)
    release = threading.Event()
    seen: list[int] = []

    def job(i: int) -> int:
        seen.append(_pool_threads())
        release.wait(30)
        return i

    def main() -> list[int]:
        tasks = [gofer.go(gofer.to_thread, job, i) for i in range(5)]
        pool = threads._get_pool()
        for _ in range(30_000):  # until two jobs run and three wait (at most 30 s)
            if len(seen) == 2 and len(pool._jobs) == 3:
                break
            gofer.sleep(0.001)
        assert (len(seen), len(pool._jobs), _pool_threads()) == (2, 3, 2)
        release.set()
        return [t.join() for t in tasks]

    assert gofer.run(main) == [0, 1, 2, 3, 4]
    assert max(seen) <= 2


def test_set_idle_timeout_checks_its_argument() -> None:
    with pytest.raises(ValueError, match="idle timeout"):
        threads.set_idle_timeout(-1)
    with pytest.raises(ValueError, match="idle timeout"):
        threads.set_idle_timeout(float("nan"))
    with pytest.raises(TypeError, match="idle timeout"):
        threads.set_idle_timeout("1")  # type: ignore[arg-type]


def test_interpreter_exit_does_not_wait_for_idle_threads() -> None:
    code = (
        "import gofer, time\n"
        "from gofer import threads\n"
        "threads.set_idle_timeout(3600)\n"
        "print(gofer.run(gofer.to_thread, sum, [1, 2]))\n"
    )
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
    assert time.monotonic() - t0 < 50  # not the hour an idle thread would wait


def test_a_job_left_running_at_exit_finishes() -> None:
    code = (
        "import gofer, threading, time\n"
        "def slow():\n"
        "    time.sleep(0.2)\n"
        "    print('job done', flush=True)\n"
        "def main():\n"
        "    gofer.go(gofer.to_thread, slow)\n"
        "    gofer.sleep(0.05)\n"
        "gofer.run(main)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "job done" in out.stdout, out.stderr


def test_to_thread_result_error_and_concurrency(vrun):
    def main():
        assert gofer.to_thread(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            gofer.to_thread(lambda: 1 / 0)
        with pytest.raises(TypeError):
            gofer.to_thread(5)
        # Several at once really run in parallel threads.
        barrier = threading.Barrier(3, timeout=5)
        ts = [gofer.go(gofer.to_thread, barrier.wait) for _ in range(3)]
        assert sorted(t.join() for t in ts) == [0, 1, 2]

    gofer.run(main)


def test_to_thread_caller_can_be_cancelled(vrun):
    release = threading.Event()

    def main():
        t = gofer.go(gofer.to_thread, release.wait)
        gofer.sleep(0.01)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        release.set()

    gofer.run(main)


def test_cancel_of_task_parked_in_to_thread(vrun):
    release = threading.Event()

    def main():
        t = gofer.go(gofer.to_thread, release.wait, 5)
        gofer.sleep(0.01)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        release.set()
        gofer.to_thread(time.sleep, 0)  # the pool thread is back

    vrun(main)
