"""The wall-clock planner and the cost model: pure functions, no training."""

import pytest

from rachel.core import planner
from rachel.core.errors import ConfigError


def _decide(iteration=1, **kw):
    args = dict(
        candidates=4,
        workers=2,
        budget_seconds=600.0,
        elapsed_seconds=100.0,
        candidate_seconds=[[50.0, 60.0, 40.0, 55.0]],
        reserve_seconds=10.0,
    )
    return planner.decide(iteration, **{**args, **kw})


def test_no_budget_always_continues_with_the_configured_candidates():
    d = _decide(budget_seconds=None, elapsed_seconds=1e9)
    assert (d.action, d.candidates, d.estimate_seconds) == ("continue", 4, None)


def test_iteration_zero_shares_the_budget_among_its_rounds():
    d = _decide(iteration=0, candidate_seconds=[], elapsed_seconds=0.0, overhead_seconds=5.0)
    # (600 - 10) / 2 rounds - 5 s overhead
    assert (d.action, d.candidates, d.time_limit) == ("continue", 4, pytest.approx(290.0))
    capped = _decide(iteration=0, candidate_seconds=[], max_candidate_seconds=100.0)
    assert capped.time_limit == 100.0


def test_continue_when_the_next_iteration_fits():
    d = _decide(overhead_seconds=5.0)  # left 490 s over 2 rounds: 245 s >= 60 s each
    assert (d.action, d.candidates) == ("continue", 4)
    assert d.estimate_seconds == pytest.approx(120.0) and d.time_limit == pytest.approx(240.0)


def test_fewer_candidates_when_the_share_gets_too_small():
    # left 50 s: 2 rounds give 25 s (< half of the 60 s estimate), one round 50 s
    d = _decide(elapsed_seconds=540.0, overhead_seconds=5.0)
    assert (d.action, d.candidates, d.time_limit) == ("continue", 2, pytest.approx(45.0))


def test_with_a_finish_an_iteration_runs_only_if_its_candidates_get_their_whole_estimate():
    from rachel.core.config import budget_config

    # left 50 s: one round of 50 s is under the 60-s estimate, but over half of it
    half = _decide(elapsed_seconds=540.0, overhead_seconds=5.0, min_share=planner.MIN_SHARE)
    assert (half.action, half.candidates) == ("continue", 2)
    whole = _decide(elapsed_seconds=540.0, overhead_seconds=5.0, min_share=1.0)
    assert (whole.action, whole.candidates) == ("stop", 0)  # the finish takes the 50 s
    assert _decide(elapsed_seconds=520.0, min_share=1.0).action == "continue"  # 70 s >= 60 s
    small = budget_config("small")
    assert planner.min_share(small) == planner.MIN_SHARE_WITH_FINISH == 1.0
    assert planner.min_share(small.replace(finish_epochs=0)) == planner.MIN_SHARE


def test_stop_when_not_even_one_round_fits():
    d = _decide(elapsed_seconds=570.0)  # left 20 s < 30 s
    assert (d.action, d.candidates) == ("stop", 0)
    assert "stop before iteration 1" in d.describe()


def test_the_last_iterations_overhead_is_kept_for_the_next_one():
    # left 90 s, less 35 s of task start-ups: one round of 55 s, not two of 45 s
    assert _decide(elapsed_seconds=500.0, overhead_seconds=5.0).candidates == 4
    d = _decide(elapsed_seconds=500.0, overhead_seconds=5.0, iteration_overhead_seconds=35.0)
    assert (d.action, d.candidates, d.time_limit) == ("continue", 2, pytest.approx(50.0))
    assert d.overhead_seconds == 35.0 and "+ 35 s overhead" in d.describe()  # recorded
    assert planner.Decision.from_json(d.to_json()).overhead_seconds == 35.0
    assert _decide(elapsed_seconds=540.0, iteration_overhead_seconds=35.0).action == "stop"


def test_growth_between_iterations_is_extrapolated_and_clamped():
    seconds = [[10.0, 20.0], [30.0, 40.0]]  # slowest 20 -> 40: x2
    assert planner.estimate_iteration(seconds, 2, 2) == pytest.approx(80.0)
    assert planner.estimate_iteration([[10.0], [100.0]], 1, 1) == pytest.approx(200.0)  # cap 2
    assert planner.estimate_iteration([[40.0], [20.0]], 1, 1) == pytest.approx(20.0)  # >= 1


def test_recorded_decisions_are_replayed_not_measured():
    first = _decide(elapsed_seconds=570.0)  # measured: stop
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
    stop = _decide(elapsed_seconds=570.0).to_json()
    go = _decide(elapsed_seconds=540.0).to_json()
    assert planner.keep_searching([{"next": go}]) and not planner.keep_searching([{"next": stop}])


def test_schedules_load_from_a_plan_and_bad_ones_are_refused():
    plan = {"schedules": {"it000-c00": {"epochs": 2, "examples": 5000}}}
    assert planner.load_schedules(plan) == {"it000-c00": {"epochs": 2, "examples": 5000}}
    assert planner.load_schedules(None) == {}
    with pytest.raises(ConfigError, match="schedule"):
        planner.load_schedules({"schedules": {"it000-c00": {"epochs": 2}}})
    replanned = {
        "epochs": 3,
        "examples": 900,
        "replans": [{"after": 1, "epochs": 4, "examples": 800}],
    }
    assert planner.load_schedules({"schedules": {"finish": replanned}}) == {"finish": replanned}
    with pytest.raises(ConfigError, match="schedule"):
        planner.load_schedules({"schedules": {"finish": {**replanned, "replans": [{"after": 1}]}}})
    cut = {**replanned, "cut": {"epoch": 2, "batches": 5}}
    assert planner.load_schedules({"schedules": {"it001-c00": cut}}) == {"it001-c00": cut}
    with pytest.raises(ConfigError, match="schedule"):
        planner.load_schedules({"schedules": {"it001-c00": {**cut, "cut": {"epoch": 2}}}})


def test_without_a_budget_no_candidate_gets_a_time_limit():
    # the plan then depends only on the configuration, even where a preset sets a cap
    d = _decide(budget_seconds=None, max_candidate_seconds=60.0)
    assert d.time_limit is None and d.action == "continue"


def test_a_plan_replays_only_on_its_own_configuration():
    from rachel.core.config import budget_config

    config = budget_config("smoke", seed=3)
    summary = planner.plan_summary(config)
    plan = {**summary, "decisions": [], "schedules": {}}
    planner.check_plan(plan, summary)  # its own configuration: fine
    other = planner.plan_summary(config.replace(max_width=48))  # not in the schedule fields
    with pytest.raises(ConfigError, match="config_fingerprint"):
        planner.check_plan(plan, other)
    with pytest.raises(ConfigError, match="another configuration"):
        planner.check_plan({"decisions": []}, summary)  # no fingerprint: not a plan.json
    with pytest.raises(ConfigError, match="not JSON"):
        planner.load_plan("{not json")
