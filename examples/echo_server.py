"""The naive echo server from May's README, written with gofer.

May (Rust)::

    let listener = TcpListener::bind("127.0.0.1:8000").unwrap();
    while let Ok((mut stream, _)) = listener.accept() {
        go!(move || {
            let mut buf = vec![0; 1024 * 16];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 { break; }
                stream.write_all(&buf[0..n]).unwrap();
            }
        });
    }

The same program in gofer reads line for line, with a coroutine per
connection and blocking-style calls that only park the coroutine:

    python examples/echo_server.py [host:port]     (default 127.0.0.1:8000)
"""

from __future__ import annotations

import sys

import gofer
from gofer import net


def handle(stream: net.Stream) -> None:
    with stream:
        while data := stream.read(16 * 1024):  # b"" when the client hangs up
            stream.write_all(data)


def main(addr: str) -> None:
    listener = net.listen(addr)
    host, port = listener.address[:2]
    print(f"listening on {host}:{port}", flush=True)
    for stream in listener:  # accept, forever
        gofer.go(handle, stream)


if __name__ == "__main__":
    gofer.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000")
