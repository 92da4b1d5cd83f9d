"""PostgreSQL drivers on gofer: psycopg2, psycopg 3 and pg8000 run concurrently.

200 coroutines each run ``SELECT pg_sleep(0.2)`` on a connection of their
own; one after another that is 40 s, concurrently it is about 0.2 s plus
overhead. psycopg 2 and 3 cooperate through :mod:`gofer.patch_db` (their
I/O is in libpq); pg8000 is pure Python and cooperates under
``gofer.patch()``, which is process-wide, so that test runs in a child
process (``python tests/test_db_pg.py pg8000 HOST PORT``). The bound
asserted (10 s) is loose enough never to flake, yet four times below the
serial time, so it proves the queries overlap; the measured times are
printed (``pytest -s``).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gofer
from gofer import patch_db
from services import Service, postgres, run_patched_child  # noqa: F401  (a fixture)

N = 200
SERIAL = N * 0.2
BOUND = 10.0
HERE = os.path.dirname(os.path.abspath(__file__))


def _concurrently(connect: Callable[[], Any], n: int = N) -> dict[str, float]:
    """Open n connections at once, then run pg_sleep(0.2) on all at once."""

    def main() -> dict[str, float]:
        t0 = time.monotonic()
        conns = [t.join() for t in [gofer.go(connect) for _ in range(n)]]
        t1 = time.monotonic()

        def query(c: Any) -> Any:
            cur = c.cursor()
            cur.execute("SELECT pg_sleep(0.2), 1")
            row = cur.fetchone()
            cur.close()
            return row[1]

        try:
            results = [t.join() for t in [gofer.go(query, c) for c in conns]]
            t2 = time.monotonic()
        finally:
            for c in conns:
                c.close()
        assert results == [1] * n
        return {"connect_s": t1 - t0, "queries_s": t2 - t1}

    return gofer.run(main)


def _report(name: str, r: dict[str, float]) -> None:
    print(
        f"\n{name}: {N} connections opened in {r['connect_s']:.2f}s; "
        f"{N} x pg_sleep(0.2) in {r['queries_s']:.2f}s (serial: {SERIAL:.0f}s)"
    )
    assert r["queries_s"] < BOUND, (
        f"{N} concurrent pg_sleep(0.2) took {r['queries_s']:.1f}s: they did not overlap"
    )


@pytest.fixture
def patched_drivers() -> Iterator[None]:
    patch_db.patch_all()
    try:
        yield
    finally:
        patch_db.unpatch_psycopg2()
        patch_db.unpatch_psycopg()


def test_psycopg2_concurrent_sleeps(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg2 = pytest.importorskip("psycopg2")
    assert patch_db.is_patched("psycopg2")
    r = _concurrently(
        lambda: psycopg2.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, dbname="postgres"
        )
    )
    _report("psycopg2", r)


def test_psycopg3_concurrent_sleeps(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    assert patch_db.is_patched("psycopg")
    r = _concurrently(
        lambda: psycopg.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            dbname="postgres",
            autocommit=True,
        )
    )
    _report("psycopg 3", r)


def test_psycopg2_cancel_stops_query(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg2 = pytest.importorskip("psycopg2")

    def connect() -> Any:
        c = psycopg2.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, dbname="postgres"
        )
        c.autocommit = True
        return c

    def running(c: Any) -> int:
        cur = c.cursor()
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"
        )
        return int(cur.fetchone()[0])

    def main() -> None:
        c, watch = connect(), connect()
        try:
            t = gofer.go(c.cursor().execute, "SELECT pg_sleep(30)")
            for _ in range(500):
                if running(watch):
                    break
                gofer.sleep(0.01)
            assert running(watch) == 1
            t.cancel()
            with pytest.raises(gofer.Cancelled):
                t.join()
            assert c.closed  # psycopg2 closes it: a pool then discards it
            for _ in range(500):  # the server stops the query, not after 30 s
                if not running(watch):
                    break
                gofer.sleep(0.01)
            assert running(watch) == 0
        finally:
            c.close()
            watch.close()

    gofer.run(main)


def test_psycopg3_timeout_stops_query_and_keeps_connection(
    postgres: Service,  # noqa: F811
    patched_drivers: None,
) -> None:
    psycopg = pytest.importorskip("psycopg")

    def main() -> int:
        with psycopg.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, autocommit=True
        ) as c:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError), gofer.timeout(0.3):
                c.execute("SELECT pg_sleep(30)")
            assert time.monotonic() - t0 < 10  # the server stopped it
            row = c.execute("SELECT 42").fetchone()  # and the connection is usable
            return int(row[0])

    assert gofer.run(main) == 42


def test_psycopg3_hub_runs_during_query(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")

    def main() -> None:
        with psycopg.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, dbname="postgres"
        ) as c:
            beats = []
            hb = gofer.go(lambda: [beats.append(gofer.sleep(0.01)) for _ in range(20)])
            c.execute("SELECT pg_sleep(0.3)")
            ran = len(beats)
            hb.join()
            assert ran >= 5, f"the heartbeat ran {ran} times of 20 while the query waited"

    gofer.run(main)


# -- registrations kept across waits (gofer._fdwait) ---------------------------------
#
# _fdwait is imported in the tests: this file is also the children's script,
# and a child may import an installed gofer of another checkout.


def _pg_kwargs(postgres: Service) -> dict[str, Any]:  # noqa: F811
    return {"host": postgres.host, "port": postgres.port, "user": postgres.user, "dbname": "postgres"}


@pytest.mark.poller("epoll")  # the level-triggered poller registers per wait
def test_psycopg2_keeps_one_registration_per_connection(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg2 = pytest.importorskip("psycopg2")
    from gofer import _fdwait

    def main() -> None:
        c = psycopg2.connect(**_pg_kwargs(postgres))
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT 1")
        fd = c.fileno()
        k = _fdwait.kept.fds[fd]
        assert k() is c
        for i in range(20):
            cur.execute("SELECT %s", (i,))
            assert cur.fetchone() == (i,)
        assert _fdwait.kept.fds[fd] is k  # one registration for all the queries
        st = k.st
        c.close()
        del c, cur, k
        gc.collect()
        assert st.closed and fd not in _fdwait.kept.fds  # dropped with the connection

    gofer.run(main)


@pytest.mark.poller("epoll")
def test_psycopg3_keeps_one_registration_per_connection(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    from gofer import _fdwait

    def main() -> None:
        c = psycopg.connect(**_pg_kwargs(postgres), autocommit=True)
        c.execute("SELECT 1")
        fd = c.pgconn.socket
        k = _fdwait.kept.fds[fd]
        assert k() is c.pgconn and k.tag == c.pgconn.backend_pid
        for i in range(20):
            assert c.execute("SELECT %s::int", (i,)).fetchone() == (i,)
        assert _fdwait.kept.fds[fd] is k
        st = k.st
        c.close()
        del c, k
        gc.collect()
        assert st.closed and fd not in _fdwait.kept.fds

    gofer.run(main)


def _many_at_once(client: Callable[[int], None], n: int = 10) -> None:
    """n clients at once, failing (instead of hanging) if a wait is never woken."""

    def main() -> None:
        with gofer.timeout(120), gofer.scope() as s:
            for i in range(n):
                s.go(client, i)

    gofer.run(main)


def test_psycopg2_big_results_and_reused_fds(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    # Results libpq reads in several steps (bytes can be left behind after
    # their edge), and new connections on the fd numbers of closed ones.
    psycopg2 = pytest.importorskip("psycopg2")

    def client(i: int) -> None:
        for _ in range(3):
            c = psycopg2.connect(**_pg_kwargs(postgres))
            c.autocommit = True
            try:
                cur = c.cursor()
                cur.execute("SELECT repeat('x', 300000 + %s)", (i,))
                assert len(cur.fetchone()[0]) == 300000 + i
                cur.execute("SELECT generate_series(1, 20000)")
                assert len(cur.fetchall()) == 20000
                cur.execute("SELECT %s", (i,))
                assert cur.fetchone() == (i,)
            finally:
                c.close()

    _many_at_once(client)


def test_psycopg3_big_results_streams_and_reused_fds(postgres: Service, patched_drivers: None) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")

    def client(i: int) -> None:
        for _ in range(3):
            with psycopg.connect(**_pg_kwargs(postgres), autocommit=True) as c:
                row = c.execute("SELECT repeat('x', 300000 + %s)", (i,)).fetchone()
                assert row is not None and len(row[0]) == 300000 + i
                cur = c.cursor()
                assert sum(1 for _ in cur.stream("SELECT generate_series(1, 20000)")) == 20000
                with c.transaction(), c.cursor(name=f"big{i}") as sc:
                    sc.execute("SELECT generate_series(1, 20000)")
                    got = 0
                    while rows := sc.fetchmany(3000):
                        got += len(rows)
                    assert got == 20000
                assert c.execute("SELECT %s::int", (i,)).fetchone() == (i,)

    _many_at_once(client)


def _child(*args: str) -> dict[str, Any]:
    return run_patched_child(__file__, *args)


def test_pg8000_concurrent_sleeps(postgres: Service) -> None:  # noqa: F811
    pytest.importorskip("pg8000")
    _report("pg8000", _child("pg8000", postgres.host, str(postgres.port)))


def test_sqlalchemy_queuepool(postgres: Service) -> None:  # noqa: F811
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    r = _child("sqlalchemy", postgres.host, str(postgres.port))
    print(
        f"\nSQLAlchemy QueuePool(20): 200 coroutines x 10 queries in {r['seconds']:.2f}s, "
        f"at most {r['max_checked_out']} connections checked out, {r['connections']} made"
    )
    assert r["queries"] == 2000
    assert r["shared"] == 0, "a connection was used by two coroutines at once"
    assert r["max_checked_out"] <= 20 and r["connections"] <= 20


# -- child-process workloads (under gofer.patch()) ---------------------------------


def _pg8000_child(host: str, port: int) -> dict[str, float]:
    import pg8000.dbapi

    return _concurrently(
        lambda: pg8000.dbapi.connect(
            # ssl_context=False: pg8000 would build an SSLContext per connection (27 ms
            # of CPU each here, loading the CA store), which measures nothing of gofer.
            host=host,
            port=port,
            user="postgres",
            database="postgres",
            ssl_context=False,
        )
    )


def _sqlalchemy_child(host: str, port: int) -> dict[str, Any]:
    import sqlalchemy as sa
    from sqlalchemy.pool import QueuePool

    engine = sa.create_engine(
        f"postgresql+psycopg://postgres@{host}:{port}/postgres",
        poolclass=QueuePool,
        pool_size=20,
        max_overflow=0,
        pool_timeout=60,
    )
    in_use: dict[int, int] = {}
    stats = {"shared": 0, "queries": 0, "max_checked_out": 0}

    def worker(i: int) -> None:
        for j in range(10):
            with engine.connect() as conn:
                raw = id(conn.connection.dbapi_connection)
                owner = in_use.setdefault(raw, i)
                if owner != i:
                    stats["shared"] += 1
                stats["max_checked_out"] = max(stats["max_checked_out"], engine.pool.checkedout())
                v = conn.execute(
                    sa.text("SELECT CAST(:x AS int) FROM pg_sleep(0.001)"), {"x": j}
                ).scalar()
                assert v == j
                stats["queries"] += 1
                if in_use.get(raw) == i:
                    del in_use[raw]

    def main() -> dict[str, Any]:
        t0 = time.monotonic()
        with gofer.scope() as s:
            for i in range(200):
                s.go(worker, i)
        made = engine.pool.size() + engine.pool.overflow()
        engine.dispose()
        return {**stats, "seconds": time.monotonic() - t0, "connections": made}

    return gofer.run(main)


if __name__ == "__main__":
    what, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    gofer.patch()
    patch_db.patch_all()  # idempotent: for builds whose patch() does not call it yet
    result = {"pg8000": _pg8000_child, "sqlalchemy": _sqlalchemy_child}[what](host, port)
    print(json.dumps(result))
