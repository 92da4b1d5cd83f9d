"""Structured concurrency with gofer.scope()."""

from __future__ import annotations

import pytest

import gofer


def test_scope_waits_for_all_children(vrun):
    done = []

    def child(d):
        gofer.sleep(d)
        done.append(d)

    def main():
        with gofer.scope() as s:
            for d in (3, 1, 2):
                s.go(child, d)
        assert sorted(done) == [1, 2, 3]
        assert gofer.get_hub().now() == pytest.approx(3)

    vrun(main)


def test_first_failure_cancels_siblings_and_raises_group(vrun):
    cancelled = []

    def bad():
        gofer.sleep(1)
        raise ValueError("bad child")

    def slow(i):
        try:
            gofer.sleep(100)
        except gofer.Cancelled:
            cancelled.append(i)
            raise

    def main():
        with pytest.raises(ExceptionGroup) as ei, gofer.scope() as s:
            s.go(slow, 1)
            s.go(bad)
            s.go(slow, 2)
        assert [type(e) for e in ei.value.exceptions] == [ValueError]
        assert gofer.get_hub().now() == pytest.approx(1)

    vrun(main)
    assert sorted(cancelled) == [1, 2]


def test_failure_cancels_the_scope_body_too(vrun):
    reached = []

    def main():
        with pytest.raises(ExceptionGroup), gofer.scope() as s:
            s.go(lambda: (gofer.sleep(1), 1 / 0))
            gofer.sleep(100)
            reached.append("body")
        assert gofer.get_hub().now() == pytest.approx(1)

    vrun(main)
    assert reached == []


def test_body_exception_is_in_the_group_and_children_are_cancelled(vrun):
    def main():
        with pytest.raises(ExceptionGroup) as ei, gofer.scope() as s:
            child = s.go(gofer.sleep, 100)
            raise KeyError("body")
        assert [type(e) for e in ei.value.exceptions] == [KeyError]
        assert child.cancelled()

    vrun(main)


def test_several_failures_all_reported(vrun):
    def fail(msg):
        raise RuntimeError(msg)

    def main():
        with pytest.raises(ExceptionGroup) as ei, gofer.scope() as s:
            s.go(fail, "a")
            s.go(fail, "b")
        assert sorted(str(e) for e in ei.value.exceptions) == ["a", "b"]

    vrun(main)


def test_cancelling_owner_cancels_children_and_waits(vrun):
    log = []

    def child():
        try:
            gofer.sleep(100)
        finally:
            with gofer.shield():
                gofer.sleep(2)
            log.append("child cleaned")

    def owner():
        with gofer.scope() as s:
            s.go(child)
            gofer.sleep(100)

    def main():
        t = gofer.go(owner)
        gofer.sleep(1)
        t.cancel()
        with pytest.raises(gofer.Cancelled):
            t.join()
        assert log == ["child cleaned"]
        assert gofer.get_hub().now() == pytest.approx(3)

    vrun(main)


def test_scope_results_and_cancel(vrun):
    def main():
        with gofer.scope() as s:
            a = s.go(lambda: 1)
            b = s.go(lambda: 2)
        assert a.result() + b.result() == 3
        with gofer.scope() as s:
            s.go(gofer.sleep, 100)
            s.cancel()
        assert gofer.get_hub().now() == pytest.approx(0)

    vrun(main)


def test_scope_misuse(vrun):
    def main():
        s = gofer.scope()
        with pytest.raises(RuntimeError, match="with"):
            s.go(lambda: None)
        with s:
            pass
        with pytest.raises(RuntimeError, match="finished"):
            s.go(lambda: None)

    vrun(main)
