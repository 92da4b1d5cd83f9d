"""gofer.patch(): the API, its rules (idempotence, subsets, errors, warnings) and the CLI."""

from __future__ import annotations

import sys

from tests._patchutil import ROOT, run_patched, run_py


def test_patch_twice_is_a_no_op_and_is_patched_reports():
    out = run_py("""
        import socket, threading, time, gofer
        assert not gofer.is_patched("socket")
        gofer.patch()
        first = (socket.socket, threading.Lock, time.sleep)
        gofer.patch()
        assert (socket.socket, threading.Lock, time.sleep) == first
        print(sorted(a for a in gofer.patch.AREAS if gofer.is_patched(a)))
        print(gofer.patch.original("time", "sleep") is not time.sleep)
    """)
    assert out.split("\n")[0] == str(sorted(
        ["asyncio", "os", "psycopg", "queue", "select", "selectors", "socket", "ssl", "subprocess",
         "threading", "time"]))
    assert out.split("\n")[1] == "True"


def test_keywords_select_a_subset():
    out = run_py("""
        import gofer
        gofer.patch(subprocess=False, os=False)
        print(gofer.is_patched("subprocess"), gofer.is_patched("os"), gofer.is_patched("socket"))
    """)
    assert out.strip() == "False False True"
    out = run_py("""
        import gofer, socket, time
        gofer.patch(time=True)
        print(gofer.is_patched("time"), gofer.is_patched("socket"), socket.socket.__module__)
    """)
    assert out.strip() == "True False socket"


def test_unknown_keyword_and_bad_values_are_errors():
    out = run_py("""
        import gofer
        for kw in ({"sockets": False}, {"socket": 1}):
            try:
                gofer.patch(**kw)
            except TypeError as e:
                print(e)
        try:
            gofer.is_patched("sockets")
        except ValueError as e:
            print(e)
        print(any(gofer.is_patched(a) for a in gofer.patch.AREAS))
    """)
    lines = out.splitlines()
    assert "unexpected keyword argument 'sockets'" in lines[0]
    assert "True or False" in lines[1]
    assert "unknown gofer.patch area 'sockets'" in lines[2]
    assert lines[3] == "False"


def test_patch_from_another_thread_or_a_running_hub_is_an_error():
    out = run_py("""
        import threading, gofer
        def other():
            try:
                gofer.patch()
            except RuntimeError as e:
                print("thread:", e)
        t = threading.Thread(target=other); t.start(); t.join()
        def main():
            try:
                gofer.patch()
            except RuntimeError as e:
                print("hub:", e)
        gofer.run(main)
        print(gofer.is_patched("socket"))
    """)
    assert "thread: gofer.patch() must be called from the main thread" in out
    assert "hub: gofer.patch() cannot be called while a gofer hub is running" in out
    assert out.strip().endswith("False")


def test_repeat_inside_run_is_a_no_op():
    out = run_patched("""
        def main():
            gofer.patch()  # already done: no error even inside a hub
            return "ok"
        print(gofer.run(main))
    """)
    assert out.strip() == "ok"


def test_late_patch_warns_once_naming_the_module():
    out = run_py("""
        import socket, threading, warnings
        warnings.simplefilter("always")
        s = socket.socket()
        ev = threading.Event()
        import gofer
        with warnings.catch_warnings(record=True) as w:
            gofer.patch(socket=True, threading=True)
            gofer.patch()
        for x in w:
            print(x.category.__name__, x.message)
        s.close()
    """)
    lines = [ln for ln in out.splitlines() if ln.startswith("PatchWarning")]
    assert len(lines) == 2, out
    assert "1 open socket(s)" in out and "'socket' module" in out
    assert "1 lock-like object(s)" in out and "'threading' module" in out


def test_no_warning_when_patched_first():
    out = run_py("""
        import warnings
        warnings.simplefilter("error")
        import gofer
        gofer.patch()
        import socket, threading
        s = socket.socket(); s.close()
        print("quiet")
    """)
    assert out.strip() == "quiet"


def test_gofer_keeps_the_originals():
    out = run_patched("""
        import _thread, select, gofer.patch
        orig_lock_type = type(gofer.patch.original("_thread", "allocate_lock")())
        print(type(gofer.Mutex()._lock) is orig_lock_type)
        def main():
            return type(gofer.get_hub().poller._ep if hasattr(gofer.get_hub().poller, "_ep") else None).__module__
        print(gofer.run(main) in ("select", "builtins"))
    """)
    assert out.split() == ["True", "True"]


def test_patched_calls_inside_the_hub_raise_the_named_error():
    out = run_patched("""
        import select, socket, time, threading
        errors = []
        a, b = socket.socketpair()
        lock = threading.Lock()
        def cb():
            for name, fn in (("sleep", lambda: time.sleep(0.01)), ("recv", lambda: a.recv(1)),
                             ("select", lambda: select.select([a], [], [], 1)),
                             ("lock", lambda: lock.acquire())):
                try:
                    fn()
                except gofer.BlockingInHubError:
                    errors.append(name)
        def main():
            lock.acquire()
            gofer.get_hub().call_soon(cb)
            gofer.sleep(0.05)
            lock.release()
        gofer.run(main)
        print(errors)
        a.close(); b.close()
    """)
    assert out.strip() == "['sleep', 'recv', 'select', 'lock']"


SCRIPT = """
import sys, time, gofer
print(__name__, sys.argv[1:], gofer.current() is not None, gofer.is_patched("time"))
t0 = time.monotonic()
tasks = [gofer.go(time.sleep, 0.3) for _ in range(50)]
for t in tasks:
    t.join()
print("concurrent", time.monotonic() - t0 < 3.0)
sys.exit(7)
"""


def test_python_m_gofer_patch_runs_a_script_as_main(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    out = run_py(f"""
        import subprocess, sys
        r = subprocess.run([sys.executable, "-m", "gofer.patch", {str(script)!r}, "a", "b"],
                           capture_output=True, text=True)
        print(r.returncode); print(r.stdout); print(r.stderr)
    """)
    lines = out.splitlines()
    assert lines[0] == "7", out
    assert lines[1] == "__main__ ['a', 'b'] True True"
    assert lines[2] == "concurrent True"


def test_python_m_gofer_patch_no_area_and_usage(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("import gofer\nprint(gofer.is_patched('subprocess'), gofer.is_patched('socket'))\n")
    out = run_py(f"""
        import subprocess, sys
        r = subprocess.run([sys.executable, "-m", "gofer.patch", "--no", "subprocess", {str(script)!r}],
                           capture_output=True, text=True)
        print(r.stdout.strip())
        r = subprocess.run([sys.executable, "-m", "gofer.patch"], capture_output=True, text=True)
        print(r.returncode, "usage" in r.stderr)
    """)
    assert out.splitlines() == ["False True", "2 True"]
    assert ROOT.exists() and sys.executable


def test_patch_makes_asyncio_run_use_the_hub_and_psycopg_cooperate():
    # asyncio.run() under patch builds a gofer loop: a gofer coroutine keeps
    # running while the asyncio code waits; psycopg2 gets gofer's wait
    # callback and psycopg 3 gofer's waiting functions, with nothing else to do.
    out = run_py("""
        import gofer
        gofer.patch()
        import asyncio
        from gofer import aio, patch_db

        def main():
            beats = []

            def heartbeat():
                while True:
                    gofer.sleep(0.01)
                    beats.append(1)

            hb = gofer.go(heartbeat)

            async def slow():
                await asyncio.sleep(0.1)
                return type(asyncio.get_running_loop()).__name__

            name = asyncio.run(slow())
            hb.cancel()
            return name, len(beats)

        name, beats = gofer.run(main)
        print(name, beats >= 3)
        try:
            import psycopg2  # noqa: F401
            print("psycopg2", patch_db.is_patched("psycopg2"))
        except ImportError:
            print("psycopg2", True)
        try:
            import psycopg  # noqa: F401
            print("psycopg", patch_db.is_patched("psycopg"))
        except ImportError:
            print("psycopg", True)
    """)
    lines = out.strip().splitlines()
    assert lines[0] == "GoferEventLoop True", out
    assert lines[1:] == ["psycopg2 True", "psycopg True"], out


def test_asyncio_and_psycopg_areas_can_be_left_out():
    out = run_py("""
        import gofer
        gofer.patch(asyncio=False, psycopg=False)
        import asyncio
        print(gofer.is_patched("asyncio"), gofer.is_patched("psycopg"), gofer.is_patched("socket"))
        print(type(asyncio.new_event_loop()).__name__)
    """)
    lines = out.strip().splitlines()
    assert lines[0] == "False False True"
    assert lines[1] != "GoferEventLoop"
