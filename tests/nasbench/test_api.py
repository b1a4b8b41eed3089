"""nasbench-compatible API on the shared table and on an official-format tfrecord."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import nasbench_data

from rachel.core.errors import MissingMetricsError, NasBenchError, OffSpaceError
from rachel.core.nasbench import tfrecord as tfr
from rachel.core.nasbench.api import NASBench, OutOfDomainError
from rachel.core.nasbench.cell import Cell, ModelSpec

D = nasbench_data
QUERY_KEYS = {
    "module_adjacency",
    "module_operations",
    "trainable_parameters",
    "training_time",
    "train_accuracy",
    "validation_accuracy",
    "test_accuracy",
}
COMPUTED_KEYS = {
    f"{when}_{what}"
    for when in ("halfway", "final")
    for what in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
}


@pytest.fixture(scope="module")
def bench():
    return D.shared_bench()


@pytest.fixture()
def nb(bench):
    return NASBench(bench, rng=0)


def inception_spec() -> ModelSpec:
    return ModelSpec(D.INCEPTION_MATRIX, D.INCEPTION_OPS)


def spec_of_row(bench, row: int) -> ModelSpec:
    r = bench.row(int(row))
    return Cell.from_table(r["adjacency"], r["operations"]).to_spec()


def test_query_shapes_and_keys(nb):
    data = nb.query(inception_spec())
    assert set(data) == QUERY_KEYS
    assert data["module_adjacency"].shape == (7, 7)
    assert data["module_adjacency"].dtype == np.int8
    assert len(data["module_operations"]) == 7
    assert data["trainable_parameters"] == 2694282
    assert min(abs(v - data["validation_accuracy"]) for v in (0.93760, 0.93780, 0.93369)) < 1e-5
    assert data["test_accuracy"] is not None and 0.92 < data["test_accuracy"] < 0.94
    assert data["train_accuracy"] is None  # not in the shared table: not invented


def test_query_samples_every_known_run_reproducibly(bench):
    a, b = NASBench(bench, rng=7), NASBench(bench, rng=7)
    seq_a = [a.query(inception_spec())["validation_accuracy"] for _ in range(30)]
    seq_b = [b.query(inception_spec())["validation_accuracy"] for _ in range(30)]
    assert seq_a == seq_b
    assert len(set(seq_a)) == 3


def test_single_run_cell_has_no_test_accuracy(nb, bench):
    row = int(D.real_rows(bench, 2, seed=3)[0])
    if bench.row(row)["module_hash"] == D.INCEPTION_HASH:
        row = int(D.real_rows(bench, 2, seed=3)[1])
    data = nb.query(spec_of_row(bench, row))
    assert data["validation_accuracy"] == pytest.approx(bench.val_mean[row])
    assert data["test_accuracy"] is None


def test_missing_metrics_raise_and_do_not_count(nb, bench):
    row = int(np.flatnonzero(np.isnan(bench.val_mean))[0])
    spec = spec_of_row(bench, row)
    assert nb.is_valid(spec)
    with pytest.raises(MissingMetricsError, match="no 108-epoch run"):
        nb.query(spec)
    assert nb.get_budget_counters() == (0.0, 0)
    fixed, computed = nb.get_metrics_from_spec(spec)
    assert fixed["trainable_parameters"] > 0 and computed == {}


def test_off_space_specs(nb):
    too_many_edges = np.triu(np.ones((7, 7), dtype=int), 1)
    ops = ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"]
    disconnected = np.zeros((3, 3), dtype=int)
    disconnected[0, 1] = 1
    bad_op = ModelSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])
    for spec, why in [
        (ModelSpec(too_many_edges, ops), "too many edges"),
        (ModelSpec(disconnected, ["input", "conv3x3-bn-relu", "output"]), "disconnected"),
        (bad_op, "unsupported op"),
    ]:
        assert not nb.is_valid(spec)
        with pytest.raises(OffSpaceError, match=why):
            nb.query(spec)
    with pytest.raises(OffSpaceError, match="epochs"):
        nb.query(inception_spec(), epochs=5)
    assert OutOfDomainError is OffSpaceError
    assert nb.get_budget_counters() == (0.0, 0)


def test_budget_counters(nb):
    first = nb.query(inception_spec())
    nb.query(inception_spec(), stop_halfway=True)  # halfway time unknown: not added
    time_spent, epochs = nb.get_budget_counters()
    assert time_spent == pytest.approx(first["training_time"])
    assert epochs == 108 + 54
    nb.reset_budget_counters()
    assert nb.get_budget_counters() == (0.0, 0)


def test_halfway_and_short_budgets_are_none_not_invented(nb, bench):
    half = nb.query(inception_spec(), stop_halfway=True)
    assert half["validation_accuracy"] is None and half["training_time"] is None
    row = int(
        np.flatnonzero(
            bench.table["val_accuracy_epoch36"].is_valid().to_numpy(zero_copy_only=False)
        )[0]
    )
    data = nb.query(spec_of_row(bench, row), epochs=36)
    assert data["validation_accuracy"] == bench.row(row)["val_accuracy_epoch36"]
    assert data["test_accuracy"] is None


def test_get_metrics_from_spec_is_officially_shaped(nb):
    fixed, computed = nb.get_metrics_from_spec(inception_spec())
    assert set(fixed) == {"module_adjacency", "module_operations", "trainable_parameters"}
    assert list(computed) == [108] and len(computed[108]) == 3
    assert all(set(run) == COMPUTED_KEYS for run in computed[108])
    assert sorted(r["final_validation_accuracy"] for r in computed[108]) == pytest.approx(
        [0.93369, 0.93760, 0.93780], abs=1e-5
    )
    computed[108].clear()  # a copy: the API's data is untouched
    assert len(nb.get_metrics_from_spec(inception_spec())[1][108]) == 3


def test_hash_iterator(nb):
    hashes = list(nb.hash_iterator())
    assert len(hashes) == 423_624 and hashes == sorted(hashes)
    assert D.INCEPTION_HASH in set(hashes)


def test_api_on_official_tfrecord(tmp_path, bench):
    rows = D.real_rows(bench, 6)
    records = D.records_from_rows(bench, rows)
    path = tmp_path / "nasbench_only108.tfrecord"
    tfr.write_records(path, records)
    nb = NASBench(str(path), seed=0)
    assert len(list(nb.hash_iterator())) == 6
    assert nb.valid_epochs == {108}
    for row in rows:
        fixed_t, computed_t = nb.get_metrics_from_spec(spec_of_row(bench, row))
        assert fixed_t["trainable_parameters"] == bench.row(int(row))["trainable_parameters"]
        vals = sorted(r["final_validation_accuracy"] for r in computed_t[108])
        assert vals == pytest.approx(sorted(bench.row(int(row))["val_accuracy"]))
    other = int(np.flatnonzero(np.isnan(bench.val_mean))[0])
    with pytest.raises(OffSpaceError, match="not in"):
        nb.query(spec_of_row(bench, other))


def test_unknown_file_type(tmp_path):
    with pytest.raises(NasBenchError, match="expected .tfrecord or .parquet"):
        NASBench(str(tmp_path / "bench.csv"))
