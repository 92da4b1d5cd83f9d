"""requests on gofer: 1,000 concurrent GETs to a server that answers after 0.5 s.

requests (urllib3) is pure Python on the stdlib's socket and cooperates
under ``gofer.patch()``; patching is process-wide, so the workload runs in
a child process (``python tests/test_db_requests.py``), where a gofer HTTP
server on its own thread answers every GET after ``gofer.sleep(0.5)``.
1,000 coroutines each GET once. Serially that is 500 s; the bound asserted
(15 s) never flakes yet proves the requests overlap.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import gofer
from services import run_patched_child

N = 1000


def test_requests_1000_concurrent_gets() -> None:
    pytest.importorskip("requests")
    pytest.importorskip("httptools")
    r = run_patched_child(__file__)
    print(
        f"\nrequests: {N} concurrent GETs (0.5 s each) from {N} coroutines in {r['seconds']:.2f}s"
    )
    assert r["ok"] == N
    assert r["seconds"] < 15, f"{N} GETs of 0.5 s took {r['seconds']:.1f}s: they did not overlap"


def _child() -> dict[str, Any]:
    import requests

    from gofer import http

    port: list[int] = []
    ready = threading.Event()
    stop = gofer.Event()

    def app(req: Any) -> Any:
        gofer.sleep(0.5)
        return http.Response(b"ok " + req.path.encode(), content_type="text/plain")

    def serve() -> None:
        server = http.Server(app)
        lsock = http.listen(("127.0.0.1", 0), backlog=2048)
        port.append(lsock.getsockname()[1])
        t = gofer.go(server.serve_socket, lsock)
        ready.set()
        stop.wait()
        server.shutdown(grace=5)
        t.join()
        lsock.close()  # serve_socket leaves the socket to its owner

    th = threading.Thread(target=gofer.run, args=(serve,), name="slow-http-server")
    th.start()
    ready.wait(30)

    def get(i: int) -> bool:
        r = requests.get(f"http://127.0.0.1:{port[0]}/{i}", timeout=60)
        return r.status_code == 200 and r.text == f"ok /{i}"

    def main() -> dict[str, Any]:
        t0 = time.monotonic()
        oks = [t.join() for t in [gofer.go(get, i) for i in range(N)]]
        return {"seconds": time.monotonic() - t0, "ok": sum(oks)}

    try:
        return gofer.run(main)
    finally:
        stop.set()
        th.join(30)


if __name__ == "__main__":
    gofer.patch()
    print(json.dumps(_child()))
