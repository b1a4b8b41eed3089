"""Random search, random walk and local search on the small index."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rachel.core.errors import MissingMetricsError
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


def test_random_search_is_one_quasi_uniform_architecture(dense, small_index):
    start = 7
    t = random_search(dense, np.random.default_rng(0), initial_id=start)
    assert len(t.queried) == 1 and t.final_accuracy == t.queried[0]
    assert t.initial_accuracy == dense.acc[start]  # the episode's initial state, not a query
    # the sampler is the environment's quasi-uniform one: every size 2..5 about equally likely,
    # although uniform over ids would give 5-vertex cells 2,441 times in 2,532
    nv = small_index.num_vertices
    picks = [
        int(
            np.flatnonzero(
                dense.acc == random_search(dense, np.random.default_rng(i)).final_accuracy
            )[0]
        )
        for i in range(400)
    ]
    share = np.bincount(nv[picks], minlength=6)[2:] / 400
    assert share.min() > 0.15 and share.max() < 0.35, share
    assert np.bincount(nv, minlength=6)[5] / len(nv) > 0.9


def test_random_search_tabular_hits_missing(small_index, small_table_accuracy):
    problem = SearchProblem(small_index, small_table_accuracy, mode="tabular", **SMALL)
    with pytest.raises(MissingMetricsError):
        for i in range(200):
            random_search(
                problem,
                np.random.default_rng(i),
                initial_id=int(np.flatnonzero(~np.isnan(small_table_accuracy))[0]),
            )


def test_report_metric_travels_with_the_trace(small_index, small_dense_accuracy):
    report = small_dense_accuracy - 0.5
    problem = SearchProblem(small_index, small_dense_accuracy, report=report, **SMALL)
    t = random_walk(problem, np.random.default_rng(1), initial_id=3)
    np.testing.assert_allclose(t.reported, t.queried - 0.5)
    assert t.initial_report == pytest.approx(t.initial_accuracy - 0.5)
    assert t.final_report == pytest.approx(t.final_accuracy - 0.5)


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


def test_local_search_pays_every_neighbour_at_every_step(dense):
    # the paper's accounting: a neighbour inspected again at a later step is paid again
    paid = [len(local_search(dense, np.random.default_rng(i)).queried) for i in range(20)]
    distinct = [
        len(local_search(dense, np.random.default_rng(i), distinct=True).queried) for i in range(20)
    ]
    assert all(p >= d for p, d in zip(paid, distinct, strict=True))
    assert sum(paid) > sum(distinct)
