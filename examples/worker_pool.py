"""A worker pool: jobs on one channel, results on another, a WaitGroup to close it.

Workers are coroutines that range over the jobs channel until it is
closed; a WaitGroup tells when all of them are done so that the results
channel can be closed too, which ends the collecting loop.

    python examples/worker_pool.py [jobs] [workers]
"""

from __future__ import annotations

import sys

import gofer


def worker(wid: int, jobs: gofer.Chan[int], results: gofer.Chan[tuple[int, int, int]]) -> None:
    for n in jobs:
        gofer.sleep(0.001)  # stands for real work (I/O, a request, ...)
        results.send((n, n * n, wid))


def run_pool(n_jobs: int, n_workers: int) -> dict[int, int]:
    jobs: gofer.Chan[int] = gofer.Chan(n_workers)
    results: gofer.Chan[tuple[int, int, int]] = gofer.Chan(n_workers)
    wg = gofer.WaitGroup()
    for wid in range(n_workers):
        wg.go(worker, wid, jobs, results)

    def feed() -> None:
        for n in range(n_jobs):
            jobs.send(n)
        jobs.close()  # the workers' loops end once the jobs are drained

    def closer() -> None:
        wg.wait()
        results.close()

    gofer.go(feed)
    gofer.go(closer)
    squares = {}
    used = set()
    for n, sq, wid in results:
        squares[n] = sq
        used.add(wid)
    print(f"{len(squares)} jobs done by {len(used)} of {n_workers} workers")
    return squares


def main() -> None:
    n_jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_workers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    squares = gofer.run(run_pool, n_jobs, n_workers)
    assert squares == {n: n * n for n in range(n_jobs)}
    print("sum of squares:", sum(squares.values()))


if __name__ == "__main__":
    main()
