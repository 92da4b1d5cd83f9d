"""A work queue on Redis: producers RPUSH, worker coroutines BLPOP, with redis-py.

    python examples/redis_work_queue.py --port 6379 --workers 20 --jobs 200

redis-py is pure Python on the stdlib's socket, so after ``gofer.patch()``
each ``BLPOP`` parks only its own coroutine: ``--workers`` coroutines wait
on the list at once, each with its own connection from redis-py's pool,
and every job is taken by exactly one of them.
"""

from __future__ import annotations

import argparse
import collections
import time

import gofer

gofer.patch()  # first, before the client is used

import redis  # noqa: E402

STOP = b"stop"


def worker(r: redis.Redis, key: str, done: collections.Counter[str], name: str) -> None:
    while True:
        item = r.blpop([key], timeout=30)
        if item is None or item[1] == STOP:
            return
        gofer.sleep(0.01)  # the "work"
        done[name] += 1


def main(host: str, port: int, workers: int, jobs: int) -> None:
    pool = redis.ConnectionPool(host=host, port=port, max_connections=workers + 2)
    r = redis.Redis(connection_pool=pool)
    key = f"gofer-example-{time.monotonic_ns()}"
    done: collections.Counter[str] = collections.Counter()
    t0 = time.monotonic()
    with gofer.scope() as s:
        for w in range(workers):
            s.go(worker, r, key, done, f"worker-{w}")
        for j in range(jobs):
            r.rpush(key, f"job-{j}")
        for _ in range(workers):
            r.rpush(key, STOP)
    pool.disconnect()
    print(f"{sum(done.values())} jobs done by {len(done)} workers in {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=200)
    a = ap.parse_args()
    gofer.run(main, a.host, a.port, a.workers, a.jobs)
