"""The kernel's face: one wake with a debug check, and registrations instead of ties."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import types

import pytest

import gofer
import gofer._core as core
from gofer._core import _park, _registry


def test_face_reexports_the_kernels_own_objects() -> None:
    # No wrapper between a caller and the kernel: each name is the object its
    # submodule defines (a wrapper would add a call on every hot path).
    stdlib = {"OSThreadLocal": threading.local}  # the stdlib's own, kept from before patching
    for name in core.__all__:
        obj = getattr(core, name)
        if name in stdlib:
            continue
        if isinstance(obj, types.FunctionType | type):
            assert obj.__module__.startswith("gofer._core."), name
            mod = sys.modules[obj.__module__]
            assert getattr(mod, obj.__name__) is obj, name


def test_debug_is_off_by_default() -> None:
    if os.environ.get("GOFER_DEBUG", "") not in ("", "0"):
        pytest.skip("this run has GOFER_DEBUG set")
    assert core.DEBUG is False
    assert "_check_wake" not in core.wake.__code__.co_names  # the unchecked wake


_DOUBLE_WAKE = textwrap.dedent(
    """
    import gofer
    from gofer._core import current_tasklike, park, wake

    class Slot:
        def _gofer_abort(self, task):
            return False

    def main():
        me = current_tasklike()
        errors = []

        def waker():
            wake(me)
            try:
                wake(me)  # a second wake for the same park
            except RuntimeError as exc:
                errors.append(str(exc))

        gofer.go(waker)
        park(Slot())
        print("caught:", errors)

    gofer.run(main)
    """
)


def test_debug_mode_refuses_a_second_wake() -> None:
    env = {**os.environ, "GOFER_DEBUG": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _DOUBLE_WAKE], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "caught: ['gofer (GOFER_DEBUG):" in out.stdout
    assert "woken twice" in out.stdout


def test_ignored_thread_does_not_hold_off_deadlock() -> None:
    # A thread that only waits on something gofer never touches cannot wake
    # the hub: once it is ignored, a program parked forever is a deadlock.
    stop = threading.Event()
    th = threading.Thread(target=stop.wait, name="k1-ignored", daemon=True)
    th.start()
    assert th.ident is not None
    core.ignore_thread(th.ident)
    try:
        with pytest.raises(gofer.Deadlock):
            gofer.run(gofer.Chan[int]().recv)
    finally:
        core.unignore_thread(th.ident)
        stop.set()
        th.join()


def test_ignore_thread_takes_a_predicate() -> None:
    if _registry.other_threads_alive():
        pytest.skip("another thread of this run could wake a hub")
    stop = threading.Event()
    th = threading.Thread(target=stop.wait, name="k1-by-name", daemon=True)
    th.start()
    try:
        assert _registry.other_threads_alive()
        core.ignore_thread(lambda ident, t: t is not None and t.name == "k1-by-name")
        assert not _registry.other_threads_alive()
    finally:
        _registry._ignored_if.pop()
        stop.set()
        th.join()


def test_hub_creation_hooks_run_in_the_new_hubs_thread() -> None:
    seen: list[tuple[object, int]] = []
    core.on_hub_created(lambda hub: seen.append((hub, threading.get_ident())))
    try:
        th = threading.Thread(target=gofer.run, args=(gofer.yield_now,))
        th.start()
        th.join()
    finally:
        _registry._created_hooks.pop()
    assert [ident for _, ident in seen] == [th.ident]


def test_wake_from_another_thread_goes_through_the_hub() -> None:
    def main() -> str:
        me = core.current_tasklike()
        box: list[str] = []

        class Slot:
            def _gofer_abort(self, task: object) -> bool:
                return False

        def other() -> None:
            box.append("sent")
            _park.wake(me)

        threading.Thread(target=other).start()
        core.park(Slot())
        return box[0]

    assert gofer.run(main) == "sent"


def test_os_thread_state_stays_per_thread_in_modules_imported_after_patch() -> None:
    # A module's body runs before gofer.patch's import hook gives it the
    # unpatched modules: gofer's module-level thread-locals and locks must
    # not come out per coroutine (under patch, each HTTP connection made its
    # own 64 KiB "per-thread" receive buffer).
    code = textwrap.dedent(
        """
        import _thread, threading
        real_local, real_lock = threading.local, type(_thread.allocate_lock())
        import gofer, gofer.patch
        gofer.patch()
        import gofer._metrics, gofer.http._conn, gofer.http.client
        print(type(gofer.http._conn._tls) is real_local, type(gofer.http.client._local) is real_local,
              type(gofer._metrics._lock) is real_lock)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]
