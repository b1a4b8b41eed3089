"""The finish: after the last iteration, continue the best subnetwork's training.

Not in the paper, whose search ends with the refit of the mixture weights.  Under a time
budget the search's iterations train every candidate for a few epochs (``small``: at most
4, one thread each), and on a 2-core CPU one good architecture trained for most of the
budget beats that (``bench/search_vs_baselines.py``, 600 s: RandomSearch's single
422-second model reached 0.917, RACHEL's ensembles 0.904 +- 0.014).  So, when
``finish_epochs`` > 0, one more training runs after the search:

* it starts from the weights of the ensemble's best subnetwork (the last accepted member),
  with a fresh optimizer and a warm-restarted cosine schedule from
  ``finish_learning_rate`` (default ``learning_rate``) over at most ``finish_epochs``
  epochs, without early stopping (its last epoch is kept, the end of its annealed
  schedule; see rachel.core.training), on every core of its machine (it trains alone);
* under a time budget the planner keeps ``finish_fraction`` of the budget for it and gives
  it whatever the iterations have left (:func:`rachel.core.planner.decide_finish`; the
  trainer's probe turns that into epochs, and after every epoch the trainer re-plans the
  rest from the epoch's measured time, :func:`rachel.core.training.replan_epochs`), so an
  iteration that does not fit no longer leaves the time unused;
* the continued model joins the ensemble as a new member, mixture weights solved again; it
  is refused (recorded, not added) only if that raised the validation objective beyond the
  safety net's tolerance.  The final refit then weighs every member.

The decision and the schedule with its re-plans are recorded (``plan.json``'s ``finish``
and ``schedules["finish"]``, the finished ensemble's ``finish`` record), so a replayed plan
finishes exactly as the recorded run.
Module-level functions over explicit inputs and outputs, as :mod:`rachel.core.steps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rachel.core import planner, storage
from rachel.core.config import SearchConfig
from rachel.core.ensemble import fit_mixture_weights
from rachel.core.ensemble_state import EnsembleState, TrainedCandidate, absolute_reference
from rachel.core.search_space import ArchitectureSpec, Candidate
from rachel.core.seeds import derived_seed

FINISH_ID = "finish"


def finish_candidate(
    config: SearchConfig,
    ensemble_in: str | Path,
    *,
    elapsed_seconds: float,
    plan: dict[str, Any] | str | None = None,
    overhead_seconds: float = planner.OVERHEAD_SECONDS,
) -> tuple[planner.Decision, dict[str, Any] | None]:
    """The finish's decision and its candidate (None when it does not train: off, no time
    left, or an ensemble without an accepted member)."""
    state = EnsembleState.read(ensemble_in)
    iteration = len(state.history)
    if config.finish_epochs == 0 or state.best_candidate_id is None or not state.best_spec:
        return planner.Decision(iteration, "stop", 0), None
    decision = planner.decide_finish(
        iteration,
        budget_seconds=config.time_budget_seconds,
        elapsed_seconds=elapsed_seconds,
        overhead_seconds=overhead_seconds,
        recorded=planner.load_finish(plan),
    )
    if decision.action == "stop":
        return decision, None
    candidate = Candidate(
        FINISH_ID,
        iteration,
        0,
        ArchitectureSpec.from_json(state.best_spec),
        (),
        time_limit=decision.time_limit,
        schedule=planner.load_schedules(plan).get(FINISH_ID),
        warm_start=state.member_uri(state.best_candidate_id),
    )
    return decision, candidate.to_json()


def describe(decision: planner.Decision) -> str:
    if decision.action == "stop":
        return "finish: skipped (off, or under the minimum time left)"
    limit = f"<= {decision.time_limit:.0f} s" if decision.time_limit is not None else "no limit"
    return f"finish: continue the best subnetwork ({limit})"


def add_finished_member(
    config: SearchConfig,
    splits_in: str | Path,
    ensemble_in: str | Path,
    decision: planner.Decision,
    candidate_dir: str | Path | None,
    ensemble_out: str | Path,
    *,
    candidate_uri: str | None = None,
) -> dict[str, Any]:
    """Write the finished ensemble: ``ensemble_in`` plus the continued model (trained into
    ``candidate_dir``; None when the finish did not train), with its ``finish`` record."""
    from rachel.core.data.splits import DatasetSplits

    state = EnsembleState.read(ensemble_in)
    record: dict[str, Any] = {
        "decision": decision.to_json(),
        "from": state.best_candidate_id,
        "accepted": False,
        "objective_before": state.objective,
    }
    if candidate_dir is not None:
        trained = TrainedCandidate.read(candidate_dir)
        state.candidates_trained += 1
        keys = ("status", "val_loss", "val_accuracy", "epochs_run", "schedule", "train_seconds")
        record.update(
            candidate_id=trained.candidate.candidate_id,
            **{k: trained.metrics.get(k) for k in keys},
        )
        if not trained.ok:
            state.candidates_failed += 1
            record["error"] = trained.metrics.get("error")
        else:
            state.training_seconds += float(trained.metrics.get("train_seconds", 0.0))
            member = {
                "candidate_id": trained.candidate.candidate_id,
                "spec": trained.candidate.spec.to_json(),
                "reused": False,
                "uri": absolute_reference(candidate_uri or candidate_dir),
                "finished_from": state.best_candidate_id,
            }
            members = state.members + [member] if config.ensemble else [member]
            logits = (state.member_logits() if config.ensemble else []) + [trained.val_logits()]
            fit = fit_mixture_weights(
                logits,
                DatasetSplits.load(str(splits_in)).y_val,
                epochs=config.ensemble_epochs,
                learning_rate=config.ensemble_learning_rate,
                batch_size=config.ensemble_batch_size,
                seed=derived_seed(config.seed, 4),
                solver=config.ensemble_solver,
            )
            before = state.objective if state.objective is not None else float("inf")
            if fit.loss <= before + config.safety_tolerance:
                state.members, state.objective = members, fit.loss
                state.weights = [float(w) for w in fit.weights]
                record["accepted"] = True
            record["objective_after"] = fit.loss
    if config.finish_epochs > 0:  # else the same state as rachel search's, which has no finish
        state.finish = record
    with storage.atomic_dir(ensemble_out) as tmp:
        state.write(tmp, location=ensemble_out)
    return record
