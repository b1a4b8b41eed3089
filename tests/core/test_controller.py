import json

import numpy as np
import pytest

from rachel.core.controller import Controller, ControllerSettings, RewardBaseline
from rachel.core.errors import ConfigError
from rachel.core.search_space import NUM_WIDTH_TOKENS

pytest.importorskip("tensorflow")


def test_same_seed_same_proposals():
    a = Controller(ControllerSettings(seed=11, max_new_layers=2))
    b = Controller(ControllerSettings(seed=11, max_new_layers=2))
    c = Controller(ControllerSettings(seed=12, max_new_layers=2))
    ids = ["x", "y", "z"]
    pa, pb, pc = a.propose(ids, 1.5), b.propose(ids, 1.5), c.propose(ids, 1.5)
    assert pa == pb
    assert pa != pc


def test_save_load_is_exact(tmp_path):
    a = Controller(ControllerSettings(seed=3, max_new_layers=2))
    proposals = a.propose(["p", "q"], 1.5)
    a.update({"p": -0.5, "q": -1.5})
    a.propose(["r", "s"], 1.4)  # pending decisions travel with the state
    a.save(tmp_path / "ctrl")
    b = Controller.load(tmp_path / "ctrl")
    assert b.pending == a.pending and b.updates == a.updates == 2
    assert b.baseline == a.baseline and a.baseline.count == 2  # baseline statistics too
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    # Same update and same next proposals from both: optimizer slots and RNG restored.
    a.update({"r": -0.2, "s": -0.9})
    b.update({"r": -0.2, "s": -0.9})
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=0, atol=1e-7)
    assert a.baseline == b.baseline
    assert a.propose(["t"], 1.3) == b.propose(["t"], 1.3)
    assert proposals  # sanity


def test_rewarded_token_becomes_more_likely():
    ctrl = Controller(ControllerSettings(seed=5, max_new_layers=1))
    before = ctrl.probabilities(1.0)
    ctrl.pending = {"good": [[1, 1, 100]], "bad": [[0, 0, 3]]}
    ctrl.pending_temperature = 1.0
    for _ in range(5):
        ctrl.pending = {"good": [[1, 1, 100]], "bad": [[0, 0, 3]]}
        ctrl.update({"good": 1.0, "bad": -1.0})
    after = ctrl.probabilities(1.0)
    assert after[0][1] > before[0][1]  # presence = 1
    assert after[1][1] > before[1][1]  # residual
    assert after[2][100] > before[2][100]  # width token 100


def test_width_cap_masks_tokens_and_temperature_flattens():
    ctrl = Controller(ControllerSettings(seed=1, max_new_layers=1, max_width=48))
    probs = ctrl.probabilities(1.5)[2]
    assert probs.shape == (NUM_WIDTH_TOKENS,)
    assert probs[48 - 16 + 1 :].sum() < 1e-12  # widths above 48 cannot be sampled
    hot, cold = ctrl.probabilities(5.0)[2][:33], ctrl.probabilities(0.2)[2][:33]
    assert hot.max() < cold.max()  # a higher temperature flattens the distribution
    for tokens in ctrl.propose([f"c{i}" for i in range(20)], 1.5).values():
        assert tokens[0].width_token <= 48 - 16


def test_random_controller_is_uniform_and_does_not_learn(tmp_path):
    ctrl = Controller(ControllerSettings(kind="random", seed=2, max_new_layers=2, max_width=64))
    probs = ctrl.probabilities(1.0)
    assert probs[0].tolist() == [0.5, 0.5]
    ctrl.propose(["a", "b"], 1.5)
    assert ctrl.update({"a": 1.0, "b": 0.0})["episodes"] == 2
    ctrl.save(tmp_path / "r")
    assert Controller.load(tmp_path / "r").settings.kind == "random"


def _weights(ctrl):
    return [v.numpy().copy() for v in ctrl.trainable_variables]


def test_random_ablation_draws_from_its_own_stream():
    ids = [f"c{i}" for i in range(4)]
    for seed in (0, 7):
        rl = Controller(ControllerSettings(seed=seed, max_width=32))
        rnd = Controller(ControllerSettings(kind="random", seed=seed, max_width=32))
        rl_tokens = [t.as_tuple() for p in rl.propose(ids, 1.5).values() for t in p]
        rnd_tokens = [t.as_tuple() for p in rnd.propose(ids, 1.5).values() for t in p]
        same = sum(a == b for a, b in zip(rl_tokens, rnd_tokens, strict=True))
        assert same <= 2, f"seed {seed}: {same} of {len(rl_tokens)} decision steps identical"
    again = Controller(ControllerSettings(kind="random", seed=7, max_width=32))
    assert [t.as_tuple() for p in again.propose(ids, 1.5).values() for t in p] == rnd_tokens


def test_update_steps_once_per_candidate_in_sorted_id_order():
    rewards = {"it000-c02": -0.95, "it000-c00": -1.0, "it000-c01": -0.9}
    together = Controller(ControllerSettings(seed=4, max_new_layers=2))
    proposals = together.propose(sorted(rewards), 1.5)
    stats = together.update(dict(reversed(list(rewards.items()))))  # dict order is ignored
    assert stats["episodes"] == 3 and together.updates == 3

    one_by_one = Controller(ControllerSettings(seed=4, max_new_layers=2))
    assert one_by_one.propose(sorted(rewards), 1.5) == proposals
    pending = dict(one_by_one.pending)
    for cid in sorted(rewards):
        one_by_one.pending = {cid: pending[cid]}
        one_by_one.update({cid: rewards[cid]})
    for wa, wb in zip(_weights(together), _weights(one_by_one), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-6)

    # A different order is a different sequence of steps, hence different weights.
    reversed_order = Controller(ControllerSettings(seed=4, max_new_layers=2))
    reversed_order.propose(sorted(rewards), 1.5)
    pending = dict(reversed_order.pending)
    for cid in sorted(rewards, reverse=True):
        reversed_order.pending = {cid: pending[cid]}
        reversed_order.update({cid: rewards[cid]})
    differs = [
        np.abs(wa - wb).max()
        for wa, wb in zip(_weights(together), _weights(reversed_order), strict=True)
    ]
    assert max(differs) > 1e-5


def _run(settings, offset, iterations=3):
    ctrl = Controller(settings)
    for it in range(iterations):
        ids = [f"it{it:03d}-c{k:02d}" for k in range(3)]
        ctrl.propose(ids, 1.5)
        ctrl.update({cid: offset - 1.0 + 0.02 * k + 0.01 * it for k, cid in enumerate(ids)})
    return _weights(ctrl)


@pytest.mark.parametrize("advantage", ["ema", "ema_critic"])
def test_a_common_offset_of_the_rewards_changes_nothing(advantage):
    settings = ControllerSettings(seed=6, max_new_layers=2, advantage=advantage)
    for wa, wb in zip(_run(settings, 0.0), _run(settings, 5.0), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-5)


def test_the_papers_raw_critic_is_moved_by_a_common_offset():
    """The check above can fail: with raw rewards, +5 everywhere changes the learning."""
    settings = ControllerSettings(seed=6, max_new_layers=2, advantage="critic")
    differs = [
        np.abs(a - b).max() for a, b in zip(_run(settings, 0.0), _run(settings, 5.0), strict=True)
    ]
    assert max(differs) > 1e-3


def test_reward_baseline_is_offset_and_scale_invariant():
    rewards = np.random.default_rng(0).normal(-1.0, 0.05, 12)
    base = RewardBaseline(0.9, 1e-3)
    advantages = [base.advantage(r) for r in rewards]
    assert advantages[0] == 0.0  # nothing to compare the first reward with
    assert abs(advantages[1]) == pytest.approx(1.0)  # debiased: +-1 for the second
    shifted = RewardBaseline(0.9, 1e-3)
    scaled = RewardBaseline(0.9, 1e-3)
    np.testing.assert_allclose([shifted.advantage(r + 3.0) for r in rewards], advantages, atol=1e-9)
    np.testing.assert_allclose([scaled.advantage(10 * r) for r in rewards], advantages, atol=1e-9)
    # The debiased mean is a weighted mean of the rewards seen so far.
    weights = 0.9 ** np.arange(11, -1, -1)
    assert base.mean == pytest.approx(np.sum(weights * rewards) / weights.sum())
    # Equal rewards: zero advantage, the floor keeps the scale away from 0.
    flat = RewardBaseline(0.9, 1e-3)
    assert [flat.advantage(-0.5) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert flat.scale == 1e-3


def test_failed_candidates_are_dropped_from_the_update():
    ctrl = Controller(ControllerSettings(seed=8, max_new_layers=1))
    ctrl.propose(["a", "b", "c"], 1.5)
    stats = ctrl.update({"a": -1.0, "b": float("nan")})  # b diverged, c failed (no reward)
    assert stats["episodes"] == 1 and ctrl.updates == 1 and ctrl.pending == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "bandit"},
        {"advantage": "gae"},
        {"baseline_decay": 1.0},
        {"learning_rate": 0.0},
        {"max_new_layers": 0},
    ],
)
def test_bad_settings_are_refused_with_a_hint(bad):
    with pytest.raises(ConfigError) as err:
        ControllerSettings(**bad)
    assert err.value.hint


def test_a_format_1_state_still_loads(tmp_path):
    """States written before the baseline existed load with empty baseline statistics."""
    a = Controller(ControllerSettings(seed=9, max_new_layers=1, learning_rate=1e-3))
    a.propose(["x"], 1.5)
    a.save(tmp_path / "c")
    state = json.loads((tmp_path / "c" / "controller.json").read_text())
    state["format"] = 1
    del state["baseline"]
    for key in ("advantage", "baseline_decay", "scale_floor"):
        del state["settings"][key]
    (tmp_path / "c" / "controller.json").write_text(json.dumps(state))
    b = Controller.load(tmp_path / "c")
    assert b.baseline.count == 0 and b.settings.learning_rate == 1e-3
    assert b.pending == a.pending
    assert b.update({"x": -1.0})["episodes"] == 1
