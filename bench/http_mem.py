"""HTTP idle keep-alive memory suite: server RSS per idle connection, and after they close.

One server (pinned to CPU 0) is sent N keep-alive connections by a separate
client process (:func:`client`, stdlib ``selectors``, pinned to CPU 1); each
connection makes one ``GET /plaintext``, reads the answer and stays open and
idle. The figures are the RSS of the server's serving processes (the leaves
of its process tree: the worker of ``gofer serve`` or nginx, uvicorn itself)
before the connections, while they are all idle (``bytes_per_conn`` is the
difference divided by N) and a little after the client has closed them all
(``after_close_pct``: the RSS left, relative to the starting one). ``alive``
counts the connections still open when the idle RSS is read, so a server
that drops idle connections cannot look cheap. Keep-alive timeouts are set
to an hour everywhere. Peers: uvicorn (uvloop + httptools) and nginx.
"""

from __future__ import annotations

import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import Suite, child_env
from bench._http_harness import free_port, gofer_serve_cmd, nginx_cmd, pin, server, uvicorn_cmd
from bench._util import stop

_M = "bench.http_mem"
_REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"
_KEEP_ALIVE_S = 3600


def raise_fd_limit(need: int) -> None:
    """Raise RLIMIT_NOFILE to ``need`` (at most the hard limit); say so if that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        raise RuntimeError(f"the open-file hard limit is {hard}, {need} are needed: raise it (ulimit -Hn)")


def _server_cmd(system: str, port: int, tmp: str) -> list[str]:
    if system in ("gofer", "gofer-wsgi"):
        iface = "native" if system == "gofer" else "wsgi"
        return gofer_serve_cmd(port, iface, "--timeout-keep-alive", str(_KEEP_ALIVE_S))
    if system == "uvicorn":
        return uvicorn_cmd(port, "--timeout-keep-alive", str(_KEEP_ALIVE_S))
    if system == "nginx":
        return nginx_cmd(tmp, port, max_conns=65536, keep_alive_s=_KEEP_ALIVE_S)
    raise ValueError(f"unknown system {system!r}")


def _serving_rss(pid: int) -> int:
    """RSS of the leaves of ``pid``'s process tree (the processes that serve)."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for q in procs:
        try:
            if not q.children():
                total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _settled_rss(pid: int, wait: float) -> int:
    """The serving RSS once it has stopped moving (or after ``wait`` seconds)."""
    end = time.monotonic() + wait
    last = _serving_rss(pid)
    while time.monotonic() < end:
        time.sleep(0.25)
        now = _serving_rss(pid)
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


def _expect(proc: subprocess.Popen[str], word: str) -> str:
    """The client's next line, which must start with ``word`` (it blocks; the suite's timeout bounds it)."""
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(word):
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        raise RuntimeError(f"the client said {line!r} instead of {word!r} {err.strip()[-300:]}")
    return line


def measure(system: str, p: dict[str, Any]) -> dict[str, float]:
    """Open ``p['connections']`` idle keep-alive connections to ``system``; return its RSS figures."""
    n = int(p["connections"])
    raise_fd_limit(n + 1024)  # inherited by the server we start
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, server(_server_cmd(system, port, tmp), port, tmp) as proc:
        rss0 = _settled_rss(proc.pid, p["settle"])
        client_cmd = [*pin(1), sys.executable, "-m", _M, "client", str(port), str(n)]
        client_proc = subprocess.Popen(client_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=child_env())
        try:
            _expect(client_proc, "ready")
            rss1 = _settled_rss(proc.pid, p["settle"])
            assert client_proc.stdin is not None
            client_proc.stdin.write("check\n")
            client_proc.stdin.flush()
            alive = int(_expect(client_proc, "alive").split()[1])
            client_proc.stdin.write("close\n")
            client_proc.stdin.flush()
            _expect(client_proc, "closed")
            time.sleep(p["settle"])  # the server sees the FINs and lets the connections go
            rss2 = _settled_rss(proc.pid, p["settle"])
        finally:
            stop(client_proc, grace=1)
    return {
        "bytes_per_conn": (rss1 - rss0) / n,
        "alive": float(alive),
        "rss_start_mb": rss0 / 2**20,
        "rss_idle_mb": rss1 / 2**20,
        "rss_closed_mb": rss2 / 2**20,
        "after_close_pct": (rss2 - rss0) / rss0 * 100.0,
    }


# -- the client process ------------------------------------------------------------------------


def _read_answers(socks: list[socket.socket], timeout: float) -> None:
    """Read one whole answer (head and Content-Length body) on every socket."""
    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, bytes] = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    pending = len(socks)
    end = time.monotonic() + timeout
    while pending:
        if time.monotonic() > end:
            raise SystemExit(f"error {pending} answers did not come in {timeout:.0f}s")
        for key, _ in sel.select(1.0):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            data = conn.recv(65536)
            if not data:
                raise SystemExit("error the server closed a connection before answering")
            bufs[conn] += data
            head, sep, body = bufs[conn].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) >= length:
                sel.unregister(conn)
                pending -= 1
    sel.close()


def _count_alive(socks: list[socket.socket]) -> int:
    """Connections with nothing to read: an idle keep-alive one; readable means EOF or a stray byte."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    readable = len(sel.select(0.2))
    sel.close()
    return len(socks) - readable


def client(port: int, n: int) -> None:
    """Hold ``n`` idle keep-alive connections; obey ``check`` and ``close`` on stdin."""
    raise_fd_limit(n + 1024)
    socks: list[socket.socket] = []
    for i in range(0, n, 200):  # a batch at a time, so the accept backlog never overflows
        batch = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(min(200, n - i))]
        for s in batch:
            s.sendall(_REQUEST)
        _read_answers(batch, 60)
        socks.extend(batch)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            print(f"alive {_count_alive(socks)}", flush=True)
        elif cmd == "close":
            for s in socks:
                s.close()
            print("closed", flush=True)
            return


SUITES = [
    Suite(
        name="http_idle_memory",
        description="server RSS per idle keep-alive connection (one request each), and RSS after they close",
        metric="bytes_per_conn",
        unit="bytes of RSS per idle connection",
        systems={name: f"{_M}:measure:{name}" for name in ("gofer", "gofer-wsgi", "uvicorn", "nginx")},
        params={"connections": 10000, "settle": 2.0},
        quick={"connections": 2000, "settle": 1.0},
        rounds=3,
        quick_rounds=1,
        timeout=300.0,
        goal="gofer <= 4 KB per idle connection (half of uvicorn's); after_close_pct <= 10",
    )
]

if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m bench.http_mem client PORT N")
