"""A chat server: every line a client sends goes to every other client.

One coroutine per connection reads lines; one *broker* coroutine owns the
set of clients and is the only one that touches it, fed by three channels
(joins, leaves, messages) through ``gofer.select``, as in Go. Each client has
a buffered outbox drained by its own writer coroutine; the broker never
blocks on a slow client: when an outbox is full the message is dropped for
that client (``try_send``).

    python examples/chat_server.py [host:port]     (default 127.0.0.1:9000)

Then ``nc 127.0.0.1 9000`` in a few terminals: the first line is your name.
"""

from __future__ import annotations

import sys

import gofer
from gofer import net


class Client:
    def __init__(self, name: str, stream: net.Stream) -> None:
        self.name = name
        self.stream = stream
        self.outbox: gofer.Chan[bytes] = gofer.Chan(64)

    def writer(self) -> None:
        for line in self.outbox:  # until the broker closes it
            self.stream.write_all(line)


def broker(joins: gofer.Chan[Client], leaves: gofer.Chan[Client], messages: gofer.Chan[tuple[Client, bytes]]) -> None:
    clients: set[Client] = set()

    def broadcast(line: bytes, sender: Client | None) -> None:
        for c in clients:
            if c is not sender:
                c.outbox.try_send(line)  # a full outbox: that slow client misses it

    while True:
        i, value = gofer.select(joins.recv, leaves.recv, messages.recv)
        if i == 0:
            clients.add(value)
            broadcast(f"* {value.name} joined\n".encode(), value)
        elif i == 1:
            clients.discard(value)
            value.outbox.close()
            broadcast(f"* {value.name} left\n".encode(), value)
        else:
            sender, text = value
            broadcast(sender.name.encode() + b": " + text, sender)


def session(stream: net.Stream, joins: gofer.Chan[Client], leaves: gofer.Chan[Client], messages: gofer.Chan[tuple[Client, bytes]]) -> None:
    with stream:
        stream.write_all(b"name?\n")
        name = stream.readline().strip().decode(errors="replace") or "anonymous"
        client = Client(name, stream)
        writer = gofer.go(client.writer)
        joins.send(client)  # a rendezvous: the broker has the client now
        client.outbox.send(f"* welcome, {name}\n".encode())
        try:
            for line in stream:
                if not line.endswith(b"\n"):
                    line += b"\n"
                messages.send((client, line))
        finally:
            leaves.send(client)
            writer.join()


def main(addr: str) -> None:
    joins: gofer.Chan[Client] = gofer.Chan()
    leaves: gofer.Chan[Client] = gofer.Chan()
    messages: gofer.Chan[tuple[Client, bytes]] = gofer.Chan(256)
    gofer.go(broker, joins, leaves, messages)
    listener = net.listen(addr)
    host, port = listener.address[:2]
    print(f"chat on {host}:{port}", flush=True)
    for stream in listener:
        gofer.go(session, stream, joins, leaves, messages)


if __name__ == "__main__":
    gofer.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000")
