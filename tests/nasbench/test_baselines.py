"""Random search, random walk and local search on the small index."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rachel.core.errors import ConfigError, MissingMetricsError
from rachel.core.nasbench.baselines import (
    SearchProblem,
    SearchTrace,
    local_search,
    random_search,
    random_walk,
)

SMALL = {"vertex_range": (2, 5)}


@pytest.fixture(scope="module")
def real(small_index, small_table_accuracy):
    return SearchProblem(small_index, small_table_accuracy, mode="real_subset", **SMALL)


@pytest.fixture(scope="module")
def dense(small_index, small_dense_accuracy):
    return SearchProblem(small_index, small_dense_accuracy, mode="tabular", **SMALL)


def test_search_trace_is_frozen():
    t = SearchTrace(np.array([0.1, 0.3, 0.2]), 0.1, 0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.final_accuracy = 1.0  # type: ignore[misc]
    assert t.improvement == pytest.approx(0.2)
    assert t.best_so_far().tolist() == [0.1, 0.3, 0.3]


def test_random_search_budget_and_distinct(real, small_table_accuracy):
    rng = np.random.default_rng(0)
    t = random_search(real, 40, rng)
    assert len(t.queried) == 40
    assert np.isfinite(t.queried).all()
    known = small_table_accuracy[~np.isnan(small_table_accuracy)]
    assert set(t.queried.tolist()) <= set(known.tolist())
    assert t.initial_accuracy == t.queried[0] and t.final_accuracy == t.queried.max()
    with pytest.raises(ConfigError):
        random_search(real, 0, rng)
    q = random_search(real, 40, rng, sampler="quasi")
    assert len(q.queried) == 40 and np.isfinite(q.queried).all()


def test_random_search_tabular_hits_missing(small_index, small_table_accuracy):
    with pytest.raises(MissingMetricsError):
        random_search(SearchProblem(small_index, small_table_accuracy, mode="tabular", **SMALL),
                      200, np.random.default_rng(1))


def test_random_walk_is_a_walk(dense):
    rng = np.random.default_rng(2)
    lengths = []
    for _ in range(30):
        t = random_walk(dense, rng, episode_length=32)
        assert 1 <= len(t.queried) <= 33
        assert t.initial_accuracy == t.queried[0]
        assert t.final_accuracy in t.queried.tolist()
        lengths.append(len(t.queried))
    assert max(lengths) > 1


def test_local_search_single_episode_monotone(dense, small_index, small_dense_accuracy):
    rng = np.random.default_rng(3)
    acc = small_dense_accuracy
    for strategy in ("best", "first"):
        for _ in range(10):
            t = local_search(dense, rng, strategy=strategy)
            assert t.final_accuracy >= t.initial_accuracy
            assert t.final_accuracy == t.queried.max()  # a hill climb ends at its best cell
    # the local optimum really is one: no shown neighbour (all of them, N=50) is better
    t = local_search(dense, np.random.default_rng(4))
    final = int(np.flatnonzero(acc == t.final_accuracy)[0])
    assert (acc[small_index.neighbours(final)] <= t.final_accuracy).all()


def test_local_search_best_pays_for_every_neighbour(dense, small_index):
    deg = small_index.degrees()
    start = int(np.argmax(deg))
    t = local_search(dense, np.random.default_rng(5), max_steps=1, initial_id=start)
    assert len(t.queried) == 1 + min(deg[start], 50)


def test_local_search_budget_with_restarts(real):
    rng = np.random.default_rng(6)
    t = local_search(real, rng, budget=120)
    assert len(t.queried) == 120
    assert t.final_accuracy == t.queried.max()
    rs = random_search(real, 120, np.random.default_rng(6))
    assert len(rs.queried) == 120
