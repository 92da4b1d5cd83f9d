"""Stream conformance checks, shared by every kind of byte-stream connection.

A connection kind is a *pair factory*: a callable that, inside a gofer
coroutine, returns ``(a, b)``, two connected endpoints with the
:class:`gofer.net.Stream` interface (``read``, ``read_exactly``,
``readline``, ``write``, ``write_all``, ``close``, ``timeout``; and
``shutdown_write`` if ``factory.half_close`` is true). Each check in
:data:`CHECKS` takes ``(a, b, factory)``, runs inside ``gofer.run`` and
closes what it opened. Use :func:`run_check` from a test::

    @pytest.mark.parametrize("check", streams.CHECKS, ids=streams.ids)
    def test_my_stream(check):
        streams.run_check(check, my_pair_factory)

TCP, Unix-domain and TLS streams run this suite in ``test_net_streams.py``;
any other stream (an HTTP upgrade, a TLS client of another module) can reuse
it by providing a factory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gofer
from gofer.net import IncompleteReadError, LimitOverrunError

Pair = tuple[Any, Any]
Check = Callable[[Any, Any, Any], None]


def run_check(check: Check, factory: Any) -> None:
    """Run one check on a fresh pair, closing both ends afterwards."""

    def main() -> None:
        a, b = factory()
        try:
            check(a, b, factory)
        finally:
            a.close()
            b.close()

    gofer.run(main)


def ids(check: Check) -> str:
    return check.__name__.removeprefix("check_")


def check_round_trip(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"ping")
    assert b.read_exactly(4) == b"ping"
    b.write_all(b"pong")
    assert a.read(100) == b"pong"


def check_read_returns_available(a: Any, b: Any, factory: Any) -> None:
    # read(n) returns what is there without waiting for n bytes.
    a.write_all(b"abc")
    assert b.read(1000) == b"abc"
    a.write_all(b"defgh")
    assert b.read(2) == b"de"
    assert b.read(100) == b"fgh"
    assert b.read(0) == b""


def check_large_transfer_both_ways(a: Any, b: Any, factory: Any) -> None:
    # Both sides write more than any kernel buffer holds while reading concurrently.
    data_a = os.urandom(3 << 20)
    data_b = os.urandom(2 << 20)

    def pump(s: Any, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), 100_000):
            s.write_all(view[i : i + 100_000])

    ta = gofer.go(pump, a, data_a)
    tb = gofer.go(pump, b, data_b)
    assert b.read_exactly(len(data_a)) == data_a
    assert a.read_exactly(len(data_b)) == data_b
    ta.join()
    tb.join()


def check_write_returns_count(a: Any, b: Any, factory: Any) -> None:
    n = a.write(b"x" * 10)
    assert 0 < n <= 10
    assert b.read_exactly(n) == b"x" * n


def check_readline(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"one\ntw")
    assert b.readline() == b"one\n"
    a.write_all(b"o\nthree")
    assert b.readline() == b"two\n"
    a.close()
    assert b.readline() == b"three"  # the unterminated rest at EOF
    assert b.readline() == b""


def check_readline_limit(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"x" * 100 + b"\nshort\n")
    try:
        b.readline(limit=50)
    except LimitOverrunError:
        pass
    else:
        raise AssertionError("a line longer than the limit was accepted")
    assert b.readline(limit=200) == b"x" * 100 + b"\n"  # the data was kept
    assert b.readline() == b"short\n"


def check_readuntil(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"head\r\n\r\nbody")
    assert b.readuntil(b"\r\n\r\n") == b"head\r\n\r\n"
    a.close()
    try:
        b.readuntil(b"\r\n\r\n")
    except IncompleteReadError as exc:
        assert exc.partial == b"body"
    else:
        raise AssertionError("readuntil returned without its separator")


def check_read_exactly_eof(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"12345")
    a.close()
    try:
        b.read_exactly(10)
    except IncompleteReadError as exc:
        assert exc.partial == b"12345"
        assert exc.expected == 10
        assert isinstance(exc, EOFError)
    else:
        raise AssertionError("read_exactly returned short data")


def check_eof_is_sticky(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"last")
    a.close()
    assert b.read() == b"last"  # read() with no size reads to EOF
    assert b.read(10) == b""
    assert b.read(10) == b""
    assert b.readline() == b""


def check_data_then_close_while_parked(a: Any, b: Any, factory: Any) -> None:
    # The reader parks first; data and EOF then arrive together.
    got: list[bytes] = []

    def reader() -> None:
        while chunk := b.read(100):
            got.append(chunk)

    t = gofer.go(reader)
    gofer.sleep(0.01)
    a.write_all(b"hello")
    a.close()
    with gofer.timeout(5):
        t.join()
    assert b"".join(got) == b"hello"


def check_iteration(a: Any, b: Any, factory: Any) -> None:
    a.write_all(b"a\nb\nc")
    a.close()
    assert list(b) == [b"a\n", b"b\n", b"c"]


def check_half_close(a: Any, b: Any, factory: Any) -> None:
    if not getattr(factory, "half_close", False):
        return
    a.write_all(b"request")
    a.shutdown_write()
    assert b.read() == b"request"  # to EOF
    b.write_all(b"reply")  # the other direction still works
    assert a.read_exactly(5) == b"reply"


def check_read_timeout(a: Any, b: Any, factory: Any) -> None:
    b.timeout = 0.05
    try:
        b.read(10)
    except TimeoutError:
        pass
    else:
        raise AssertionError("read returned without data before the timeout")
    b.timeout = None
    a.write_all(b"later")
    assert b.read_exactly(5) == b"later"  # still usable after a timeout


def check_concurrent_reader_and_writer(a: Any, b: Any, factory: Any) -> None:
    # One coroutine reads while another writes on the same stream.
    n = 200

    def echo() -> None:
        for _ in range(n):
            b.write_all(b.readline())

    t = gofer.go(echo)
    got = []

    def reader() -> None:
        for _ in range(n):
            got.append(a.readline())

    r = gofer.go(reader)
    for i in range(n):
        a.write_all(b"%d\n" % i)
    r.join()
    t.join()
    assert got == [b"%d\n" % i for i in range(n)]


def check_close_is_idempotent(a: Any, b: Any, factory: Any) -> None:
    a.close()
    a.close()
    assert b.read(10) == b""


CHECKS: list[Check] = [
    check_round_trip,
    check_read_returns_available,
    check_large_transfer_both_ways,
    check_write_returns_count,
    check_readline,
    check_readline_limit,
    check_readuntil,
    check_read_exactly_eof,
    check_eof_is_sticky,
    check_data_then_close_while_parked,
    check_iteration,
    check_half_close,
    check_read_timeout,
    check_concurrent_reader_and_writer,
    check_close_is_idempotent,
]
