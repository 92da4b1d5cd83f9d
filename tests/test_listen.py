"""gofer._listen: the one listener path (addresses, listening sockets, accept errors)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

import pytest

from gofer import _listen, net
from gofer.http import server as http_server


def test_every_listener_parses_addresses_alike() -> None:
    assert net.parse_address is _listen.parse_address
    assert _listen.parse_address("[::1]:80") == (socket.AF_INET6, ("::1", 80))
    with pytest.raises(ValueError, match="out of range"):
        _listen.parse_address(("127.0.0.1", 70000))
    for make in (lambda a: _listen.bind(a)[0], http_server.listen):
        s = make("127.0.0.1:0")
        try:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            assert not s.getblocking()
        finally:
            s.close()


def test_bind_removes_a_stale_unix_socket_but_no_other_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    s, unlink = _listen.bind("unix:" + path)
    assert unlink == path
    s.close()
    plain = tmp_path / "not-a-socket"
    plain.write_text("keep me")
    with pytest.raises(OSError):
        _listen.bind(f"unix:{plain}")
    assert plain.read_text() == "keep me"
    os.unlink(path)


def test_reuse_port_listeners_share_an_address() -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")
    a, _ = _listen.bind("127.0.0.1:0", reuse_port=True)
    b, _ = _listen.bind(a.getsockname(), reuse_port=True)
    assert a.getsockname() == b.getsockname()
    a.close()
    b.close()


def test_nodelay_only_on_tcp() -> None:
    a, b = socket.socketpair()
    _listen.set_nodelay(a)  # AF_UNIX: nothing to do, no error
    a.close()
    b.close()
    ls, _ = _listen.bind("127.0.0.1:0")
    c = socket.create_connection(ls.getsockname())
    _listen.set_nodelay(c)
    assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    c.close()
    ls.close()


def test_accept_policy_backs_off_and_logs_at_most_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    policy = _listen.AcceptPolicy(logging.getLogger("test.listen"), "test", clock=lambda: now[0])
    emfile = OSError(errno.EMFILE, "Too many open files")
    delays = []
    with caplog.at_level(logging.ERROR, logger="test.listen"):
        for _ in range(50):  # 50 failures in 0.5 s
            delays.append(policy.failed(emfile))
            now[0] += 0.01
        assert len(caplog.records) == 1
        now[0] += 1.0
        policy.failed(emfile)
    assert len(caplog.records) == 2
    assert "49 more since the last report" in caplog.records[1].getMessage()
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08] and max(delays) == 1.0
    policy.succeeded()
    assert policy.failed(emfile) == 0.01  # a new shortage starts afresh
    assert policy.failed(OSError(errno.ECONNABORTED, "aborted")) == 0.0  # skipped
    with pytest.raises(OSError, match="Bad file"):
        policy.failed(OSError(errno.EBADF, "Bad file descriptor"))
