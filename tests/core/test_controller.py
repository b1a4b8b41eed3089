import numpy as np
import pytest

from rachel.core.controller import Controller, ControllerSettings
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
    assert b.pending == a.pending and b.updates == a.updates
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    # Same update and same next proposals from both: optimizer slots and RNG restored.
    a.update({"r": -0.2, "s": -0.9})
    b.update({"r": -0.2, "s": -0.9})
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=0, atol=1e-7)
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
