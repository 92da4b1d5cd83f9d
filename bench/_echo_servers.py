"""The echo servers of the ``echo`` benchmark, one per system.

Run as ``python -m bench._echo_servers SYSTEM``: the server listens on
127.0.0.1 (a free port, printed on stdout) and echoes until it is killed.
Each one is written the way that system's documentation teaches, with the
same 64 KiB read size: gofer and gevent in blocking style
(``data = conn.recv(n); conn.sendall(data)``), asyncio and uvloop as streams
and as protocols, trio with its streams, and one OS thread per connection.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

READ = 65536
BACKLOG = 4096


def _listener() -> socket.socket:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(BACKLOG)
    return ls


def _ready(port: int) -> None:
    print(port, flush=True)


def gofer_server() -> None:
    import gofer
    from gofer import socket as gsocket

    def handle(conn: Any) -> None:
        with conn:
            try:
                while True:
                    data = conn.recv(READ)
                    if not data:
                        break
                    conn.sendall(data)
            except ConnectionError:
                pass  # the load generator quits by resetting its connections

    def main() -> None:
        ls = gsocket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        _ready(ls.getsockname()[1])
        while True:
            conn, _ = ls.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            gofer.go(handle, conn)

    gofer.run(main)


def gofer_serve_server() -> None:
    import gofer
    from gofer import net

    def handle(conn: Any) -> None:
        while True:
            data = conn.recv(READ)
            if not data:
                break
            conn.sendall(data)

    def main() -> None:
        srv = net.Server(("127.0.0.1", 0), handle, backlog=BACKLOG, raw=True)
        _ready(srv.address[1])
        srv.serve_forever()

    gofer.run(main)


def gevent_server() -> None:
    from gevent.server import StreamServer

    def handle(conn: Any, addr: Any) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = conn.recv(READ)
            if not data:
                break
            conn.sendall(data)

    # gevent's own listener: handed a blocking stdlib socket, StreamServer
    # may never accept (seen with gevent 26.9).
    srv = StreamServer(("127.0.0.1", 0), handle, backlog=BACKLOG)
    srv.start()
    _ready(srv.server_port)
    srv.serve_forever()


def _asyncio_streams(run: Any) -> None:
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(READ)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main() -> None:
        srv = await asyncio.start_server(handle, sock=_listener())
        _ready(srv.sockets[0].getsockname()[1])
        await srv.serve_forever()

    run(main())


def _asyncio_protocol(run: Any) -> None:
    import asyncio

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Echo, sock=_listener())
        _ready(srv.sockets[0].getsockname()[1])
        await srv.serve_forever()

    run(main())


def asyncio_streams_server() -> None:
    import asyncio

    _asyncio_streams(asyncio.run)


def asyncio_protocol_server() -> None:
    import asyncio

    _asyncio_protocol(asyncio.run)


def uvloop_streams_server() -> None:
    import uvloop

    _asyncio_streams(uvloop.run)


def uvloop_protocol_server() -> None:
    import uvloop

    _asyncio_protocol(uvloop.run)


def trio_server() -> None:
    import trio

    async def handle(stream: Any) -> None:
        while True:
            data = await stream.receive_some(READ)
            if not data:
                break
            await stream.send_all(data)

    async def main() -> None:
        ls = trio.socket.from_stdlib_socket(_listener())
        _ready(ls.getsockname()[1])
        await trio.serve_listeners(handle, [trio.SocketListener(ls)])

    trio.run(main)


def threads_server() -> None:
    import threading

    def handle(conn: socket.socket) -> None:
        with conn:
            while True:
                data = conn.recv(READ)
                if not data:
                    break
                conn.sendall(data)

    threading.stack_size(256 * 1024)
    ls = _listener()
    _ready(ls.getsockname()[1])
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


SERVERS = {
    "gofer": gofer_server,
    "gofer-serve": gofer_serve_server,
    "gevent": gevent_server,
    "asyncio-streams": asyncio_streams_server,
    "asyncio-protocol": asyncio_protocol_server,
    "uvloop-streams": uvloop_streams_server,
    "uvloop-protocol": uvloop_protocol_server,
    "trio": trio_server,
    "threads": threads_server,
}

if __name__ == "__main__":
    try:
        SERVERS[sys.argv[1]]()
    except ImportError as exc:
        print(f"skip: not installed ({exc.name or exc})", flush=True)
    except KeyboardInterrupt:
        pass
