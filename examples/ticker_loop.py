"""A ticker-driven loop: do periodic work until a deadline or a quit signal.

The loop selects over a ``Ticker``'s channel, a quit channel and a
deadline from ``gofer.after``; whichever fires first decides what happens.
A ``Ticker`` drops ticks a slow loop could not take, so the work never
piles up.

    python examples/ticker_loop.py [period] [ticks]
"""

from __future__ import annotations

import sys

import gofer


def loop(period: float, ticks: int) -> int:
    ticker = gofer.Ticker(period)
    quit_: gofer.Chan[None] = gofer.Chan()
    deadline = gofer.after(period * (ticks + 50))  # a safety net, as in production code
    start = gofer.get_hub().now()

    def quitter() -> None:
        gofer.sleep(period * ticks + period / 2)
        quit_.close()

    gofer.go(quitter)
    n = 0
    try:
        while True:
            i, when = gofer.select(ticker.c, quit_.recv, deadline)
            if i == 0:
                n += 1
                print(f"tick {n} at +{when - start:.3f}s")
            elif i == 1:
                print("quit")
                return n
            else:
                print("deadline")
                return n
    finally:
        ticker.stop()


def main() -> None:
    period = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02
    ticks = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    n = gofer.run(loop, period, ticks)
    print(f"{n} ticks")


if __name__ == "__main__":
    main()
