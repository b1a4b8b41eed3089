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


def test_each_setting_is_defined_once_and_reaches_the_modules():
    """Help, CLI flag, validation and the controller/trainer settings all derive from the
    one definition: a module field nobody feeds, or a setting without help, fails here."""
    import dataclasses

    from rachel.core import steps
    from rachel.core.config import module_settings
    from rachel.core.controller import ControllerSettings
    from rachel.core.training import TrainingSettings

    cfg = budget_config("smoke", seed=11, max_width=48, controller_learning_rate=0.02)
    assert {f.name for f in dataclasses.fields(ControllerSettings)} == set(
        module_settings(cfg, "controller")
    )
    ctrl = steps.controller_settings(cfg)
    assert (ctrl.seed, ctrl.max_width, ctrl.learning_rate) == (11, 48, 0.02)
    planner_set = {"seed", "augmentation", "time_limit", "fill_time", "replans", "cut"}
    assert {f.name for f in dataclasses.fields(TrainingSettings)} - planner_set == set(
        module_settings(cfg, "training")
    )
    for f in dataclasses.fields(SearchConfig):
        assert f.metadata["help"], f.name


def test_every_setting_has_a_flag_that_reaches_the_config():
    import argparse
    import dataclasses

    from rachel.cli.options import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = {a.dest: a.option_strings for a in parser._actions}
    for f in dataclasses.fields(SearchConfig):
        assert f.name in flags, f"no flag for {f.name}"
    args = parser.parse_args(
        [
            "--ensemble-solver",
            "lbfgs",
            "--no-ensemble",
            "--pool-first",
            "--train-threads",
            "2",
            "--time-budget",
            "0",
        ]
    )
    cfg = config_from_args(args)
    assert (cfg.ensemble_solver, cfg.ensemble, cfg.pool_first, cfg.train_threads) == (
        "lbfgs",
        False,
        True,
        2,
    )
    assert cfg.time_budget_seconds is None  # 0 = no budget


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"seed": 1.5}, "seed must be int, got 1.5"),
        ({"max_width": 32.5}, "max_width must be int, got 32.5"),
        ({"temperature_decay": 1.5}, "temperature_decay must be <= 1, got 1.5"),
        ({"ensemble_solver": "sgd"}, "ensemble_solver must be one of slsqp, lbfgs, adam"),
    ],
)
def test_a_wrong_type_is_the_same_one_line_error_as_a_wrong_value(overrides, message):
    with pytest.raises(ConfigError) as err:
        budget_config("smoke", **overrides)
    assert message in str(err.value) and "\n" not in str(err.value)
