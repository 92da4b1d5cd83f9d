"""Many PostgreSQL queries at once from plain blocking code, with psycopg 3.

    python examples/pg_concurrent_queries.py "host=127.0.0.1 port=5432 user=postgres" --clients 50

``gofer.patch()`` makes psycopg's waits park the coroutine instead of the
thread (psycopg's I/O is in libpq; gofer replaces the functions psycopg
waits with). Each of ``--clients`` coroutines opens its own connection and
runs ``SELECT pg_sleep(0.2)``: together they take about 0.2 s, not
``clients * 0.2`` s. The code is ordinary psycopg code.
"""

from __future__ import annotations

import argparse
import time

import gofer

gofer.patch()  # first, before the driver is used

import psycopg  # noqa: E402


def client(dsn: str, i: int) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT %s::int FROM pg_sleep(0.2)", (i,)).fetchone()
        assert row is not None
        return int(row[0])


def main(dsn: str, clients: int) -> None:
    t0 = time.monotonic()
    with gofer.scope() as s:
        tasks = [s.go(client, dsn, i) for i in range(clients)]
    got = [t.result() for t in tasks]
    assert got == list(range(clients))
    print(f"{clients} clients x pg_sleep(0.2) in {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dsn", help='a libpq connection string, e.g. "host=127.0.0.1 user=postgres"')
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    gofer.run(main, args.dsn, args.clients)
