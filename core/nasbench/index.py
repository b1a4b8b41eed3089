"""``CellIndex``: integer ids, encodings and precomputed neighbour lists for a NAS-Bench table.

Id ``i`` is row ``i`` of the hash-sorted parquet table (so ids are stable for a given table and
``hashes`` is sorted).  The index holds, for every cell:

* ``hashes``      official md5 module hashes (``'<U32'``), sorted;
* ``codes``       the packed 34-bit form of :mod:`rachel.core.nasbench.neighbours` (uint64);
* ``encodings``   the 56-value encoding of :mod:`rachel.core.nasbench.space` (uint8, 0/1);
* ``indptr`` / ``indices``  neighbour lists in CSR form (int32): the neighbours of cell ``i``
  are ``indices[indptr[i]:indptr[i+1]]``, sorted by id, without ``i`` itself.

Building the neighbour lists generates every edit of every cell (about 11 million candidates
for the full table) in Python, fingerprints them with the vectorised 64-bit hash of
:mod:`rachel.core.nasbench.hashing` and maps them to ids with a binary search over the table's
fingerprints, in ``workers`` processes.  Candidates whose fingerprint is not in the table are
dropped and counted in ``outside`` (0 for the full table; a subset table has many).
The result is cached in an ``.npz`` (written atomically via :mod:`rachel.core.storage`).
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rachel.core import storage
from rachel.core.errors import ArtifactError, NasBenchError
from rachel.core.nasbench.cell import MAX_VERTICES, OPS, Cell
from rachel.core.nasbench.hashing import batch_fingerprint
from rachel.core.nasbench.neighbours import _TRI_I, _TRI_J, candidate_codes, unpack, unpack_batch
from rachel.core.nasbench.space import (
    ACCEPTED_REPRESENTATIONS,
    encode_batch,
    representation_counts,
)

FORMAT_VERSION = 3
STRUCTURE_COLUMNS = ["module_hash", "adjacency", "operations", "num_vertices"]


def default_table_path() -> Path:
    """``$RACHEL_NASBENCH101_TABLE`` or ``<repo>/../shared/data/nasbench101/...parquet``."""
    env = os.environ.get("RACHEL_NASBENCH101_TABLE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data" / "nasbench101" / "nasbench101_108.parquet"


def table_or_default(table: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    """``table``, or the default table path when it exists; a clear error when it does not.

    Outside a source checkout (an installed wheel, a container) ``<repo>/../shared`` does not
    exist, so the default is only a convenience for a checkout beside the shared data.
    """
    if table is not None:
        return table
    path = default_table_path()
    if not path.exists():
        where = (
            "$RACHEL_NASBENCH101_TABLE"
            if os.environ.get("RACHEL_NASBENCH101_TABLE")
            else "the default beside a source checkout"
        )
        raise NasBenchError(
            f"no NAS-Bench-101 table at {path} ({where})",
            "pass --table PATH_OR_GS_URI (nasbench101_108.parquet, or a .tfrecord converted "
            "with 'rachel nasbench convert') or set RACHEL_NASBENCH101_TABLE",
        )
    return path


def default_cache_path(table: str | os.PathLike[str]) -> Path:
    """``~/.cache/rachel/<table stem>.cellindex-v<FORMAT_VERSION>.npz``."""
    stem = Path(str(table)).stem
    return Path.home() / ".cache" / "rachel" / f"{stem}.cellindex-v{FORMAT_VERSION}.npz"


def _pack_arrays(adj: np.ndarray, labels: np.ndarray, nv: np.ndarray) -> np.ndarray:
    bits = adj[:, _TRI_I, _TRI_J].astype(np.uint64)
    code = (bits << np.arange(21, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    n = nv.astype(np.int64)
    ops = labels[:, 1:6].astype(np.int64)
    ops = np.where(np.arange(1, 6)[None, :] < (n - 1)[:, None], ops, 0).astype(np.uint64)
    code |= (ops << (np.uint64(21) + 2 * np.arange(5, dtype=np.uint64))).sum(
        axis=1, dtype=np.uint64
    )
    code |= n.astype(np.uint64) << np.uint64(31)
    return code


def read_cells(
    adjacency: Any, operations: Any, num_vertices: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(adj (N,7,7) uint8, labels (N,7) int8, nv (N,) uint8)`` from table-layout columns.

    ``adjacency``: 49-char '0'/'1' strings; ``operations``: a ``list<string>`` Arrow array or a
    sequence of label lists; ``num_vertices``: ints.  Labels are the official integers
    (-1 input, -2 output, 0..2 = index in :data:`OPS`).
    """
    if not isinstance(adjacency, pa.Array | pa.ChunkedArray):
        adjacency = pa.array(list(adjacency), type=pa.string())
    if not isinstance(operations, pa.Array | pa.ChunkedArray):
        operations = pa.array(list(operations), type=pa.list_(pa.string()))
    adj_col = adjacency.combine_chunks() if isinstance(adjacency, pa.ChunkedArray) else adjacency
    ops_col = operations.combine_chunks() if isinstance(operations, pa.ChunkedArray) else operations
    n = len(adj_col)
    if n and pc.min(pc.utf8_length(adj_col)).as_py() != 49:
        raise NasBenchError("adjacency strings must have 49 chars", "check the table")
    raw = np.frombuffer(b"".join(x.encode() for x in adj_col.to_pylist()), dtype=np.uint8)
    adj = (raw.reshape(n, MAX_VERTICES, MAX_VERTICES) - ord("0")).astype(np.uint8)
    nv = np.asarray(num_vertices, dtype=np.uint8).reshape(-1)
    if nv.shape != (n,):
        raise NasBenchError(
            "num_vertices must have one entry per cell", "pass the table's num_vertices column"
        )
    flat = ops_col.flatten()
    lens = pc.list_value_length(ops_col).to_numpy()
    if not np.array_equal(lens, nv):
        raise NasBenchError("operations length differs from num_vertices", "check the table")
    names = ["input", *OPS, "output"]
    idx = pc.index_in(flat, value_set=pa.array(names)).to_numpy(zero_copy_only=False)
    if np.isnan(idx.astype(float)).any():
        raise NasBenchError("table holds an unknown op", f"ops must be one of {names}")
    codes = np.array([-1, 0, 1, 2, -2], dtype=np.int8)[idx.astype(np.int64)]
    labels = np.zeros((n, MAX_VERTICES), dtype=np.int8)
    rows = np.repeat(np.arange(n), lens)
    pos = np.arange(len(codes)) - np.repeat(np.cumsum(lens) - lens, lens)
    labels[rows, pos] = codes
    return adj, labels, nv


def _read_structure(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hashes S32, adj (N,7,7) uint8, labels (N,7) int8, nv (N,) uint8) from a pyarrow table."""
    for col in STRUCTURE_COLUMNS:
        if col not in table.column_names:
            raise NasBenchError(
                f"table has no column {col!r}", "pass the nasbench101_108.parquet structure table"
            )
    hashes = np.array(table.column("module_hash").to_pylist(), dtype="S32")
    adj, labels, nv = read_cells(
        table.column("adjacency"),
        table.column("operations"),
        table.column("num_vertices").to_numpy(),
    )
    return hashes, adj, labels, nv


#: (sorted table fingerprints, their ids, number of cells); set in the parent before the worker
#: processes are forked, so the workers inherit it without pickling.
_LOOKUP: tuple[np.ndarray, np.ndarray, int] | None = None


def _neighbour_chunk(
    job: tuple[int, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
    """Worker: neighbour lists of the cells ``first .. first+len(codes)-1``.

    Generates every edit, fingerprints the candidates, maps them to ids, drops the cell itself
    and duplicates.  Returns (neighbour count per cell, neighbour ids int32 sorted per cell,
    candidates not in the table, number of candidates, representation counts of the cells).
    """
    first, codes = job
    if _LOOKUP is None:
        raise NasBenchError("neighbour worker started without a lookup table", "internal error")
    sorted_fp, order, n_total = _LOOKUP
    counts = np.empty(len(codes), dtype=np.int64)
    cands: list[int] = []
    for i, code in enumerate(codes.tolist()):
        c = candidate_codes(code)
        counts[i] = len(c)
        cands.extend(c)
    fp = batch_fingerprint(*unpack_batch(np.array(cands, dtype=np.uint64)))
    pos = np.searchsorted(sorted_fp, fp)
    pos_c = np.minimum(pos, max(n_total - 1, 0))
    found = (pos < n_total) & (sorted_fp[pos_c] == fp)
    dst = order[pos_c].astype(np.int64)
    src = np.repeat(np.arange(first, first + len(codes), dtype=np.int64), counts)
    keep = found & (dst != src)
    key = np.unique(src[keep] * n_total + dst[keep])
    per_cell = np.bincount(key // n_total - first, minlength=len(codes)).astype(np.int32)
    reps = representation_counts(*unpack_batch(codes))
    return per_cell, (key % n_total).astype(np.int32), int((~found).sum()), len(fp), reps


class CellIndex:
    """Ids ↔ hashes, encodings and CSR neighbour lists for every cell of a table."""

    def __init__(
        self,
        hashes: np.ndarray,
        codes: np.ndarray,
        fingerprints: np.ndarray,
        encodings: np.ndarray,
        indptr: np.ndarray,
        indices: np.ndarray,
        outside: int,
        reps: np.ndarray,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.hashes = np.asarray(hashes).astype("U32")
        self.codes = np.asarray(codes, dtype=np.uint64)
        self.fingerprints = np.asarray(fingerprints, dtype=np.uint64)
        self.encodings = np.asarray(encodings, dtype=np.uint8)
        self.indptr = np.asarray(indptr, dtype=np.int32)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.outside = int(outside)
        self.reps = np.asarray(reps, dtype=np.uint8)
        self.meta = dict(meta or {})
        self._fp_order = np.argsort(self.fingerprints, kind="stable")
        self._fp_sorted = self.fingerprints[self._fp_order]
        self.num_vertices = ((self.codes >> np.uint64(31)) & np.uint64(7)).astype(np.uint8)
        n = len(self.hashes)
        if not (
            len(self.codes) == len(self.encodings) == len(self.reps) == n
            and len(self.indptr) == n + 1
        ):
            raise ArtifactError(
                "cell index arrays have inconsistent lengths", "delete the cache file and rebuild"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        table: str | os.PathLike[str] | pa.Table | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
        workers: int = 2,
        chunk: int = 20000,
    ) -> CellIndex:
        """Build from a parquet path (or a pyarrow table), optionally a subset of its rows.

        Only the structure columns are read.  ``rows`` keeps those rows (in table order, so the
        ids stay hash-sorted); neighbours outside the kept rows are counted in ``outside``.
        """
        t0 = time.perf_counter()
        source = table if isinstance(table, pa.Table) else table_or_default(table)
        structure: pa.Table
        if isinstance(source, pa.Table):
            structure = source.select(STRUCTURE_COLUMNS)
        else:
            with storage.local_copy(source) as local:
                structure = pq.read_table(local, columns=STRUCTURE_COLUMNS)
        if rows is not None:
            structure = structure.take(pa.array(np.sort(np.asarray(rows, dtype=np.int64))))
        hashes, adj, labels, nv = _read_structure(structure)
        if len(hashes) > 1 and not (hashes[1:] > hashes[:-1]).all():
            raise NasBenchError(
                "table is not sorted by unique module_hash",
                "sort the table by module_hash and drop duplicates",
            )
        n = len(hashes)
        codes = _pack_arrays(adj, labels, nv)
        fps = batch_fingerprint(adj, labels, nv)
        if len(np.unique(fps)) != n:
            raise NasBenchError(
                "two table cells share a fingerprint (isomorphic duplicates?)",
                "deduplicate the table by module_hash",
            )
        encodings = encode_batch(adj, labels, nv)
        t_struct = time.perf_counter() - t0

        global _LOOKUP
        order = np.argsort(fps, kind="stable")
        _LOOKUP = (fps[order], order, n)
        jobs = [(i, codes[i : i + chunk]) for i in range(0, n, chunk)]
        try:
            if workers > 1 and len(jobs) > 1:
                with mp.get_context("fork").Pool(workers) as pool:
                    parts = pool.map(_neighbour_chunk, jobs, chunksize=1)
            else:
                parts = [_neighbour_chunk(j) for j in jobs]
        finally:
            _LOOKUP = None
        per_cell = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
        indices = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
        outside = int(sum(p[2] for p in parts))
        candidates = int(sum(p[3] for p in parts))
        reps = np.concatenate([p[4] for p in parts]) if parts else np.zeros(0, np.uint8)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_cell, out=indptr[1:])
        t_gen = time.perf_counter() - t0 - t_struct
        meta = {
            "format_version": FORMAT_VERSION,
            "rows": n,
            "candidates": candidates,
            "seconds_structure": round(t_struct, 3),
            "seconds_neighbours": round(t_gen, 3),
        }
        return cls(
            hashes, codes, fps, encodings, indptr.astype(np.int32), indices, outside, reps, meta
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write an ``.npz`` atomically (local path or ``gs://``)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            hashes=self.hashes.astype("S32"),
            codes=self.codes,
            fingerprints=self.fingerprints,
            encodings=self.encodings,
            indptr=self.indptr,
            indices=self.indices,
            outside=np.array(self.outside),
            reps=self.reps,
            format_version=np.array(FORMAT_VERSION),
        )
        storage.write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CellIndex:
        try:
            data = np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
            if int(data["format_version"]) != FORMAT_VERSION:
                raise ArtifactError(
                    f"cell index {path} has format {int(data['format_version'])}",
                    "delete it; it is rebuilt on the next load_or_build",
                )
            return cls(
                data["hashes"],
                data["codes"],
                data["fingerprints"],
                data["encodings"],
                data["indptr"],
                data["indices"],
                int(data["outside"]),
                data["reps"],
                {"format_version": FORMAT_VERSION, "rows": len(data["hashes"])},
            )
        except (KeyError, ValueError, OSError) as exc:
            raise ArtifactError(
                f"cell index {path} is unreadable ({exc})", "delete it and rebuild"
            ) from None

    @classmethod
    def load_or_build(
        cls,
        table: str | os.PathLike[str] | None = None,
        cache: str | os.PathLike[str] | None = None,
        workers: int = 2,
    ) -> CellIndex:
        """Load ``cache`` when it matches the table's row count, else build and save it.

        ``cache`` defaults to ``$RACHEL_NASBENCH_CACHE`` or
        ``~/.cache/rachel/<table name>.cellindex-v<format>.npz`` (the shared data folder is
        read-only).
        """
        table = table_or_default(table or None)
        if cache is None:
            cache = os.environ.get("RACHEL_NASBENCH_CACHE") or str(default_cache_path(table))
        if storage.exists(cache):
            index = cls.load(cache)
            with storage.local_copy(table) as local:
                rows = pq.ParquetFile(local).metadata.num_rows
            if len(index) == rows:
                return index
        index = cls.build(table, workers=workers)
        index.save(cache)
        return index

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        arrays = (
            self.hashes,
            self.codes,
            self.fingerprints,
            self.encodings,
            self.indptr,
            self.indices,
            self._fp_order,
            self._fp_sorted,
            self.num_vertices,
            self.reps,
        )
        return int(sum(a.nbytes for a in arrays))

    def id_of(self, module_hash: str) -> int:
        """Id of a module hash; raises OffSpaceError-free NasBenchError when unknown."""
        i = int(np.searchsorted(self.hashes, module_hash))
        if i >= len(self) or self.hashes[i] != module_hash:
            raise NasBenchError(
                f"module hash {module_hash!r} is not in the table",
                "hash the pruned cell with hashing.module_hash",
            )
        return i

    def ids_of(self, hashes: Sequence[str] | np.ndarray) -> np.ndarray:
        """Ids of many hashes; -1 where a hash is not in the table."""
        h = np.asarray(hashes).astype("U32")
        pos = np.searchsorted(self.hashes, h)
        pos_c = np.minimum(pos, len(self) - 1)
        return np.where((pos < len(self)) & (self.hashes[pos_c] == h), pos_c, -1)

    def ids_of_fingerprints(self, fps: np.ndarray) -> np.ndarray:
        """Ids of 64-bit fingerprints (:func:`hashing.batch_fingerprint`); -1 when unknown."""
        fps = np.asarray(fps, dtype=np.uint64)
        pos = np.searchsorted(self._fp_sorted, fps)
        pos_c = np.minimum(pos, len(self) - 1)
        ok = (pos < len(self)) & (self._fp_sorted[pos_c] == fps)
        return np.where(ok, self._fp_order[pos_c], -1)

    def id_of_cell(self, cell: Cell) -> int:
        from rachel.core.nasbench.neighbours import pack

        ids = self.ids_of_fingerprints(
            batch_fingerprint(*unpack_batch(np.array([pack(cell)], dtype=np.uint64)))
        )
        if ids[0] < 0:
            raise NasBenchError("cell is not in the table", "use a cell from the search space")
        return int(ids[0])

    def hash_of(self, cell_id: int) -> str:
        return str(self.hashes[cell_id])

    def cell(self, cell_id: int) -> Cell:
        return unpack(int(self.codes[cell_id]))

    def neighbours(self, cell_id: int) -> np.ndarray:
        return self.indices[self.indptr[cell_id] : self.indptr[cell_id + 1]]

    def degrees(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sampler_cdf(
        self,
        allowed: np.ndarray | None = None,
        vertex_range: tuple[int, int] = (2, MAX_VERTICES),
    ) -> np.ndarray:
        """Cumulative probabilities of the quasi-uniform sampler over the ids (float64).

        The rejection sampler of :func:`space.sample_arrays` draws cell ``c`` with probability
        ``reps(c) / ACCEPTED_REPRESENTATIONS[V(c)] / (number of V values)``; restricted to
        ``allowed`` cells (and to the cells of this index) it is that, renormalised.  Sampling
        from this CDF is exactly the rejection sampler conditioned on the allowed set, without
        the rejections (which cost ~20x in the real-subset mode).
        """
        lo, hi = vertex_range
        if not 2 <= lo <= hi <= MAX_VERTICES:
            raise NasBenchError(
                f"vertex_range {vertex_range} outside 2..{MAX_VERTICES}", "use e.g. (2, 7)"
            )
        total = np.array(
            [ACCEPTED_REPRESENTATIONS.get(v, 1) for v in range(MAX_VERTICES + 1)], dtype=np.float64
        )
        w = self.reps / total[self.num_vertices]
        w[(self.num_vertices < lo) | (self.num_vertices > hi)] = 0.0
        if allowed is not None:
            w[~np.asarray(allowed, dtype=bool)] = 0.0
        if not w.any():
            raise NasBenchError(
                "no allowed cell to sample from", "check the accuracy source and vertex_range"
            )
        return np.cumsum(w)

    def sample_ids(
        self,
        rng: np.random.Generator,
        size: int,
        allowed: np.ndarray | None = None,
        vertex_range: tuple[int, int] = (2, MAX_VERTICES),
        cdf: np.ndarray | None = None,
    ) -> np.ndarray:
        """``size`` ids from the quasi-uniform sampler (optionally restricted to ``allowed``).

        Pass a precomputed :meth:`sampler_cdf` as ``cdf`` to skip recomputing it.
        """
        if cdf is None:
            cdf = self.sampler_cdf(allowed, vertex_range)
        u = rng.random(size) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int64)
