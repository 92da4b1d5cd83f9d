"""redis-py on gofer: 500 coroutines blocked in BLPOP, woken by 500 RPUSHes.

redis-py is pure Python on the stdlib's socket, so it cooperates under
``gofer.patch()``; patching is process-wide, so the workload runs in a child
process (``python tests/test_db_redis.py HOST PORT``). Every pushed value
must reach exactly one waiter.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

import gofer
from services import Service, redis_server, run_patched_child  # noqa: F401  (a fixture)

N = 500


def test_blpop_500_waiters(redis_server: Service) -> None:  # noqa: F811
    pytest.importorskip("redis")
    r = run_patched_child(__file__, redis_server.host, str(redis_server.port))
    print(f"\nredis-py: {N} coroutines in BLPOP, all woken by {N} RPUSHes in {r['seconds']:.2f}s")
    assert r["received"] == N
    assert r["distinct"] == N, "a value was delivered twice"
    assert r["missing"] == 0 and r["timeouts"] == 0


def _child(host: str, port: int) -> dict[str, Any]:
    import redis

    pool = redis.ConnectionPool(host=host, port=port, max_connections=N + 10)
    key = f"gofer-test-{time.monotonic_ns()}"

    def waiter(got: list[Any]) -> None:
        c = redis.Redis(connection_pool=pool)
        got.append(c.blpop([key], timeout=30))

    def main() -> dict[str, Any]:
        got: list[Any] = []
        blocked = redis.Redis(connection_pool=pool)
        with gofer.scope() as s:
            for _ in range(N):
                s.go(waiter, got)
            # wait until every waiter is blocked on the server
            while int(blocked.info("clients")["blocked_clients"]) < N:
                gofer.sleep(0.01)
            t0 = time.monotonic()
            p = redis.Redis(connection_pool=pool)
            for i in range(N):
                p.rpush(key, str(i))
        took = time.monotonic() - t0
        values = [int(v[1]) for v in got if v is not None]
        pool.disconnect()
        return {
            "seconds": took,
            "received": len(values),
            "distinct": len(set(values)),
            "missing": len(set(range(N)) - set(values)),
            "timeouts": sum(1 for v in got if v is None),
        }

    return gofer.run(main)


if __name__ == "__main__":
    gofer.patch()
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
