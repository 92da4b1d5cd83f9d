"""The echo benchmark's harness: its C programs build and a short run reports sane figures."""

from __future__ import annotations

import shutil

import pytest

from bench import echo, find_suite

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")), reason="no C compiler for the load generator"
)

TINY = {"size": 1024, "conns": 4, "warmup": 0.2, "duration": 0.5}


def test_echo_suites_are_registered() -> None:
    for name, size, conns in (("echo-1k", 1024, 100), ("echo-64k", 65536, 50), ("echo-1k-c1000", 1024, 1000)):
        suite = find_suite(name)
        assert suite.params["size"] == size and suite.params["conns"] == conns
        assert {"gofer", "uvloop-protocol", "gevent", "c-epoll (ceiling)"} <= set(suite.systems)


@pytest.mark.parametrize("system", ["gofer", "gofer-serve", "c-epoll", "threads"])
def test_short_echo_run(system: str) -> None:
    res = echo.run_echo(system, TINY)
    assert res["rps"] > 100
    assert 0 < res["cpu_us_per_rt"] < 10_000
    assert 0 <= res["client_cpu"] <= 1.5


def test_a_large_message_run() -> None:
    res = echo.run_echo("gofer", {**TINY, "size": 65536})
    assert res["rps"] > 10
