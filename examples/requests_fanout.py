"""Fetch many URLs at once with requests, each in its own coroutine.

    python examples/requests_fanout.py https://example.org/ https://example.com/ ...
    python examples/requests_fanout.py --demo 200     # against a local slow server

After ``gofer.patch()``, requests (and urllib3 under it) use cooperative
sockets, so a coroutine waiting for a response parks and the others go on:
the fetches overlap with no thread pool and no async/await. ``--demo N``
starts a local gofer HTTP server that answers after 0.5 s and fetches from
it N times at once (about 0.5 s in all, not N * 0.5 s).
"""

from __future__ import annotations

import argparse
import threading
import time

import gofer

gofer.patch()  # first, before requests is used

import requests  # noqa: E402


def fetch(session: requests.Session, url: str) -> str:
    try:
        r = session.get(url, timeout=30)
        return f"{r.status_code} {len(r.content):>8} bytes  {url}"
    except requests.RequestException as exc:
        return f"error {type(exc).__name__}  {url}"


def fanout(urls: list[str]) -> None:
    t0 = time.monotonic()
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=len(urls))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        tasks = [gofer.go(fetch, session, u) for u in urls]
        lines = [t.join() for t in tasks]
    if len(lines) <= 20:
        print("\n".join(lines))
    ok = sum(1 for ln in lines if ln.startswith("200"))
    print(f"{ok}/{len(urls)} fetched with status 200 in {time.monotonic() - t0:.2f}s")


def demo_server() -> tuple[int, gofer.Event]:
    """A local gofer HTTP server on its own thread; each answer takes 0.5 s."""
    from gofer import http

    port: list[int] = []
    ready = threading.Event()
    stop = gofer.Event()

    def app(req: http.Request) -> bytes:
        gofer.sleep(0.5)
        return b"slow hello\n"

    def serve() -> None:
        lsock = http.listen(("127.0.0.1", 0))
        port.append(lsock.getsockname()[1])
        server = http.Server(app)
        t = gofer.go(server.serve_socket, lsock)
        ready.set()
        stop.wait()
        server.shutdown(grace=5)
        t.join()
        lsock.close()  # serve_socket leaves the socket to its owner

    threading.Thread(target=gofer.run, args=(serve,), name="demo-server", daemon=True).start()
    ready.wait(30)
    return port[0], stop


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("urls", nargs="*")
    ap.add_argument("--demo", type=int, metavar="N", help="fetch N times from a local slow server")
    a = ap.parse_args()
    if a.demo:
        p, stop_server = demo_server()
        gofer.run(fanout, [f"http://127.0.0.1:{p}/{i}" for i in range(a.demo)])
        stop_server.set()
    elif a.urls:
        gofer.run(fanout, a.urls)
    else:
        ap.error("give URLs or --demo N")
