"""Metrics: ``gofer.metrics()`` and a Prometheus collector.

Per hub: live coroutines, ready-queue length, switches (ready items run)
in all and per second since the previous call, loop lag (how long a probe
made ready waits before it runs: p50, p99 and max over the last samples,
measured by the monitor thread, which the first call starts), registered
fds, pending timers and thread-pool jobs. Per HTTP server: open connections,
requests in progress, requests, responses by status class, bytes in and
out. Everything is read from counters the kernel and the server keep
anyway; nothing here runs on a hot path.

:class:`Collector` exposes the same figures to ``prometheus_client`` (it is
a collector in that library's sense: register it with a registry and let
the library do the text format). ``prometheus_client`` is optional and
imported only when a collector is made.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from gofer import _instrument, _monitor
from gofer._core import os_lock, pool_jobs_in_flight

__all__ = ["Collector", "metrics"]

_last: weakref.WeakKeyDictionary[Any, tuple[float, int]] = weakref.WeakKeyDictionary()
_lock = os_lock()  # a real lock, even when gofer.patch() came first


def _percentile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return 0.0
    i = min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))
    return sorted_xs[i]


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


def hub_metrics(hub: Any, names: dict[int | None, str] | None = None) -> dict[str, Any]:
    """The figures of one hub (see :func:`metrics`)."""
    now = time.monotonic()
    switches = hub.switches
    with _lock:
        prev = _last.get(hub)
        _last[hub] = (now, switches)
    rate = 0.0
    if prev is not None and now > prev[0]:
        rate = (switches - prev[1]) / (now - prev[0])
    lag = sorted(_monitor.the_monitor().lag_samples(hub))
    poller = hub.poller
    fds: Any = getattr(poller, "_fds", None)
    if fds is None:
        fds = getattr(poller, "_live", ())
    names = names if names is not None else _thread_names()
    return {
        "thread": hub.thread_ident,
        "thread_name": names.get(hub.thread_ident, str(hub.thread_ident)),
        "poller": poller.name,
        "coroutines": len(hub.workers) - len(hub.idle_workers),
        "ready": len(hub.ready),
        "switches": switches,
        "switches_per_second": rate,
        "loop_lag": {
            "p50": _percentile(lag, 0.5),
            "p99": _percentile(lag, 0.99),
            "max": lag[-1] if lag else 0.0,
            "samples": len(lag),
        },
        "fds": len(fds),
        "io_waiters": poller.nwaiters,
        "timers": max(0, len(hub._timers) - hub._cancelled_timers),
        "thread_jobs": hub.pending_jobs,
    }


def server_metrics(server: Any) -> dict[str, Any]:
    """The figures of one ``gofer.http.Server`` (see :func:`metrics`)."""
    st = server.stats
    names = ["unknown", "1xx", "2xx", "3xx", "4xx", "5xx"]
    addrs = [_sockname(lsock) for lsock, _ in list(getattr(server, "_listeners", []))]
    return {
        "listening": addrs,
        "interface": getattr(server, "interface", ""),
        "open_connections": len(server.conns),
        "connections": st.connections,
        "requests_in_progress": st.in_progress,
        "requests": st.requests,
        "responses": dict(zip(names, st.responses, strict=True)),
        "bytes_in": st.bytes_in,
        "bytes_out": st.bytes_out,
    }


def _sockname(sock: Any) -> str:
    try:
        addr = sock.getsockname()
    except OSError:
        return "closed"
    if isinstance(addr, tuple):
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"{host}:{addr[1]}"
    return f"unix:{addr}"


def metrics() -> dict[str, Any]:
    """Counters of every live hub and HTTP server of this process.

    Returns ``{"hubs": [...], "servers": [...], "thread_pool_jobs": n}``; each
    hub is a dict with ``thread``, ``thread_name``, ``poller``,
    ``coroutines``, ``ready``, ``switches``, ``switches_per_second`` (since
    the previous call), ``loop_lag`` (``p50``, ``p99``, ``max`` in seconds and
    the number of ``samples``), ``fds``, ``io_waiters``, ``timers`` and
    ``thread_jobs``; each server has ``open_connections``, ``connections``,
    ``requests_in_progress``, ``requests``, ``responses`` (by status class),
    ``bytes_in`` and ``bytes_out``. The first call starts the monitor
    thread's loop-lag probes (one tiny call per hub every 50 ms), so lag
    figures appear from the next call on. Safe from any thread.
    """
    _monitor.enable_lag()
    names = _thread_names()
    hubs = [hub_metrics(h, names) for h in list(_instrument.hubs) if not h.closed]
    servers = [server_metrics(s) for s in list(_instrument.servers) if hasattr(s, "stats") and not s.closed]
    return {"hubs": hubs, "servers": servers, "thread_pool_jobs": pool_jobs_in_flight()}


class Collector:
    """A ``prometheus_client`` collector of :func:`metrics`.

    ``prometheus_client.REGISTRY.register(gofer.debug.Collector())``, then
    serve the registry as usual (``prometheus_client.generate_latest``,
    ``start_http_server``, or ``/debug/metrics`` of ``gofer.debug``).
    """

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        m = metrics()
        hub_labels = ["thread"]
        gauges = {
            "coroutines": ("gofer_coroutines", "Live coroutines"),
            "ready": ("gofer_ready_queue_length", "Items ready to run"),
            "fds": ("gofer_registered_fds", "File descriptors registered with the poller"),
            "io_waiters": ("gofer_io_waiters", "Coroutines parked on I/O"),
            "timers": ("gofer_pending_timers", "Pending timers"),
            "thread_jobs": ("gofer_thread_jobs", "Thread-pool jobs started from the hub and not done"),
            "switches_per_second": ("gofer_switches_per_second", "Switches per second since the last scrape"),
        }
        fams = {k: GaugeMetricFamily(n, h, labels=hub_labels) for k, (n, h) in gauges.items()}
        switches = CounterMetricFamily("gofer_switches", "Ready items run", labels=hub_labels)
        lag = GaugeMetricFamily("gofer_loop_lag_seconds", "Loop lag (a probe's wait before it ran)", labels=[*hub_labels, "quantile"])
        for h in m["hubs"]:
            label = [h["thread_name"]]
            for k, fam in fams.items():
                fam.add_metric(label, float(h[k]))
            switches.add_metric(label, float(h["switches"]))
            for q in ("p50", "p99", "max"):
                lag.add_metric([*label, q], h["loop_lag"][q])
        yield from fams.values()
        yield switches
        yield lag
        srv = ["server"]
        open_c = GaugeMetricFamily("gofer_http_open_connections", "Open HTTP connections", labels=srv)
        inprog = GaugeMetricFamily("gofer_http_requests_in_progress", "HTTP requests in the application", labels=srv)
        conns = CounterMetricFamily("gofer_http_connections", "HTTP connections accepted", labels=srv)
        reqs = CounterMetricFamily("gofer_http_requests", "HTTP requests", labels=srv)
        resp = CounterMetricFamily("gofer_http_responses", "HTTP responses by status class", labels=[*srv, "code"])
        bin_ = CounterMetricFamily("gofer_http_received_bytes", "Bytes received", labels=srv)
        bout = CounterMetricFamily("gofer_http_sent_bytes", "Bytes sent", labels=srv)
        for i, s in enumerate(m["servers"]):
            label = [",".join(s["listening"]) or f"server{i}"]
            open_c.add_metric(label, s["open_connections"])
            inprog.add_metric(label, s["requests_in_progress"])
            conns.add_metric(label, s["connections"])
            reqs.add_metric(label, s["requests"])
            for code, n in s["responses"].items():
                resp.add_metric([*label, code], n)
            bin_.add_metric(label, s["bytes_in"])
            bout.add_metric(label, s["bytes_out"])
        yield from (open_c, inprog, conns, reqs, resp, bin_, bout)
        pool = GaugeMetricFamily("gofer_thread_pool_jobs", "Thread-pool jobs in flight (all hubs)")
        pool.add_metric([], m["thread_pool_jobs"])
        yield pool


def prometheus_text() -> bytes:
    """:func:`metrics` in Prometheus' text format (needs ``prometheus_client``)."""
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector())
    return bytes(generate_latest(reg))
