"""NAS-Bench-101 cells: an immutable, validated :class:`Cell` and an official-style ``ModelSpec``.

A cell is a DAG of at most 7 vertices and 9 edges.  Vertex 0 is the input, vertex ``V-1`` the
output, every vertex in between carries one of three operations.  The adjacency matrix is
upper triangular (``matrix[i][j] == 1`` means an edge ``i -> j`` with ``i < j``), so the vertex
order is a topological order::

          to: 0  1  2  3  4  5  6
    from 0  [ 0  1  1  1  0  1  0 ]   input      -> 1, 2, 3, 5
         1  [ 0  0  0  0  0  0  1 ]   conv1x1    -> output
         2  [ 0  0  0  0  0  0  1 ]   conv3x3    -> output
         3  [ 0  0  0  0  1  0  0 ]   conv3x3    -> 4
         4  [ 0  0  0  0  0  0  1 ]   conv3x3    -> output
         5  [ 0  0  0  0  0  0  1 ]   maxpool3x3 -> output
         6  [ 0  0  0  0  0  0  0 ]   output
             ^ diagonal and everything below it must be 0

Pruning follows the official ``nasbench.lib.model_spec.ModelSpec._prune``: a vertex that is not
on some input -> output path is removed (rows and columns deleted, later vertices renumbered).
If input and output are not connected the spec is invalid.  In-space checks follow the official
``NASBench._check_spec`` and are made on the *pruned* graph: at most 7 vertices, at most 9
edges, first op ``input``, last op ``output``, middle ops from :data:`OPS`.

Errors: malformed input (wrong shape, non-square, values other than 0/1, not upper triangular,
unknown or misplaced op, ops/matrix length mismatch) raises :class:`NasBenchError`; a well-formed
cell outside the space (too many vertices or edges, input/output disconnected) raises
:class:`OffSpaceError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rachel.core.errors import NasBenchError, OffSpaceError

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
#: Middle operations in the official canonical order (``config['available_ops']``); the
#: position of an op in this tuple is its integer label in the official hash.
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
ALL_LABELS: tuple[str, ...] = (INPUT, *OPS, OUTPUT)
MAX_VERTICES = 7
MAX_EDGES = 9

Matrix = tuple[tuple[int, ...], ...]


def _as_int_matrix(matrix: Any) -> np.ndarray:
    """Turn nested lists / arrays into a 2-D int array, raising NasBenchError on bad input."""
    try:
        arr = np.asarray(matrix)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise NasBenchError(
            f"adjacency matrix is not a rectangular array ({exc})",
            "pass a V x V nested list or numpy array of 0/1",
        ) from None
    if arr.dtype == object:
        raise NasBenchError(
            "adjacency matrix is ragged or holds non-numbers",
            "pass a V x V nested list or numpy array of 0/1",
        )
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise NasBenchError(
            f"adjacency matrix must be square (V x V), got shape {arr.shape}",
            "pass a V x V matrix, one row per vertex",
        )
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise NasBenchError(
            "adjacency matrix may only hold 0 and 1",
            "use 1 for an edge i -> j and 0 otherwise",
        )
    return arr.astype(np.int64)


def _check_upper(arr: np.ndarray) -> None:
    if np.tril(arr).any():
        raise NasBenchError(
            "adjacency matrix must be strictly upper triangular (edges only i -> j with i < j)",
            "order the vertices topologically and zero the diagonal and everything below it",
        )


def _check_lengths(arr: np.ndarray, ops: Sequence[str]) -> None:
    if arr.shape[0] != len(ops):
        raise NasBenchError(
            f"{len(ops)} ops for a {arr.shape[0]}x{arr.shape[0]} matrix",
            "give exactly one op per vertex (input and output included)",
        )


def _check_ops(ops: Sequence[str]) -> None:
    for i, op in enumerate(ops):
        if not isinstance(op, str) or op not in ALL_LABELS:
            raise NasBenchError(
                f"unknown op {op!r} at vertex {i}",
                f"use one of {', '.join(ALL_LABELS)}",
            )
    if len(ops) < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise NasBenchError(
            "the first op must be 'input' and the last 'output'",
            "put 'input' at vertex 0 and 'output' at vertex V-1",
        )
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise NasBenchError(
                f"vertex {i} is {op!r}; middle vertices must be one of {', '.join(OPS)}",
                "only vertex 0 may be 'input' and only vertex V-1 'output'",
            )


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
    """Official pruning: keep the vertices on an input -> output path.

    Returns ``(pruned_matrix, pruned_ops)``, or ``None`` when input and output are not
    connected (the official ``valid_spec = False``).  ``matrix`` must be square and upper
    triangular.
    """
    n = matrix.shape[0]
    if n == 0:
        return None
    from_input = {0}
    frontier = [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if matrix[top, v] and v not in from_input:
                from_input.add(v)
                frontier.append(v)
    to_output = {n - 1}
    frontier = [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if matrix[v, top] and v not in to_output:
                to_output.add(v)
                frontier.append(v)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        return None
    return matrix[np.ix_(keep, keep)].copy(), [ops[i] for i in keep]


def _freeze(arr: np.ndarray) -> Matrix:
    return tuple(tuple(int(x) for x in row) for row in arr)


@dataclass(frozen=True)
class Cell:
    """A NAS-Bench-101 cell in the search space, in pruned form.

    ``matrix`` is a tuple of tuples of 0/1 ints (the constructor also accepts nested lists or a
    numpy array and freezes it); ``ops`` a tuple of labels, ``ops[0] == 'input'`` and
    ``ops[-1] == 'output'``.  The constructor validates and requires every vertex to lie on an
    input -> output path; use :meth:`Cell.from_matrix` to prune an arbitrary matrix first.

    Layout for ``Cell([[0,1,1,0],[0,0,0,1],[0,0,0,1],[0,0,0,0]], ops)``::

        0 input --> 1 ops[1] --+
              \\                v
               +--> 2 ops[2] --> 3 output

    Equality is structural (same matrix and ops), not isomorphism: compare :meth:`hash`
    fingerprints for that.
    """

    matrix: Matrix
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        arr = _as_int_matrix(self.matrix)
        if isinstance(self.ops, str):
            raise NasBenchError(
                "ops must be a sequence of labels, not one string",
                "pass e.g. ('input', 'conv3x3-bn-relu', 'output')",
            )
        ops = tuple(self.ops)
        _check_lengths(arr, ops)
        _check_upper(arr)
        _check_ops(ops)
        pruned = prune(arr, ops)
        if pruned is None:
            raise OffSpaceError(
                "input and output are not connected", "add a path from vertex 0 to vertex V-1"
            )
        if pruned[0].shape[0] != arr.shape[0]:
            dangling = arr.shape[0] - pruned[0].shape[0]
            raise NasBenchError(
                f"{dangling} vertex(es) are not on an input -> output path",
                "build the cell with Cell.from_matrix(matrix, ops), which prunes them",
            )
        _check_size(arr)
        object.__setattr__(self, "matrix", _freeze(arr))
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_matrix(cls, matrix: Any, ops: Sequence[str]) -> Cell:
        """Validate, prune (official rule) and check the space; the usual constructor."""
        spec = ModelSpec(matrix, list(ops))
        return spec.to_cell()

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    def array(self) -> np.ndarray:
        """The adjacency matrix as a read-only ``uint8`` array of shape ``(V, V)``."""
        arr = np.array(self.matrix, dtype=np.uint8)
        arr.setflags(write=False)
        return arr

    def padded(self, size: int = MAX_VERTICES) -> np.ndarray:
        """The matrix zero-padded to ``size x size`` (output stays at ``V-1``), as in the table."""
        out = np.zeros((size, size), dtype=np.uint8)
        n = self.num_vertices
        out[:n, :n] = self.matrix
        return out

    def adjacency_string(self) -> str:
        """The table's 49-char row-major '0'/'1' string of the 7x7 padded matrix."""
        return "".join("1" if x else "0" for x in self.padded().ravel())

    @classmethod
    def from_table(cls, adjacency: str, operations: Sequence[str]) -> Cell:
        """Build from a parquet row (``adjacency`` 49-char string, ``operations`` list)."""
        if len(adjacency) != MAX_VERTICES * MAX_VERTICES or set(adjacency) - {"0", "1"}:
            raise NasBenchError(
                f"table adjacency must be 49 chars of '0'/'1', got {adjacency!r}",
                "read the 'adjacency' column of nasbench101_108.parquet",
            )
        n = len(operations)
        full = np.frombuffer(adjacency.encode(), dtype=np.uint8).reshape(7, 7) - ord("0")
        if full[n:, :].any() or full[:, n:].any():
            raise NasBenchError(
                "table adjacency has edges outside the top-left V x V block",
                "check that 'operations' has one entry per vertex",
            )
        return cls(_freeze(full[:n, :n]), tuple(operations))

    def hash(self) -> str:
        """Official NAS-Bench-101 module hash (md5 hex string)."""
        from rachel.core.nasbench.hashing import module_hash

        return module_hash(self.matrix, self.ops)

    def to_spec(self) -> ModelSpec:
        return ModelSpec(np.array(self.matrix), list(self.ops))

    def __str__(self) -> str:
        rows = "\n".join(
            " ".join(map(str, r)) + f"   {op}" for r, op in zip(self.matrix, self.ops, strict=True)
        )
        return f"Cell(V={self.num_vertices}, E={self.num_edges})\n{rows}"


def _check_size(arr: np.ndarray) -> None:
    n = arr.shape[0]
    if n > MAX_VERTICES:
        raise OffSpaceError(
            f"{n} vertices after pruning; NAS-Bench-101 allows at most {MAX_VERTICES}",
            "remove vertices",
        )
    e = int(arr.sum())
    if e > MAX_EDGES:
        raise OffSpaceError(
            f"{e} edges after pruning; NAS-Bench-101 allows at most {MAX_EDGES}",
            "remove edges",
        )


class ModelSpec:
    """Drop-in for the official ``nasbench.lib.model_spec.ModelSpec`` (no TensorFlow, no graphviz).

    Attributes as in the official class: ``original_matrix`` / ``original_ops`` (copies of the
    input), ``matrix`` / ``ops`` (pruned; ``None`` when invalid) and ``valid_spec`` (``False`` when
    input and output are disconnected).  Like the official constructor it checks shape, length
    and upper-triangularity (raising :class:`NasBenchError` instead of ``ValueError``), and does
    not check the ops or the size limits: :meth:`is_valid` / :meth:`to_cell` do that, as the
    official ``NASBench.is_valid`` does.
    """

    def __init__(self, matrix: Any, ops: Sequence[str], data_format: str = "channels_last"):
        arr = _as_int_matrix(matrix)
        if isinstance(ops, str):
            raise NasBenchError(
                "ops must be a list of labels, not one string",
                "pass e.g. ['input', 'conv3x3-bn-relu', 'output']",
            )
        _check_lengths(arr, ops)
        _check_upper(arr)
        self.original_matrix = arr.copy()
        self.original_ops = list(ops)
        self.data_format = data_format
        pruned = prune(arr, list(ops))
        if pruned is None:
            self.matrix: np.ndarray | None = None
            self.ops: list[str] | None = None
            self.valid_spec = False
        else:
            self.matrix, self.ops = pruned
            self.valid_spec = True

    def hash_spec(self, canonical_ops: Sequence[str] = OPS) -> str:
        """Official isomorphism-invariant md5 hash (labels = index in ``canonical_ops``)."""
        from rachel.core.nasbench.hashing import hash_module

        if not self.valid_spec or self.matrix is None or self.ops is None:
            raise OffSpaceError(
                "invalid spec: input and output are disconnected",
                "add a path from vertex 0 to vertex V-1",
            )
        try:
            labeling = [-1] + [list(canonical_ops).index(op) for op in self.ops[1:-1]] + [-2]
        except ValueError:
            raise NasBenchError(
                f"an op of {self.ops[1:-1]} is not in canonical_ops {list(canonical_ops)}",
                "pass the benchmark's available_ops",
            ) from None
        return hash_module(self.matrix, labeling)

    def to_cell(self) -> Cell:
        """The pruned spec as a :class:`Cell`; raises if it is outside the space."""
        _check_ops(self.original_ops)
        if not self.valid_spec or self.matrix is None or self.ops is None:
            raise OffSpaceError(
                "input and output are not connected", "add a path from vertex 0 to vertex V-1"
            )
        return Cell(_freeze(self.matrix), tuple(self.ops))

    def is_valid(self) -> bool:
        """True when the spec is in the NAS-Bench-101 space (official ``NASBench.is_valid``).

        As in the official check, only the *pruned* ops are inspected.
        """
        if not self.valid_spec or self.matrix is None or self.ops is None:
            return False
        try:
            Cell(_freeze(self.matrix), tuple(self.ops))
        except NasBenchError:
            return False
        return True
