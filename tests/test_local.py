"""gofer.local: attributes per coroutine, subclasses' __init__ run per coroutine."""

from __future__ import annotations

import pytest

import gofer


def test_local_is_per_coroutine(vrun):
    loc = gofer.local()

    def child(v):
        assert not hasattr(loc, "x")
        loc.x = v
        gofer.yield_now()
        return loc.x

    def main():
        loc.x = "main"
        ts = [gofer.go(child, i) for i in range(3)]
        assert [t.join() for t in ts] == [0, 1, 2]
        assert loc.x == "main"
        del loc.x
        with pytest.raises(AttributeError):
            _ = loc.x

    vrun(main)


def test_local_subclass_init_runs_per_coroutine(vrun):
    class Counter(gofer.local):
        def __init__(self, start):
            self.n = start

    c = Counter(10)

    def child():
        c.n += 1
        return c.n

    def main():
        assert gofer.go(child).join() == 11
        assert gofer.go(child).join() == 11
        assert c.n == 10

    vrun(main)
    with pytest.raises(TypeError):
        gofer.local(1)
