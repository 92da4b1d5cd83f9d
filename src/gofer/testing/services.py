"""Real database and cache servers for tests and benchmarks, started on loopback.

``start_postgres()``, ``start_redis()`` and ``start_mariadb()`` are context
managers that start the server from its Debian package (``postgresql``,
``redis-server``, ``mariadb-server``) on 127.0.0.1 with a free port and a
temporary data directory, yield a :class:`Service` (host, port, the user to
connect as), and stop the server and remove the directory on exit. Where
the program is missing they raise :class:`ServiceUnavailable` naming the
package. PostgreSQL refuses to run as root: as root, its data directory is
given to ``nobody`` and the server runs as that user (``runuser``).
``cpu=N`` pins the server to one CPU (benchmarks). The test suite's pytest
fixtures (``tests/services.py``) and ``gofer bench``'s interop suites use
them.

``python -m gofer.testing.services`` starts all three and prints where they
listen until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

__all__ = ["HOST", "Service", "ServiceUnavailable", "start_mariadb", "start_postgres", "start_redis"]

HOST = "127.0.0.1"


@dataclasses.dataclass
class Service:
    name: str
    host: str
    port: int
    user: str = ""
    password: str = ""
    database: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait_port(
    port: int, proc: subprocess.Popen[bytes] | None, log: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; its log:\n{_tail(log)}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(
        f"the server did not listen on port {port} within {timeout}s; its log:\n{_tail(log)}"
    )


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return "(no log)"


def _run(cmd: list[str], log: str) -> None:
    with open(log, "ab") as out:
        r = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        )
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed with {r.returncode}:\n{_tail(log)}")


def _pin(cpu: int | None) -> list[str]:
    """A command prefix that runs the server on CPU ``cpu`` only (benchmarks)."""
    if cpu is None:
        return []
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu)] if taskset else []


class ServiceUnavailable(RuntimeError):
    """The server's program is not installed; the message names its Debian package."""


def _skip_missing(what: str, package: str) -> None:
    raise ServiceUnavailable(f"{what} is not installed (Debian package {package!r}); install it to use it")


# -- PostgreSQL ------------------------------------------------------------------


def _pg_bindir() -> str | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@contextlib.contextmanager
def start_postgres(max_connections: int = 300, cpu: int | None = None) -> Iterator[Service]:
    bindir = _pg_bindir()
    if bindir is None:
        _skip_missing("PostgreSQL (initdb, pg_ctl)", "postgresql")
        raise AssertionError("unreachable")
    tmp = tempfile.mkdtemp(prefix="gofer-pg-")
    data = os.path.join(tmp, "data")
    log = os.path.join(tmp, "setup.log")  # written by us
    server_log = os.path.join(tmp, "server.log")  # written by the server's user
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        os.chmod(tmp, 0o755)
        shutil.chown(tmp, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    prefix = _pin(cpu) + prefix
    port = _free_port()
    try:
        _run(
            [
                *prefix,
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            log,
        )
        opts = (
            f"-c listen_addresses={HOST} -c port={port} -c unix_socket_directories={tmp} "
            f"-c max_connections={max_connections} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c shared_buffers=32MB"
        )
        _run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-o",
                opts,
                "-l",
                server_log,
                "-w",
                "-t",
                "60",
                "start",
            ],
            log,
        )
        try:
            _wait_port(port, None, server_log)
            yield Service("postgresql", HOST, port, user="postgres", database="postgres")
        finally:
            _run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- Redis -----------------------------------------------------------------------


@contextlib.contextmanager
def start_redis(cpu: int | None = None) -> Iterator[Service]:
    exe = shutil.which("redis-server")
    if exe is None:
        _skip_missing("redis-server", "redis-server")
    tmp = tempfile.mkdtemp(prefix="gofer-redis-")
    log = os.path.join(tmp, "log")
    port = _free_port()
    cmd = [
        *_pin(cpu),
        str(exe),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        tmp,
        "--daemonize",
        "no",
        "--maxclients",
        "4000",
        "--logfile",
        log,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_port(port, proc, log)
        yield Service("redis", HOST, port)
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# -- MariaDB ---------------------------------------------------------------------


@contextlib.contextmanager
def start_mariadb(max_connections: int = 300, cpu: int | None = None) -> Iterator[Service]:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/libexec")
    install = shutil.which("mariadb-install-db")
    if server is None or install is None:
        _skip_missing("MariaDB (mariadbd, mariadb-install-db)", "mariadb-server")
    tmp = tempfile.mkdtemp(prefix="gofer-mariadb-")
    data = os.path.join(tmp, "data")
    log = os.path.join(tmp, "log")
    user = "root" if os.geteuid() == 0 else ""
    user_opt = [f"--user={user}"] if user else []
    port = _free_port()
    common = ["--no-defaults", f"--datadir={data}", *user_opt]
    try:
        _run(
            [
                str(install),
                *common,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            log,
        )
        cmd = [
            *_pin(cpu),
            str(server),
            *common,
            f"--socket={tmp}/sock",
            f"--port={port}",
            f"--bind-address={HOST}",
            f"--pid-file={tmp}/pid",
            f"--log-error={log}",
            f"--max-connections={max_connections}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_port(port, proc, log)
            yield Service("mariadb", HOST, port, user="root", database="mysql")
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":  # pragma: no cover - manual use
    with start_postgres() as pg, start_redis() as rd, start_mariadb() as my:
        for s in (pg, rd, my):
            print(f"{s.name}: {s.host}:{s.port} user={s.user!r}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
