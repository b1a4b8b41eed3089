"""A baseline evaluation on NAS-Bench-101, end to end: table -> cell index -> estimator ->
search problem -> the baselines through the evaluation protocol -> report.

This is what ``rachel nasbench evaluate`` runs, and what a pipeline step for the search
agent will run with the agent added as one more searcher.  Everything is seeded from
``seed``; the estimator choice decides the environment mode:

* ``real_subset``: only cells with real 108-epoch metrics (neighbours restricted to them);
* ``surrogate``: every cell, scored by the XGBoost surrogate fit on the real cells;
* ``tabular``: every cell of the table; a cell without metrics is an error (use this with
  the full official table).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ConfigError
from rachel.core.nasbench import baselines
from rachel.core.nasbench import evaluation as ev
from rachel.core.nasbench.estimators import (
    RealSubsetEstimator,
    SurrogateEstimator,
    TabularEstimator,
)
from rachel.core.nasbench.index import CellIndex, default_table_path
from rachel.core.nasbench.table import BenchTable

ESTIMATORS = ("real_subset", "surrogate", "tabular")
SEARCHERS = ("random_search", "random_walk", "local_search")


@dataclass(frozen=True)
class ExperimentSettings:
    table: str | None = None  # None = the shared NAS-Bench-101 table
    estimator: str = "real_subset"
    searchers: tuple[str, ...] = SEARCHERS
    max_vertices: int = 7  # < 7 restricts the space (fast smoke runs)
    max_neighbours: int = 50
    random_search_budget: int = 300
    seed: int = 0

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {self.estimator!r}", f"use one of {ESTIMATORS}")
        unknown = sorted(set(self.searchers) - set(SEARCHERS))
        if unknown or not self.searchers:
            raise ConfigError(f"unknown searcher(s) {unknown}", f"choose from {SEARCHERS}")
        if not 2 <= self.max_vertices <= 7:
            raise ConfigError(f"max_vertices must be 2..7, got {self.max_vertices}")


def run_experiment(
    settings: ExperimentSettings, protocol: ev.ProtocolConfig, output: str
) -> dict[str, Any]:
    """Run the baselines through the protocol; write report.json/.md and plots to ``output``."""
    settings.validate()
    protocol.validate()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    table = settings.table or str(default_table_path())
    bench = BenchTable.load(table)
    if settings.max_vertices < 7:
        rows = np.flatnonzero(bench.table["num_vertices"].to_numpy() <= settings.max_vertices)
        index = CellIndex.build(bench.table, rows=rows, workers=1)
    else:
        index = CellIndex.load_or_build(table)
    timings["load_seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if settings.estimator == "surrogate":
        source: Any = SurrogateEstimator.fit(bench, seed=settings.seed, n_jobs=1)
        mode = "tabular"
        extra["surrogate"] = source.info
    elif settings.estimator == "real_subset":
        source, mode = RealSubsetEstimator(bench), "real_subset"
    else:
        source, mode = TabularEstimator(bench), "tabular"
    problem = baselines.SearchProblem(
        index,
        source,
        mode=mode,
        max_neighbours=settings.max_neighbours,
        vertex_range=(2, settings.max_vertices),
    )
    timings["estimator_seconds"] = time.perf_counter() - t0

    allowed = problem.core.known if mode == "real_subset" else None  # bool mask over ids
    cdf = index.sampler_cdf(allowed, (2, settings.max_vertices))
    protocol = ev.ProtocolConfig(**{**protocol.__dict__, "seed": settings.seed})
    sets = ev.draw_initial_sets(
        lambda rng, m: index.sample_ids(rng, m, allowed, (2, settings.max_vertices), cdf).tolist(),
        protocol,
    )
    budget = settings.random_search_budget
    available = {
        "random_search": lambda s, rng: baselines.random_search(problem, budget, rng),
        "random_walk": lambda s, rng: baselines.random_walk(problem, rng, initial_id=s),
        "local_search": lambda s, rng: baselines.local_search(problem, rng, initial_id=s),
    }
    t0 = time.perf_counter()
    traces = ev.run_protocol({k: available[k] for k in settings.searchers}, sets, settings.seed)
    timings["search_seconds"] = time.perf_counter() - t0
    result = ev.evaluate(traces, protocol, accounting={"random_walk": "episode"})
    result.summary["experiment"] = {
        **settings.__dict__,
        "searchers": list(settings.searchers),
        "table": table,
        "cells": len(index),
        "mode": mode,
        **timings,
        **extra,
    }
    files = ev.write_report(result, output)
    storage.write_json(storage.join(output, "experiment.json"), result.summary["experiment"])
    return {"files": files, **result.summary["experiment"]}
