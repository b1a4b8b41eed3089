"""The evaluation protocol of the paper (sections 3.2.3 and 4.1), for any searcher.

A searcher is anything that turns an initial cell into a *trace*: an object with
``queried`` (the accuracies it queried, in order), ``initial_accuracy`` and ``final_accuracy``
(:class:`TraceLike`; ``baselines.SearchTrace`` and the later RL agent both fit).  The harness:

1. :func:`draw_initial_sets` - K sets of M initial states (paper: 5 x 10,000), seeded;
2. :func:`run_protocol` - runs every searcher from every initial state.  A searcher may be
   several trained agents (the paper's 5 agents x 5 sets x 10,000 states): traces are then in
   (agent, set, state) order.  Episode ``i`` of set ``s`` gets
   ``np.random.default_rng([seed, s, i])`` for every searcher and agent (common random
   numbers), so searchers are compared on the same starts and the same random streams.  A
   searcher with a ``run_batch(states, set_index, seed)`` method (the RL agent, which steps a
   vector environment) runs a whole set at once and returns its traces in state order;
3. :func:`evaluate` - the paper's analyses:

   * improvement per episode (``final - initial``): histogram (range +-12.5 points, the
     outliers counted), median, central intervals (the 50 % interval is the 25th-75th
     percentile) and skew (``scipy.stats.skew``), plus initial-accuracy vs improvement
     (Fig. 7/8);
   * best accuracy found vs number of queries (Fig. 10 up to 300, Fig. 15 up to 1,000), mean
     with a bootstrap 95 % CI (``scipy.stats.bootstrap``, 5,000 resamples, seeded);
   * Table 1: #queries, mean +- std and 95 % CI at 50/100/150/300 queries.

Choices where the paper is not explicit (all documented in the report):

* **Query accounting.**  The paper counts one query per *episode* for random search, random walk
  and Ape-X (the episode's final architecture), and every neighbour evaluated for local search.
  Each searcher has an accounting mode: ``"queries"`` (every element of ``queried`` is a
  query) or ``"episode"`` (one query per episode, valued at ``final_accuracy``).  There is no
  default: :func:`evaluate` needs one entry per searcher (``baselines.ACCOUNTING`` holds the
  paper's for the baselines).
* **Decide and report.**  Searchers decide on ``queried`` (validation); the statistics are
  reported on the trace's report metric (``reported`` / ``initial_report`` / ``final_report``,
  the decide values where a trace has none): best-found at q is the report value of the query
  with the best *decide* value among the first q (ties: the later query), and improvements are
  ``final_report - initial_report``.  ``evaluate(metrics=...)`` names both in the summary.
* **Agents.**  With ``agents={name: A}`` a searcher's traces are A equal blocks (one per
  agent); runs are chained within a block, the pooled table is over all runs, and
  ``per_agent`` holds each agent's table.
* **Runs.**  A "search run" of Q queries is formed by chaining consecutive episodes (in the order
  given, i.e. initial-state order) until Q queries are reached; the query that completes the
  run ends it and the rest of that episode is dropped.  An incomplete last run is dropped when at
  least one complete run exists.  Best-so-far at q = max of the run's first q query values; the
  bootstrap resamples runs.  With fewer than q queries (only possible for an incomplete run) the
  last value is carried forward, as the paper's "data of the last preceding improvement".
* **Unknown accuracies** (NaN) never count as an improvement (``np.fmax``); episodes whose
  initial or final accuracy is NaN are left out of the improvement statistics and counted.
* **Bootstrap.** ``method="percentile"`` by default (BCa's jackknife is quadratic in the number
  of runs).  The CI of the curves is computed on a grid (every query up to 50, then every 10th,
  plus the table budgets) in one vectorised ``bootstrap`` call (the same resampled runs for
  every grid point) to bound the cost; the mean is given at every query.  Cost grows as
  resamples x runs x grid points: 50,000 episodes of ~30 queries take about 30 s here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rachel.core import storage
from rachel.core.errors import ConfigError

Accounting = Literal["queries", "episode"]


@runtime_checkable
class TraceLike(Protocol):
    """What the evaluation needs from one episode of a searcher."""

    queried: np.ndarray
    initial_accuracy: float
    final_accuracy: float


@dataclass(frozen=True)
class Trace:
    """A minimal :class:`TraceLike` (same fields as ``baselines.SearchTrace``)."""

    queried: np.ndarray
    initial_accuracy: float
    final_accuracy: float


@dataclass(frozen=True)
class ProtocolConfig:
    """Sizes and statistics of the protocol.  Defaults are small; :meth:`paper` is section 4.1."""

    k_sets: int = 2
    m_states: int = 100
    budgets: tuple[int, ...] = (50, 100, 150, 300)
    curve_lengths: tuple[int, ...] = (300, 1000)
    n_resamples: int = 5000
    confidence: float = 0.95
    intervals: tuple[float, ...] = (0.5, 0.95)
    hist_range: float = 0.125
    hist_bins: int = 50
    bootstrap_method: str = "percentile"
    seed: int = 0
    n_agents: int = 1

    @classmethod
    def paper(cls, **overrides: Any) -> ProtocolConfig:
        """5 agents x 5 sets x 10,000 initial states, 5,000 bootstrap resamples (section 4.1.1)."""
        return cls(**{"k_sets": 5, "m_states": 10_000, "n_agents": 5, **overrides})

    def validate(self) -> None:
        if self.k_sets < 1 or self.m_states < 1 or self.n_agents < 1:
            raise ConfigError(
                f"k_sets and m_states must be >= 1 (got {self.k_sets}, {self.m_states})",
                "use e.g. k_sets=5, m_states=10000",
            )
        if not self.budgets or min(self.budgets) < 1 or not self.curve_lengths:
            raise ConfigError(
                "budgets and curve_lengths must be positive query counts",
                "use e.g. budgets=(50, 100, 150, 300)",
            )
        if max(self.budgets) > max(self.curve_lengths):
            raise ConfigError(
                f"budget {max(self.budgets)} exceeds the longest curve {max(self.curve_lengths)}",
                "add a curve length at least as long as the largest budget",
            )
        if not 0 < self.confidence < 1 or any(not 0 < p < 1 for p in self.intervals):
            raise ConfigError("confidence and intervals must lie in (0, 1)", "use e.g. 0.95")
        if self.n_resamples < 100:
            raise ConfigError(
                f"n_resamples={self.n_resamples} is too few",
                "use at least 100 (the paper uses 5,000)",
            )


# --------------------------------------------------------------------------------------
# Running searchers
# --------------------------------------------------------------------------------------

Searcher = Callable[[Any, np.random.Generator], TraceLike]


def draw_initial_sets(
    sample: Callable[[np.random.Generator, int], Sequence[Any]], config: ProtocolConfig
) -> list[list[Any]]:
    """K sets of M initial states; set ``s`` uses ``default_rng([seed, s])``.

    ``sample(rng, m)`` returns m states (e.g. the paper's size-uniform random sampler of
    section 3.2.3, or ``RealSubsetEstimator.sample``).
    """
    config.validate()
    sets = []
    for s in range(config.k_sets):
        states = list(sample(np.random.default_rng([config.seed, s]), config.m_states))
        if len(states) != config.m_states:
            raise ConfigError(
                f"the sampler returned {len(states)} states, not {config.m_states}",
                "return exactly m states",
            )
        sets.append(states)
    return sets


def run_protocol(
    searchers: Mapping[str, Searcher | Sequence[Searcher]],
    initial_sets: Sequence[Sequence[Any]],
    seed: int = 0,
) -> dict[str, list[TraceLike]]:
    """Every searcher (every agent of it) from every initial state; traces in
    (agent, set, state) order.  See the module docstring for batch searchers."""
    out: dict[str, list[TraceLike]] = {}
    for name, searcher in searchers.items():
        agents: list[Any] = list(searcher) if isinstance(searcher, list | tuple) else [searcher]
        traces: list[TraceLike] = []
        for agent in agents:
            for s, states in enumerate(initial_sets):
                if hasattr(agent, "run_batch"):
                    got = list(agent.run_batch(list(states), s, seed))
                    if len(got) != len(states):
                        raise ConfigError(
                            f"{name}: run_batch returned {len(got)} traces for "
                            f"{len(states)} states",
                            "return one per state",
                        )
                    traces.extend(got)
                    continue
                for i, state in enumerate(states):
                    traces.append(agent(state, np.random.default_rng([seed, s, i])))
        out[name] = traces
    return out


def agents_of(searchers: Mapping[str, Searcher | Sequence[Searcher]]) -> dict[str, int]:
    """The number of agents of each searcher (for :func:`evaluate`'s ``agents``)."""
    return {k: len(v) if isinstance(v, list | tuple) else 1 for k, v in searchers.items()}


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------


def _report_of(trace: TraceLike, name: str, fallback: str) -> Any:
    value = getattr(trace, name, None)
    return getattr(trace, fallback) if value is None else value


def improvements(traces: Sequence[TraceLike]) -> tuple[np.ndarray, np.ndarray]:
    """``(initial, final - initial)`` per episode on the report metric (NaN where either
    accuracy is unknown)."""
    initial = np.array(
        [float(_report_of(t, "initial_report", "initial_accuracy")) for t in traces],
        dtype=np.float64,
    )
    final = np.array(
        [float(_report_of(t, "final_report", "final_accuracy")) for t in traces], dtype=np.float64
    )
    return initial, final - initial


def improvement_stats(delta: np.ndarray, config: ProtocolConfig) -> dict[str, Any]:
    """Median, central intervals, skew and the +-range histogram of per-episode improvements."""
    from scipy import stats

    known = delta[~np.isnan(delta)]
    out: dict[str, Any] = {"n": int(len(known)), "n_unknown": int(len(delta) - len(known))}
    if len(known) == 0:
        return out
    edges = np.linspace(-config.hist_range, config.hist_range, config.hist_bins + 1)
    counts, _ = np.histogram(known, bins=edges)
    out.update(
        median=float(np.median(known)),
        mean=float(np.mean(known)),
        std=float(np.std(known, ddof=1)) if len(known) > 1 else 0.0,
        skew=float(stats.skew(known)) if len(known) > 2 and np.ptp(known) > 0 else 0.0,
        intervals={
            f"{round(p * 100):d}%": [
                float(np.quantile(known, (1 - p) / 2)),
                float(np.quantile(known, (1 + p) / 2)),
            ]
            for p in config.intervals
        },
        fraction_improved=float(np.mean(known > 0)),
        fraction_unchanged=float(np.mean(known == 0)),
        fraction_worse=float(np.mean(known < 0)),
        histogram={
            "edges": edges.tolist(),
            "counts": counts.tolist(),
            "outside_range": int(np.sum((known < edges[0]) | (known > edges[-1]))),
        },
    )
    return out


def trace_queries(trace: TraceLike, mode: Accounting) -> tuple[np.ndarray, np.ndarray]:
    """The (decide, report) query values one episode contributes under an accounting mode."""
    if mode == "episode":
        return (
            np.array([float(trace.final_accuracy)], dtype=np.float64),
            np.array(
                [float(_report_of(trace, "final_report", "final_accuracy"))], dtype=np.float64
            ),
        )
    if mode == "queries":
        values = np.asarray(trace.queried, dtype=np.float64).reshape(-1)
        reported = getattr(trace, "reported", None)
        return values, (
            values if reported is None else np.asarray(reported, dtype=np.float64).reshape(-1)
        )
    raise ConfigError(f"unknown accounting mode {mode!r}", "use 'queries' or 'episode'")


def chain_runs(
    traces: Sequence[TraceLike], max_queries: int, mode: Accounting
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain episodes into runs of ``max_queries`` queries.

    Returns ``(values, reported, lengths)``: ``values`` and ``reported`` are
    ``(R, max_queries)`` decide / report query values (NaN past an incomplete run's end),
    ``lengths`` the number of real queries in each run.
    """
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    current: list[tuple[np.ndarray, np.ndarray]] = []
    filled = 0
    for trace in traces:
        values, reported = trace_queries(trace, mode)
        if len(values) == 0:
            continue
        n = max_queries - filled
        current.append((values[:n], reported[:n]))
        filled += len(values[:n])
        if filled == max_queries:
            runs.append(_join(current))
            current, filled = [], 0
    if filled and not runs:
        runs.append(_join(current))
    if not runs:
        empty = np.empty((0, max_queries))
        return empty, empty.copy(), np.empty(0, dtype=np.int64)
    lengths = np.array([len(r[0]) for r in runs], dtype=np.int64)
    out = np.full((2, len(runs), max_queries), np.nan, dtype=np.float64)
    for i, (v, r) in enumerate(runs):
        out[0, i, : len(v)] = v
        out[1, i, : len(r)] = r
    return out[0], out[1], lengths


def _join(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def reported_best(values: np.ndarray, reported: np.ndarray) -> np.ndarray:
    """At each query, the report value of the best decide value so far (ties: the later)."""
    best = best_so_far(values)
    pos = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    hit = np.where(values >= best, pos, 0)  # NaN compares False
    idx = np.maximum.accumulate(hit, axis=-1)
    out = np.take_along_axis(reported, idx, axis=-1)
    return np.where(np.isnan(best), np.nan, out)


def best_so_far(values: np.ndarray) -> np.ndarray:
    """Running maximum along the last axis, ignoring NaN (NaN until the first known value)."""
    return np.fmax.accumulate(np.asarray(values, dtype=np.float64), axis=-1)


def bootstrap_mean_ci(sample: np.ndarray, config: ProtocolConfig, seed: int) -> tuple[float, float]:
    """Bootstrap CI of the mean of ``sample`` (NaN dropped); degenerate samples give (x, x)."""
    from scipy import stats

    x = np.asarray(sample, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1 or np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=config.n_resamples,
        confidence_level=config.confidence,
        method=config.bootstrap_method,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ci_grid(length: int, budgets: Sequence[int]) -> np.ndarray:
    grid = set(range(1, min(50, length) + 1)) | set(range(50, length + 1, 10)) | {length}
    grid |= {b for b in budgets if b <= length}
    return np.array(sorted(grid), dtype=np.int64)


def query_curve(best: np.ndarray, config: ProtocolConfig, seed: int) -> dict[str, Any]:
    """Mean best-so-far at every query, and the bootstrap CI on a grid of query counts."""
    n_runs, length = best.shape
    with np.errstate(all="ignore"):
        mean = np.nanmean(best, axis=0) if n_runs else np.full(length, np.nan)
    grid = _ci_grid(length, config.budgets)
    sub = best[:, grid - 1]
    if n_runs > 1 and not np.isnan(sub).any():
        # one bootstrap over all grid columns at once (the same resampled runs for every q)
        from scipy import stats

        batch = max(1, int(2e7 // max(1, sub.size)))
        res = stats.bootstrap(
            (sub,),
            np.mean,
            axis=0,
            vectorized=True,
            batch=batch,
            n_resamples=config.n_resamples,
            confidence_level=config.confidence,
            method=config.bootstrap_method,
            rng=np.random.default_rng(seed),
        )
        lo = np.asarray(res.confidence_interval.low, dtype=np.float64)
        hi = np.asarray(res.confidence_interval.high, dtype=np.float64)
        const = np.ptp(sub, axis=0) == 0  # degenerate columns: the CI is the value itself
        lo[const], hi[const] = sub[0, const], sub[0, const]
        lo_list, hi_list = lo.tolist(), hi.tolist()
    else:
        lo_list, hi_list = [], []
        for q in grid:
            low, high = bootstrap_mean_ci(best[:, q - 1], config, seed + int(q))
            lo_list.append(low)
            hi_list.append(high)
    return {
        "n_runs": int(n_runs),
        "mean": mean.tolist(),
        "ci_queries": grid.tolist(),
        "ci_low": lo_list,
        "ci_high": hi_list,
    }


def budget_table(
    best: np.ndarray, lengths: np.ndarray, config: ProtocolConfig, seed: int
) -> list[dict[str, Any]]:
    """Table 1 rows: #queries made, mean, std and bootstrap CI of the best found at each budget."""
    rows = []
    for b in config.budgets:
        if b > best.shape[1]:
            continue
        col = best[:, b - 1]
        col = col[~np.isnan(col)]
        low, high = bootstrap_mean_ci(col, config, seed + b)
        rows.append(
            {
                "budget": int(b),
                "queries": int(min(b, int(lengths.max()))) if len(lengths) else 0,
                "n_runs": int(len(col)),
                "mean": float(np.mean(col)) if len(col) else math.nan,
                "std": float(np.std(col, ddof=1)) if len(col) > 1 else 0.0,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return rows


@dataclass
class EvaluationResult:
    """``summary`` is JSON-ready; ``raw`` keeps the per-episode arrays for the plots."""

    summary: dict[str, Any]
    raw: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def evaluate(
    traces: Mapping[str, Sequence[TraceLike]],
    config: ProtocolConfig | None = None,
    *,
    accounting: Mapping[str, Accounting],
    agents: Mapping[str, int] | None = None,
    metrics: Mapping[str, str] | None = None,
) -> EvaluationResult:
    """Run every analysis of the protocol on the traces of each searcher.

    ``accounting`` must name the mode of every searcher (no default; see the module
    docstring).  ``agents`` gives the number of agents per searcher (default 1); ``metrics``
    names the decide and report metrics in the summary.
    """
    config = config or ProtocolConfig()
    config.validate()
    if not traces:
        raise ConfigError("no searchers to evaluate", "pass {name: [trace, ...]}")
    missing = sorted(set(traces) - set(accounting))
    if missing:
        raise ConfigError(
            f"no query accounting for {missing}",
            "pass accounting={name: 'episode' | 'queries'} for every searcher "
            "(baselines.ACCOUNTING has the paper's)",
        )
    agents = dict(agents or {})
    names = dict(metrics or {})
    summary: dict[str, Any] = {
        "config": asdict(config),
        "metrics": {
            "decide": names.get("decide", "validation accuracy"),
            "report": names.get("report", "validation accuracy"),
        },
        "notes": {
            "accuracy_units": "fractions (0.9 = 90 %)",
            "runs": "episodes chained in order into runs of Q queries (within an agent); "
            "bootstrap over runs",
            "bootstrap": f"scipy.stats.bootstrap, {config.n_resamples} resamples, "
            f"method={config.bootstrap_method}, confidence {config.confidence}",
        },
        "searchers": {},
    }
    if "report_note" in names:
        summary["notes"]["report"] = names["report_note"]
    raw: dict[str, dict[str, np.ndarray]] = {}
    longest = min(x for x in config.curve_lengths if x >= max(config.budgets))
    for idx, (name, episode_traces) in enumerate(traces.items()):
        mode = accounting[name]
        if not episode_traces:
            raise ConfigError(f"searcher {name!r} has no traces", "run it before evaluating")
        n_agents = int(agents.get(name, 1))
        if n_agents < 1 or len(episode_traces) % n_agents:
            raise ConfigError(
                f"{name}: {len(episode_traces)} traces do not split into {n_agents} agents",
                "give every agent the same initial sets",
            )
        per = len(episode_traces) // n_agents
        blocks = [episode_traces[a * per : (a + 1) * per] for a in range(n_agents)]
        initial, delta = improvements(episode_traces)
        entry: dict[str, Any] = {
            "episodes": len(episode_traces),
            "agents": n_agents,
            "accounting": mode,
            "improvement": improvement_stats(delta, config),
            "curves": {},
        }
        raw[name] = {"initial": initial, "improvement": delta}
        seed = config.seed * 1_000_003 + idx * 10_007
        for length in sorted(set(config.curve_lengths)):
            chained = [chain_runs(b, length, mode) for b in blocks]
            best = np.concatenate([reported_best(v, r) for v, r, _ in chained])
            lengths = np.concatenate([n for _, _, n in chained])
            curve = query_curve(best, config, seed + length)
            curve["complete_runs"] = int(np.sum(lengths == length))
            entry["curves"][str(length)] = curve
            if length == longest:
                entry["table"] = budget_table(best, lengths, config, seed)
                if n_agents > 1:
                    entry["per_agent"] = [
                        budget_table(reported_best(v, r), n, config, seed + a)
                        for a, (v, r, n) in enumerate(chained)
                    ]
        summary["searchers"][name] = entry
    return EvaluationResult(summary, raw)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def markdown_report(summary: Mapping[str, Any]) -> str:
    """Table 1 (best found at each budget) and the improvement statistics, as Markdown."""
    config = summary["config"]
    budgets = config["budgets"]
    lines = [
        "# NAS-Bench evaluation",
        "",
        f"Best accuracy found after a given number of queries (mean ± std, "
        f"{round(100 * config['confidence'])}% bootstrap CI over runs).",
        "",
    ]
    if "metrics" in summary:
        lines[2:2] = [
            f"Decided on {summary['metrics']['decide']}; reported on "
            f"{summary['metrics']['report']}.",
            "",
        ]
    head = "| Algorithm | " + " | ".join(f"#Q | μ ± σ @{b} | CI @{b}" for b in budgets) + " |"
    lines += [head, "|" + "---|" * (1 + 3 * len(budgets))]
    for name, entry in summary["searchers"].items():
        cells = []
        by_budget = {row["budget"]: row for row in entry.get("table", [])}
        for b in budgets:
            row = by_budget.get(b)
            if row is None or row["n_runs"] == 0:
                cells.append("N/A | N/A | N/A")
                continue
            cells.append(
                f"{row['queries']} | {_pct(row['mean'])} ± {_pct(row['std'])} | "
                f"[{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Improvement over an episode (final − initial accuracy).", ""]
    names = [f"{round(100 * p)}%" for p in config["intervals"]]
    lines.append(
        "| Algorithm | episodes | median | " + " | ".join(names) + " | skew | improved | worse |"
    )
    lines.append("|" + "---|" * (6 + len(names)))
    for name, entry in summary["searchers"].items():
        st = entry["improvement"]
        if st["n"] == 0:
            lines.append(f"| {name} | 0 | n/a |" + " n/a |" * (len(names) + 3))
            continue
        ivals = " | ".join(
            f"[{_pct(st['intervals'][k][0])}, {_pct(st['intervals'][k][1])}]" for k in names
        )
        lines.append(
            f"| {name} | {st['n']} | {_pct(st['median'])} | {ivals} | "
            f"{st['skew']:.3f} | {_pct(st['fraction_improved'])} | "
            f"{_pct(st['fraction_worse'])} |"
        )
    lines += ["", "Notes: " + "; ".join(f"{k}: {v}" for k, v in summary["notes"].items()), ""]
    return "\n".join(lines)


def write_report(result: EvaluationResult, out_dir: str, *, plots: bool = True) -> dict[str, str]:
    """Write ``report.json``, ``report.md`` and the PNG plots under ``out_dir`` (local or gs://).

    Each file is written atomically.  Returns ``{artifact: uri}``.
    """
    written = {
        "json": storage.join(out_dir, "report.json"),
        "markdown": storage.join(out_dir, "report.md"),
    }
    storage.write_json(written["json"], result.summary)
    storage.write_bytes(written["markdown"], markdown_report(result.summary).encode("utf-8"))
    if plots:
        from rachel.core.nasbench import plots as _plots

        pngs = {
            "improvement_histograms": _plots.improvement_histograms(result.summary),
            "initial_vs_improvement": _plots.initial_vs_improvement(result.raw),
        }
        for length in sorted({int(x) for x in result.summary["config"]["curve_lengths"]}):
            pngs[f"queries_{length}"] = _plots.query_curves(result.summary, length)
        for key, png in pngs.items():
            written[key] = storage.join(out_dir, f"{key}.png")
            storage.write_bytes(written[key], png)
    return written
