"""The official md5 module hash, its blake2s variant and the vectorised 64-bit fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core.nasbench.cell import Cell, ModelSpec
from rachel.core.nasbench.hashing import (
    batch_fingerprint,
    fast_hash,
    hash_module,
    labeling_from_ops,
    module_hash,
)


def _permute(matrix: np.ndarray, ops: list[str], rng: np.random.Generator):
    """A random relabelling of the middle vertices that keeps the matrix upper triangular."""
    n = len(ops)
    while True:
        perm = np.concatenate([[0], 1 + rng.permutation(n - 2), [n - 1]])
        # perm[new] = old; keep only topological orders
        pm = matrix[np.ix_(perm, perm)]
        if not np.tril(pm).any():
            return pm, [ops[i] for i in perm]


def test_official_inception_hash(inception):
    matrix, ops, expected = inception
    assert module_hash(matrix, ops) == expected
    assert hash_module(np.array(matrix), labeling_from_ops(ops)) == expected
    assert ModelSpec(matrix, ops).hash_spec() == expected
    assert len(fast_hash(matrix, ops)) == 64


def test_sample_of_table_rows(structure_rows):
    rng = np.random.default_rng(0)
    rows = rng.choice(len(structure_rows["module_hash"]), size=2000, replace=False)
    for r in rows:
        cell = Cell.from_table(structure_rows["adjacency"][r], structure_rows["operations"][r])
        assert module_hash(cell.matrix, cell.ops) == structure_rows["module_hash"][r]


@pytest.mark.slow
def test_every_table_row(structure_rows):
    bad = 0
    for h, a, o in zip(
        structure_rows["module_hash"],
        structure_rows["adjacency"],
        structure_rows["operations"],
        strict=True,
    ):
        cell = Cell.from_table(a, o)
        bad += module_hash(cell.matrix, cell.ops) != h
    assert bad == 0


def test_isomorphic_permutations_hash_the_same(structure_rows):
    rng = np.random.default_rng(1)
    rows = rng.choice(len(structure_rows["module_hash"]), size=200, replace=False)
    for r in rows:
        cell = Cell.from_table(structure_rows["adjacency"][r], structure_rows["operations"][r])
        pm, pops = _permute(np.array(cell.matrix), list(cell.ops), rng)
        assert module_hash(pm, pops) == structure_rows["module_hash"][r]
        assert fast_hash(pm, pops) == fast_hash(cell.matrix, cell.ops)


def test_different_cells_hash_differently(inception):
    matrix, ops, expected = inception
    ops2 = list(ops)
    ops2[1] = "conv3x3-bn-relu"
    assert module_hash(matrix, ops2) != expected
    assert fast_hash(matrix, ops2) != fast_hash(matrix, ops)


def _batch(cells: list[Cell]):
    adj = np.stack([c.padded() for c in cells])
    labels = np.zeros((len(cells), 7), dtype=np.int8)
    for i, c in enumerate(cells):
        labels[i, : c.num_vertices] = labeling_from_ops(c.ops)
    nv = np.array([c.num_vertices for c in cells])
    return adj, labels, nv


def test_batch_fingerprint_partitions_like_md5(structure_rows):
    rng = np.random.default_rng(2)
    rows = rng.choice(len(structure_rows["module_hash"]), size=1500, replace=False)
    cells = [
        Cell.from_table(structure_rows["adjacency"][r], structure_rows["operations"][r])
        for r in rows
    ]
    permuted = []
    for c in cells:
        pm, pops = _permute(np.array(c.matrix), list(c.ops), rng)
        permuted.append(Cell(pm, pops))
    fp = batch_fingerprint(*_batch(cells))
    fpp = batch_fingerprint(*_batch(permuted))
    assert fp.dtype == np.uint64
    np.testing.assert_array_equal(fp, fpp)  # isomorphic -> equal
    assert len(np.unique(fp)) == len(cells)  # distinct table cells -> distinct
