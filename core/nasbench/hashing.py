"""The NAS-Bench-101 graph fingerprint ("module hash") and two faster variants.

Algorithm (re-implemented from the description of ``nasbench.lib.graph_util.hash_module``):

1. every vertex ``v`` starts with ``h0(v) = H(str((out_degree, in_degree, label)))`` where the
   label is ``-1`` for the input, ``-2`` for the output and the index of the op in the canonical
   op list (``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``) otherwise;
2. ``V`` times (``V`` = number of vertices), every vertex is re-hashed from the sorted hashes
   of its in-neighbours, the sorted hashes of its out-neighbours and its own hash::

       h'(v) = H( join(sorted(h(u) for u -> v)) + "|" + join(sorted(h(w) for v -> w)) + "|" + h(v) )

3. the fingerprint is ``H(str(sorted(h(v) for all v)))``.

``H`` is md5 over the hex strings for the official hash (:func:`module_hash`, equal to the
``module_hash`` column of the table and to ``ModelSpec.hash_spec``).  :func:`fast_hash` is the
paper's variant (section 3): the same iteration with blake2s (32-byte digest) over raw digests
instead of hex strings; it partitions cells exactly as md5 does (``bench/nasbench_hashing.py``
checks all 423,624 cells) but its values differ.  Because raw digests may contain ``|``, the
blake2s variant prefixes the two neighbour counts instead of using separators, which keeps the
concatenation unambiguous.

:func:`batch_fingerprint` is a vectorised numpy version of the same colour refinement for many
graphs at once, with 64-bit splitmix hashing and sum-of-hashes as the (order-free) multiset hash.
It induces the same equivalence classes (verified on the whole table by ``CellIndex``, whose
table fingerprints must be unique) and is what the neighbour precompute uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from rachel.core.errors import NasBenchError
from rachel.core.nasbench.cell import INPUT, OPS, OUTPUT

#: Integer labels of the official hash.
INPUT_LABEL = -1
OUTPUT_LABEL = -2


def labeling_from_ops(ops: Sequence[str], canonical_ops: Sequence[str] = OPS) -> list[int]:
    """``['input', op, ..., 'output']`` → official integer labels ``[-1, idx, ..., -2]``."""
    if len(ops) < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise NasBenchError(
            "ops must start with 'input' and end with 'output'",
            "put 'input' first and 'output' last",
        )
    index = {op: i for i, op in enumerate(canonical_ops)}
    try:
        middle = [index[op] for op in ops[1:-1]]
    except KeyError as exc:
        raise NasBenchError(
            f"unknown op {exc.args[0]!r}", f"use one of {', '.join(canonical_ops)}"
        ) from None
    return [INPUT_LABEL, *middle, OUTPUT_LABEL]


def _structure(matrix: Any) -> tuple[int, list[int], list[int], list[list[int]], list[list[int]]]:
    rows = matrix.tolist() if isinstance(matrix, np.ndarray) else [list(r) for r in matrix]
    n = len(rows)
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for u, row in enumerate(rows):
        if len(row) != n:
            raise NasBenchError("adjacency matrix must be square", "pass a V x V matrix")
        for w, x in enumerate(row):
            if x:
                succs[u].append(w)
                preds[w].append(u)
    out_deg = [len(s) for s in succs]
    in_deg = [len(p) for p in preds]
    return n, out_deg, in_deg, preds, succs


def hash_module(matrix: Any, labeling: Sequence[int]) -> str:
    """Official md5 fingerprint of an (already pruned) matrix and integer labeling."""
    n, out_deg, in_deg, preds, succs = _structure(matrix)
    if len(labeling) != n:
        raise NasBenchError(f"{len(labeling)} labels for {n} vertices", "one label per vertex")
    md5 = hashlib.md5
    hashes = [
        md5(str((out_deg[v], in_deg[v], int(labeling[v]))).encode("utf-8")).hexdigest()
        for v in range(n)
    ]
    for _ in range(n):
        hashes = [
            md5(
                (
                    "".join(sorted([hashes[u] for u in preds[v]]))
                    + "|"
                    + "".join(sorted([hashes[w] for w in succs[v]]))
                    + "|"
                    + hashes[v]
                ).encode("utf-8")
            ).hexdigest()
            for v in range(n)
        ]
    return md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def hash_module_blake2s(matrix: Any, labeling: Sequence[int]) -> str:
    """The same fingerprint with blake2s (32-byte digests, raw bytes); 64 hex chars."""
    n, out_deg, in_deg, preds, succs = _structure(matrix)
    if len(labeling) != n:
        raise NasBenchError(f"{len(labeling)} labels for {n} vertices", "one label per vertex")
    b2 = hashlib.blake2s
    hashes = [
        b2(bytes((out_deg[v], in_deg[v], int(labeling[v]) & 0xFF))).digest() for v in range(n)
    ]
    for _ in range(n):
        hashes = [
            b2(
                bytes((in_deg[v], out_deg[v]))
                + b"".join(sorted([hashes[u] for u in preds[v]]))
                + b"".join(sorted([hashes[w] for w in succs[v]]))
                + hashes[v]
            ).digest()
            for v in range(n)
        ]
    return b2(b"".join(sorted(hashes))).hexdigest()


def module_hash(matrix: Any, ops: Sequence[str]) -> str:
    """Official md5 module hash of a pruned cell given by matrix and op names."""
    return hash_module(matrix, labeling_from_ops(ops))


def fast_hash(matrix: Any, ops: Sequence[str]) -> str:
    """blake2s variant of :func:`module_hash` (the paper's faster fingerprint)."""
    return hash_module_blake2s(matrix, labeling_from_ops(ops))


# --------------------------------------------------------------------------- vectorised
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_SALT_IN = np.uint64(0x9E3779B97F4A7C15)
_SALT_OUT = np.uint64(0xD1B54A32D192ED03)
_SALT_SELF = np.uint64(0x8CB92BA72F3D8DD7)
_SALT_FINAL = np.uint64(0xA0761D6478BD642F)
_MASK64 = (1 << 64) - 1
_CHUNK = 1 << 16


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic); returns a new array."""
    z = z ^ (z >> _S30)
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def batch_fingerprint(adj: np.ndarray, labels: np.ndarray, num_vertices: np.ndarray) -> np.ndarray:
    """64-bit WL fingerprints of many padded cells at once.

    ``adj``: ``(B, 7, 7)`` 0/1 (pruned matrix top-left, output at ``V-1``); ``labels``:
    ``(B, 7)`` official integer labels (-1 input, -2 output, 0..2 ops; padding ignored);
    ``num_vertices``: ``(B,)``.  Returns ``(B,)`` uint64.  Equal fingerprints ⇔ equal md5
    module hashes (up to a ~2^-64 collision chance).

    Same refinement as :func:`hash_module`: start colour from (out-degree, in-degree, label),
    ``V`` rounds of ``c'(v) = mix(K1 c(v) + K2 sum(c(u), u -> v) + K3 sum(c(w), v -> w))``
    (sums of pseudo-random 64-bit colours are the multiset hashes), then
    ``mix(sum(c(v)) + K4 V)``.
    """
    adj = np.asarray(adj)
    labels = np.asarray(labels)
    nv = np.asarray(num_vertices)
    out = np.zeros(adj.shape[0], dtype=np.uint64)
    for n in np.unique(nv):
        n = int(n)
        group = np.flatnonzero(nv == n)
        for start in range(0, len(group), _CHUNK):  # bounded temporaries
            idx = group[start : start + _CHUNK]
            out[idx] = _fingerprint_group(adj[idx, :n, :n], labels[idx, :n], n)
    return out


def _fingerprint_group(adj: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Fingerprints of graphs that all have ``n`` vertices (``adj`` is ``(b, n, n)``)."""
    a = adj.astype(np.uint64)
    lab = labels.astype(np.int64) + 3  # -2..2 -> 1..5
    c = _mix(a.sum(axis=2) * np.uint64(64) + a.sum(axis=1) * np.uint64(8) + lab.astype(np.uint64))
    for _ in range(n):
        a_in = np.einsum("bwv,bw->bv", a, c)  # sum over predecessors w -> v
        a_out = np.einsum("bvw,bw->bv", a, c)  # sum over successors v -> w
        c *= _SALT_SELF
        a_in *= _SALT_IN
        a_out *= _SALT_OUT
        c += a_in
        c += a_out
        c = _mix(c)
    return _mix(c.sum(axis=1) + np.uint64((int(_SALT_FINAL) * n) & _MASK64))
