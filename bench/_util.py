"""Small helpers shared by the benchmark suites (run inside the subprocess)."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import subprocess
import time
from collections.abc import Callable
from typing import Any


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: peak RSS is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_of(fn: Callable[[], float], repeat: int) -> float:
    """Median of ``repeat`` calls of ``fn`` (each returns seconds per op)."""
    xs = sorted(fn() for _ in range(repeat))
    return xs[len(xs) // 2]


def timed(fn: Callable[[], Any], n: int) -> float:
    """Seconds per operation of ``fn()`` doing ``n`` operations.

    The garbage collector stays on, as it does for the asyncio and trio peers
    whose loops we cannot wrap; it is run once before timing.
    """
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / n


def stop(proc: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """End a child we started: SIGTERM, SIGKILL after ``grace`` seconds; close its pipes."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()
