"""Tabular, real-subset and surrogate estimators; the cell encoding."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import nasbench_data

from rachel.core.errors import ArtifactError, MissingMetricsError
from rachel.core.nasbench import estimators as est
from rachel.core.nasbench.cell import Cell

D = nasbench_data
SMALL_XGB = {"n_estimators": 150, "max_depth": 5, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def bench():
    return D.shared_bench()


@pytest.fixture(scope="module")
def unknown_hash(bench):
    return bench.hashes[np.flatnonzero(np.isnan(bench.val_mean))[0]].decode()


def test_interface(bench):
    for e in (est.TabularEstimator(bench), est.RealSubsetEstimator(bench)):
        assert isinstance(e, est.PerformanceEstimator) and e.name


def test_tabular_mean_of_runs_nan_and_errors(bench, unknown_hash):
    tab = est.TabularEstimator(bench)
    assert tab.accuracy(D.INCEPTION_HASH) == pytest.approx(
        np.mean([0.93760, 0.93780, 0.93369]), abs=1e-5
    )
    hashes = np.array([[D.INCEPTION_HASH, unknown_hash], ["zz" * 16, D.INCEPTION_HASH]])
    acc = tab.accuracy_array(hashes)
    assert acc.shape == (2, 2) and acc.dtype == np.float64
    assert np.isnan(acc[0, 1]) and np.isnan(acc[1, 0]) and acc[0, 0] == acc[1, 1]
    with pytest.raises(MissingMetricsError, match="no known metrics"):
        tab.accuracy(unknown_hash)
    with pytest.raises(MissingMetricsError, match="not in the table"):
        tab.accuracy("f" * 32)
    test = est.TabularEstimator(bench, metric="test")
    assert test.accuracy(D.INCEPTION_HASH) == pytest.approx(0.93086, abs=1e-4)
    assert int(np.sum(~np.isnan(test.accuracy_array(bench.hashes[:50_000])))) <= 1


def test_real_subset(bench, unknown_hash):
    sub = est.RealSubsetEstimator(bench)
    assert len(sub) == 20_268
    drawn = sub.sample(np.random.default_rng(0), 500)
    assert np.isfinite(sub.accuracy_array(drawn)).all()
    assert D.INCEPTION_HASH in sub and unknown_hash not in sub
    assert np.array_equal(
        sub.sample(np.random.default_rng(0), 5), sub.sample(np.random.default_rng(0), 5)
    )


def test_one_encoding_for_the_agent_and_the_surrogate(bench):
    from rachel.core.nasbench.space import ENCODING_SIZE, NasBench101Space

    assert est.NUM_FEATURES == ENCODING_SIZE == 56
    space = NasBench101Space()
    nv = bench.table["num_vertices"].to_numpy()
    rows = np.array(
        [
            bench.row_of(D.INCEPTION_HASH),
            int(np.flatnonzero(nv == 3)[0]),
            int(np.flatnonzero(nv == 5)[0]),
        ]
    )
    x = est.encode_table_rows(bench, rows)
    for k, row in enumerate(rows):
        cell = Cell.from_table(bench.row(int(row))["adjacency"], bench.row(int(row))["operations"])
        np.testing.assert_array_equal(x[k], space.encode(cell))  # the environment's encoding
    t = bench.table.slice(0, 100)
    np.testing.assert_array_equal(
        est.encode_cells(
            t["adjacency"].to_pylist(), t["operations"].to_pylist(), t["num_vertices"].to_numpy()
        ),
        est.encode_table_rows(bench, np.arange(100)),
    )


def test_surrogate_beats_constant_on_held_out_cells(bench, tmp_path, unknown_hash):
    model, report = est.evaluate_surrogate(
        bench, max_cells=3000, seed=0, params=SMALL_XGB, n_jobs=1
    )
    assert report.n_test == 600 and report.n_train == 2400
    assert "80/20 random split" in report.split
    assert report.rmse < report.rmse_constant
    assert report.kendall_tau > 0.4 and report.spearman_rho > 0.5
    # predicts cells without metrics, NaN only for hashes not in the table
    acc = model.accuracy_array(np.array([unknown_hash, "0" * 32]))
    assert 0.0 < acc[0] < 1.0 and np.isnan(acc[1])
    assert model.accuracy(unknown_hash) == pytest.approx(acc[0])
    # save / load round trip, and a bad file
    model.save(tmp_path / "surrogate.json")
    loaded = est.SurrogateEstimator.load(tmp_path / "surrogate.json", bench)
    probe = bench.hashes[:2000].astype("U32")
    np.testing.assert_array_equal(loaded.accuracy_array(probe), model.accuracy_array(probe))
    np.testing.assert_allclose(
        model.accuracy_array(probe[::-1]), model.predict_rows(np.arange(2000)[::-1]), rtol=1e-6
    )  # small-request path == whole-table cache
    assert loaded.info["seed"] == 0 and loaded.fingerprint == model.fingerprint
    # bounded to the range of the training targets; top-of-ranking quality reported
    lo, hi = model.bounds
    assert lo < hi and [lo, hi] == model.info["bounds"]
    assert hi < 0.95 and model.predict_rows(np.arange(len(bench))).max() <= hi
    top = report.top_k["10"]
    assert top["oracle_best"] >= top["true_best_of_predicted_top"] > report.rmse_constant
    assert top["true_mean_of_predicted_top"] > np.nanmean(bench.val_mean)
    (tmp_path / "bad.json").write_text("{not a model")
    with pytest.raises(ArtifactError):
        est.SurrogateEstimator.load(tmp_path / "bad.json", bench)


def test_surrogate_is_seeded(bench):
    rows = np.flatnonzero(~np.isnan(bench.val_mean))[:800]
    params = {**SMALL_XGB, "n_estimators": 40}
    a = est.SurrogateEstimator.fit(bench, rows, seed=3, params=params, n_jobs=1)
    b = est.SurrogateEstimator.fit(bench, rows, seed=3, params=params, n_jobs=1)
    x = est.encode_table_rows(bench, np.arange(500))
    np.testing.assert_array_equal(a.predict_features(x), b.predict_features(x))


def test_surrogate_ensemble_disagreement_and_penalty(bench, tmp_path):
    rows = np.flatnonzero(~np.isnan(bench.val_mean))[:1500]
    params = {**SMALL_XGB, "n_estimators": 40}
    one = est.SurrogateEstimator.fit(bench, rows, seed=1, params=params, n_jobs=1)
    ens = est.SurrogateEstimator.fit(bench, rows, seed=1, params=params, n_jobs=1, n_models=3)
    x = est.encode_table_rows(bench, np.arange(3000))
    members = ens.member_predictions(x)
    assert members.shape == (3, 3000)
    np.testing.assert_allclose(members[0], one.predict_features(x))  # model 0 = seed 1
    std = ens.std_features(x)
    assert std.max() > 0 and np.all(one.std_features(x) == 0)
    pess = est.SurrogateEstimator(bench, ens.boosters, {**ens.info, "penalty": 2.0})
    np.testing.assert_allclose(
        pess.predict_features(x), np.clip(members.mean(0) - 2.0 * std, *ens.bounds)
    )
    assert pess.fingerprint != ens.fingerprint
    ens.save(tmp_path / "ens.json")
    loaded = est.SurrogateEstimator.load(tmp_path / "ens.json", bench)
    np.testing.assert_array_equal(loaded.member_predictions(x), members)
    _, report = est.evaluate_surrogate(
        bench, max_cells=1500, seed=0, params=params, n_jobs=1, n_models=2
    )
    assert report.n_models == 2 and report.disagreement["mean_std"] > 0
