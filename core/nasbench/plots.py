"""PNG plots of the evaluation protocol (matplotlib, Agg backend, imported lazily).

Each function returns PNG bytes; :func:`rachel.core.nasbench.evaluation.write_report` writes
them atomically.  Accuracies are plotted in percent.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def improvement_histograms(summary: Mapping[str, Any]) -> bytes:
    """One histogram per searcher (Fig. 8): median (solid) and central intervals (dashed)."""
    plt = _pyplot()
    names = list(summary["searchers"])
    fig, axes = plt.subplots(
        len(names), 1, figsize=(7, 2.4 * len(names)), squeeze=False, sharex=True
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        st = summary["searchers"][name]["improvement"]
        ax.set_title(name, fontsize=10)
        if st["n"] == 0:
            ax.text(0.5, 0.5, "no known improvements", ha="center", transform=ax.transAxes)
            continue
        edges = 100 * np.asarray(st["histogram"]["edges"])
        counts = np.asarray(st["histogram"]["counts"], dtype=float) / st["n"]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", alpha=0.7)
        ax.axvline(
            100 * st["median"], color="black", lw=1.5, label=f"median {100 * st['median']:+.2f}%"
        )
        styles = ["--", ":", "-."]
        for k, (label, (lo, hi)) in enumerate(st["intervals"].items()):
            ls = styles[k % len(styles)]
            ax.axvline(100 * lo, color="gray", ls=ls, lw=1, label=f"{label} interval")
            ax.axvline(100 * hi, color="gray", ls=ls, lw=1)
        ax.set_ylabel("fraction")
        ax.legend(fontsize=7, loc="upper left")
        ax.text(
            0.99,
            0.9,
            f"skew {st['skew']:.3f}\noutside: {st['histogram']['outside_range']}",
            ha="right",
            va="top",
            fontsize=7,
            transform=ax.transAxes,
        )
    axes[-1, 0].set_xlabel("improvement over the episode (accuracy points, %)")
    return _png(fig)


def initial_vs_improvement(
    raw: Mapping[str, Mapping[str, np.ndarray]], max_points: int = 20_000, seed: int = 0
) -> bytes:
    """Initial accuracy vs improvement (Fig. 7), subsampled to ``max_points`` per searcher."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    rng = np.random.default_rng(seed)
    for name, arrays in raw.items():
        x, y = np.asarray(arrays["initial"]), np.asarray(arrays["improvement"])
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        if len(x) > max_points:
            pick = rng.choice(len(x), size=max_points, replace=False)
            x, y = x[pick], y[pick]
        ax.scatter(100 * x, 100 * y, s=3, alpha=0.3, label=name)
    lim = ax.get_xlim()
    xs = np.linspace(float(lim[0]), float(lim[1]), 50)
    for final in (85, 90, 95, 100):
        ax.plot(xs, final - xs, ls="--", lw=0.8, color="black" if final < 100 else "red")
    ax.set_xlim(lim)
    ax.set_xlabel("initial accuracy (%)")
    ax.set_ylabel("improvement (accuracy points, %)")
    ax.legend(fontsize=8, markerscale=4)
    return _png(fig)


def query_curves(summary: Mapping[str, Any], length: int) -> bytes:
    """Mean best-found accuracy vs queries with the bootstrap CI band (Fig. 10 / 15)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, entry in summary["searchers"].items():
        curve = entry["curves"].get(str(length))
        if not curve or curve["n_runs"] == 0:
            continue
        mean = 100 * np.asarray(curve["mean"], dtype=float)
        label = f"{name} ({curve['n_runs']} runs)"
        (line,) = ax.plot(np.arange(1, len(mean) + 1), mean, label=label)
        q = np.asarray(curve["ci_queries"])
        ax.fill_between(
            q,
            100 * np.asarray(curve["ci_low"], dtype=float),
            100 * np.asarray(curve["ci_high"], dtype=float),
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_xlabel("number of queries")
    ax.set_ylabel("best accuracy found (%)")
    ax.set_xlim(1, length)
    ax.legend(fontsize=8)
    ax.set_title(f"best found vs queries (up to {length})")
    return _png(fig)
