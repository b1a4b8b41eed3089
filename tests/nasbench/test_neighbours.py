"""The five neighbour edits on literal matrices: counts, dedupe, asymmetry, no self."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.nasbench_data import INCEPTION_MATRIX, INCEPTION_OPS

from rachel.core.errors import NasBenchError
from rachel.core.nasbench.cell import CONV1X1, CONV3X3, MAXPOOL3X3, Cell
from rachel.core.nasbench.neighbours import EDITS, candidate_codes, neighbours, pack, unpack

C3, C1, MP = CONV3X3, CONV1X1, MAXPOOL3X3
IN, OUT = "input", "output"

CHAIN3 = Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [IN, C3, OUT])
CHAIN4 = Cell([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [IN, C3, C1, OUT])
TWO = Cell([[0, 1], [0, 0]], [IN, OUT])
# 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3 and a skip 0 -> 3; vertices 1 and 2 are parallel twins
DIAMOND_SKIP = Cell([[0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [IN, C3, C3, OUT])
DIAMOND = Cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [IN, C3, C3, OUT])
# the paper's figure 2: removing vertex 2 (in from 0 and 1, out to 3 and 4)
FIG2 = Cell(
    [
        [0, 1, 1, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ],
    [IN, C3, MP, C1, OUT],
)
INCEPTION = Cell(INCEPTION_MATRIX, INCEPTION_OPS)  # the official README's cell


def count(cell: Cell, kind: str) -> int:
    return len(neighbours(cell, (kind,)))


@pytest.mark.parametrize(
    ("cell", "kind", "expected"),
    [
        # chain in -> conv3x3 -> out
        (CHAIN3, "change_label", 2),
        (CHAIN3, "remove_edge", 0),  # every removal disconnects
        (CHAIN3, "add_edge", 1),  # only 0 -> 2
        (CHAIN3, "add_vertex", 9),  # pairs (0,1) (0,2) (1,2) x 3 ops, all distinct
        (CHAIN3, "remove_vertex", 1),  # conv removed, 0 -> 2 reconnected
        (CHAIN4, "add_edge", 3),  # 0->2, 0->3, 1->3
        (CHAIN4, "remove_edge", 0),
        (TWO, "add_vertex", 3),
        (TWO, "add_edge", 0),
        (TWO, "remove_vertex", 0),
        (TWO, "change_label", 0),
        (DIAMOND_SKIP, "remove_edge", 1),  # only the skip 0 -> 3 keeps every degree >= 1
        (DIAMOND, "change_label", 2),  # 4 candidates, twins -> 2 distinct
        (INCEPTION, "remove_edge", 0),  # every edge is the only in- or out-edge of a vertex
        (INCEPTION, "add_edge", 0),  # already 9 edges
        (INCEPTION, "add_vertex", 0),  # already 7 vertices
        (INCEPTION, "change_label", 10),  # 5 middle vertices x 2 other ops, all distinct
        # figure 2: v=2 -> 10 valid subsets of {0,1} x {3,4}; v=1 and v=3 -> 1 each
        (FIG2, "remove_vertex", 12),
    ],
)
def test_edit_counts(cell, kind, expected):
    assert count(cell, kind) == expected


def test_candidates_before_dedupe():
    assert len(candidate_codes(pack(DIAMOND), ("change_label",))) == 4
    assert len(candidate_codes(pack(CHAIN3), ("add_vertex",))) == 9


def test_remove_vertex_fig2_results_keep_degrees():
    for nb in neighbours(FIG2, ("remove_vertex",)):
        m = np.array(nb.matrix)
        assert (m[:-1].sum(axis=1) >= 1).all() and (m[:, 1:].sum(axis=0) >= 1).all()
        assert nb.num_vertices == 4


def test_add_vertex_connects_one_pred_one_succ():
    for nb in neighbours(CHAIN3, ("add_vertex",)):
        assert nb.num_vertices == 4 and nb.num_edges == 4


def test_edges_never_exceed_nine():
    # 6 vertices, 8 edges: add_vertex would need 10 edges, add_edge may add exactly one
    m = np.zeros((6, 6), dtype=int)
    for u, w in [(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 5), (0, 3), (1, 4)]:
        m[u, w] = 1
    cell = Cell(m, [IN, C3, C1, MP, C3, OUT])
    assert count(cell, "add_vertex") == 0
    for nb in neighbours(cell):
        assert nb.num_edges <= 9
    assert all(nb.num_edges == 9 for nb in neighbours(cell, ("add_edge",)))


def test_relation_is_not_symmetric():
    # CHAIN3 -> TWO by removing its vertex, but TWO's neighbours (add a vertex keeps the
    # existing input -> output edge) never include the plain chain.
    two_hash = TWO.hash()
    assert two_hash in {nb.hash() for nb in neighbours(CHAIN3)}
    assert CHAIN3.hash() not in {nb.hash() for nb in neighbours(TWO)}


def test_no_self_and_unique(structure_rows):
    rng = np.random.default_rng(3)
    table = set(structure_rows["module_hash"])
    for r in rng.choice(len(structure_rows["module_hash"]), size=60, replace=False):
        cell = Cell.from_table(structure_rows["adjacency"][r], structure_rows["operations"][r])
        hashes = [nb.hash() for nb in neighbours(cell)]
        assert cell.hash() not in hashes
        assert len(hashes) == len(set(hashes))
        assert set(hashes) <= table  # every neighbour is a cell of the space


def test_pack_round_trip_and_all_edits():
    for cell in (CHAIN3, CHAIN4, TWO, DIAMOND, FIG2, INCEPTION):
        assert unpack(pack(cell)) == cell
    total = sum(count(FIG2, k) for k in EDITS)
    assert len(neighbours(FIG2)) == total  # different edits never produce the same cell here


def test_unknown_edit_kind():
    with pytest.raises(NasBenchError, match="unknown edit"):
        neighbours(CHAIN3, ("swap",))
