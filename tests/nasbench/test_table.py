"""Parquet table: schema validation, bad files, tfrecord -> parquet conversion."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import nasbench_data

from rachel.core.errors import NasBenchError
from rachel.core.nasbench import table as tb
from rachel.core.nasbench import tfrecord as tfr

D = nasbench_data


@pytest.fixture(scope="module")
def bench():
    return D.shared_bench()


@pytest.fixture(scope="module")
def sample(bench):
    """A small real sub-table (Inception-like cell + 30 real cells + 10 without metrics)."""
    rows = D.real_rows(bench, 31)
    unknown = np.flatnonzero(np.isnan(bench.val_mean))[:10]
    return bench.table.take(pa.array(np.sort(np.concatenate([rows, unknown]))))


def test_shared_table_loads_and_is_consistent(bench):
    assert len(bench) == 423_624
    assert int(np.sum(~np.isnan(bench.val_mean))) == 20_268
    assert int(np.sum(~np.isnan(bench.test_mean))) == 1
    row = bench.row_of(D.INCEPTION_HASH)
    assert bench.val_mean[row] == pytest.approx(0.9364, abs=1e-4)
    assert bench.rows_of(np.array([D.INCEPTION_HASH, "not-a-hash"])).tolist() == [row, -1]


def test_missing_column_and_wrong_type(tmp_path, sample):
    path = tmp_path / "missing.parquet"
    pq.write_table(sample.drop_columns(["val_accuracy"]), path)
    with pytest.raises(NasBenchError, match="column 'val_accuracy' is missing"):
        tb.load_table(path)
    bad = sample.set_column(
        sample.schema.get_field_index("trainable_parameters"),
        "trainable_parameters",
        sample["trainable_parameters"].cast(pa.float64()),
    )
    pq.write_table(bad, tmp_path / "type.parquet")
    with pytest.raises(NasBenchError, match="trainable_parameters' has type double"):
        tb.load_table(tmp_path / "type.parquet")


def test_truncated_and_not_parquet(tmp_path, sample):
    good = tmp_path / "good.parquet"
    tb.write_table(sample, good)
    assert tb.load_table(good).num_rows == sample.num_rows
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(NasBenchError, match="not a readable Parquet file.*fix:"):
        tb.load_table(tmp_path / "cut.parquet")
    (tmp_path / "text.parquet").write_text("module_hash,adjacency\n")
    with pytest.raises(NasBenchError, match="not a readable Parquet file"):
        tb.load_table(tmp_path / "text.parquet")
    with pytest.raises(NasBenchError, match="cannot be read"):
        tb.load_table(tmp_path / "absent.parquet")


def test_unsorted_table_is_rejected(sample):
    reversed_table = sample.take(pa.array(np.arange(sample.num_rows)[::-1]))
    with pytest.raises(NasBenchError, match="not strictly increasing"):
        tb.BenchTable(reversed_table)


def test_conversion_round_trip(tmp_path, bench, sample):
    hashes = sample["module_hash"].to_pylist()
    rows = bench.rows_of(np.array(hashes))
    records = D.records_from_rows(bench, rows)
    rng = np.random.default_rng(1)
    records = [records[i] for i in rng.permutation(len(records))]  # file order is arbitrary
    tfr.write_records(tmp_path / "in.tfrecord", records)
    summary = tb.convert_tfrecord_to_parquet(tmp_path / "in.tfrecord", tmp_path / "out.parquet")
    known = sample.filter(pa.compute.is_valid(sample["val_accuracy"]))
    n_runs = sum(len(v) for v in known["val_accuracy"].to_pylist())
    assert summary.records == len(records) == n_runs >= 33  # Inception has 3 runs
    assert summary.cells == summary.cells_with_108_runs == known.num_rows
    out = tb.load_table(tmp_path / "out.parquet")
    assert set(tb.EXTRA_RUN_COLUMNS) <= set(out.column_names)
    assert out.num_rows == known.num_rows
    for name in [
        "module_hash",
        "num_vertices",
        "num_edges",
        "adjacency",
        "operations",
        "trainable_parameters",
    ]:
        assert out[name].to_pylist() == known[name].to_pylist(), name

    def runs(t):  # per cell, the set of (val, test, time) runs: run alignment must survive
        cols = [t[c].to_pylist() for c in ("val_accuracy", "test_accuracy", "training_time")]
        cells = zip(*cols, strict=True)
        return [sorted(zip(*cell, strict=True), key=lambda r: r[0]) for cell in cells]

    assert runs(out) == runs(known)
    assert out["run_source"].to_pylist()[0][0] == tb.TFRECORD_SOURCE
    assert all(v is None for v in out["val_accuracy_epoch36"].to_pylist())
    assert all(set(v) == {None} for v in out["train_accuracy"].to_pylist())
    tb.BenchTable(out)  # sorted, valid


def test_conversion_of_full_format_epochs(tmp_path, bench):
    row = bench.row_of(D.INCEPTION_HASH)
    base = D.records_from_rows(bench, [row])[0]
    short = []
    for epochs, acc in [(4, 0.11), (12, 0.52), (36, 0.84), (36, 0.85)]:
        final = tfr.EvaluationData(current_epoch=float(epochs), validation_accuracy=acc)
        short.append(
            tfr.NasBenchRecord(
                base.module_hash,
                epochs,
                base.adjacency,
                base.operations,
                tfr.ModelMetrics(
                    (tfr.EvaluationData(0.0), tfr.EvaluationData(epochs / 2), final),
                    base.metrics.trainable_parameters,
                ),
            )
        )
    other = next(
        r
        for r in D.records_from_rows(bench, D.real_rows(bench, 2, seed=5))
        if r.module_hash != D.INCEPTION_HASH
    )
    only_short = tfr.NasBenchRecord(
        other.module_hash, 12, other.adjacency, other.operations, short[1].metrics
    )
    table = tb.records_to_table(short + [base, only_short]).to_pydict()
    at = table["module_hash"].index(base.module_hash)
    assert table["module_hash"] == sorted([base.module_hash, other.module_hash])
    assert table["val_accuracy_epoch4"][at] == 0.11
    assert table["val_accuracy_epoch36"][at] == 0.84  # first run kept
    assert len(table["val_accuracy"][at]) == 1
    assert table["val_accuracy"][1 - at] is None and table["run_source"][1 - at] is None
    assert table["val_accuracy_epoch12"][1 - at] == 0.52
    assert table["val_accuracy_epoch4"][1 - at] is None


def test_corrupt_conversion_writes_nothing(tmp_path, bench):
    records = D.records_from_rows(bench, D.real_rows(bench, 4))
    path = tmp_path / "in.tfrecord"
    tfr.write_records(path, records)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(NasBenchError, match="truncated"):
        tb.convert_tfrecord_to_parquet(path, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_gcs_round_trip(monkeypatch, bench, sample):
    from rachel.core import storage
    from rachel.core.nasbench import evaluation as ev

    with D.gcs_bucket(monkeypatch) as bucket:
        tb.write_table(sample, f"{bucket}/nb/sample.parquet")
        assert tb.load_table(f"{bucket}/nb/sample.parquet").num_rows == sample.num_rows
        records = D.records_from_rows(bench, D.real_rows(bench, 3))
        tfr.write_records(f"{bucket}/nb/in.tfrecord", records)
        summary = tb.convert_tfrecord_to_parquet(
            f"{bucket}/nb/in.tfrecord", f"{bucket}/nb/out.parquet"
        )
        assert summary.cells == 3
        assert tb.load_table(f"{bucket}/nb/out.parquet").num_rows == 3
        with pytest.raises(NasBenchError, match="cannot be read"):
            tb.load_table(f"{bucket}/nb/absent.parquet")
        traces = [ev.Trace(np.array([0.9, 0.91]), 0.9, 0.91)] * 4
        result = ev.evaluate(
            {"x": traces},
            ev.ProtocolConfig(budgets=(2,), curve_lengths=(2,), n_resamples=100),
            accounting={"x": "queries"},
        )
        written = ev.write_report(result, f"{bucket}/report", plots=False)
        assert storage.read_json(written["json"])["searchers"]["x"]["episodes"] == 4
