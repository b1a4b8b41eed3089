"""Search spaces seen by the incremental environment and the agents.

:class:`SearchSpace` is the small protocol the environment and the baselines rely on, so that
another space (NAS-Bench-301 / DARTS, with a pair of cells per state) can be added without
touching them.  :class:`NasBench101Space` implements it for NAS-Bench-101.

Encoding of a NAS-Bench-101 cell (paper section 3.2.3, "RL-based agent"), padded to 7 vertices
(padding vertices are appended after the output, as in the table: output stays at ``V-1``)::

    [ adjacency: 21 ][ labels: 7 x 5 one-hot = 35 ]          56 values, float32

    adjacency = strictly lower triangle of the transposed matrix (A^T), rows concatenated,
                i.e. for every vertex j = 1..6 its in-edges from i = 0..j-1:
                A[0,1] | A[0,2] A[1,2] | A[0,3] A[1,3] A[2,3] | ... | A[0,6] .. A[5,6]
    labels    = one-hot over (input, conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3, output)
                for vertices 0..6; a padding vertex is all zeros.

Initial-state sampler (paper section 3.2.3, "Random Search"): draw the number of vertices ``V``
uniformly from ``vertex_range`` (default 2..7), then draw upper-triangular ``V x V`` matrices
(each possible edge with probability 1/2) and uniform middle ops until the cell is valid *and*
keeps all ``V`` vertices after pruning (the paper's "adjacency matrix must have the desired
number of vertices") with at most 9 edges.  The resulting distribution over cells is
quasi-uniform in the number of vertices (not uniform over the 423,624 cells).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from rachel.core.errors import ConfigError, NasBenchError
from rachel.core.nasbench import neighbours as _nb
from rachel.core.nasbench.cell import ALL_LABELS, MAX_EDGES, MAX_VERTICES, OPS, Cell, ModelSpec
from rachel.core.nasbench.hashing import labeling_from_ops, module_hash

_TRIL_J = np.array([j for j in range(1, MAX_VERTICES) for i in range(j)])
_TRIL_I = np.array([i for j in range(1, MAX_VERTICES) for i in range(j)])
N_ADJ = len(_TRIL_I)  # 21
N_LABELS = len(ALL_LABELS)  # 5
ENCODING_SIZE = N_ADJ + MAX_VERTICES * N_LABELS  # 56
_TRIALS = 32
#: Number of (matrix, ops) pairs the sampler accepts for V vertices: valid "full" upper-triangular
#: V x V matrices with <= 9 edges (counted by enumerating all 2^(V(V-1)/2) matrices) times
#: 3^(V-2) op labellings.  Each accepted pair is one representation of exactly one cell.
ACCEPTED_REPRESENTATIONS: dict[int, int] = {2: 1, 3: 6, 4: 90, 5: 3267, 6: 125145, 7: 1164699}
# upper-triangle pairs (i, j), i < j, row-major, and maps from a pair to its source / target
_PAIR_I = np.array([i for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)])
_PAIR_J = np.array([j for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)])
_BIT_SHIFTS = np.arange(len(_PAIR_I), dtype=np.int64)
_OUT_MAP = (_PAIR_I[:, None] == np.arange(MAX_VERTICES)[None, :]).astype(np.float32)
_IN_MAP = (_PAIR_J[:, None] == np.arange(MAX_VERTICES)[None, :]).astype(np.float32)


@runtime_checkable
class SearchSpace(Protocol):
    """What the environment and the baselines need from a search space."""

    name: str

    @property
    def observation_size(self) -> int:
        """Length of :meth:`encode`'s vector (one architecture / state)."""
        ...

    def sample(self, rng: np.random.Generator) -> Any:
        """An initial state drawn from the space's initial-state distribution."""
        ...

    def neighbours(self, cell: Any) -> list[Any]:
        """Distinct states one edit away (the cell itself excluded)."""
        ...

    def encode(self, cell: Any) -> np.ndarray:
        """Fixed-length float32 vector of ``observation_size`` values."""
        ...

    def hash(self, cell: Any) -> str:
        """Isomorphism-invariant fingerprint used to look metrics up."""
        ...

    def is_valid(self, cell: Any) -> bool:
        """True when ``cell`` is in the space."""
        ...


def encode_batch(adj: np.ndarray, labels: np.ndarray, num_vertices: np.ndarray) -> np.ndarray:
    """Vectorised encoding of padded cells → ``(B, 56)`` uint8 (see module docstring).

    ``labels`` are the official integers (-1 input, -2 output, 0..2 = index in :data:`OPS`).
    """
    adj = np.asarray(adj)
    labels = np.asarray(labels).astype(np.int64)
    nv = np.asarray(num_vertices).astype(np.int64)
    b = adj.shape[0]
    out = np.zeros((b, ENCODING_SIZE), dtype=np.uint8)
    out[:, :N_ADJ] = adj[:, _TRIL_I, _TRIL_J]
    # label column in ALL_LABELS: input 0, ops 1..3, output 4
    col = np.where(labels == -1, 0, np.where(labels == -2, N_LABELS - 1, labels + 1))
    present = np.arange(MAX_VERTICES)[None, :] < nv[:, None]
    rows, verts = np.nonzero(present)
    out[rows, N_ADJ + verts * N_LABELS + col[rows, verts]] = 1
    return out


def sample_arrays(
    rng: np.random.Generator, size: int, vertex_range: tuple[int, int] = (2, MAX_VERTICES)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size`` draws of the quasi-uniform sampler, vectorised.

    Returns padded ``adj (size,7,7) uint8``, ``labels (size,7) int8`` (official integers) and
    ``num_vertices (size,) uint8``.
    """
    lo, hi = vertex_range
    if not 2 <= lo <= hi <= MAX_VERTICES:
        raise ConfigError(
            f"vertex_range {vertex_range} outside 2..{MAX_VERTICES}", "use e.g. (2, 7)"
        )
    nv = rng.integers(lo, hi + 1, size=size)
    adj = np.zeros((size, MAX_VERTICES, MAX_VERTICES), dtype=np.uint8)
    labels = np.zeros((size, MAX_VERTICES), dtype=np.int8)
    pending = np.arange(size)
    pos = np.arange(MAX_VERTICES)
    while pending.size:
        # _TRIALS independent draws per pending sample; the first accepted one is kept, which
        # is exactly sequential rejection sampling, with fewer numpy round trips.  A draw is
        # 21 fair bits (the upper triangle of the 7x7 matrix); bits outside V x V are cleared.
        n = nv[pending]
        r = rng.integers(0, 1 << N_ADJ, size=(pending.size, _TRIALS), dtype=np.int64)
        bits = ((r[..., None] >> _BIT_SHIFTS) & 1).astype(np.float32)  # (P, T, 21)
        bits *= (_PAIR_J[None, :] < n[:, None]).astype(np.float32)[:, None, :]
        out_deg = bits @ _OUT_MAP  # (P, T, 7)
        in_deg = bits @ _IN_MAP
        inside = pos[None, :] < n[:, None]
        need_out = (inside & (pos[None, :] != (n - 1)[:, None]))[:, None]
        need_in = (inside & (pos[None, :] != 0))[:, None]
        ok = (
            ((out_deg > 0) | ~need_out).all(axis=2)
            & ((in_deg > 0) | ~need_in).all(axis=2)
            & (bits.sum(axis=2) <= MAX_EDGES)
        )  # (P, T)
        has = ok.any(axis=1)
        rows = np.flatnonzero(has)
        pick = ok.argmax(axis=1)[rows]
        dest = pending[rows]
        chosen = np.zeros((rows.size, MAX_VERTICES, MAX_VERTICES), dtype=np.uint8)
        chosen[:, _PAIR_I, _PAIR_J] = bits[rows, pick].astype(np.uint8)
        adj[dest] = chosen
        # ops do not affect acceptance: draw them for the accepted samples only
        lab = rng.integers(0, len(OPS), size=(rows.size, MAX_VERTICES)).astype(np.int8)
        lab[:, 0] = -1
        lab[~inside[rows]] = 0
        lab[np.arange(rows.size), n[rows] - 1] = -2
        labels[dest] = lab
        pending = pending[~has]
    return adj, labels, nv.astype(np.uint8)


def representation_counts(
    adj: np.ndarray, labels: np.ndarray, num_vertices: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """Per cell, the number of distinct vertex-ordered (matrix, ops) pairs that represent it.

    A representation is a relabelling of the middle vertices that keeps the matrix upper
    triangular; automorphic relabellings give the same pair and count once.  The quasi-uniform
    sampler draws cell ``c`` with ``V`` vertices with probability
    ``P(V) * reps(c) / ACCEPTED_REPRESENTATIONS[V]``, which :meth:`CellIndex.sampler_cdf` uses
    to sample exactly without rejection.  Returns ``uint8`` (at most 5! = 120).
    """
    from itertools import permutations

    adj = np.asarray(adj)
    labels = np.asarray(labels).astype(np.int64)
    nv = np.asarray(num_vertices).astype(np.int64)
    out = np.zeros(len(nv), dtype=np.uint8)
    for n in np.unique(nv):
        n = int(n)
        group = np.flatnonzero(nv == n)
        perms = np.array([(0, *p, n - 1) for p in permutations(range(1, n - 1))], dtype=np.int64)
        up = [(i, j) for i in range(n) for j in range(i + 1, n)]
        # flat index of the entry that lands on (i, j) of the relabelled matrix, per permutation
        cols_up = np.array([[p[i] * n + p[j] for i, j in up] for p in perms], dtype=np.int64)
        cols_low = np.array([[p[j] * n + p[i] for i, j in up] for p in perms], dtype=np.int64)
        weight = (1 << np.arange(len(up), dtype=np.int64)).astype(np.float64)
        op_weight = (3 ** np.arange(n - 2, dtype=np.int64)).astype(np.float64)
        for start in range(0, len(group), chunk):
            idx = group[start : start + chunk]
            flat = adj[idx, :n, :n].reshape(len(idx), n * n).astype(np.uint8)
            lab = labels[idx, :n].astype(np.float64)
            upper = ~flat[:, cols_low].any(axis=2)  # (b, P): still upper triangular
            # exact in float64 (< 2^29); BLAS instead of integer loops
            code = flat[:, cols_up].astype(np.float64) @ weight
            code += (lab[:, perms[:, 1:-1]] @ op_weight) * float(1 << 21)
            code = np.where(upper, code.astype(np.int64), -1)
            code.sort(axis=1)
            distinct = (np.diff(code, axis=1) != 0) & (code[:, 1:] >= 0)
            out[idx] = (distinct.sum(axis=1) + (code[:, 0] >= 0)).astype(np.uint8)
    return out


def arrays_to_cell(adj: np.ndarray, labels: np.ndarray, num_vertices: int) -> Cell:
    """One padded (adj, labels, V) triple → :class:`Cell`."""
    n = int(num_vertices)
    ops = (ALL_LABELS[0], *(OPS[int(x)] for x in labels[1 : n - 1]), ALL_LABELS[-1])
    matrix = tuple(tuple(row) for row in np.asarray(adj)[:n, :n].astype(int).tolist())
    return Cell(matrix, ops)


class NasBench101Space:
    """The NAS-Bench-101 space (CIFAR-10 cells, <= 7 vertices, <= 9 edges, 3 ops)."""

    name = "nasbench101"

    def __init__(self, vertex_range: tuple[int, int] = (2, MAX_VERTICES)) -> None:
        sample_arrays(np.random.default_rng(0), 0, vertex_range)  # validates the range
        self.vertex_range = vertex_range

    @property
    def observation_size(self) -> int:
        return ENCODING_SIZE

    def sample(self, rng: np.random.Generator) -> Cell:
        adj, labels, nv = sample_arrays(rng, 1, self.vertex_range)
        return arrays_to_cell(adj[0], labels[0], nv[0])

    def neighbours(self, cell: Cell) -> list[Cell]:
        return _nb.neighbours(self._cell(cell))

    def encode(self, cell: Cell) -> np.ndarray:
        cell = self._cell(cell)
        labels = np.zeros((1, MAX_VERTICES), dtype=np.int8)
        labels[0, : cell.num_vertices] = labeling_from_ops(cell.ops)
        enc = encode_batch(cell.padded()[None], labels, np.array([cell.num_vertices]))
        return enc[0].astype(np.float32)

    def hash(self, cell: Cell) -> str:
        cell = self._cell(cell)
        return module_hash(cell.matrix, cell.ops)

    def is_valid(self, cell: Any) -> bool:
        """Cells are valid by construction; ``ModelSpec`` / ``(matrix, ops)`` are checked."""
        if isinstance(cell, Cell):
            return True
        if isinstance(cell, ModelSpec):
            return cell.is_valid()
        try:
            matrix, ops = cell
            return ModelSpec(matrix, list(ops)).is_valid()
        except (NasBenchError, TypeError, ValueError):
            return False

    @staticmethod
    def _cell(cell: Any) -> Cell:
        if not isinstance(cell, Cell):
            raise NasBenchError(
                f"expected a Cell, got {type(cell).__name__}",
                "build one with Cell.from_matrix(matrix, ops)",
            )
        return cell
