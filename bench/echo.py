"""The echo benchmark: gofer's blocking-style echo server against its peers.

Each measurement starts one echo server (``bench._echo_servers``, or
the C epoll server in ``c/echo_server.c`` as the ceiling) pinned to one CPU,
and the C load generator ``c/echo_load.c`` pinned to another. The load
generator keeps CONNS connections in ping-pong (one SIZE-byte message in
flight on each), prints ``START`` after a warm-up and ``STOP <round trips>
<seconds>`` after the measured interval; between the two marks this process
reads the server's CPU time from ``/proc/<pid>/stat``. Figures:

* ``cpu_us_per_rt``: server CPU time (user + system) per round trip, the
  ranking metric (lower is better);
* ``rps``: round trips per second;
* ``server_cpu`` / ``client_cpu``: the share of one core each side used.
  ``client_cpu`` well below 1 while ``server_cpu`` is near 1 shows that the
  load generator is not the bottleneck (the C server's row shows how far
  the generator itself goes).

Both C programs are compiled with ``cc`` on first use into a cache
directory; without a C compiler the suites are skipped.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import Suite, child_env
from bench._util import stop

_C_DIR = Path(__file__).with_name("c")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gofer-bench"


def build(name: str) -> str:
    """Compile ``c/<name>.c`` (once per source version); return the binary's path."""
    src = _C_DIR / f"{name}.c"
    code = src.read_bytes()
    out = _cache_dir() / f"{name}-{hashlib.sha256(code).hexdigest()[:12]}"
    if out.exists():
        return str(out)
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise ImportError("no C compiler (cc) to build the echo load generator", name="cc")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    res = subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True)
    if res.returncode != 0:
        raise ImportError(f"cc failed to build {src.name}: {res.stderr.strip()[-300:]}", name="cc")
    os.replace(tmp, out)
    return str(out)


def _cpus() -> tuple[int | None, int | None]:
    """Two distinct CPUs for server and load generator (None: no pinning)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def _pinned(cpu: int | None) -> Any:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Lines:
    """Read lines from a child's stdout with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        self.proc = proc
        self.deadline = deadline
        self.sel = selectors.DefaultSelector()
        assert proc.stdout is not None
        self.sel.register(proc.stdout, selectors.EVENT_READ)

    def next(self, what: str) -> str:
        assert self.proc.stdout is not None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not self.sel.select(remaining):
            raise RuntimeError(f"timed out waiting for {what}")
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{what}: the process exited (code {self.proc.poll()})")
        return line

    def close(self) -> None:
        self.sel.close()


def run_echo(system: str, p: dict[str, Any]) -> dict[str, float]:
    """One measurement of ``system`` with ``p`` = size, conns, warmup, duration."""
    loader = build("echo_load")
    if system == "c-epoll":
        cmd = [build("echo_server"), "0"]
    else:
        cmd = [sys.executable, "-m", "bench._echo_servers", system]
    scpu, ccpu = _cpus()
    deadline = time.monotonic() + 30 + p["warmup"] + p["duration"]
    server = client = None
    lines: list[_Lines] = []
    try:
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, preexec_fn=_pinned(scpu), env=child_env())
        sl = _Lines(server, deadline)
        lines.append(sl)
        first = sl.next("the server's port")
        if first.startswith("skip:"):
            raise ImportError(first[5:].strip(), name=system)
        port = int(first)
        args = [loader, str(port), str(p["conns"]), str(p["size"]), str(p["warmup"]), str(p["duration"])]
        client = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_pinned(ccpu))
        cl = _Lines(client, deadline)
        lines.append(cl)
        if cl.next("START") != "START":
            raise RuntimeError("the load generator did not start")
        t0, s0, c0 = time.monotonic(), _cpu_seconds(server.pid), _cpu_seconds(client.pid)
        last = cl.next("STOP").split()
        t1, s1, c1 = time.monotonic(), _cpu_seconds(server.pid), _cpu_seconds(client.pid)
        if last[0] != "STOP":
            raise RuntimeError(f"unexpected line from the load generator: {last}")
        trips, secs = int(last[1]), float(last[2])
        if trips == 0:
            raise RuntimeError("no round trip completed")
        rps = trips / secs
        wall = t1 - t0
        return {
            "cpu_us_per_rt": (s1 - s0) / (rps * wall) * 1e6,
            "rps": rps,
            "server_cpu": (s1 - s0) / wall,
            "client_cpu": (c1 - c0) / wall,
        }
    finally:
        for ln in lines:
            ln.close()
        stop(client, grace=2)
        stop(server, grace=2)


_M = "bench.echo"
_SYSTEMS = {  # name shown: the server run_echo starts
    "gofer": "gofer",
    "gofer (net.serve)": "gofer-serve",
    "uvloop-protocol": "uvloop-protocol",
    "uvloop-streams": "uvloop-streams",
    "asyncio-protocol": "asyncio-protocol",
    "asyncio-streams": "asyncio-streams",
    "gevent": "gevent",
    "trio": "trio",
    "threads": "threads",
    "c-epoll (ceiling)": "c-epoll",
}


def _suite(name: str, size: int, conns: int) -> Suite:
    return Suite(
        name=name,
        description=f"TCP echo, {size // 1024} KiB messages x {conns} connections in ping-pong; "
        "server on one core, C load generator on another",
        metric="cpu_us_per_rt",
        unit="server CPU us per round trip",
        systems={name: f"{_M}:run_echo:{server}" for name, server in _SYSTEMS.items()},
        params={"size": size, "conns": conns, "warmup": 0.5, "duration": 1.5},
        quick={"warmup": 0.3, "duration": 1.0},
        rounds=3,
        quick_rounds=1,
        timeout=90.0,
        goal="gofer <= uvloop-protocol, and <= 0.5x gevent",
    )


SUITES = [
    _suite("echo-1k", 1024, 100),
    _suite("echo-64k", 65536, 50),
    _suite("echo-1k-c1000", 1024, 1000),
]
