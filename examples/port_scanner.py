"""A TCP port scanner with bounded concurrency.

Every port gets its own coroutine, but a semaphore lets only ``--workers``
connection attempts run at once (a scanner that opened thousands of
connections at the same moment would run out of file descriptors and look
like an attack). Each attempt has a timeout; open ports are printed in order.

    python examples/port_scanner.py HOST PORTS [--workers N] [--timeout S]

PORTS is a range (``1-1024``), a list (``22,80,443``) or both (``1-100,8080``).
"""

from __future__ import annotations

import argparse

import gofer
from gofer import net


def parse_ports(spec: str) -> list[int]:
    ports: set[int] = set()
    for part in spec.split(","):
        lo, sep, hi = part.partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if not 0 < first <= last <= 65535:
            raise ValueError(f"bad port range {part!r}")
        ports.update(range(first, last + 1))
    return sorted(ports)


def is_open(host: str, port: int, timeout: float) -> bool:
    try:
        net.connect((host, port), timeout=timeout).close()
    except OSError:  # refused, unreachable, timed out (TimeoutError is an OSError)
        return False
    return True


def scan(host: str, ports: list[int], workers: int, timeout: float) -> list[int]:
    gate = gofer.Semaphore(workers)
    found: list[int] = []

    def probe(port: int) -> None:
        with gate:
            if is_open(host, port, timeout):
                found.append(port)

    with gofer.scope() as s:
        for port in ports:
            s.go(probe, port)
    return sorted(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("ports", type=parse_ports)
    ap.add_argument("--workers", type=int, default=100, help="connection attempts at once (default 100)")
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds per attempt (default 1)")
    args = ap.parse_args()
    for port in gofer.run(scan, args.host, args.ports, args.workers, args.timeout):
        print(f"{port} open")


if __name__ == "__main__":
    main()
