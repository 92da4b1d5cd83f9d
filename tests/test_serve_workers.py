"""serve(workers=N): forked workers share the port; a dead worker is replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

import gofer
from gofer import net

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="needs fork() and /proc/<pid>/task/<tid>/children (Linux)",
)

SERVER = textwrap.dedent(
    """
    import logging, os, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from gofer import net

    def handler(conn):
        conn.write_all(b"%d\\n" % os.getpid())
        for line in conn:
            conn.write_all(line)

    net.serve(("127.0.0.1", 0), handler, workers=2, grace=5, ready=lambda a: print(a[1], flush=True))
    print("supervisor stopped", flush=True)
    """
)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(x) for x in f.read().split()}


def _wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting for the supervisor"
        time.sleep(0.02)


def _ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, s.makefile("rwb") as f:
        pid = int(f.readline())
        f.write(b"ping\n")
        f.flush()
        assert f.readline() == b"ping\n"
        return pid


@pytest.fixture
def supervisor() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        _wait_for(lambda: len(_children(proc.pid)) == 2)
        yield proc, port
    finally:
        if proc.poll() is None:
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
        proc.communicate()


def test_killed_worker_is_replaced(supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = supervisor
    workers = _children(proc.pid)
    served = {_ask(port) for _ in range(20)}
    assert served <= workers and served  # requests are served by the workers
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: victim not in _children(proc.pid) and len(_children(proc.pid)) == 2)
    new_workers = _children(proc.pid)
    assert len(new_workers - workers) == 1
    assert {_ask(port) for _ in range(20)} <= new_workers
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == b"supervisor stopped\n"
    assert b"was killed by SIGKILL; restarting" in err


def test_sigterm_is_forwarded_and_graceful(supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = supervisor
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rwb")
    f.readline()  # connected to some worker
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    f.write(b"still served\n")  # the worker lets running connections finish
    f.flush()
    assert f.readline() == b"still served\n"
    f.close()
    s.close()
    assert proc.wait(20) == 0


def test_sigint_stops_at_once(supervisor: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = supervisor
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.recv(100)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    s.settimeout(5)
    try:
        assert s.recv(100) == b""  # the worker closed our connection
    except ConnectionResetError:
        pass
    s.close()


def test_workers_refuse_to_fork_from_a_coroutine() -> None:
    def main() -> None:
        with pytest.raises(RuntimeError, match="not from a coroutine"):
            net.serve(("127.0.0.1", 0), lambda conn: None, workers=2)

    gofer.run(main)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        net.serve(("127.0.0.1", 0), lambda conn: None, workers=0)


def test_sighup_starts_new_workers_then_retires_the_old_gracefully(
    supervisor: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = supervisor
    old = _children(proc.pid)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rwb")
    served_by = int(f.readline())  # a connection in progress on an old worker
    assert served_by in old
    proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: len(_children(proc.pid) - old) == 2, timeout=20)
    new = _children(proc.pid) - old
    # Once the new generation is ready the old is retired: the idle old worker
    # goes at once, ours stays for our connection but accepts no more.
    _wait_for(lambda: _children(proc.pid) == new | {served_by}, timeout=20)
    assert all(_ask(port) in new for _ in range(10))
    f.write(b"still served\n")
    f.flush()
    assert f.readline() == b"still served\n"
    f.close()
    s.close()
    _wait_for(lambda: _children(proc.pid) == new, timeout=20)  # the old ones finish and go
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and out == b"supervisor stopped\n"
    assert b"reload: 2 new worker(s) ready, stopping 2 old one(s)" in err
