"""Unix datagram sockets from gofer.net remove their files on close (issue 8, item 7).

``listen_datagram("unix:...")`` and ``connect_datagram(..., local="unix:...")``
bind a file; ``close()`` removes it (so a second run can bind again), a stale
one from a crashed run is replaced, and a file that is no longer this
socket's is left alone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import gofer
from gofer import net
from gofer import socket as gsocket

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")


def test_files_are_removed_on_close(tmp_path: Path) -> None:
    srv_path, cli_path = tmp_path / "srv", tmp_path / "cli"

    def main() -> None:
        for _ in range(2):  # the second round binds the same paths again
            srv = net.listen_datagram(f"unix:{srv_path}")
            cli = net.connect_datagram(f"unix:{srv_path}", local=f"unix:{cli_path}")
            assert srv_path.exists() and cli_path.exists()
            cli.send(b"ping")
            data, addr = srv.recvfrom(100)
            assert (data, addr) == (b"ping", str(cli_path))
            srv.sendto(b"pong", addr)
            assert cli.recv(100) == b"pong"
            cli.close()
            srv.close()
            assert not srv_path.exists() and not cli_path.exists()

    gofer.run(main)


def test_with_block_and_double_close(tmp_path: Path) -> None:
    path = tmp_path / "d"

    def main() -> None:
        with net.listen_datagram(f"unix:{path}") as s:
            assert isinstance(s, gsocket.socket)
            assert path.exists()
        assert not path.exists()
        s.close()  # idempotent

    gofer.run(main)


def test_a_stale_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale"
    old = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old.bind(str(path))
    old.close()  # a crashed run's file: still there
    local = tmp_path / "stale-local"
    old2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old2.bind(str(local))
    old2.close()

    def main() -> None:
        srv = net.listen_datagram(f"unix:{path}")
        cli = net.connect_datagram(f"unix:{path}", local=f"unix:{local}")
        cli.close()
        srv.close()

    gofer.run(main)
    assert not path.exists() and not local.exists()


def test_a_file_that_is_not_a_socket_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    with pytest.raises(OSError):
        gofer.run(net.listen_datagram, f"unix:{path}")
    assert path.read_text() == "keep me"


def test_a_file_rebound_by_someone_else_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "d"

    def main() -> None:
        s = net.listen_datagram(f"unix:{path}")
        os.unlink(path)  # another program took the path over
        other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        other.bind(str(path))
        s.close()
        assert path.exists()  # not ours any more
        other.close()

    gofer.run(main)


def test_dup_and_detach_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d"

    def main() -> None:
        s = net.listen_datagram(f"unix:{path}")
        d = s.dup()
        d.close()
        assert path.exists()  # the original still owns it
        fd = s.detach()
        s.close()
        assert path.exists()  # the fd lives on
        os.close(fd)

    gofer.run(main)


def test_abstract_and_udp_sockets_are_unaffected() -> None:
    def main() -> None:
        u = net.listen_datagram("127.0.0.1:0")
        c = net.connect_datagram(u.getsockname())
        c.send(b"x")
        assert u.recvfrom(10)[0] == b"x"
        c.close()
        u.close()
        a = net.listen_datagram(f"unix:@gofer-test-{os.getpid()}")
        assert a.getsockname()[:1] in ("\0", b"\0")
        a.close()

    gofer.run(main)
