"""SearchSpace protocol, encoding layout and the quasi-uniform sampler."""

from __future__ import annotations

import numpy as np
from scipy import stats

from rachel.core.nasbench.cell import CONV1X1, CONV3X3, MAXPOOL3X3, Cell
from rachel.core.nasbench.space import (
    ENCODING_SIZE,
    NasBench101Space,
    SearchSpace,
    sample_arrays,
)


def test_protocol_and_sizes():
    space = NasBench101Space()
    assert isinstance(space, SearchSpace)
    assert space.name == "nasbench101" and space.observation_size == ENCODING_SIZE == 56


def test_encoding_layout():
    # 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3 with ops conv1x1, maxpool
    cell = Cell(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", CONV1X1, MAXPOOL3X3, "output"],
    )
    enc = NasBench101Space().encode(cell)
    assert enc.dtype == np.float32 and enc.shape == (56,)
    adj = enc[:21]
    # in-edges of vertex j at positions j*(j-1)/2 + i
    expected = np.zeros(21)
    for i, j in [(0, 1), (0, 2), (1, 3), (2, 3)]:
        expected[j * (j - 1) // 2 + i] = 1
    np.testing.assert_array_equal(adj, expected)
    labels = enc[21:].reshape(7, 5)
    # one-hot over (input, conv3x3, conv1x1, maxpool3x3, output); vertices 4..6 are padding
    np.testing.assert_array_equal(labels.argmax(axis=1)[:4], [0, 2, 3, 4])
    assert labels.sum() == 4 and not labels[4:].any()


def test_sampler_is_uniform_in_vertices_and_valid():
    rng = np.random.default_rng(0)
    adj, labels, nv = sample_arrays(rng, 6000)
    counts = np.bincount(nv, minlength=8)[2:]
    assert stats.chisquare(counts).pvalue > 1e-3
    space = NasBench101Space()
    for i in range(300):
        n = int(nv[i])
        ops = ["input"] + [(CONV3X3, CONV1X1, MAXPOOL3X3)[x] for x in labels[i, 1 : n - 1]]
        cell = Cell(adj[i, :n, :n], [*ops, "output"])  # raises if not a full, valid cell
        assert space.is_valid(cell)
    assert (adj.sum(axis=(1, 2)) <= 9).all()


def test_sample_is_seeded():
    space = NasBench101Space()
    a = [space.sample(np.random.default_rng(5)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    assert space.hash(a[0]) == a[0].hash()


def test_is_valid_on_specs():
    space = NasBench101Space()
    assert space.is_valid(([[0, 1], [0, 0]], ["input", "output"]))
    assert not space.is_valid(([[0, 0], [0, 0]], ["input", "output"]))
    assert not space.is_valid(([[0, 1], [0, 0]], ["input"]))


def test_no_tensorflow_import():
    import subprocess
    import sys

    code = (
        "import sys; import rachel.core.nasbench.baselines, rachel.core.nasbench.environment; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
