"""The concurrent prime sieve from the Go tour, with gofer channels.

A generator coroutine sends 2, 3, 4, ... on a channel; each prime found
starts a filter coroutine that passes on only the numbers it does not
divide. The chain of filters grows by one per prime.

    python examples/prime_sieve.py [count]
"""

from __future__ import annotations

import sys

import gofer


def generate(ch: gofer.Chan[int]) -> None:
    i = 2
    while True:
        ch.send(i)
        i += 1


def filter_multiples(src: gofer.Chan[int], dst: gofer.Chan[int], prime: int) -> None:
    for n in src:
        if n % prime:
            dst.send(n)


def primes(count: int) -> list[int]:
    ch: gofer.Chan[int] = gofer.Chan()
    gofer.go(generate, ch)
    found = []
    for _ in range(count):
        prime = ch.recv()
        found.append(prime)
        nxt: gofer.Chan[int] = gofer.Chan()
        gofer.go(filter_multiples, ch, nxt, prime)
        ch = nxt
    return found  # gofer.run cancels the generator and the filters on return


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(" ".join(map(str, gofer.run(primes, count))))


if __name__ == "__main__":
    main()
