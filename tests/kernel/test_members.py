"""The kernel types' fields read from Python as ``__slots__`` do, on both kernels.

On the compiled kernel ``gofer._core._members`` turns Cython's properties
for the extension types' plain object fields into member descriptors over
the same C fields (the interpreter specializes those, not properties).
These tests check that the conversion happened, that both ways of reaching
a field (compiled code by offset, Python through the descriptor) see the
same memory, and that typed fields kept their type checks. On the pure
kernel the same fields are ``__slots__``: member descriptors already.
"""

from __future__ import annotations

import gc
import sys
import types
import weakref

import pytest

import gofer
from gofer._core import Hub, IoState, Root, Worker

compiled = pytest.mark.skipif(gofer.kernel() != "compiled", reason="the compiled kernel does not run")

MemberDescriptor = types.MemberDescriptorType


@pytest.mark.parametrize(
    ("tp", "field"),
    [(Worker, "_wait"), (Worker, "task"), (Worker, "_throw"), (Root, "g"), (Hub, "ready"), (IoState, "rwaiter")],
)
def test_plain_object_fields_are_member_descriptors(tp: type, field: str) -> None:
    assert type(tp.__dict__[field]) is MemberDescriptor


@compiled
def test_every_kernel_type_was_converted() -> None:
    from gofer._core import _members

    done = _members.installed()
    assert set(done) == {"Hub", "Worker", "Root", "IoState", "Poller", "EpollPoller", "SelectorPoller"}
    assert all(n > 0 for n in done.values()), done
    assert _members.install() is _members.install()  # once only


@compiled
def test_typed_fields_keep_their_type_check() -> None:
    # Worker._hub is a Hub in the compiled code: a property that checks it.
    assert type(Worker.__dict__["_hub"]) is types.GetSetDescriptorType
    w = Worker(lambda: None)
    with pytest.raises(TypeError):
        w._hub = object()


def test_python_and_the_kernel_see_the_same_field() -> None:
    seen: list[object] = []

    def task() -> None:
        me = gofer._core.current_tasklike()
        seen.append(me)
        ch: gofer.Chan[int] = gofer.Chan()
        gofer.go(ch.send, 1)
        seen.append(ch.recv())

    def main() -> None:
        t = gofer.go(task)
        gofer.yield_now()
        w = seen[0]
        # Parked in recv: the kernel stored its registration in _wait, which
        # Python reads through the descriptor.
        assert w._wait is not None
        t.join()
        assert w._wait is None and w.task is None  # cleared by the compiled worker body

    gofer.run(main)
    assert seen[1] == 1


def test_a_field_holds_a_reference_and_releases_it() -> None:
    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing)
    w = Worker(lambda: None)
    w.task = thing
    del thing
    gc.collect()
    assert ref() is not None
    before = sys.getrefcount(w.task)
    x = w.task
    assert sys.getrefcount(x) == before + 1
    del x
    w.task = None
    assert ref() is None


def test_a_deleted_field_reads_as_attribute_error_like_a_slot() -> None:
    w = Worker(lambda: None)
    w.task = 1
    del w.task
    with pytest.raises(AttributeError):
        _ = w.task
    w.task = None
    assert w.task is None
