"""gofer.patch() and I/O: socket, select, selectors, ssl, time.sleep, subprocess, os.waitpid."""

from __future__ import annotations

import pytest
from tests._patchutil import CERTS, run_patched

HB = """
import threading, time, socket, select, selectors, subprocess, os
beats = [0]
def heartbeat():
    while True:
        gofer.sleep(0.01)
        beats[0] += 1
def check(name, wait):
    hb = gofer.go(heartbeat)
    beats[0] = 0
    result = wait()
    hb.cancel()
    print(name, beats[0] >= 5, result)
def after(delay, fn):
    return gofer.go(lambda: (gofer.sleep(delay), fn()))
"""


def test_socket_select_poll_epoll_and_selectors_park():
    out = run_patched(HB + """
def main():
    a, b = socket.socketpair()
    print(type(a) is socket.socket, isinstance(a, gofer.socket.socket))
    after(0.3, lambda: b.send(b"1")); check("recv", lambda: a.recv(10))
    after(0.3, lambda: b.send(b"2")); check("select", lambda: len(select.select([a], [], [], 5)[0]))
    a.recv(10)
    p = select.poll(); p.register(a, select.POLLIN)
    after(0.3, lambda: b.send(b"3")); check("poll", lambda: p.poll(5000)[0][0] == a.fileno())
    a.recv(10)
    with select.epoll() as ep:
        ep.register(a, select.EPOLLIN)
        after(0.3, lambda: b.send(b"4")); check("epoll", lambda: ep.poll(5)[0][0] == a.fileno())
    a.recv(10)
    for cls in (selectors.DefaultSelector, selectors.SelectSelector, selectors.PollSelector):
        with cls() as sel:
            sel.register(a, selectors.EVENT_READ)
            after(0.3, lambda: b.send(b"5")); check(cls.__name__, lambda: len(sel.select(5)))
            a.recv(10)
    check("timeouts", lambda: (select.select([a], [], [], 0.3), p.poll(10), sel_empty()))
    a.close(); b.close()
def sel_empty():
    with selectors.DefaultSelector() as s:
        return s.select(0.01)
gofer.run(main)
""")
    assert out.splitlines() == [
        "True True", "recv True b'1'", "select True 1", "poll True True", "epoll True True",
        "EpollSelector True 1", "SelectSelector True 1", "PollSelector True 1",
        "timeouts True (([], [], []), [], [])",
    ]


def test_select_argument_errors_match_the_stdlib():
    out = run_patched("""
        import select, gofer.patch
        orig = gofer.patch.original("select", "select")
        def err(fn, *a):
            try:
                fn(*a)
            except Exception as e:
                return type(e).__name__, str(e)
        for args in (([-1], [], [], 0.1), ([object()], [], [], 0.1), ([], [], [], -1)):
            print(err(select.select, *args) == err(orig, *args), err(select.select, *args)[0])
    """)
    assert out.split() == ["True", "ValueError", "True", "TypeError", "True", "ValueError"]


def test_closing_a_socket_wakes_its_waiter():
    out = run_patched("""
        import socket
        def main():
            a, b = socket.socketpair()
            def reader():
                try:
                    a.recv(1)
                except OSError as e:
                    return e.errno
            t = gofer.go(reader)
            gofer.sleep(0.05)
            a.close()
            print(t.join(timeout=5))
            b.close()
        gofer.run(main)
    """)
    assert out.strip() == "9"


def test_create_connection_and_lookups():
    out = run_patched("""
        import socket, threading
        def main():
            srv = socket.create_server(("127.0.0.1", 0))
            port = srv.getsockname()[1]
            def serve():
                c, _ = srv.accept()
                c.sendall(c.recv(100).upper()); c.close()
            t = gofer.go(serve)
            c = socket.create_connection(("localhost", port), timeout=5)
            c.sendall(b"hi"); print(c.recv(100), isinstance(c, gofer.socket.socket))
            c.close(); t.join(); srv.close()
            print(socket.getaddrinfo("localhost", port, socket.AF_INET)[0][4][0])
            # In a plain thread (nothing to starve) the original lookup runs directly.
            res = []
            th = threading.Thread(target=lambda: res.append(socket.gethostbyname("localhost")))
            th.start(); th.join()
            print(res)
        gofer.run(main)
    """)
    assert out.splitlines() == ["b'HI' True", "127.0.0.1", "['127.0.0.1']"]


def test_urllib_against_a_threaded_server_runs_concurrently():
    out = run_patched("""
        import http.server, threading, time, urllib.request
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(0.3)  # a real thread of the server: stays a thread
                body = b"ok"
                self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 64  # 20 clients connect at once
        srv = Server(("127.0.0.1", 0), H)
        th = threading.Thread(target=srv.serve_forever); th.start()
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        def main():
            t0 = time.monotonic()
            tasks = [gofer.go(lambda: urllib.request.urlopen(url, timeout=10).read()) for _ in range(20)]
            print({t.join() for t in tasks}, time.monotonic() - t0 < 3.0)  # one after another: 6 s
        gofer.run(main)
        srv.shutdown(); th.join(); srv.server_close()
    """)
    assert out.strip() == "{b'ok'} True"


def test_ssl_wrap_socket_is_cooperative():
    out = run_patched(f"""
        import socket, ssl
        def main():
            sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            sctx.load_cert_chain({str(CERTS / "server.pem")!r}, {str(CERTS / "server.key")!r})
            cctx = ssl.create_default_context(cafile={str(CERTS / "ca.pem")!r})
            srv = socket.create_server(("127.0.0.1", 0))
            port = srv.getsockname()[1]
            def serve():
                c, _ = srv.accept()
                with sctx.wrap_socket(c, server_side=True) as s:
                    s.sendall(s.recv(100)[::-1])
            t = gofer.go(serve)
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with cctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"abc")
                    print(s.recv(100), type(s).__module__, isinstance(s, ssl.SSLSocket))
            t.join(); srv.close()
        gofer.run(main)
    """)
    assert out.strip() == "b'cba' gofer.ssl True"


def test_time_sleep_checks_and_parks():
    out = run_patched(HB + """
import gofer.patch
orig = gofer.patch.original("time", "sleep")
def err(fn, a):
    try:
        fn(a)
    except Exception as e:
        return type(e).__name__, str(e)
for a in (-1, "x", float("nan")):
    print(err(time.sleep, a) == err(orig, a))
def main():
    check("sleep", lambda: time.sleep(0.3))
gofer.run(main)
""")
    assert out.splitlines() == ["True", "True", "True", "sleep True None"]


def test_time_sleep_is_signal_safe():
    out = run_patched("""
        import signal, time
        class Alarm(Exception):
            pass
        def raising(*a):
            raise Alarm
        signal.signal(signal.SIGALRM, raising)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        try:
            time.sleep(10)
        except Alarm:
            print("interrupted", time.monotonic() - t0 < 5)
        calls = []
        signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        time.sleep(0.3)  # a handler that returns: the sleep goes on (PEP 475)
        print("resumed", calls, time.monotonic() - t0 >= 0.29)
        # With a coroutine alive the main code's sleep waits in the hub: same rules.
        signal.signal(signal.SIGALRM, raising)
        hb = gofer.go(lambda: [gofer.sleep(0.01) for _ in range(1000)])
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        try:
            time.sleep(10)
        except Alarm:
            print("interrupted in the hub", time.monotonic() - t0 < 5)
        signal.signal(signal.SIGALRM, lambda *a: calls.append(2))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        time.sleep(0.3)
        print("resumed in the hub", calls, time.monotonic() - t0 >= 0.29)
        hb.cancel()
        try:
            hb.join()
        except gofer.Cancelled:
            pass
    """)
    assert out.splitlines() == [
        "interrupted True", "resumed [1] True", "interrupted in the hub True", "resumed in the hub [1, 2] True"]


def test_subprocess_and_waitpid_park():
    out = run_patched(HB + """
import sys
def main():
    check("check_output", lambda: subprocess.check_output([sys.executable, "-c", "import time; time.sleep(0.3); print('hi')"]))
    echo = "import sys, time; time.sleep(0.3); sys.stdout.write(sys.stdin.read())"
    check("run_input", lambda: subprocess.run([sys.executable, "-c", echo], input=b"x" * 100000,
                                              capture_output=True).stdout == b"x" * 100000)
    p = subprocess.Popen(["sleep", "0.3"])
    check("wait", lambda: p.wait())
    p = subprocess.Popen(["sleep", "5"])
    try:
        p.wait(timeout=0.3)
    except subprocess.TimeoutExpired:
        print("timeout")
    p.kill(); p.wait()
    try:
        subprocess.run(["sleep", "5"], timeout=0.3)
    except subprocess.TimeoutExpired:
        print("run timeout")
    pid = os.spawnlp(os.P_NOWAIT, "sleep", "sleep", "0.3")
    check("waitpid", lambda: os.waitpid(pid, 0) == (pid, 0))
gofer.run(main)
""")
    assert out.splitlines() == [
        "check_output True b'hi\\n'", "run_input True True", "wait True 0", "timeout", "run timeout",
        "waitpid True True",
    ]


@pytest.mark.parametrize("area", ["socket", "select"])
def test_an_area_can_be_left_out(area):
    out = run_patched("""
        import socket, select
        print(socket.socket.__module__, select.select.__module__)
    """, patch=f"gofer.patch({area}=False)")
    mods = out.split()
    assert (mods[0] == "socket") == (area == "socket")
    assert (mods[1] == "select") == (area == "select")


def test_a_socket_moves_to_the_thread_that_uses_it():
    # Thread A waits on the socket (it is registered with A's hub), then hands
    # it over and stays alive; the main code then waits on it in its own hub.
    out = run_patched("""
        import socket, threading
        a, b = socket.socketpair()
        handed, done = threading.Event(), threading.Event()
        def thread_a():
            threading.Timer(0.05, lambda: b.send(b"1")).start()
            print(a.recv(1))
            handed.set()
            done.wait()
        t = threading.Thread(target=thread_a); t.start()
        handed.wait()
        threading.Timer(0.05, lambda: b.send(b"2")).start()
        print(a.recv(1))
        done.set(); t.join(); a.close(); b.close()
    """)
    assert out.split() == ["b'1'", "b'2'"]


def test_every_socket_passes_isinstance_socket_socket():
    out = run_patched("""
        import socket, gofer.socket
        made_by_gofer = gofer.socket.socket()
        patched = socket.socket()
        print(isinstance(made_by_gofer, socket.socket), isinstance(patched, socket.socket),
              issubclass(gofer.socket.socket, socket.socket), isinstance(object(), socket.socket))
        made_by_gofer.close(); patched.close()
    """)
    assert out.split() == ["True", "True", "True", "False"]
