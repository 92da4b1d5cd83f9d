"""A pipeline with cancellation by closing a ``done`` channel (Go blog style).

``gen`` -> two parallel ``square`` stages -> ``merge``. The consumer takes
only the first few results, then closes ``done``: every stage is selecting
between its next send and ``done.recv``, and a closed channel is always
ready, so all of them stop at once instead of blocking forever on a send
nobody will receive.

    python examples/pipeline_cancel.py [take]
"""

from __future__ import annotations

import sys

import gofer


def gen(done: gofer.Chan[None], nums: range) -> gofer.Chan[int]:
    out: gofer.Chan[int] = gofer.Chan()

    def run() -> None:
        try:
            for n in nums:
                i, _ = gofer.select((out.send, n), done.recv)
                if i == 1:
                    return
        finally:
            out.close()

    gofer.go(run)
    return out


def square(
    done: gofer.Chan[None], src: gofer.Chan[int], stopped: list[str], name: str
) -> gofer.Chan[int]:
    out: gofer.Chan[int] = gofer.Chan()

    def run() -> None:
        try:
            for n in src:
                i, _ = gofer.select((out.send, n * n), done.recv)
                if i == 1:
                    return
        finally:
            stopped.append(name)
            out.close()

    gofer.go(run)
    return out


def merge(done: gofer.Chan[None], *chans: gofer.Chan[int]) -> gofer.Chan[int]:
    out: gofer.Chan[int] = gofer.Chan()
    wg = gofer.WaitGroup()

    def forward(c: gofer.Chan[int]) -> None:
        for n in c:
            i, _ = gofer.select((out.send, n), done.recv)
            if i == 1:
                return

    for c in chans:
        wg.go(forward, c)

    def closer() -> None:
        wg.wait()
        out.close()

    gofer.go(closer)
    return out


def pipeline(take: int) -> tuple[list[int], list[str]]:
    done: gofer.Chan[None] = gofer.Chan()
    stopped: list[str] = []
    src = gen(done, range(1, 1_000_000))
    out = merge(
        done, square(done, src, stopped, "square-1"), square(done, src, stopped, "square-2")
    )
    got = [out.recv() for _ in range(take)]
    done.close()  # cancel everything upstream
    for _ in out:  # drain until merge has seen every stage stop
        pass
    return got, stopped


def main() -> None:
    take = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    got, stopped = gofer.run(pipeline, take)
    print("first results:", sorted(got))
    print("stopped:", ", ".join(sorted(stopped)))


if __name__ == "__main__":
    main()
