"""The NAS-Bench-101 Parquet table: load and validate it, and convert an official tfrecord to it.

The table has one row per unique cell, sorted by ``module_hash`` (see
``shared/data/nasbench101/README.md``).  :data:`SCHEMA` lists the 13 columns of the shared
table.  A table converted from an official tfrecord has the same 13 columns plus the optional
per-run columns in :data:`EXTRA_RUN_COLUMNS` (108-epoch train accuracy and the half-way
metrics), which the official file holds and the shared table lacks; readers treat those as
optional.

:class:`BenchTable` wraps a loaded table with the vectorised look-ups the API and the
estimators share: hash -> row (binary search over the sorted hashes) and per-cell means of the
per-run lists (NaN when a cell has no run).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rachel.core import storage
from rachel.core.errors import NasBenchError, StorageError
from rachel.core.nasbench.tfrecord import NasBenchRecord, read_records

MAX_VERTICES = 7
ADJACENCY_CHARS = MAX_VERTICES * MAX_VERTICES
_F64_LIST = pa.list_(pa.float64())

SCHEMA = pa.schema(
    [
        ("module_hash", pa.string()),
        ("num_vertices", pa.uint8()),
        ("num_edges", pa.uint8()),
        ("adjacency", pa.string()),
        ("operations", pa.list_(pa.string())),
        ("trainable_parameters", pa.int64()),
        ("val_accuracy", _F64_LIST),
        ("test_accuracy", _F64_LIST),
        ("training_time", _F64_LIST),
        ("run_source", pa.list_(pa.string())),
        ("val_accuracy_epoch4", pa.float64()),
        ("val_accuracy_epoch12", pa.float64()),
        ("val_accuracy_epoch36", pa.float64()),
    ]
)

#: Optional per-run 108-epoch columns written by :func:`convert_tfrecord_to_parquet`.
EXTRA_RUN_COLUMNS: tuple[str, ...] = (
    "train_accuracy",
    "halfway_training_time",
    "halfway_train_accuracy",
    "halfway_validation_accuracy",
    "halfway_test_accuracy",
)
EXTRA_SCHEMA = pa.schema([(name, _F64_LIST) for name in EXTRA_RUN_COLUMNS])

#: ``run_source`` written for runs that come from an official tfrecord file.
TFRECORD_SOURCE = "nasbench-tfrecord"

_SHARED_HINT = (
    "pass the shared nasbench101_108.parquet (see shared/data/nasbench101/README.md) or a "
    "table written by convert_tfrecord_to_parquet"
)


def validate_schema(schema: pa.Schema, source: str) -> None:
    """Raise :class:`NasBenchError` unless ``schema`` has every column of :data:`SCHEMA`."""
    problems = []
    for fld in SCHEMA:
        idx = schema.get_field_index(fld.name)
        if idx < 0:
            problems.append(f"column {fld.name!r} is missing")
        elif not schema.field(idx).type.equals(fld.type):
            problems.append(
                f"column {fld.name!r} has type {schema.field(idx).type}, expected {fld.type}"
            )
    for fld in EXTRA_SCHEMA:
        idx = schema.get_field_index(fld.name)
        if idx >= 0 and not schema.field(idx).type.equals(fld.type):
            problems.append(
                f"column {fld.name!r} has type {schema.field(idx).type}, expected {fld.type}"
            )
    if problems:
        raise NasBenchError(
            f"{source} is not a NAS-Bench-101 table: " + "; ".join(problems), _SHARED_HINT
        )


def load_table(uri: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """Read and validate the Parquet table (local path or ``gs://`` URI).

    A file that is not Parquet, is truncated, or lacks a column of :data:`SCHEMA` raises
    :class:`NasBenchError`.  ``columns`` restricts what is read (``module_hash`` always is).
    """
    uri = str(uri)
    try:
        with storage.local_copy(uri) as local:
            try:
                pf = pq.ParquetFile(local)
                validate_schema(pf.schema_arrow, uri)
                cols = None
                if columns is not None:
                    cols = list(dict.fromkeys(["module_hash", *columns]))
                table = pf.read(columns=cols)
            except NasBenchError:
                raise
            except (pa.ArrowException, OSError) as err:
                raise NasBenchError(
                    f"{uri} is not a readable Parquet file ({err})",
                    "the file is truncated or not Parquet: copy it again from "
                    "shared/data/nasbench101 (check its sha256) or re-run the conversion",
                ) from err
    except StorageError as err:
        raise NasBenchError(
            f"NAS-Bench table {uri} cannot be read: {err.problem}",
            "check the path (the shared table is shared/data/nasbench101/nasbench101_108.parquet)",
        ) from err
    if table.num_rows == 0:
        raise NasBenchError(f"{uri} has no rows", _SHARED_HINT)
    return table


def write_table(table: pa.Table, uri: str | os.PathLike[str]) -> None:
    """Write ``table`` as zstd Parquet, atomically (local or ``gs://``)."""
    validate_schema(table.schema, "the table to write")
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    storage.write_bytes(uri, buf.getvalue())


# --------------------------------------------------------------------------------------
# Conversion from the official tfrecord
# --------------------------------------------------------------------------------------


def _pad_adjacency(record: NasBenchRecord) -> str:
    adj = np.asarray(record.adjacency, dtype=np.uint8)
    n = adj.shape[0]
    if n > MAX_VERTICES:
        raise NasBenchError(
            f"record {record.module_hash} has {n} vertices (at most {MAX_VERTICES})",
            "the file is not a NAS-Bench-101 tfrecord",
        )
    full = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.uint8)
    full[:n, :n] = adj
    return (full.reshape(-1) + ord("0")).tobytes().decode("ascii")


@dataclass
class _Cell:
    adjacency: str
    operations: list[str]
    num_vertices: int
    num_edges: int
    params: int | None
    runs: list[tuple[float | None, ...]]
    short: dict[int, float | None]


def records_to_table(records: Iterable[NasBenchRecord]) -> pa.Table:
    """Build the table (shared schema + :data:`EXTRA_RUN_COLUMNS`) from official records.

    One row per module hash, sorted by hash.  The 108-epoch records become the per-run lists
    (run order = file order).  For the 4/12/36-epoch records of ``nasbench_full.tfrecord``
    the shared table only has one scalar per budget: the first run's final validation
    accuracy is kept there.  Absent proto fields become nulls, never zeros.
    """
    cells: dict[str, _Cell] = {}
    for rec in records:
        cell = cells.get(rec.module_hash)
        if cell is None:
            adj = _pad_adjacency(rec)
            cell = _Cell(adj, list(rec.operations), len(rec.operations), adj.count("1"),
                         rec.metrics.trainable_parameters, [], {})
            cells[rec.module_hash] = cell
        final, half = rec.metrics.final, rec.metrics.halfway
        if rec.epochs == 108:
            cell.runs.append((
                final.validation_accuracy, final.test_accuracy, final.training_time,
                final.train_accuracy, half.training_time, half.train_accuracy,
                half.validation_accuracy, half.test_accuracy,
            ))
        elif rec.epochs in (4, 12, 36):
            cell.short.setdefault(rec.epochs, final.validation_accuracy)
    hashes = sorted(cells)
    rows = [cells[h] for h in hashes]

    def runs(i: int) -> list[list[float | None] | None]:
        return [[r[i] for r in c.runs] if c.runs else None for c in rows]

    data: dict[str, Any] = {
        "module_hash": hashes,
        "num_vertices": [c.num_vertices for c in rows],
        "num_edges": [c.num_edges for c in rows],
        "adjacency": [c.adjacency for c in rows],
        "operations": [c.operations for c in rows],
        "trainable_parameters": [c.params for c in rows],
        "val_accuracy": runs(0),
        "test_accuracy": runs(1),
        "training_time": runs(2),
        "run_source": [[TFRECORD_SOURCE] * len(c.runs) if c.runs else None for c in rows],
        "val_accuracy_epoch4": [c.short.get(4) for c in rows],
        "val_accuracy_epoch12": [c.short.get(12) for c in rows],
        "val_accuracy_epoch36": [c.short.get(36) for c in rows],
    }
    for j, name in enumerate(EXTRA_RUN_COLUMNS, start=3):
        data[name] = runs(j)
    schema = pa.schema(list(SCHEMA) + list(EXTRA_SCHEMA))
    return pa.Table.from_pydict(data, schema=schema)


@dataclass(frozen=True)
class ConversionSummary:
    """What :func:`convert_tfrecord_to_parquet` read and wrote."""

    records: int
    cells: int
    cells_with_108_runs: int
    seconds: float


def convert_tfrecord_to_parquet(
    tfrecord_uri: str | os.PathLike[str], parquet_uri: str | os.PathLike[str], *,
    verify: bool = True,
) -> ConversionSummary:
    """Convert an official NAS-Bench-101 tfrecord into a Parquet table, once, atomically.

    Checksums are verified (``verify=False`` skips them).  Nothing is written when the file is
    truncated or corrupt: the :class:`NasBenchError` names the byte offset.
    """
    start = time.perf_counter()
    count = 0

    def counted() -> Iterable[NasBenchRecord]:
        nonlocal count
        for rec in read_records(tfrecord_uri, verify=verify):
            count += 1
            yield rec

    table = records_to_table(counted())
    if table.num_rows == 0:
        raise NasBenchError(f"{tfrecord_uri} holds no records",
                            "pass nasbench_only108.tfrecord or nasbench_full.tfrecord")
    write_table(table, parquet_uri)
    with_runs = int(pc.sum(pc.is_valid(table["val_accuracy"])).as_py() or 0)
    return ConversionSummary(count, table.num_rows, with_runs, time.perf_counter() - start)


# --------------------------------------------------------------------------------------
# Columnar look-ups
# --------------------------------------------------------------------------------------


def list_mean(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per-row mean of a ``list<double>`` column, ignoring null elements; NaN for no value."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    parents = pc.list_parent_indices(arr).to_numpy()
    values = pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(np.float64)
    ok = ~np.isnan(values)
    sums = np.bincount(parents[ok], weights=values[ok], minlength=n)
    counts = np.bincount(parents[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def as_hash_bytes(hashes: Any) -> np.ndarray:
    """Hashes (str, bytes, sequence or array) as a fixed-width ``S32`` array for look-ups."""
    arr = np.asarray(hashes)
    if arr.dtype.kind == "U":
        try:
            return arr.astype("S32")
        except UnicodeEncodeError as err:
            raise NasBenchError(f"a module hash is not ASCII ({err})",
                                "pass md5 hex strings") from err
    if arr.dtype.kind == "S":
        return arr.astype("S32")
    return np.array([str(h).encode("ascii") for h in arr.reshape(-1)], dtype="S32").reshape(
        arr.shape
    )


def _hash_column(column: pa.ChunkedArray) -> np.ndarray:
    """The ``module_hash`` column as ``S32`` without creating Python strings when possible."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        raise NasBenchError("module_hash has null entries", "every row needs its hash")
    if len(arr) and arr.type == pa.string():
        _, offsets_buf, data = arr.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(arr) + 1,
                                offset=4 * arr.offset)
        if bool(np.all(np.diff(offsets) == 32)):
            raw = np.frombuffer(data, dtype=np.uint8, count=32 * len(arr),
                                offset=int(offsets[0]))
            return raw.view("S32").copy()
    return as_hash_bytes(arr.to_numpy(zero_copy_only=False).astype("U32"))


class BenchTable:
    """A validated, hash-sorted table with vectorised look-ups.

    ``rows_of(hashes)`` gives the row of each hash (-1 if absent).  Row ids are positions in the
    hash-sorted table, i.e. the same ids as the shared parquet file.
    """

    def __init__(self, table: pa.Table, source: str = "<table>") -> None:
        validate_schema(table.schema, source)
        self.table = table
        self.source = source
        self.hashes = _hash_column(table["module_hash"])
        if len(self.hashes) > 1 and not bool(np.all(self.hashes[1:] > self.hashes[:-1])):
            raise NasBenchError(
                f"{source}: module_hash is not strictly increasing (unsorted or duplicated)",
                "sort the table by module_hash and drop duplicates (convert_tfrecord_to_parquet "
                "does both)",
            )

    @classmethod
    def load(cls, uri: str | os.PathLike[str]) -> BenchTable:
        return cls(load_table(uri), str(uri))

    def __len__(self) -> int:
        return self.table.num_rows

    def rows_of(self, hashes: Any) -> np.ndarray:
        """Row index of each hash (``-1`` where the hash is not in the table)."""
        keys = as_hash_bytes(hashes)
        idx = np.searchsorted(self.hashes, keys)
        idx = np.minimum(idx, len(self.hashes) - 1)
        found = self.hashes[idx] == keys
        return np.where(found, idx, -1).astype(np.int64)

    def row_of(self, module_hash: str) -> int:
        return int(self.rows_of(np.array([module_hash]))[0])

    def has_column(self, name: str) -> bool:
        return name in self.table.column_names

    @cached_property
    def val_mean(self) -> np.ndarray:
        """Mean 108-epoch validation accuracy over the known runs (NaN: no run)."""
        return list_mean(self.table["val_accuracy"])

    @cached_property
    def test_mean(self) -> np.ndarray:
        """Mean 108-epoch test accuracy over the runs where it is known (NaN: none)."""
        return list_mean(self.table["test_accuracy"])

    def row(self, index: int) -> dict[str, Any]:
        """One row as Python values."""
        return {name: self.table[name][index].as_py() for name in self.table.column_names}
