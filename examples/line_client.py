"""The client from Mirage's README: connect, print what arrives, stop at EOF.

Mirage (Rust, generators)::

    let mut sock = await!(TcpStream::connect(addr)).unwrap();
    let mut buf = [0; 1024];
    loop {
        let n = await!(sock.read(&mut buf)).unwrap();
        if n == 0 { return; }
        println!("{}", ::std::str::from_utf8(&buf[..n]).unwrap());
    }

In gofer there is nothing to await: the read parks the coroutine.

    python examples/line_client.py [host:port]     (default 127.0.0.1:3333)
"""

from __future__ import annotations

import sys

import gofer
from gofer import net


def start_client(addr: str) -> None:
    with net.connect(addr) as sock:
        while True:
            data = sock.read(1024)
            if not data:
                return
            print(data.decode(), flush=True)


if __name__ == "__main__":
    gofer.run(start_client, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:3333")
