"""Shared helpers for the tfrecord / table / api / estimator / evaluation tests.

Import it as ``from helpers import nasbench_data`` (``tests/`` is on pytest's pythonpath).
The real table is found as in ``conftest.py``: ``$RACHEL_NASBENCH101_TABLE``
or ``../shared/data/nasbench101/nasbench101_108.parquet`` next to the repository.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from rachel.core.nasbench.table import BenchTable
from rachel.core.nasbench.tfrecord import EvaluationData, ModelMetrics, NasBenchRecord

REPO = Path(__file__).resolve().parents[2]
INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
INCEPTION_MATRIX = [
    [0, 1, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
INCEPTION_OPS = [
    "input",
    "conv1x1-bn-relu",
    "conv3x3-bn-relu",
    "conv3x3-bn-relu",
    "conv3x3-bn-relu",
    "maxpool3x3",
    "output",
]


def table_path() -> Path:
    env = os.environ.get("RACHEL_NASBENCH101_TABLE")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data" / "nasbench101" / "nasbench101_108.parquet"


@lru_cache(maxsize=1)
def _bench(path: str) -> BenchTable:
    return BenchTable.load(path)


def shared_bench() -> BenchTable:
    """The shared table (loaded once per process); skips the test when it is absent."""
    path = table_path()
    if not path.exists():
        pytest.skip(f"NAS-Bench-101 table not found at {path}")
    return _bench(str(path))


def real_rows(bench: BenchTable, n: int, seed: int = 0) -> np.ndarray:
    """The Inception-like cell plus ``n - 1`` other random cells with real metrics."""
    known = np.flatnonzero(~np.isnan(bench.val_mean))
    inception = bench.row_of(INCEPTION_HASH)
    others = known[known != inception]
    pick = np.random.default_rng(seed).choice(others, size=n - 1, replace=False)
    return np.sort(np.concatenate([[inception], pick]))


def records_from_rows(bench: BenchTable, rows: np.ndarray) -> list[NasBenchRecord]:
    """Official-format records (one per known 108-epoch run) built from REAL table rows.

    Only the values the table really has are set: final validation / test accuracy and
    training time; evaluation_data[0]/[1] carry only their epoch (0 / 54).
    """
    records = []
    for row in np.asarray(rows):
        r = bench.row(int(row))
        if not r["val_accuracy"]:
            continue  # no real run: the official file has no record to give
        n = r["num_vertices"]
        adj = (np.frombuffer(r["adjacency"].encode(), dtype=np.uint8).reshape(7, 7) - ord("0"))[
            :n, :n
        ].astype(np.int8)
        runs = zip(r["val_accuracy"], r["test_accuracy"], r["training_time"], strict=True)
        for val, test, ttime in runs:
            metrics = ModelMetrics(
                evaluation_data=(
                    EvaluationData(current_epoch=0.0),
                    EvaluationData(current_epoch=54.0),
                    EvaluationData(
                        current_epoch=108.0,
                        training_time=ttime,
                        validation_accuracy=val,
                        test_accuracy=test,
                    ),
                ),
                trainable_parameters=r["trainable_parameters"],
            )
            records.append(
                NasBenchRecord(r["module_hash"], 108, adj, tuple(r["operations"]), metrics)
            )
    return records


@contextlib.contextmanager
def gcs_bucket(monkeypatch: pytest.MonkeyPatch, name: str = "nasbench-test") -> Iterator[str]:
    """A bucket on an in-memory GCS emulator (skips when the emulator is not installed)."""
    pytest.importorskip("gcp_storage_emulator")
    from gcp_storage_emulator.server import create_server

    from rachel.core import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        storage.reset_client()
        storage._gcs_client().create_bucket(name)
        yield f"gs://{name}"
    finally:
        storage.reset_client()
        server.stop()
