"""PyMySQL on gofer: 100 coroutines each run ``SELECT SLEEP(0.2)`` at once.

PyMySQL is pure Python on the stdlib's socket and cooperates under
``gofer.patch()`` (process-wide, hence the child process:
``python tests/test_db_mysql.py HOST PORT``). Serially the queries take
20 s; the bound asserted (10 s) never flakes yet proves they overlap.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

import gofer
from services import Service, mariadb, run_patched_child  # noqa: F401  (a fixture)

N = 100


def test_pymysql_concurrent_sleeps(mariadb: Service) -> None:  # noqa: F811
    pytest.importorskip("pymysql")
    r = run_patched_child(__file__, mariadb.host, str(mariadb.port), mariadb.user)
    print(
        f"\nPyMySQL: {N} connections opened in {r['connect_s']:.2f}s; "
        f"{N} x SLEEP(0.2) in {r['queries_s']:.2f}s (serial: {N * 0.2:.0f}s)"
    )
    assert r["results"] == [0] * N
    assert r["queries_s"] < 10, f"{N} concurrent SLEEP(0.2) took {r['queries_s']:.1f}s"


def _child(host: str, port: int, user: str) -> dict[str, Any]:
    import pymysql

    def connect() -> Any:
        # ssl_disabled: PyMySQL would otherwise build an SSLContext per connection
        # (40 ms of CPU each here, loading the CA store), which measures nothing of gofer.
        return pymysql.connect(host=host, port=port, user=user, ssl_disabled=True)

    def query(c: Any) -> int:
        with c.cursor() as cur:
            cur.execute("SELECT SLEEP(0.2)")
            return int(cur.fetchone()[0])

    def main() -> dict[str, Any]:
        t0 = time.monotonic()
        conns = [t.join() for t in [gofer.go(connect) for _ in range(N)]]
        t1 = time.monotonic()
        try:
            results = [t.join() for t in [gofer.go(query, c) for c in conns]]
        finally:
            t2 = time.monotonic()
            for c in conns:
                c.close()
        return {"connect_s": t1 - t0, "queries_s": t2 - t1, "results": results}

    return gofer.run(main)


if __name__ == "__main__":
    gofer.patch()
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
