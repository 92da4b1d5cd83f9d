"""``Stream``: a buffered byte stream over a connected gofer socket.

Reads are buffered (``readline`` and ``read_exactly`` need look-ahead), writes
are not: ``write`` is one ``send`` and ``write_all`` is ``sendall``, so there
is nothing to flush and nothing is lost on close. The same class serves TCP,
Unix-domain and TLS connections: it only needs ``recv``, ``sendall``,
``send``, ``shutdown`` and ``close`` from the socket underneath.
"""

from __future__ import annotations

import socket as _stdsocket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

__all__ = ["IncompleteReadError", "LimitOverrunError", "Stream"]

_CHUNK = 65536


class IncompleteReadError(EOFError):
    """The peer closed the stream before ``expected`` bytes were read.

    ``partial`` holds what was read (as in asyncio).
    """

    def __init__(self, partial: bytes, expected: int | None) -> None:
        what = "until the separator" if expected is None else f"{expected} bytes"
        super().__init__(f"the stream ended after {len(partial)} bytes, before {what}")
        self.partial = partial
        self.expected = expected


class LimitOverrunError(ValueError):
    """A line (or a run up to a separator) is longer than the limit.

    The data stays in the buffer; ``consumed`` is how much was looked at.
    """

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message)
        self.consumed = consumed


class Stream:
    """A connected byte stream: buffered reads, direct writes.

    ``read(n)`` returns up to ``n`` bytes as soon as any are there (``b""``
    at end of stream; ``n < 0`` reads to the end), ``read_exactly(n)`` exactly
    ``n`` bytes, ``readline()`` one line. ``write(data)`` sends what fits
    and returns the count, ``write_all(data)`` sends everything. Iterating
    yields lines. The stream owns its socket: ``close()`` closes it.
    ``timeout`` (seconds or None) bounds every blocking call, as on a socket.
    """

    __slots__ = ("_buf", "_eof", "_pos", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._buf = b""
        self._pos = 0
        self._eof = False

    # -- reading -----------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, waiting only if none are buffered; ``b""`` at EOF."""
        if n < 0:
            return self._read_all()
        if self._pos < len(self._buf):
            return self._take(n)
        if n == 0 or self._eof:
            return b""
        data: bytes = self.sock.recv(max(n, 1))
        if not data:
            self._eof = True
        return data

    def _take(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        end = min(len(buf), pos + n)
        self._pos = end
        if pos == 0 and end == len(buf):
            self._buf = b""
            self._pos = 0
            return buf
        return buf[pos:end]

    def _fill(self) -> bool:
        """Append one receive to the buffer; False at EOF."""
        if self._eof:
            return False
        data = self.sock.recv(_CHUNK)
        if not data:
            self._eof = True
            return False
        if self._pos:
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        else:
            self._buf = self._buf + data if self._buf else data
        return True

    def _read_all(self) -> bytes:
        parts = [self._buf[self._pos :]]
        self._buf, self._pos = b"", 0
        while not self._eof:
            data = self.sock.recv(_CHUNK)
            if not data:
                self._eof = True
                break
            parts.append(data)
        return b"".join(parts)

    def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; :class:`IncompleteReadError` if the stream ends first."""
        if n < 0:
            raise ValueError(f"read_exactly needs n >= 0, not {n}")
        while len(self._buf) - self._pos < n:
            if not self._fill():
                partial = self._buf[self._pos :]
                self._buf, self._pos = b"", 0
                raise IncompleteReadError(partial, n)
        return self._take(n)

    def readuntil(self, separator: bytes = b"\n", limit: int = _CHUNK) -> bytes:
        """Bytes up to and including ``separator``.

        :class:`IncompleteReadError` if the stream ends first (the rest is in
        ``partial``); :class:`LimitOverrunError` if ``limit`` bytes pass
        without a separator (the data stays buffered).
        """
        if not separator:
            raise ValueError("the separator must not be empty")
        start = 0
        while True:
            i = self._buf.find(separator, self._pos + start)
            if i >= 0:
                end = i + len(separator)
                if end - self._pos > limit:
                    raise LimitOverrunError("separator found, but the chunk is longer than the limit", end - self._pos)
                return self._take(end - self._pos)
            have = len(self._buf) - self._pos
            if have > limit:
                raise LimitOverrunError("no separator within the limit", have)
            start = max(0, have - len(separator) + 1)
            if not self._fill():
                partial = self._buf[self._pos :]
                self._buf, self._pos = b"", 0
                raise IncompleteReadError(partial, None)

    def readline(self, limit: int = _CHUNK) -> bytes:
        """One line including ``b"\\n"``; at EOF the unterminated rest (or ``b""``).

        Raises ``ValueError`` (:class:`LimitOverrunError`) for a line longer
        than ``limit``.
        """
        try:
            return self.readuntil(b"\n", limit)
        except IncompleteReadError as exc:
            return exc.partial

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet returned."""
        return len(self._buf) - self._pos

    # -- writing -----------------------------------------------------------------
    def write(self, data: Any) -> int:
        """Send what fits now (waiting for room if none); return the byte count."""
        return self.sock.send(data)  # type: ignore[no-any-return]

    def write_all(self, data: Any) -> None:
        """Send all of ``data`` (waiting for room as needed)."""
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """Half-close: the peer reads EOF, this side can still read."""
        self.sock.shutdown(_stdsocket.SHUT_WR)

    # -- the rest --------------------------------------------------------------
    @property
    def timeout(self) -> float | None:
        return self.sock.gettimeout()  # type: ignore[no-any-return]

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    @property
    def peer(self) -> Any:
        """The remote address."""
        return self.sock.getpeername()

    @property
    def local(self) -> Any:
        """The local address."""
        return self.sock.getsockname()

    @property
    def closed(self) -> bool:
        return bool(self.sock.fileno() < 0)

    def close(self) -> None:
        """Close the stream and its socket (idempotent)."""
        self.sock.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gofer.net.Stream {self.sock!r} buffered={self.buffered}>"
