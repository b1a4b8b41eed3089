"""Cell / ModelSpec: validation, pruning, official-compatible attributes."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core.errors import NasBenchError, OffSpaceError
from rachel.core.nasbench.cell import CONV1X1, CONV3X3, MAXPOOL3X3, Cell, ModelSpec

C3, C1, MP = CONV3X3, CONV1X1, MAXPOOL3X3


def test_valid_cell_is_frozen_and_normalised(inception):
    matrix, ops, _ = inception
    cell = Cell(np.array(matrix), ops)
    assert cell.matrix == tuple(tuple(r) for r in matrix)
    assert cell.ops == tuple(ops)
    assert cell.num_vertices == 7 and cell.num_edges == 9
    with pytest.raises(AttributeError):
        cell.ops = ()  # type: ignore[misc]
    arr = cell.array()
    assert arr.dtype == np.uint8 and not arr.flags.writeable
    assert hash(cell) == hash(Cell(matrix, ops)) and cell == Cell(matrix, ops)


def test_table_round_trip(inception):
    matrix, ops, _ = inception
    cell = Cell(matrix, ops)
    assert Cell.from_table(cell.adjacency_string(), ops) == cell
    small = Cell([[0, 1], [0, 0]], ["input", "output"])
    assert small.adjacency_string() == "01" + "0" * 47
    assert Cell.from_table(small.adjacency_string(), ["input", "output"]) == small


@pytest.mark.parametrize(
    ("matrix", "ops", "fragment"),
    [
        ([[0, 1, 0], [0, 0, 1]], ["input", C3, "output"], "square"),
        ([0, 1, 0], ["input", C3, "output"], "square"),
        ([[0, 1], [0, 0, 1]], ["input", "output"], "rectangular"),
        ([[0, 2, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"], "0 and 1"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "output"], "ops for a 3x3"),
        ([[0, 1, 0], [0, 0, 1], [1, 0, 0]], ["input", C3, "output"], "upper triangular"),
        ([[1, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"], "upper triangular"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "unknown op"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, "output"], "first op"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "output", "output"], "middle"),
    ],
)
def test_malformed_raises_nasbench_error(matrix, ops, fragment):
    for build in (Cell, Cell.from_matrix):
        with pytest.raises(NasBenchError, match=fragment) as info:
            build(matrix, ops)
        assert not isinstance(info.value, OffSpaceError)
        assert info.value.hint


def test_off_space_too_many_vertices_and_edges():
    n = 8
    chain = np.eye(n, k=1, dtype=int)
    with pytest.raises(OffSpaceError, match="8 vertices"):
        Cell.from_matrix(chain, ["input"] + [C3] * 6 + ["output"])
    dense = np.triu(np.ones((6, 6), dtype=int), k=1)  # 15 edges
    with pytest.raises(OffSpaceError, match="15 edges"):
        Cell.from_matrix(dense, ["input"] + [C3] * 4 + ["output"])


def test_disconnected_input_output():
    m = [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    spec = ModelSpec(m, ["input", C3, "output"])
    assert spec.valid_spec is False and spec.matrix is None and spec.ops is None
    assert not spec.is_valid()
    with pytest.raises(OffSpaceError, match="not connected"):
        Cell.from_matrix(m, ["input", C3, "output"])


def test_pruning_matches_official_rule():
    # vertex 2 has no out-edge (dangling), vertex 3 has no in-edge: both pruned.
    m = [
        [0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    ops = ["input", C3, C1, MP, "output"]
    spec = ModelSpec(m, ops)
    assert spec.valid_spec
    assert spec.matrix.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec.ops == ["input", C3, "output"]
    assert spec.original_matrix.tolist() == m and spec.original_ops == ops
    cell = Cell.from_matrix(m, ops)
    assert cell == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    with pytest.raises(NasBenchError, match="not on an input -> output path"):
        Cell(m, ops)


def test_pruning_makes_off_space_graph_valid():
    # 8 vertices before pruning, 7 after: in the space (the official check is on the pruned graph)
    m = np.zeros((8, 8), dtype=int)
    for i in range(6):
        m[i, i + 1] = 1
    m[5, 7] = 1  # vertex 6 dangles
    ops = ["input"] + [C3] * 6 + ["output"]
    m[6, 6] = 0
    spec = ModelSpec(m, ops)
    assert spec.is_valid()
    assert Cell.from_matrix(m, ops).num_vertices == 7


def test_model_spec_hash_matches_cell(inception):
    matrix, ops, expected = inception
    spec = ModelSpec(matrix, ops)
    assert spec.hash_spec(["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]) == expected
    assert Cell(matrix, ops).hash() == expected
    assert spec.to_cell() == Cell(matrix, ops)
