"""Chunked request bodies (RFC 9112 §7.1), decoded here rather than by llhttp.

llhttp refuses the whitespace RFC 9112 §7.1.1 allows around a chunk
extension's ``;`` and ``=`` (``5 ; a=b``), so the server decodes chunked
framing itself and gives llhttp only the end of the message: ``0\\r\\n``
followed by the trailer section, which llhttp checks as strictly as header
fields and which ends the request there (``on_message_complete``).

The grammar is applied exactly: a chunk size is 1 to 16 hex digits,
extensions are ``BWS ; BWS name [BWS = BWS (token / quoted-string)]``,
every line ends with CRLF (a bare LF or CR is refused), chunk data is
followed by CRLF. Lines, the trailer section and the framing overhead are
bounded, so a client cannot make the server buffer or spin without limit.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gofer.http._wire import HTTPError

if TYPE_CHECKING:
    from gofer.http._parse import RequestParsing
    from gofer.http._request import Request

__all__ = ["DATA", "DATA_END", "SIZE", "TRAILER", "dechunk"]

SIZE, DATA, DATA_END, TRAILER = 0, 1, 2, 3
MAX_LINE = 4096  # a chunk-size line with its extensions
_SLACK = 65536  # framing overhead allowed beyond max_body_size + max_header_size

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_SIZE_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*)\r\n"
)


def _bad(message: str) -> HTTPError:
    return HTTPError(400, message, close=True)


def dechunk(p: RequestParsing, req: Request, buf: bytearray, pos: int, n: int) -> int:
    """Decode ``buf[pos:n]`` as (part of) ``req``'s chunked body; return where it stopped.

    It stops at ``n`` or at the end of the body (the request is then complete).
    """
    start = pos
    lim = p.limits
    mx = lim.max_body_size
    while pos < n:
        state = p.ck_state
        if state == DATA:
            end = pos + p.ck_left
            if end > n:
                end = n
            p.on_body(bytes(buf[pos:end]))  # the receive buffer is reused: copy
            p.ck_left -= end - pos
            pos = end
            if not p.ck_left:
                p.ck_state = DATA_END
            continue
        i = buf.find(b"\n", pos, n)
        if i < 0:
            p.ck_line += buf[pos:n]
            limit = lim.max_header_size if state == TRAILER else MAX_LINE
            if len(p.ck_line) + len(p.ck_trailer) > limit:
                raise HTTPError(431, close=True) if state == TRAILER else _bad("a chunk-size line is too long")
            pos = n
            break
        if p.ck_line:
            line = bytes(p.ck_line) + bytes(buf[pos : i + 1])
            p.ck_line = b""
        else:
            line = bytes(buf[pos : i + 1])
        pos = i + 1
        if line[-2:-1] != b"\r" or b"\r" in line[:-2]:
            raise _bad("a bare LF or CR in chunked framing")
        if state == DATA_END:
            if line != b"\r\n":
                raise _bad("chunk data must be followed by CRLF")
            p.ck_state = SIZE
        elif state == SIZE:
            if len(line) > MAX_LINE:
                raise _bad("a chunk-size line is too long")
            m = _SIZE_LINE.fullmatch(line)
            if m is None:
                raise _bad("invalid chunk-size line")
            size = int(m.group(1), 16)
            if not size:
                p.ck_state = TRAILER
            elif mx is not None and req.received + size > mx:
                raise HTTPError(413, close=True)
            else:
                p.ck_left = size
                p.ck_state = DATA
        else:  # the trailer section, ended by an empty line
            p.ck_trailer += line
            if line == b"\r\n":
                trailer, p.ck_trailer = p.ck_trailer, b""
                p.ck_state = SIZE
                req.wire += pos - start
                p.parser.feed_data(b"0\r\n" + trailer)  # llhttp checks the fields and ends the message
                return pos
            if len(p.ck_trailer) > lim.max_header_size:
                raise HTTPError(431, close=True)
    req.wire += pos - start
    if mx is not None and req.wire > mx + lim.max_header_size + _SLACK:
        raise HTTPError(413, close=True)
    return pos
