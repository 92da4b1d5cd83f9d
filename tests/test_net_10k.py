"""10,000 concurrent connections held open and echoing, served by one process.

The server runs here (10,000 sockets in this process); the clients run in a
subprocess (another 10,000), driven over a control socket so that this test
can look at the server while every connection is open. Both processes raise
their soft ``RLIMIT_NOFILE``; the test is skipped, with the reason, where the
hard limit does not allow it.
"""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import gofer
from gofer import net
from gofer import socket as gsocket

N = 10_000
NEED = N + 300  # the connections, plus what pytest and the interpreter hold

CLIENT = textwrap.dedent(
    """
    import resource, sys
    import gofer
    from gofer import net, socket as gsocket

    port, n, ctl_fd = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 300), hard))

    def main():
        ctl = net.Stream(gsocket.socket(fileno=ctl_fd))
        gate = gofer.Semaphore(200)  # connects in flight: keeps the accept queue short
        conns = [None] * n

        def first(i):
            with gate:
                s = net.connect(("127.0.0.1", port), timeout=60)
            s.write_all(b"%d\\n" % i)
            assert s.readline() == b"%d\\n" % i
            conns[i] = s

        def second(i):
            s = conns[i]
            s.write_all(b"again %d\\n" % i)
            assert s.readline() == b"again %d\\n" % i
            s.close()

        with gofer.scope() as sc:
            for i in range(n):
                sc.go(first, i)
        ctl.write_all(b"held\\n")
        assert ctl.readline() == b"go\\n"
        with gofer.scope() as sc:
            for i in range(n):
                sc.go(second, i)
        ctl.write_all(b"done\\n")
        ctl.close()

    gofer.run(main)
    """
)


@pytest.fixture
def many_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NEED:
        pytest.skip(f"RLIMIT_NOFILE hard limit is {hard}; {NEED} file descriptors are needed")
    if soft == resource.RLIM_INFINITY or soft >= NEED:
        yield
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (NEED, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _echo(conn: net.Stream) -> None:
    for line in conn:
        conn.write_all(line)


@pytest.mark.slow
def test_ten_thousand_connections_on_one_process(many_fds: None) -> None:
    ours, theirs = socket.socketpair()
    proc = None
    try:

        def main() -> None:
            nonlocal proc
            srv = net.Server(("127.0.0.1", 0), _echo, backlog=4096)
            st = gofer.go(srv.serve_forever)
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, str(srv.address[1]), str(N), str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
            )
            theirs.close()
            ctl = net.Stream(gsocket.socket(fileno=ours.detach()))
            with ctl:
                with gofer.timeout(120):
                    assert ctl.readline() == b"held\n"
                assert srv.connections == N  # all of them open at once, each echoed
                ctl.write_all(b"go\n")
                with gofer.timeout(120):
                    assert ctl.readline() == b"done\n"
            with gofer.timeout(60):
                while srv.connections:
                    gofer.sleep(0.01)
            srv.shutdown(5)
            st.join()

        gofer.run(main)
        assert proc is not None
        assert proc.wait(60) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ours.close()
        theirs.close()
