"""The finish (rachel.core.finish): the planner's decision, the warm start, the ensemble it
writes, and rachel search with it (tiny real Fashion-MNIST)."""

import json

import numpy as np
import pytest
from helpers.tiny import TINY as SHARED
from helpers.tiny import UNTIMED

from rachel.core import finish, planner, steps
from rachel.core.config import budget_config
from rachel.core.ensemble_state import MODEL_FILE, VAL_LOGITS_FILE, EnsembleState
from rachel.core.errors import ConfigError

TINY = {**SHARED, "candidates": 1}


# ------------------------------------------------------------------------- planner
def test_without_a_budget_the_finish_trains_its_configured_epochs():
    decision = planner.decide_finish(3, budget_seconds=None, elapsed_seconds=500.0)
    assert (decision.action, decision.candidates, decision.time_limit) == ("continue", 1, None)


def test_the_finish_gets_what_the_budget_has_left():
    decision = planner.decide_finish(
        2, budget_seconds=600.0, elapsed_seconds=372.0, overhead_seconds=5.0
    )
    assert decision.action == "continue"
    assert decision.time_limit == pytest.approx(600 - 372 - planner.RESERVE_SECONDS - 5.0)


def test_no_finish_without_the_minimum_time_left():
    elapsed = 600.0 - planner.RESERVE_SECONDS - 5.0 - planner.MIN_FINISH_SECONDS + 1.0
    decision = planner.decide_finish(
        2, budget_seconds=600.0, elapsed_seconds=elapsed, overhead_seconds=5.0
    )
    assert (decision.action, decision.time_limit) == ("stop", None)


def test_a_recorded_finish_decision_is_replayed():
    recorded = planner.Decision(2, "continue", 1, 100.0, None, 600.0, 123.4)
    plan = {"finish": recorded.to_json()}
    replayed = planner.decide_finish(
        2, budget_seconds=600.0, elapsed_seconds=590.0, recorded=planner.load_finish(plan)
    )
    assert replayed.time_limit == 123.4 and replayed.action == "continue" and replayed.replayed


def test_the_iterations_leave_the_finish_its_share_of_the_budget():
    cfg = budget_config("small")
    with_finish = cfg.replace(finish_epochs=10, finish_fraction=0.4)
    assert planner.reserve_seconds(cfg.replace(finish_epochs=0)) == planner.RESERVE_SECONDS
    assert planner.reserve_seconds(with_finish) == pytest.approx(planner.RESERVE_SECONDS + 240.0)
    first = planner.decide(
        0,
        candidates=2,
        workers=2,
        budget_seconds=600.0,
        elapsed_seconds=0.0,
        candidate_seconds=[],
        reserve_seconds=planner.reserve_seconds(with_finish),
    )
    assert first.time_limit == pytest.approx(600 - 15 - 240 - planner.OVERHEAD_SECONDS)


# ---------------------------------------------------------------- on real data
@pytest.fixture(scope="module")
def searched(tiny_fashion, tmp_path_factory):
    """One iteration of one candidate: the ensemble a finish starts from."""
    tmp = tmp_path_factory.mktemp("finish")
    cfg = budget_config("smoke", **TINY).replace(**UNTIMED)
    (cand,) = steps.generate_candidates(cfg, 0, None, None, tmp / "ctrl_gen")
    steps.train_candidate(cfg, tiny_fashion, cand, tmp / "cand")
    steps.weigh_ensemble(cfg, 0, tiny_fashion, None, [tmp / "cand"], tmp / "ens")
    return tmp, cfg


def test_the_finish_starts_from_the_best_members_weights(searched, tiny_fashion, tmp_path):
    tmp, cfg = searched
    # A rate too small to move the weights: the continued model's trainable weights must be
    # the member's (BatchNorm's moving statistics still move: they are not trained by the
    # rate).  From a fresh initialisation (the warm start ignored) they could not be.
    cfg = cfg.replace(finish_epochs=1, finish_learning_rate=1e-12)
    decision, cand = finish.finish_candidate(cfg, tmp / "ens", elapsed_seconds=0.0)
    assert decision.action == "continue" and cand is not None
    assert cand["warm_start"] == str((tmp / "cand").resolve())
    assert cand["spec"] == EnsembleState.read(tmp / "ens").best_spec
    summary = steps.train_candidate(cfg, tiny_fashion, cand, tmp_path / "finished")
    assert summary["status"] == "ok" and summary["warm_start"] is True
    import keras

    member = keras.saving.load_model(tmp / "cand" / MODEL_FILE).trainable_weights
    continued = keras.saving.load_model(tmp_path / "finished" / MODEL_FILE).trainable_weights
    assert len(member) == len(continued) > 0
    for a, b in zip(member, continued, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    assert np.load(tmp_path / "finished" / VAL_LOGITS_FILE).shape == (200, 10)


def test_the_finished_member_joins_the_ensemble_and_the_export(searched, tiny_fashion, tmp_path):
    tmp, cfg = searched
    cfg = cfg.replace(finish_epochs=2)
    decision, cand = finish.finish_candidate(cfg, tmp / "ens", elapsed_seconds=0.0)
    steps.train_candidate(cfg, tiny_fashion, cand, tmp_path / "finished")
    record = finish.add_finished_member(
        cfg, tiny_fashion, tmp / "ens", decision, tmp_path / "finished", tmp_path / "ens2"
    )
    before, after = EnsembleState.read(tmp / "ens"), EnsembleState.read(tmp_path / "ens2")
    assert record["accepted"] and record["epochs_run"] >= 1
    assert [m["candidate_id"] for m in after.members] == [
        *(m["candidate_id"] for m in before.members),
        finish.FINISH_ID,
    ]
    assert after.members[-1]["finished_from"] == before.best_candidate_id
    assert after.objective <= before.objective + cfg.safety_tolerance
    assert after.finish["decision"]["action"] == "continue"
    metrics = steps.evaluate_ensemble(cfg, tiny_fashion, tmp_path / "ens2", tmp_path / "final")
    assert metrics["finish"]["accepted"] and metrics["candidates_trained"] == 2
    assert "## Finish" in (tmp_path / "final" / "report.md").read_text()
    # a configuration with a finish refuses an ensemble that was never finished
    with pytest.raises(ConfigError, match="finish"):
        steps.evaluate_ensemble(cfg, tiny_fashion, tmp / "ens", tmp_path / "final2")


def test_a_finish_that_does_not_train_leaves_the_ensemble_as_it_was(
    searched, tiny_fashion, tmp_path
):
    tmp, cfg = searched
    cfg = cfg.replace(finish_epochs=2, time_budget_seconds=60.0)
    decision, cand = finish.finish_candidate(cfg, tmp / "ens", elapsed_seconds=59.0)
    assert decision.action == "stop" and cand is None
    record = finish.add_finished_member(
        cfg, tiny_fashion, tmp / "ens", decision, None, tmp_path / "ens2"
    )
    before, after = EnsembleState.read(tmp / "ens"), EnsembleState.read(tmp_path / "ens2")
    assert not record["accepted"] and after.members == before.members
    assert after.finish is not None  # recorded: the evaluation knows the finish ran


@pytest.mark.e2e
def test_rachel_search_finishes_replays_and_resumes_the_same(fashion_files, tmp_path):
    import shutil

    from rachel.core.search import run_search

    cfg = budget_config("smoke", **TINY).replace(
        **{**UNTIMED, "time_budget_seconds": 90.0},
        dataset="fashion_mnist",
        data_dir=str(fashion_files),
        finish_epochs=2,
        finish_fraction=0.4,
    )
    out = tmp_path / "run"
    first = run_search(cfg, out)
    assert first["finish"]["accepted"] and first["members"][-1]["candidate_id"] == "finish"
    plan = json.loads((out / "plan.json").read_text())
    assert plan["finish"]["action"] == "continue" and plan["finish"]["time_limit"] > 0
    assert plan["schedules"]["finish"]["epochs"] == first["finish"]["epochs_run"]

    # A replayed plan takes the recorded finish decision and schedule, and ends the same.
    replay = run_search(cfg, tmp_path / "replay", plan=plan)
    assert replay["test_accuracy"] == first["test_accuracy"]
    assert json.loads((tmp_path / "replay" / "plan.json").read_text())["finish"]["replayed"]

    # A kill during the finish: its decision was recorded, the rest is lost.
    for lost in ("final", "finish/ensemble", "finish/candidates"):
        shutil.rmtree(out / lost)
    resumed = run_search(cfg, out)
    assert resumed["test_accuracy"] == first["test_accuracy"]
    assert resumed["mixture_weights"] == first["mixture_weights"]

    # --restart discards the earlier finish with the rest of the run, and trains it again.
    trained = out / "finish" / "candidates" / "finish" / "metrics.json"
    before = trained.stat().st_mtime_ns
    run_search(cfg, out, restart=True)
    assert trained.stat().st_mtime_ns > before


def test_a_finish_share_that_leaves_the_search_no_time_is_refused():
    with pytest.raises(ConfigError, match="finish_fraction=0.9 of a 60 s budget"):
        budget_config("small", time_budget_seconds=60.0, finish_fraction=0.9)
    budget_config("small", time_budget_seconds=60.0, finish_fraction=0.5)  # 15 s are left
    # smoke's finish keeps no share: it takes what is left, so even a 1-s budget is valid
    with pytest.raises(ConfigError, match="finish_fraction=0.4 of a 1 s budget"):
        budget_config("small", time_budget_seconds=1.0)
    assert budget_config("smoke", time_budget_seconds=1.0).finish_epochs > 0
