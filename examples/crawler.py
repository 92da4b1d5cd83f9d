"""A crawler with bounded concurrency, using gofer's HTTP client.

    python examples/crawler.py https://example.org/ --max-pages 50 --concurrency 8

A fixed number of worker coroutines take URLs from a channel and share one
``gofer.http.Client`` (keep-alive connections, pooled per host); links on
the same site are queued once each, up to ``--max-pages``.
"""

from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import urldefrag, urljoin, urlsplit

import gofer
from gofer import http

LINK = re.compile(rb"""href\s*=\s*["']([^"'#]+)""", re.I)


def crawl(start: str, max_pages: int, concurrency: int, timeout: float) -> dict[str, int]:
    site = urlsplit(start).netloc
    seen = {start}
    results: dict[str, int] = {}
    todo: gofer.Chan[str] = gofer.Chan(max_pages)
    todo.send(start)
    pending = gofer.WaitGroup()
    pending.add(1)

    with http.Client(timeout=timeout, max_connections=concurrency) as client:

        def worker() -> None:
            for url in todo:
                try:
                    resp = client.get(url)
                    results[url] = resp.status
                    if "html" in (resp.headers.get("content-type") or ""):
                        for m in LINK.finditer(resp.body):
                            link = urldefrag(urljoin(url, m.group(1).decode("latin-1")))[0]
                            if urlsplit(link).netloc == site and link not in seen and len(seen) < max_pages:
                                seen.add(link)
                                pending.add(1)
                                todo.send(link)
                except (OSError, http.ProtocolError, TimeoutError) as exc:
                    results[url] = -1
                    print(f"  {url}: {exc}", file=sys.stderr)
                finally:
                    pending.done()

        with gofer.scope() as s:
            for _ in range(concurrency):
                s.go(worker)
            pending.wait()
            todo.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--max-pages", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    results = gofer.run(crawl, args.url, args.max_pages, args.concurrency, args.timeout)
    for url, status in sorted(results.items()):
        print(status, url)


if __name__ == "__main__":
    main()
