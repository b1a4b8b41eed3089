"""Neighbours of a NAS-Bench-101 cell: the five edits of the paper (section 3.2.1).

=================  ==========================================================================
edit               rule implemented here
=================  ==========================================================================
``remove_vertex``  delete a middle vertex ``v``; its in-neighbours ``P`` and out-neighbours
                   ``S`` may be reconnected by any subset of the missing edges ``P x S``; a
                   subset is kept when every vertex keeps in- and out-degree >= 1 and the cell
                   keeps <= 9 edges (the paper's figure 2: all valid arrangements).
``add_vertex``     (only when V < 7 and E + 2 <= 9) insert a vertex with any of the 3 ops,
                   one in-edge from a vertex ``p`` and one out-edge to a later vertex ``s``,
                   for every pair ``p < s`` (input and output included).
``change_label``   give a middle vertex one of the two other ops.
``remove_edge``    remove an edge only if both its ends keep degree >= 1, i.e. the cell stays
                   a "full" DAG with every vertex on an input -> output path ("don't break the
                   graph's connectivity").  We do *not* allow removals that would need pruning:
                   those would silently remove vertices too, which is the remove-vertex edit.
``add_edge``       (only when E < 9) add any missing edge ``i -> j``, ``i < j``: acyclic by
                   construction.
=================  ==========================================================================

Every candidate is a valid, already pruned cell by construction (each edit keeps all vertices
on an input -> output path); the candidates are then deduplicated by fingerprint and the cell
itself is excluded.  The relation is not symmetric: removing a vertex and reconnecting its
neighbours is one edit, but undoing it needs add-vertex plus edge edits.

Internally a cell is packed into one integer (34 bits), which the bulk precompute in
:mod:`rachel.core.nasbench.index` turns into numpy arrays::

    bits  0..20  upper triangle of the padded 7x7 matrix, row-major: (0,1) (0,2) .. (0,6) (1,2) ..
    bits 21..30  ops of vertices 1..5, 2 bits each (0 conv3x3, 1 conv1x1, 2 maxpool3x3)
    bits 31..33  number of vertices V (the output is vertex V-1)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rachel.core.errors import NasBenchError
from rachel.core.nasbench.cell import INPUT, MAX_EDGES, MAX_VERTICES, OPS, OUTPUT, Cell

EDITS: tuple[str, ...] = ("remove_vertex", "add_vertex", "change_label", "remove_edge", "add_edge")

# triangle index of (i, j), i < j, in the padded 7x7 matrix
_ROW_OFFSET = [0] * MAX_VERTICES
for _i in range(1, MAX_VERTICES):
    _ROW_OFFSET[_i] = _ROW_OFFSET[_i - 1] + (MAX_VERTICES - _i)
_TRI = [[-1] * MAX_VERTICES for _ in range(MAX_VERTICES)]
for _i in range(MAX_VERTICES):
    for _j in range(_i + 1, MAX_VERTICES):
        _TRI[_i][_j] = _ROW_OFFSET[_i] + (_j - _i - 1)
_TRI_I = np.array([i for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)])
_TRI_J = np.array([j for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)])
_OPS_SHIFT = 21
_NV_SHIFT = 31
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_POP = [bin(m).count("1") for m in range(1 << MAX_VERTICES)]


def _pack(n: int, succ: Sequence[int], lab: Sequence[int]) -> int:
    code = n << _NV_SHIFT
    for u in range(n - 1):
        code |= (succ[u] >> (u + 1)) << _ROW_OFFSET[u]
    for i in range(1, n - 1):
        code |= lab[i] << (_OPS_SHIFT + 2 * (i - 1))
    return code


def _unpack(code: int) -> tuple[int, list[int], list[int]]:
    n = (code >> _NV_SHIFT) & 7
    succ = [0] * n
    for u in range(n - 1):
        succ[u] = ((code >> _ROW_OFFSET[u]) & ((1 << (MAX_VERTICES - 1 - u)) - 1)) << (u + 1)
    lab = [-1] + [(code >> (_OPS_SHIFT + 2 * (i - 1))) & 3 for i in range(1, n - 1)] + [-2]
    return n, succ, lab


def pack(cell: Cell) -> int:
    """Pack a cell into the 34-bit integer described in the module docstring."""
    n = cell.num_vertices
    succ = [sum(1 << w for w, x in enumerate(row) if x) for row in cell.matrix]
    lab = [-1] + [_OP_INDEX[op] for op in cell.ops[1:-1]] + [-2]
    return _pack(n, succ, lab)


def unpack(code: int) -> Cell:
    """Inverse of :func:`pack`."""
    n, succ, lab = _unpack(int(code))
    if n < 2:
        raise NasBenchError(f"packed cell {code} has {n} vertices", "pass a value made by pack()")
    matrix = tuple(tuple((succ[u] >> w) & 1 for w in range(n)) for u in range(n))
    ops = (INPUT, *(OPS[x] for x in lab[1:-1]), OUTPUT)
    return Cell(matrix, ops)


def unpack_batch(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed codes ``(B,)`` → ``adj (B,7,7) uint8``, ``labels (B,7) int8``, ``nv (B,) uint8``.

    Labels are the official integers (-1 input, -2 output, 0..2 ops, 0 for padding).
    """
    codes = np.asarray(codes, dtype=np.uint64)
    b = codes.shape[0]
    bits = ((codes[:, None] >> np.arange(21, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    adj = np.zeros((b, MAX_VERTICES, MAX_VERTICES), dtype=np.uint8)
    adj[:, _TRI_I, _TRI_J] = bits
    nv = ((codes >> np.uint64(_NV_SHIFT)) & np.uint64(7)).astype(np.int64)
    shifts = np.uint64(_OPS_SHIFT) + 2 * np.arange(5, dtype=np.uint64)
    ops = (codes[:, None] >> shifts) & np.uint64(3)
    labels = np.zeros((b, MAX_VERTICES), dtype=np.int8)
    labels[:, 1:6] = ops.astype(np.int8)
    pos = np.arange(MAX_VERTICES)[None, :]
    labels[pos >= (nv[:, None] - 1)] = 0
    labels[:, 0] = -1
    labels[np.arange(b), nv - 1] = -2
    return adj, labels, nv.astype(np.uint8)


def _compress(mask: int, v: int) -> int:
    """Drop bit ``v`` and shift the higher bits down by one."""
    return (mask & ((1 << v) - 1)) | ((mask >> (v + 1)) << v)


def _expand(mask: int, k: int) -> int:
    """Open a zero bit at ``k`` (bits >= k move up by one)."""
    return (mask & ((1 << k) - 1)) | ((mask >> k) << (k + 1))


def candidate_codes(code: int, kinds: Iterable[str] = EDITS) -> list[int]:
    """Packed codes of every edit of the packed cell ``code`` (not deduplicated)."""
    kinds = set(kinds)
    unknown = kinds - set(EDITS)
    if unknown:
        raise NasBenchError(f"unknown edit kind(s) {sorted(unknown)}", f"use some of {EDITS}")
    n, succ, lab = _unpack(code)
    pred = [0] * n
    for u in range(n):
        m = succ[u]
        w = 0
        while m:
            if m & 1:
                pred[w] |= 1 << u
            m >>= 1
            w += 1
    pop = _POP
    edges = sum(pop[s] for s in succ)
    out: list[int] = []

    if "change_label" in kinds:
        for i in range(1, n - 1):
            shift = _OPS_SHIFT + 2 * (i - 1)
            base = code & ~(3 << shift)
            for op in range(3):
                if op != lab[i]:
                    out.append(base | (op << shift))

    if "remove_edge" in kinds:
        for u in range(n - 1):
            if pop[succ[u]] < 2:
                continue
            for w in range(u + 1, n):
                if (succ[u] >> w) & 1 and pop[pred[w]] >= 2:
                    out.append(code & ~(1 << _TRI[u][w]))

    if "add_edge" in kinds and edges < MAX_EDGES:
        for u in range(n - 1):
            for w in range(u + 1, n):
                if not (succ[u] >> w) & 1:
                    out.append(code | (1 << _TRI[u][w]))

    if "add_vertex" in kinds and n < MAX_VERTICES and edges + 2 <= MAX_EDGES:
        for s in range(1, n):
            # new vertex at index s (op 0, edge s -> old s); old vertices >= s move up by one
            base_succ = [_expand(succ[u], s) for u in range(n)]
            base_succ.insert(s, 1 << (s + 1))
            base = _pack(n + 1, base_succ, lab[:s] + [0] + lab[s:])
            shift = _OPS_SHIFT + 2 * (s - 1)
            for p in range(s):
                c = base | (1 << _TRI[p][s])  # the in-edge p -> new vertex
                out.extend((c, c | (1 << shift), c | (2 << shift)))

    if "remove_vertex" in kinds:
        for v in range(1, n - 1):
            vbit = 1 << v
            preds = [u for u in range(v) if (pred[v] >> u) & 1]
            succs = [w for w in range(v + 1, n) if (succ[v] >> w) & 1]
            missing = [(u, w) for u in preds for w in succs if not (succ[u] >> w) & 1]
            budget = MAX_EDGES - (edges - len(preds) - len(succs))
            need_out = sum(1 << u for u in preds if succ[u] == vbit)  # would lose their only out
            need_in = sum(1 << w for w in succs if pred[w] == vbit)  # would lose their only in
            reduced = [_compress(succ[u] & ~vbit, v) for u in range(n) if u != v]
            base = _pack(n - 1, reduced, lab[:v] + lab[v + 1 :])
            # after renumbering, reconnection u -> w is the edge u -> w-1 of the reduced cell
            d_code = [1 << _TRI[u][w - 1] for u, w in missing]
            d_out = [1 << u for u, _ in missing]
            d_in = [1 << w for _, w in missing]
            size = 1 << len(missing)
            codes, cov_out, cov_in, count = [base] * size, [0] * size, [0] * size, [0] * size
            for mask in range(size):
                if mask:
                    low = mask & -mask
                    k = low.bit_length() - 1
                    rest = mask ^ low
                    codes[mask] = codes[rest] | d_code[k]
                    cov_out[mask] = cov_out[rest] | d_out[k]
                    cov_in[mask] = cov_in[rest] | d_in[k]
                    count[mask] = count[rest] + 1
                if (
                    count[mask] <= budget
                    and cov_out[mask] & need_out == need_out
                    and cov_in[mask] & need_in == need_in
                ):
                    out.append(codes[mask])
    return out


def neighbours(cell: Cell, kinds: Iterable[str] = EDITS) -> list[Cell]:
    """All distinct neighbours of ``cell`` (deduplicated by module hash, ``cell`` excluded).

    Order: first occurrence in the order remove-vertex, add-vertex, change-label,
    remove-edge, add-edge (as generated; :class:`CellIndex` stores them sorted by id).
    """
    kinds = tuple(kinds)
    order = {k: i for i, k in enumerate(EDITS)}
    code = pack(cell)
    seen = {cell.hash()}
    result: list[Cell] = []
    for kind in sorted(kinds, key=lambda k: order.get(k, -1)):
        for c in candidate_codes(code, (kind,)):
            nb = unpack(c)
            h = nb.hash()
            if h not in seen:
                seen.add(h)
                result.append(nb)
    return result
