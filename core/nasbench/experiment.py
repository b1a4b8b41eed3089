"""A NAS-Bench-101 evaluation, end to end: table -> cell index -> estimator -> search problem
-> the searchers through the evaluation protocol -> report.

This is what ``rachel nasbench evaluate`` runs (baselines, plus trained agents with
``--agent``), and what the NAS-Bench pipeline's evaluation step runs.  Everything is seeded
from ``seed``.  :func:`prepare_ground` is the one place that decides the training and
evaluation ground, so that training and evaluation cannot drift apart:

* ``auto`` (the default): ``tabular`` when every cell of the table has a validation accuracy,
  else ``surrogate`` (the shared table has metrics for 20,268 of 423,624 cells); the choice and
  its reason are in ``Ground.notes`` and in the report;
* ``surrogate``: every cell (the full graph), scored by the bounded XGBoost surrogate fit on the
  real cells;
* ``tabular``: every cell of the table; a cell without metrics is an error (use this with
  the full official table);
* ``real_subset``: only cells with real 108-epoch metrics (neighbours restricted to them; kept
  for comparison: on the shared table it is a degenerate graph, mean degree 1.47).

Report metric (``report_metric``): ``auto`` reports test accuracy when the table has it for
every cell the search can reach, else validation accuracy (the shared table has test accuracy
for one cell), and says so in the report's notes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rachel.core import storage
from rachel.core.errors import ConfigError
from rachel.core.nasbench import baselines
from rachel.core.nasbench import evaluation as ev
from rachel.core.nasbench.estimators import SurrogateEstimator
from rachel.core.nasbench.index import CellIndex, default_table_path, table_or_default
from rachel.core.nasbench.table import BenchTable

ESTIMATORS = ("auto", "surrogate", "tabular", "real_subset")
REPORT_METRICS = ("auto", "validation", "test")
SEARCHERS = ("random_search", "random_walk", "local_search")


@dataclass(frozen=True)
class ExperimentSettings:
    table: str | None = None  # None = the shared NAS-Bench-101 table
    estimator: str = "auto"
    searchers: tuple[str, ...] = SEARCHERS
    max_vertices: int = 7  # < 7 restricts the space (fast smoke runs)
    max_neighbours: int = 50
    report_metric: str = "auto"
    surrogate: str | None = None  # a saved surrogate (else fit one, seeded)
    surrogate_models: int = 1
    surrogate_penalty: float = 0.0
    surrogate_params: Mapping[str, Any] | None = None
    seed: int = 0

    def surrogate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of every surrogate fit made for these settings."""
        return {
            "seed": self.seed,
            "n_jobs": 1,
            "params": dict(self.surrogate_params or {}),
            "n_models": self.surrogate_models,
            "penalty": self.surrogate_penalty,
        }

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {self.estimator!r}", f"use one of {ESTIMATORS}")
        if self.report_metric not in REPORT_METRICS:
            raise ConfigError(
                f"unknown report metric {self.report_metric!r}", f"use one of {REPORT_METRICS}"
            )
        unknown = sorted(set(self.searchers) - set(SEARCHERS))
        if unknown:
            raise ConfigError(f"unknown searcher(s) {unknown}", f"choose from {SEARCHERS}")
        if not 2 <= self.max_vertices <= 7:
            raise ConfigError(f"max_vertices must be 2..7, got {self.max_vertices}")


@dataclass
class Ground:
    """The cells, the reward accuracy (decide) and the report accuracy, aligned with ids."""

    bench: BenchTable
    index: CellIndex
    accuracy: np.ndarray
    report: np.ndarray
    mode: str
    estimator: str
    vertex_range: tuple[int, int]
    surrogate: SurrogateEstimator | None = None
    notes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def problem(self, max_neighbours: int = 50) -> baselines.SearchProblem:
        return baselines.SearchProblem(
            self.index,
            self.accuracy,
            mode=self.mode,
            max_neighbours=max_neighbours,
            vertex_range=self.vertex_range,
            report=self.report,
        )

    def allowed(self) -> np.ndarray | None:
        return ~np.isnan(self.accuracy) if self.mode == "real_subset" else None

    def sample_ids(self, rng: np.random.Generator, m: int) -> np.ndarray:
        return self.index.sample_ids(rng, m, self.allowed(), self.vertex_range)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "estimator": self.estimator,
            "mode": self.mode,
            "cells": len(self.index),
            "notes": dict(self.notes),
            **self.timings,
        }
        if self.surrogate is not None:
            out["surrogate"] = {**self.surrogate.info, "fingerprint": self.surrogate.fingerprint}
        return out


def load_index(table: str, max_vertices: int) -> tuple[BenchTable, CellIndex]:
    bench = BenchTable.load(table)
    if max_vertices < 7:
        rows = np.flatnonzero(bench.table["num_vertices"].to_numpy() <= max_vertices)
        return bench, CellIndex.build(bench.table, rows=rows, workers=1)
    return bench, CellIndex.load_or_build(table)


def prepare_ground(settings: ExperimentSettings) -> Ground:
    """Load the table and index, choose the estimator (see the module docstring)."""
    settings.validate()
    t0 = time.perf_counter()
    table = str(table_or_default(settings.table or None))
    bench, index = load_index(table, settings.max_vertices)
    timings = {"load_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    rows = bench.rows_of(index.hashes)
    val = bench.val_mean[rows]
    test = bench.test_mean[rows]
    known = int(np.sum(~np.isnan(val)))
    notes: dict[str, str] = {}
    estimator = settings.estimator
    if estimator == "auto":
        estimator = "tabular" if known == len(index) else "surrogate"
        notes["estimator"] = (
            f"auto -> {estimator}: the table has a validation accuracy for {known:,} of "
            f"{len(index):,} cells"
            + (
                ""
                if estimator == "tabular"
                else "; the search runs on the full graph with the surrogate"
            )
        )
    surrogate = None
    if estimator == "surrogate":
        if settings.surrogate:
            surrogate = SurrogateEstimator.load(settings.surrogate, bench)
        else:
            surrogate = SurrogateEstimator.fit(bench, **settings.surrogate_kwargs())
        accuracy = surrogate.predict_features(index.encodings)
        mode = "tabular"
    else:
        accuracy = val
        mode = "real_subset" if estimator == "real_subset" else "tabular"
    reachable = ~np.isnan(accuracy)
    test_complete = bool(np.all(~np.isnan(test[reachable])))
    metric = settings.report_metric
    if metric == "auto":
        metric = "test" if test_complete else "validation"
        if not test_complete:
            notes["report"] = (
                f"reported on validation accuracy: the table has a test accuracy for "
                f"{int(np.sum(~np.isnan(test))):,} of {len(index):,} cells"
            )
    if metric == "test":
        if not test_complete:
            raise ConfigError(
                "report_metric='test' but the table lacks test accuracies for "
                "cells the search can reach",
                "use report_metric='validation'",
            )
        report = test
    else:
        report = accuracy
    timings["estimator_seconds"] = time.perf_counter() - t0
    notes.setdefault("report_metric", metric)
    return Ground(
        bench,
        index,
        accuracy,
        report,
        mode,
        estimator,
        (2, settings.max_vertices),
        surrogate,
        notes,
        timings,
    )


def baseline_searchers(
    ground: Ground, names: tuple[str, ...], max_neighbours: int = 50
) -> dict[str, Any]:
    problem = ground.problem(max_neighbours)
    available = {
        "random_search": lambda s, rng: baselines.random_search(problem, rng, initial_id=s),
        "random_walk": lambda s, rng: baselines.random_walk(problem, rng, initial_id=s),
        "local_search": lambda s, rng: baselines.local_search(problem, rng, initial_id=s),
    }
    return {k: available[k] for k in names}


def run_experiment(
    settings: ExperimentSettings,
    protocol: ev.ProtocolConfig,
    output: str,
    *,
    ground: Ground | None = None,
    agents: Mapping[str, Any] | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Run the baselines (and ``agents``: name -> searcher or list of agents, accounting
    ``"episode"``) through the protocol; write report.json/.md and plots to ``output``."""
    settings.validate()
    protocol.validate()
    ground = ground or prepare_ground(settings)
    protocol = ev.ProtocolConfig(**{**protocol.__dict__, "seed": settings.seed})
    sets = ev.draw_initial_sets(lambda rng, m: ground.sample_ids(rng, m).tolist(), protocol)
    searchers = dict(agents or {})
    searchers.update(baseline_searchers(ground, settings.searchers, settings.max_neighbours))
    if not searchers:
        raise ConfigError("no searcher to evaluate", "name baselines or pass an agent")
    accounting: dict[str, Literal["queries", "episode"]] = {
        k: baselines.ACCOUNTING.get(k, "episode") for k in searchers
    }
    t0 = time.perf_counter()
    traces = ev.run_protocol(searchers, sets, settings.seed)
    search_seconds = time.perf_counter() - t0
    report_name = (
        "NAS-Bench-101 test accuracy (108 epochs)"
        if ground.notes["report_metric"] == "test"
        else f"validation accuracy ({ground.estimator})"
    )
    result = ev.evaluate(
        traces,
        protocol,
        accounting=accounting,
        agents=ev.agents_of(searchers),
        metrics={
            "decide": f"validation accuracy ({ground.estimator})",
            "report": report_name,
            **({"report_note": ground.notes["report"]} if "report" in ground.notes else {}),
        },
    )
    result.summary["notes"].update({f"ground_{k}": v for k, v in ground.notes.items()})
    result.summary["experiment"] = {
        **{k: v for k, v in settings.__dict__.items() if k != "surrogate_params"},
        "searchers": list(searchers),
        "table": settings.table or str(default_table_path()),
        **ground.describe(),
        "search_seconds": search_seconds,
    }
    files = ev.write_report(result, output, plots=plots)
    storage.write_json(storage.join(output, "experiment.json"), result.summary["experiment"])
    return {"files": files, "summary": result.summary, **result.summary["experiment"]}
