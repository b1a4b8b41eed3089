import pytest

from rachel.core.config import BUDGETS, SearchConfig, budget_config
from rachel.core.errors import ConfigError


def test_paper_defaults():
    cfg = budget_config("paper")
    assert (cfg.candidates, cfg.iterations, cfg.max_new_layers) == (4, 10, 3)
    assert (cfg.patience, cfg.min_delta, cfg.safety_tolerance) == (10, 1e-3, 0.01)
    assert (cfg.ensemble_epochs, cfg.final_ensemble_epochs) == (10, 50)
    assert cfg.temperature_at(0) == 1.5
    assert cfg.temperature_at(2) == pytest.approx(1.5 * 0.95**2)


def test_overrides_and_roundtrip():
    cfg = budget_config("smoke", seed=7, epochs=None, iterations=5)
    assert cfg.seed == 7 and cfg.iterations == 5 and cfg.epochs == BUDGETS["smoke"]["epochs"]
    assert SearchConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"iterations": 0}, "iterations"),
        ({"max_width": 300}, "max_width"),
        ({"controller": "evolution"}, "controller"),
        ({"train_size": -5}, "train_size"),
        ({"xla": "maybe"}, "xla"),
        ({"bogus_knob": 1}, "unknown setting"),
    ],
)
def test_bad_config_fails_early(overrides, message):
    with pytest.raises(ConfigError, match=message):
        budget_config("smoke", **overrides)


def test_unknown_budget():
    with pytest.raises(ConfigError, match="budget"):
        budget_config("huge")
