"""The checks of RFC 9110/9112 on a request head that llhttp leaves to the server.

* **Version** (RFC 9112 §2.3): HTTP/1.0 and 1.1; a higher 1.x is answered
  as 1.1; anything else gets 505.
* **Host** (RFC 9112 §3.2, RFC 3986 §3.2.2): exactly one in HTTP/1.1, and
  its value must be ``uri-host [":" port]`` (``a b`` or ``x@evil``: 400).
* **Request target** (RFC 9112 §3.2): origin-form (``/p?q``); absolute-form
  (``http://a.example/x``), whose authority replaces the Host header for
  the application (§3.2.2); authority-form (``host:port``) only with
  ``CONNECT``; asterisk-form (``*``) only with ``OPTIONS``.
* **Transfer-Encoding** (RFC 9112 §6.1, §7): ``chunked`` once and last
  (llhttp checks the last); any other coding gets 501, since the server
  would hand the application a body still coded.
* **Trailers** (RFC 9110 §6.5.1): they count against the header-fields
  limit, and may not carry framing or routing fields.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gofer.http._chunked import SIZE
from gofer.http._wire import HTTPError

if TYPE_CHECKING:
    from gofer.http._parse import RequestParsing
    from gofer.http._request import Request

__all__ = ["check_head", "check_host", "check_trailers", "hosts_ok", "is_token"]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# uri-host [ ":" port ]: an IP-literal, or a reg-name / IPv4 address.
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=%-]+\]|(?:[0-9A-Za-z\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
_AUTHORITY_FORM = re.compile(rb"(?:\[[0-9A-Za-z:._~!$&'()*+,;=%-]+\]|[0-9A-Za-z\-._~!$&'()*+,;=%]+):[0-9]+")
_ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)")
_BAD_TRAILERS = frozenset((b"host", b"content-length", b"transfer-encoding"))

hosts_ok: set[bytes] = set()  # Host values already found valid (bounded)


def is_token(data: bytes) -> bool:
    """Whether ``data`` is an RFC 9110 token (a method, a field name)."""
    return _TOKEN.fullmatch(data) is not None


def check_host(value: bytes) -> None:
    """Refuse a Host value that is not ``uri-host [":" port]`` (400)."""
    if _HOST.fullmatch(value.strip(b" \t")) is None:
        raise HTTPError(400, "invalid Host header", close=True)
    if len(hosts_ok) < 1024 and len(value) < 256:
        hosts_ok.add(value)


def check_head(p: RequestParsing, req: Request, headers: list[tuple[bytes, bytes]], url: bytes) -> None:
    """Everything about a head that the common case's one test did not clear."""
    lim = p.limits
    hosts = p.host_count
    p.host_count = 0
    p.in_head = False
    if len(headers) > lim.max_header_count:
        raise HTTPError(431, close=True)
    if p.head_fed > lim.max_field_size:
        mf = lim.max_field_size
        for name, value in headers:
            if len(name) + len(value) > mf:
                raise HTTPError(431, "a header field is too large", close=True)
    if p.head_fed > lim.max_header_size:
        # The head may be that large (feed's fast path counts the whole read): measure it.
        size = len(url) + sum(len(n) + len(v) + 4 for n, v in headers)
        if size > lim.max_header_size:
            raise HTTPError(431, close=True)
    p.rare = False
    cl, p.x_cl = p.x_cl, -1
    te, p.x_te = p.x_te, False
    if p.x_expect:
        # RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation
        # received in an HTTP/1.0 request (HTTP/1.0 has no 1xx answers).
        req.expect_continue = req.version != "1.0"
        p.x_expect = False
    version = req.version
    if version != "1.1":
        major, _, minor = version.partition(".")
        if major == "1" and minor != "0":
            req.version = "1.1"  # a higher minor version: the highest we speak (RFC 9112 §2.3)
        elif version != "1.0":
            raise HTTPError(505, close=True)
        elif te:
            raise HTTPError(400, "Transfer-Encoding is not allowed in HTTP/1.0", close=True)
    if req.version == "1.1" and hosts != 1:
        raise HTTPError(400, "an HTTP/1.1 request needs exactly one Host header", close=True)
    if url[:1] != b"/":
        _check_target(req, url)
    if cl >= 0:
        req.content_length = cl
        mx = lim.max_body_size
        if mx is not None and cl > mx:
            raise HTTPError(413, close=True)
    elif te:
        if p.whole:
            p.realign()  # a chunked body is decoded by gofer.http._chunked: parse aligned
        _check_codings(headers)
        req.chunked = True
        p.ck_state = SIZE
        p.ck_line = p.ck_trailer = b""
    if p.upgraded:
        # No protocol switch: answer this one, then close.
        p.last = True
        req.keep_alive = False


def _check_target(req: Request, url: bytes) -> None:
    method = req.method
    if url == b"*":
        if method != "OPTIONS":
            raise HTTPError(400, "the asterisk-form target is only for OPTIONS", close=True)
        return
    if method == "CONNECT":
        if _AUTHORITY_FORM.fullmatch(url) is None:
            raise HTTPError(400, "CONNECT needs a host:port target", close=True)
        req.authority = url.decode("latin-1")
        return
    m = _ABSOLUTE.match(url)
    if m is None or m.group(1).lower() not in (b"http", b"https"):
        raise HTTPError(400, "invalid request target", close=True)
    authority = m.group(2)
    if not authority or authority[:1] == b":" or _HOST.fullmatch(authority) is None:
        raise HTTPError(400, "invalid authority in the request target", close=True)
    req.authority = authority.decode("latin-1")


def _check_codings(headers: list[tuple[bytes, bytes]]) -> None:
    codings: list[bytes] = []
    for name, value in headers:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
    codings = [c for c in codings if c]
    if codings.count(b"chunked") != 1:
        raise HTTPError(400, "chunked must be applied exactly once", close=True)
    if len(codings) > 1:
        raise HTTPError(501, "transfer codings other than chunked are not implemented", close=True)


def check_trailers(p: RequestParsing, req: Request, trailers: list[tuple[bytes, bytes]]) -> None:
    """Trailers count against the header-fields limit and may not carry framing or Host."""
    if len(trailers) + len(req.raw_headers) > p.limits.max_header_count:
        raise HTTPError(431, "too many header and trailer fields", close=True)
    for name, _ in trailers:
        if name.lower() in _BAD_TRAILERS:
            raise HTTPError(400, f"a trailer may not carry {name.decode('latin-1')}", close=True)
