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
import math
import os
import time
from array import array
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


_RUN_FIELDS = ("val_accuracy", "test_accuracy", "training_time", *EXTRA_RUN_COLUMNS)


def _run_values(record: NasBenchRecord) -> tuple[float | None, ...]:
    final, half = record.metrics.final, record.metrics.halfway
    return (
        final.validation_accuracy,
        final.test_accuracy,
        final.training_time,
        final.train_accuracy,
        half.training_time,
        half.train_accuracy,
        half.validation_accuracy,
        half.test_accuracy,
    )


def records_to_table(records: Iterable[NasBenchRecord]) -> pa.Table:
    """Build the table (shared schema + :data:`EXTRA_RUN_COLUMNS`) from official records.

    One row per module hash, sorted by hash.  The 108-epoch records become the per-run lists
    (run order = file order).  For the 4/12/36-epoch records of ``nasbench_full.tfrecord``
    the shared table only has one scalar per budget: the first run's final validation
    accuracy is kept there.  Absent proto fields become nulls, never zeros.

    Memory: per-cell structure is kept once; per-record values go to flat typed arrays
    (``array('d')``), so the 1.27M records of the official file stay in a few hundred MB.
    """
    cell_of: dict[str, int] = {}
    hashes: list[str] = []
    adjacency: list[str] = []
    operations: list[list[str]] = []
    params: list[int | None] = []
    rec_cell, rec_epochs = array("q"), array("q")
    rec_values, rec_known = array("d"), array("b")
    for rec in records:
        idx = cell_of.get(rec.module_hash)
        if idx is None:
            idx = cell_of[rec.module_hash] = len(hashes)
            hashes.append(rec.module_hash)
            adjacency.append(_pad_adjacency(rec))
            operations.append(list(rec.operations))
            params.append(rec.metrics.trainable_parameters)
        rec_cell.append(idx)
        rec_epochs.append(rec.epochs)
        for v in _run_values(rec):
            rec_known.append(v is not None)
            rec_values.append(math.nan if v is None else float(v))
    n_cells, n_fields = len(hashes), len(_RUN_FIELDS)
    cell = np.frombuffer(rec_cell, dtype=np.int64) if len(rec_cell) else np.zeros(0, np.int64)
    epochs = np.frombuffer(rec_epochs, dtype=np.int64) if len(rec_epochs) else cell
    values = np.frombuffer(rec_values, dtype=np.float64).reshape(-1, n_fields)
    known = np.frombuffer(rec_known, dtype=np.int8).reshape(-1, n_fields).astype(bool)
    order = np.argsort(np.array(hashes, dtype="U32"), kind="stable")  # table row -> cell
    rank = np.empty(n_cells, dtype=np.int64)
    rank[order] = np.arange(n_cells)
    row = rank[cell]  # table row of each record

    # 108-epoch runs: group by row, file order kept within a row (stable sort)
    sel = np.flatnonzero(epochs == 108)
    sel = sel[np.argsort(row[sel], kind="stable")]
    counts = np.bincount(row[sel], minlength=n_cells)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    no_runs = pa.array(counts == 0)

    def runs(j: int) -> pa.Array:
        flat = pa.array(values[sel, j], mask=~known[sel, j], type=pa.float64())
        return pa.ListArray.from_arrays(offsets, flat, mask=no_runs)

    def first_short(e: int) -> pa.Array:
        out = np.full(n_cells, np.nan)
        ok = np.zeros(n_cells, dtype=bool)
        recs = np.flatnonzero(epochs == e)
        rows_e, first = np.unique(row[recs], return_index=True)  # first record in file order
        out[rows_e] = values[recs[first], 0]
        ok[rows_e] = known[recs[first], 0]
        return pa.array(out, mask=~ok, type=pa.float64())

    def take(items: list[Any]) -> list[Any]:
        return [items[i] for i in order]

    source = pa.array([TFRECORD_SOURCE] * len(sel), type=pa.string())
    data: dict[str, Any] = {
        "module_hash": pa.array(take(hashes), type=pa.string()),
        "num_vertices": pa.array([len(operations[i]) for i in order], type=pa.uint8()),
        "num_edges": pa.array([adjacency[i].count("1") for i in order], type=pa.uint8()),
        "adjacency": pa.array(take(adjacency), type=pa.string()),
        "operations": pa.array(take(operations), type=pa.list_(pa.string())),
        "trainable_parameters": pa.array(take(params), type=pa.int64()),
        "val_accuracy": runs(0),
        "test_accuracy": runs(1),
        "training_time": runs(2),
        "run_source": pa.ListArray.from_arrays(offsets, source, mask=no_runs),
        "val_accuracy_epoch4": first_short(4),
        "val_accuracy_epoch12": first_short(12),
        "val_accuracy_epoch36": first_short(36),
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
    tfrecord_uri: str | os.PathLike[str],
    parquet_uri: str | os.PathLike[str],
    *,
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
        raise NasBenchError(
            f"{tfrecord_uri} holds no records",
            "pass nasbench_only108.tfrecord or nasbench_full.tfrecord",
        )
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
            raise NasBenchError(
                f"a module hash is not ASCII ({err})", "pass md5 hex strings"
            ) from err
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
        offsets = np.frombuffer(
            offsets_buf, dtype=np.int32, count=len(arr) + 1, offset=4 * arr.offset
        )
        if bool(np.all(np.diff(offsets) == 32)):
            raw = np.frombuffer(data, dtype=np.uint8, count=32 * len(arr), offset=int(offsets[0]))
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
