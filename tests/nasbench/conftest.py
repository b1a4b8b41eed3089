"""Fixtures for the NAS-Bench-101 cell / neighbour / index / environment tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers.nasbench_data import INCEPTION_HASH, INCEPTION_MATRIX, INCEPTION_OPS

REPO = Path(__file__).resolve().parents[2]


def table_path() -> Path:
    env = os.environ.get("RACHEL_NASBENCH101_TABLE")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data" / "nasbench101" / "nasbench101_108.parquet"


@pytest.fixture(scope="session")
def parquet_path() -> Path:
    path = table_path()
    if not path.exists():
        pytest.skip(f"NAS-Bench-101 table not found at {path}")
    return path


@pytest.fixture(scope="session")
def structure_rows(parquet_path: Path) -> dict[str, list]:
    """Structure columns of the whole table as Python lists (about 2 s)."""
    table = pq.read_table(
        parquet_path, columns=["module_hash", "adjacency", "operations", "num_vertices"]
    )
    return table.to_pydict()


@pytest.fixture(scope="session")
def val_accuracy_hashes(parquet_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, mean val accuracy or NaN) from the table, aligned with its rows."""
    table = pq.read_table(parquet_path, columns=["module_hash", "val_accuracy"]).to_pydict()
    acc = np.array([np.mean(v) if v else np.nan for v in table["val_accuracy"]], dtype=np.float64)
    return np.array(table["module_hash"]), acc


class TableAccuracy:
    """A tiny AccuracySource for tests: mean of the table's val_accuracy list, NaN when null."""

    def __init__(self, hashes: np.ndarray, acc: np.ndarray) -> None:
        self._lookup = dict(zip(hashes.tolist(), acc.tolist(), strict=True))

    def accuracy_array(self, hashes: np.ndarray) -> np.ndarray:
        return np.array([self._lookup.get(h, np.nan) for h in hashes.tolist()], dtype=np.float64)


@pytest.fixture(scope="session")
def table_accuracy(val_accuracy_hashes) -> TableAccuracy:
    return TableAccuracy(*val_accuracy_hashes)


@pytest.fixture()
def inception() -> tuple[list[list[int]], list[str], str]:
    """The official README's Inception-like cell and its known module hash."""
    return [list(r) for r in INCEPTION_MATRIX], list(INCEPTION_OPS), INCEPTION_HASH


@pytest.fixture()
def table_accuracy_cls() -> type[TableAccuracy]:
    return TableAccuracy


@pytest.fixture(scope="session")
def small_rows(parquet_path: Path) -> np.ndarray:
    """Rows of every cell with at most 5 vertices (2,532 cells): a small closed-ish subset."""
    nv = pq.read_table(parquet_path, columns=["num_vertices"]).column(0).to_numpy()
    return np.flatnonzero(nv <= 5)


@pytest.fixture(scope="session")
def small_index(parquet_path: Path, small_rows: np.ndarray):
    from rachel.core.nasbench.index import CellIndex

    return CellIndex.build(parquet_path, rows=small_rows, workers=1)


@pytest.fixture(scope="session")
def small_table_accuracy(small_index, table_accuracy) -> np.ndarray:
    """Real mean validation accuracy aligned with ``small_index`` (NaN where unknown)."""
    return table_accuracy.accuracy_array(small_index.hashes)


@pytest.fixture(scope="session")
def small_dense_accuracy(small_index) -> np.ndarray:
    """A fully known synthetic accuracy for the small index (stands in for a surrogate)."""
    rng = np.random.default_rng(123)
    return 0.8 + 0.15 * rng.random(len(small_index))
