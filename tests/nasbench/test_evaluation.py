"""Evaluation protocol: statistics, run chaining, budget table, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import nasbench_data
from scipy import stats

from rachel.core.errors import ConfigError
from rachel.core.nasbench import baselines
from rachel.core.nasbench import evaluation as ev

FAST = ev.ProtocolConfig(
    k_sets=2, m_states=20, budgets=(5, 10, 20), curve_lengths=(20, 40), n_resamples=500, seed=1
)


def constructed_traces(n: int, length: int, seed: int = 0) -> list[ev.Trace]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.uniform(0.80, 0.95, size=length)
        out.append(ev.Trace(q, float(q[0]), float(q.max())))
    return out


def Q(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "queries")


def test_bootstrap_ci_contains_the_mean():
    x = np.random.default_rng(0).normal(0.93, 0.01, size=400)
    low, high = ev.bootstrap_mean_ci(x, ev.ProtocolConfig(n_resamples=2000), seed=0)
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(len(x)), rel=0.2)
    assert ev.bootstrap_mean_ci(np.full(5, 0.9), FAST, 0) == (0.9, 0.9)


def test_table_equals_best_so_far_of_constructed_traces():
    traces = constructed_traces(12, 20)  # one trace = one complete run of 20 queries
    result = ev.evaluate({"searcher": traces}, FAST, accounting=Q("searcher"))
    entry = result.summary["searchers"]["searcher"]
    best = np.array([np.maximum.accumulate(t.queried) for t in traces])
    rows = {r["budget"]: r for r in entry["table"]}
    for b in FAST.budgets:
        assert rows[b]["queries"] == b and rows[b]["n_runs"] == 12
        assert rows[b]["mean"] == pytest.approx(best[:, b - 1].mean())
        assert rows[b]["std"] == pytest.approx(best[:, b - 1].std(ddof=1))
        assert rows[b]["ci_low"] <= rows[b]["mean"] <= rows[b]["ci_high"]
    assert entry["curves"]["20"]["mean"] == pytest.approx(best.mean(axis=0).tolist())
    # the 40-query curve chains two 20-query traces per run
    chained = np.array(
        [
            np.maximum.accumulate(np.concatenate([a.queried, b.queried]))
            for a, b in zip(traces[0::2], traces[1::2], strict=True)
        ]
    )
    assert entry["curves"]["40"]["mean"] == pytest.approx(chained.mean(axis=0).tolist())


def test_chaining_truncation_and_incomplete_runs():
    traces = [
        ev.Trace(np.array(v, dtype=float), v[0], max(v))
        for v in ([0.1, 0.5], [0.3, 0.2, 0.9, 0.4], [0.6])
    ]
    values, _, lengths = ev.chain_runs(traces, 3, "queries")
    # run 1 = 0.1, 0.5 | 0.3 (rest of trace 2 dropped); the incomplete [0.6] is dropped
    assert values.tolist() == [[0.1, 0.5, 0.3]] and lengths.tolist() == [3]
    values, _, lengths = ev.chain_runs(traces, 10, "queries")  # only an incomplete run: kept
    assert lengths.tolist() == [7]
    best = ev.best_so_far(values)
    assert best[0, 6] == best[0, 9] == 0.9  # carried forward past the last query
    values, _, _ = ev.chain_runs(traces, 3, "episode")  # one query per episode: final accuracy
    assert values.tolist() == [[0.5, 0.9, 0.6]]
    nan_first = ev.best_so_far(np.array([[np.nan, 0.2, np.nan, 0.1]]))
    assert np.isnan(nan_first[0, 0]) and nan_first[0, 1:].tolist() == [0.2, 0.2, 0.2]


def test_improvement_statistics():
    rng = np.random.default_rng(2)
    initial = rng.uniform(0.8, 0.9, size=500)
    final = initial + rng.gamma(2.0, 0.01, size=500) - 0.01
    traces = [ev.Trace(np.array([f]), i, f) for i, f in zip(initial, final, strict=True)]
    traces.append(ev.Trace(np.array([]), np.nan, 0.9))  # unknown initial accuracy
    summary = ev.evaluate({"s": traces}, FAST, accounting=Q("s")).summary
    st = summary["searchers"]["s"]["improvement"]
    delta = final - initial
    assert st["n"] == 500 and st["n_unknown"] == 1
    assert st["median"] == pytest.approx(np.median(delta))
    assert st["skew"] == pytest.approx(stats.skew(delta)) and st["skew"] > 0
    assert st["intervals"]["50%"] == pytest.approx(np.quantile(delta, [0.25, 0.75]).tolist())
    assert st["intervals"]["95%"] == pytest.approx(np.quantile(delta, [0.025, 0.975]).tolist())
    assert sum(st["histogram"]["counts"]) + st["histogram"]["outside_range"] == 500
    assert st["fraction_improved"] + st["fraction_worse"] + st["fraction_unchanged"] == 1.0


def test_protocol_runner_is_reproducible_and_uses_common_random_numbers():
    def sample(rng, m):
        return list(rng.uniform(0.8, 0.9, size=m))

    def searcher(state, rng):
        q = rng.uniform(0.85, 0.95, size=3)
        return ev.Trace(q, state, float(q.max()))

    sets = ev.draw_initial_sets(sample, FAST)
    assert len(sets) == 2 and all(len(s) == 20 for s in sets)
    assert sets == ev.draw_initial_sets(sample, FAST)
    out = ev.run_protocol({"a": searcher, "b": searcher}, sets, seed=4)
    assert len(out["a"]) == 40
    pairs = zip(out["a"], out["b"], strict=True)
    assert all(np.array_equal(x.queried, y.queried) for x, y in pairs)
    with pytest.raises(ConfigError, match="returned 3 states"):
        ev.draw_initial_sets(lambda rng, m: [0.1, 0.2, 0.3], FAST)


def test_baselines_search_trace_fits_the_harness():
    q = np.array([0.90, 0.92, 0.91, 0.93])
    trace = baselines.SearchTrace(q, 0.90, 0.93)
    assert isinstance(trace, ev.TraceLike)
    result = ev.evaluate(
        {"rs": [trace] * 10},
        ev.ProtocolConfig(budgets=(2, 4), curve_lengths=(4,), n_resamples=200),
        accounting=Q("rs"),
    )
    assert [r["mean"] for r in result.summary["searchers"]["rs"]["table"]] == pytest.approx(
        [0.92, 0.93]
    )


def test_report_files(tmp_path):
    traces = {
        "random": constructed_traces(30, 20, seed=1),
        "local": constructed_traces(10, 40, seed=2),
    }
    result = ev.evaluate(traces, FAST, accounting={"random": "episode", "local": "queries"})
    written = ev.write_report(result, str(tmp_path / "report"))
    assert set(written) == {
        "json",
        "markdown",
        "improvement_histograms",
        "initial_vs_improvement",
        "queries_20",
        "queries_40",
    }
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["searchers"]["random"]["accounting"] == "episode"
    assert summary["searchers"]["random"]["curves"]["20"]["n_runs"] == 1  # 30 episodes -> 1 run
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| local |" in md and "#Q" in md and "skew" in md
    for key in written:
        if key.startswith(("queries", "improvement", "initial")):
            assert (tmp_path / "report" / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]


def test_config_errors():
    with pytest.raises(ConfigError):
        ev.ProtocolConfig(budgets=(500,), curve_lengths=(300,)).validate()
    with pytest.raises(ConfigError):
        ev.ProtocolConfig(k_sets=0).validate()
    with pytest.raises(ConfigError, match="no searchers"):
        ev.evaluate({}, FAST, accounting={})
    with pytest.raises(ConfigError, match="accounting"):
        ev.evaluate({"x": constructed_traces(2, 5)}, FAST, accounting={"x": "steps"})
    with pytest.raises(ConfigError, match="no query accounting for"):  # no default
        ev.evaluate(
            {"x": constructed_traces(2, 5), "y": constructed_traces(2, 5)},
            FAST,
            accounting={"x": "queries"},
        )
    with pytest.raises(ConfigError, match="agents"):
        ev.evaluate({"x": constructed_traces(3, 5)}, FAST, accounting=Q("x"), agents={"x": 2})
    assert ev.ProtocolConfig.paper().k_sets == 5
    assert ev.ProtocolConfig.paper().m_states == 10_000
    assert ev.ProtocolConfig.paper().n_agents == 5


def test_paper_baselines_run_through_the_harness(tmp_path):
    """The other helper's baselines on the <=5-vertex cells, scored by our surrogate."""
    from rachel.core.nasbench.estimators import SurrogateEstimator
    from rachel.core.nasbench.index import CellIndex

    bench = nasbench_data.shared_bench()
    rows = np.flatnonzero(bench.table["num_vertices"].to_numpy() <= 5)
    index = CellIndex.build(bench.table, rows=rows, workers=1)
    known = np.flatnonzero(~np.isnan(bench.val_mean))[:3000]
    surrogate = SurrogateEstimator.fit(
        bench, known, seed=0, n_jobs=1, params={"n_estimators": 60, "max_depth": 4}
    )
    problem = baselines.SearchProblem(index, surrogate, mode="tabular", vertex_range=(2, 5))
    config = ev.ProtocolConfig(
        k_sets=2, m_states=15, budgets=(10, 50), curve_lengths=(50,), n_resamples=200
    )
    sets = ev.draw_initial_sets(lambda rng, m: rng.integers(0, len(index), size=m).tolist(), config)
    traces = ev.run_protocol(
        {
            "random_search": lambda s, rng: baselines.random_search(problem, rng, initial_id=s),
            "random_walk": lambda s, rng: baselines.random_walk(problem, rng, initial_id=s),
            "local_search": lambda s, rng: baselines.local_search(problem, rng, initial_id=s),
        },
        sets,
    )
    result = ev.evaluate(traces, config, accounting=baselines.ACCOUNTING)
    for entry in result.summary["searchers"].values():
        assert entry["episodes"] == 30
        assert entry["table"][0]["n_runs"] >= 1
    ls = result.summary["searchers"]["local_search"]["improvement"]
    assert ls["fraction_worse"] == 0.0  # hill climbing on the same estimator never worsens
    ev.write_report(result, str(tmp_path))
    assert (tmp_path / "report.md").read_text().count("| local_search |") == 2


def test_decide_on_one_metric_report_on_another():
    # the decide metric picks the cell; the table shows that cell's report value
    t = ev.Trace(np.array([0.90, 0.95, 0.92]), 0.90, 0.95)
    t_rep = type(
        "T",
        (),
        {
            "queried": t.queried,
            "initial_accuracy": 0.90,
            "final_accuracy": 0.95,
            "reported": np.array([0.80, 0.70, 0.99]),
            "initial_report": 0.80,
            "final_report": 0.70,
        },
    )()
    config = ev.ProtocolConfig(budgets=(1, 2, 3), curve_lengths=(3,), n_resamples=200)
    out = ev.evaluate(
        {"x": [t_rep] * 4}, config, accounting=Q("x"), metrics={"decide": "val", "report": "test"}
    ).summary
    assert [r["mean"] for r in out["searchers"]["x"]["table"]] == pytest.approx(
        [0.80, 0.70, 0.70]
    )  # not 0.99: the 0.92-validation cell never was the best
    assert out["searchers"]["x"]["improvement"]["median"] == pytest.approx(-0.10)
    assert out["metrics"] == {"decide": "val", "report": "test"}
    plain = ev.evaluate({"x": [t] * 4}, config, accounting=Q("x")).summary
    assert [r["mean"] for r in plain["searchers"]["x"]["table"]] == pytest.approx(
        [0.90, 0.95, 0.95]
    )


def test_agents_by_sets_axis_and_batch_searchers():
    class Batch:
        def __init__(self, shift: float) -> None:
            self.shift = shift

        def run_batch(self, states, set_index, seed):
            return [ev.Trace(np.array([s + self.shift]), s, s + self.shift) for s in states]

    sets = [[0.1, 0.2], [0.3, 0.4]]
    out = ev.run_protocol({"agent": [Batch(0.0), Batch(0.5)]}, sets)
    assert [t.final_accuracy for t in out["agent"]] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]
    )  # (agent, set, state) order
    config = ev.ProtocolConfig(budgets=(2,), curve_lengths=(2,), n_resamples=200)
    summary = ev.evaluate(
        out, config, accounting={"agent": "episode"}, agents=ev.agents_of({"agent": [1, 2]})
    ).summary["searchers"]["agent"]
    assert summary["agents"] == 2
    # runs never span two agents: agent 0's runs are (0.1, 0.2), (0.3, 0.4)
    assert [row[0]["mean"] for row in summary["per_agent"]] == pytest.approx([0.3, 0.8])
    assert summary["table"][0]["n_runs"] == 4
