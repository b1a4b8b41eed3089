"""Prioritised replay and n-step returns with partial episode bootstrapping."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core.errors import ConfigError
from rachel.core.nasbench.replay import Batch, NStepAccumulator, PrioritizedReplay


def batch(n: int, start: int = 0) -> Batch:
    ids = np.arange(start, start + n, dtype=np.int32)[:, None].repeat(3, axis=1)
    return Batch(
        ids, np.zeros(n, np.int64), np.arange(n, dtype=np.float32), np.full(n, 0.9, np.float32), ids
    )


def test_sampling_is_proportional_to_priority_alpha():
    r = PrioritizedReplay(capacity=8, tokens=3, alpha=0.6, beta=0.4, eps=0.0, seed=0)
    r.add(batch(4))
    r.update_priorities(np.arange(4), np.array([1.0, 2.0, 4.0, 8.0]))
    counts = np.zeros(4)
    for _ in range(400):
        b, idx, w = r.sample(16)
        np.add.at(counts, idx, 1)
    expected = np.array([1, 2, 4, 8]) ** 0.6
    np.testing.assert_allclose(counts / counts.sum(), expected / expected.sum(), atol=0.02)
    # importance weights (N P(i))^-beta, normalised by the batch maximum
    b, idx, w = r.sample(64)
    p = expected[idx] / expected.sum()
    np.testing.assert_allclose(w, (4 * p) ** -0.4 / ((4 * p) ** -0.4).max(), rtol=1e-5)
    assert b.obs_ids[:, 0].tolist() == idx.tolist()


def test_ring_buffer_capacity_and_new_items_get_max_priority():
    r = PrioritizedReplay(capacity=5, tokens=3, seed=1)
    r.add(batch(3))
    r.update_priorities(np.array([0]), np.array([50.0]))
    r.add(batch(4, start=10))  # wraps: overwrites slots 3, 4, 0, 1
    assert len(r) == 5 and r.added == 7
    assert sorted(r.obs_ids[:, 0].tolist()) == [2, 10, 11, 12, 13]
    leaf = r.tree[r._leaves : r._leaves + 5]
    assert leaf[0] == pytest.approx((50.0 + 1e-6) ** 0.6)  # new item: max priority so far
    assert r.tree[1] == pytest.approx(leaf.sum())
    with pytest.raises(ConfigError):
        PrioritizedReplay(capacity=0, tokens=3)


def _ids(v: int) -> np.ndarray:
    return np.array([v, -1], dtype=np.int64)


def test_n_step_returns_and_partial_episode_bootstrapping():
    g = 0.5
    acc = NStepAccumulator(num_envs=2, n=3, gamma=g)
    none = np.zeros(2, bool)
    out = []
    # env 0 runs 4 steps then is TRUNCATED; env 1 TERMINATES at its 2nd step
    for t in range(4):
        term = np.array([False, t == 1])
        trunc = np.array([t == 3, False])
        final = {}
        if t == 3:
            final[0] = _ids(100)
        if t == 1:
            final[1] = _ids(200)
        b = acc.step(
            np.stack([_ids(t), _ids(10 + t)]),
            np.array([1, 2]),
            np.array([1.0, 10.0]),
            np.stack([_ids(t + 1), _ids(11 + t)]),
            term,
            trunc if t < 4 else none,
            final,
        )
        if b is not None:
            out.append(b)
    got = Batch.concat(out)
    rows = {
        (int(i[0]), float(d)): (float(r), int(n[0]))
        for i, r, d, n in zip(got.obs_ids, got.returns, got.discounts, got.next_ids, strict=True)
    }
    # env 1 terminated: both pending transitions have discount 0 (no bootstrap)
    assert rows[(10, 0.0)] == (10.0 + g * 10.0, 200) and rows[(11, 0.0)] == (10.0, 200)
    # env 0: a full 3-step transition from t=0 bootstrapping from t=3 with gamma^3
    assert rows[(0, g**3)] == (1 + g + g * g, 3)
    # truncated at t=3: the pending t=1..3 bootstrap from the final obs with gamma^k
    assert rows[(1, g**3)] == (1 + g + g * g, 100)
    assert rows[(2, g**2)] == (1 + g, 100) and rows[(3, g)] == (1.0, 100)
    assert len(got) == 6
