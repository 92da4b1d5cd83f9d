"""Bar charts of the benchmark results: ``python -m bench --plot FILE.png``.

One panel per suite: a horizontal bar per system for the suite's headline
metric (the median of its rounds), gofer's bars in their own colour, each
bar labelled with its value and its ratio to gofer. The figures come from
the same report the runner writes as JSON, so a saved file can be drawn
again later with ``python -m bench --from FILE.json --plot FILE.png``.
matplotlib is needed only here (``pip install matplotlib``).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["plot_report"]

_GOFER = "#1f77b4"
_PEER = "#b0b0b0"


def _rows(res: dict[str, Any]) -> list[tuple[str, float]]:
    metric = res["metric"]
    rows = [(name, vals[metric]) for name, vals in res.get("medians", {}).items() if isinstance(vals.get(metric), int | float)]
    # Best first: lowest when lower is better.
    rows.sort(key=lambda r: r[1], reverse=not res.get("lower_is_better", True))
    return rows


def plot_report(report: dict[str, Any], path: str) -> int:
    """Draw every suite of ``report`` (the runner's JSON) into ``path``; returns the panel count."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    suites = [s for s in report.get("suites", []) if _rows(s)]
    if not suites:
        raise ValueError("the report has no figures to plot")
    cols = 1 if len(suites) == 1 else 2
    nrows = math.ceil(len(suites) / cols)
    heights = [0.35 * max(len(_rows(s)), 2) + 1.0 for s in suites]
    fig, axes = plt.subplots(
        nrows, cols, figsize=(7.5 * cols, sum(heights[::cols]) + 0.6), squeeze=False, constrained_layout=True
    )
    for ax in axes.flat[len(suites):]:
        ax.set_visible(False)
    for ax, res in zip(axes.flat, suites, strict=False):
        rows = _rows(res)
        names = [n for n, _ in rows][::-1]  # best at the top
        values = [v for _, v in rows][::-1]
        base = dict(rows).get("gofer")
        colours = [_GOFER if n.startswith("gofer") else _PEER for n in names]
        bars = ax.barh(names, values, color=colours)
        for bar, v in zip(bars, values, strict=True):
            label = f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
            if base:
                label += f"  ({v / base:.2f}x)"
            ax.annotate(label, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        better = "lower" if res.get("lower_is_better", True) else "higher"
        ax.set_title(f"{res['suite']}", fontsize=10, loc="left", fontweight="bold")
        ax.set_xlabel(f"{res.get('unit', res['metric'])} ({better} is better)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.25)
    meta = ", ".join(str(report[k]) for k in ("python", "machine") if report.get(k))
    fig.suptitle(f"gofer bench, medians ({meta})" if meta else "gofer bench, medians", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(suites)
