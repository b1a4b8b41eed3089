"""The Q-network, its masks and the agent settings (tiny sizes, real Keras)."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core.errors import ConfigError
from rachel.core.nasbench.agent import (
    MASKED_Q,
    AgentConfig,
    build_q_network,
    epsilon_greedy,
    masked_argmax,
    observation_from_ids,
)

TINY = AgentConfig(
    max_neighbours=6,
    latent=16,
    mlp_dim=32,
    heads=2,
    transformer_layers=1,
    learning_starts=64,
    batch_size=16,
)


def test_epsilons_follow_apex():
    eps = AgentConfig(num_actors=8).epsilons()
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert np.all(np.diff(eps) < 0)
    assert AgentConfig(num_actors=1).epsilons().tolist() == pytest.approx([0.4])


def test_paper_defaults_and_ablations_are_configuration():
    c = AgentConfig()
    assert (c.gamma, c.learning_rate, c.n_step, c.buffer_capacity) == (0.9, 4e-5, 3, 25_000)
    assert (c.priority_alpha, c.priority_beta, c.episode_length, c.max_neighbours) == (
        0.6,
        0.4,
        16,
        50,
    )
    assert AgentConfig.ablation("gamma", 0.99).gamma == 0.99
    assert AgentConfig.ablation("neighbours", 100).max_neighbours == 100
    assert AgentConfig.ablation("shaping", None).shaping is None
    assert AgentConfig.from_json(c.to_json()) == c
    with pytest.raises(ConfigError, match="unknown agent setting"):
        AgentConfig.from_json({"gama": 0.9})
    with pytest.raises(ConfigError, match="divisible"):
        AgentConfig(latent=30, heads=4)
    with pytest.raises(ConfigError, match="learning_starts"):
        AgentConfig(learning_starts=8, batch_size=64)
    with pytest.raises(ConfigError):
        AgentConfig.ablation("depth", 3)


def test_observation_from_ids():
    enc = np.eye(4, 56, dtype=np.uint8)
    obs, mask = observation_from_ids(enc, np.array([[2, 1, -1], [0, -1, -1]]))
    assert mask.tolist() == [[1, 1, 0], [1, 0, 0]]
    assert obs[0, 0, 2] == 1 and obs[0, 1, 1] == 1 and not obs[0, 2].any() and not obs[1, 1:].any()


def test_masked_choices_never_pick_invalid_actions():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 7))
    q[:, 5] = 1e6  # the best value is on an invalid action
    mask = (rng.random((500, 7)) < 0.5).astype(np.int8)
    mask[:, 0] = 1
    mask[:, 5] = 0
    greedy = masked_argmax(q, mask)
    assert mask[np.arange(500), greedy].all()
    for eps in (0.0, 0.5, 1.0):
        a = epsilon_greedy(q, mask, eps, rng)
        assert mask[np.arange(500), a].all()
    # fully random choices cover the valid actions
    a = epsilon_greedy(q, mask, 1.0, np.random.default_rng(1))
    assert len(np.unique(a[mask[:, 1:].sum(1) >= 3])) >= 4


@pytest.fixture(scope="module")
def net():
    return build_q_network(TINY, seed=0)


def test_network_shapes_masks_and_duelling_mean(net):
    rng = np.random.default_rng(0)
    t = TINY.max_neighbours + 1
    obs = (rng.random((5, t, 56)) < 0.3).astype(np.float32)
    mask = np.ones((5, t), dtype=np.int8)
    mask[:, 4:] = 0
    q = np.asarray(net.predict_on_batch([obs, mask]))
    assert q.shape == (5, t)
    assert np.all(q[:, 4:] == MASKED_Q) and np.all(q[:, :4] > MASKED_Q / 2)
    # padded tokens are masked as attention keys: their content cannot change valid Q-values
    other = obs.copy()
    other[:, 4:] = 1.0
    np.testing.assert_allclose(
        np.asarray(net.predict_on_batch([other, mask]))[:, :4], q[:, :4], rtol=1e-5, atol=1e-5
    )
    # duelling: the mean over VALID actions of (Q - V) is 0, so the valid Q average is V
    import keras

    head = net.get_layer("duelling_head")
    assert head.actions == t
    h = np.asarray(
        keras.Model(net.inputs, net.get_layer("final_norm").output).predict_on_batch([obs, mask])
    )[:, 0]
    value = np.asarray(head.val(h)).reshape(-1)
    np.testing.assert_allclose(q[:, :4].mean(axis=1), value, rtol=1e-4, atol=1e-4)
    assert len(net.get_layer("positions").get_weights()[0]) == t


def test_network_is_seeded():
    a = build_q_network(TINY, seed=3).get_weights()
    b = build_q_network(TINY, seed=3).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
