"""A gentle close for a server connection: end our side, drain theirs a while.

Closing a socket with unread input sends RST, and the client may then lose
our response (a 413, say) before reading it. So the server ends its side
and reads and drops what comes for a short while (as nginx's lingering close
does), bounded in time and bytes.
"""

from __future__ import annotations

import socket
from typing import Any

from gofer._core import wait_readable

__all__ = ["LINGER_BYTES", "LINGER_SECONDS", "linger"]

LINGER_SECONDS = 2.0  # how long a closing connection keeps reading
LINGER_BYTES = 1 << 20


def linger(sock: socket.socket, st: Any, buf: Any) -> None:
    """Shut ``sock`` for writing, then read into ``buf`` and drop until EOF or a bound."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return
    hub_now = st.poller.hub.now  # the clock of this connection's hub
    deadline = hub_now() + LINGER_SECONDS
    dropped = 0
    while dropped < LINGER_BYTES:
        try:
            n = sock.recv_into(buf)
        except BlockingIOError:
            left = deadline - hub_now()
            if left <= 0:
                return
            try:
                wait_readable(st, left)
            except TimeoutError:
                return
            continue
        except OSError:
            return
        if n == 0:
            return
        dropped += n
