"""The wall-clock planner and the cost model: pure functions, no training."""

import pytest

from rachel.core import cost_model, planner
from rachel.core.errors import ConfigError
from rachel.core.search_space import ArchitectureSpec, BlockType, Layer


def _decide(iteration=1, **kw):
    args = dict(candidates=4, workers=2, budget_seconds=600.0, elapsed_seconds=100.0,
                candidate_seconds=[[50.0, 60.0, 40.0, 55.0]], reserve_seconds=10.0)
    return planner.decide(iteration, **{**args, **kw})


def test_no_budget_always_continues_with_the_configured_candidates():
    d = _decide(budget_seconds=None, elapsed_seconds=1e9)
    assert (d.action, d.candidates, d.estimate_seconds) == ("continue", 4, None)


def test_continue_when_the_next_iteration_fits():
    d = _decide()  # 2 rounds x 60 s = 120 s; 100 + 120 + 10 <= 600
    assert (d.action, d.candidates) == ("continue", 4)
    assert d.estimate_seconds == pytest.approx(120.0)


def test_fewer_candidates_when_only_one_round_fits():
    d = _decide(elapsed_seconds=480.0)  # 4 candidates need 120 s, one round of 2 needs 60 s
    assert (d.action, d.candidates) == ("continue", 2)


def test_stop_when_not_even_one_round_fits():
    d = _decide(elapsed_seconds=540.0)
    assert (d.action, d.candidates) == ("stop", 0)
    assert "stop before iteration 1" in d.describe()


def test_growth_between_iterations_is_extrapolated_and_clamped():
    seconds = [[10.0, 20.0], [30.0, 40.0]]  # slowest 20 -> 40: x2
    assert planner.estimate_iteration(seconds, 2, 2) == pytest.approx(80.0)
    assert planner.estimate_iteration([[10.0], [100.0]], 1, 1) == pytest.approx(200.0)  # cap 2
    assert planner.estimate_iteration([[40.0], [20.0]], 1, 1) == pytest.approx(20.0)  # >= 1


def test_recorded_decisions_are_replayed_not_measured():
    first = _decide(elapsed_seconds=540.0)  # measured: stop
    plan = {"decisions": [first.to_json()]}
    recorded = planner.load_decisions(plan)
    replay = _decide(elapsed_seconds=0.0, recorded=recorded)  # would fit now, but replays
    assert replay.action == "stop" and replay.replayed
    assert _decide(iteration=2, recorded=recorded).action == "continue"  # not recorded


def test_a_malformed_plan_is_a_config_error():
    with pytest.raises(ConfigError, match="plan"):
        planner.load_decisions({"decisions": [{"iteration": 1}]})
    with pytest.raises(ConfigError, match="list of decisions"):
        planner.load_decisions({"decisions": "stop"})


def test_history_helpers_read_the_last_decision():
    stop = _decide(elapsed_seconds=540.0).to_json()
    go = _decide(elapsed_seconds=480.0).to_json()
    assert planner.planned_candidates([{"next": go}], 4) == 2
    assert planner.planned_candidates([], 4) == 4
    assert planner.keep_searching([{"next": go}]) and not planner.keep_searching([{"next": stop}])


def _spec(*layers):
    return ArchitectureSpec(tuple(Layer(BlockType(b), w) for b, w in layers))


def test_cost_grows_with_width_depth_and_resolution():
    shape = (28, 28, 1)
    small = cost_model.forward_macs(_spec((0, 32)), shape, 10)
    wide = cost_model.forward_macs(_spec((0, 64)), shape, 10)
    deep = cost_model.forward_macs(_spec((0, 32), (0, 64)), shape, 10)
    res = cost_model.forward_macs(_spec((1, 32)), shape, 10)  # keeps 28x28
    assert small < wide and small < deep and small < res
    fast = cost_model.forward_macs(_spec((0, 32), (0, 64)), shape, 10, pool_first=True)
    assert fast < deep


def test_schedule_caps_epochs_then_examples_deterministically():
    spec, shape = _spec((1, 64), (1, 64)), (28, 28, 1)
    free = cost_model.schedule(spec, shape, 10, epochs=4, examples=50_000, max_seconds=None,
                               threads=1)
    assert (free.epochs, free.examples, free.capped) == (4, 50_000, False)
    capped = cost_model.schedule(spec, shape, 10, epochs=4, examples=50_000,
                                 max_seconds=free.estimated_seconds / 2.5, threads=1)
    assert (capped.epochs, capped.examples, capped.capped) == (1, 50_000, True)
    tiny = cost_model.schedule(spec, shape, 10, epochs=4, examples=50_000,
                               max_seconds=free.estimated_seconds / 40, threads=1)
    assert tiny.epochs == 1 and 1000 <= tiny.examples < 50_000
    assert tiny == cost_model.schedule(spec, shape, 10, epochs=4, examples=50_000,
                                       max_seconds=free.estimated_seconds / 40, threads=1)
