"""The search as step functions over explicit inputs and outputs.

Each step takes a :class:`~rachel.core.config.SearchConfig` (scalars, JSON), artifact
paths to read and artifact paths to write, and returns a small JSON-able summary.  The
in-process search (:mod:`rachel.core.search`), the CLI, the tests and the Kubeflow
components all call exactly these functions; none of them imports ``kfp``.

    split_data -> [ generate_candidates -> train_candidate x K -> weigh_ensemble
                    -> update_controller ] x N -> evaluate_ensemble

Artifacts are written atomically (a step that fails leaves nothing behind at its
output path).
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import planner, safety_net, storage
from rachel.core.config import SearchConfig, module_settings
from rachel.core.controller import Controller, ControllerSettings
from rachel.core.ensemble import fit_mixture_weights
from rachel.core.ensemble_state import (
    CANDIDATE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    VAL_LOGITS_FILE,
    EnsembleState,
    TrainedCandidate,
    absolute_reference,
)
from rachel.core.errors import (
    CandidateFailedError,
    ConfigError,
    RachelError,
    StorageError,
    TransientError,
)
from rachel.core.search_space import ArchitectureSpec, Candidate, candidate_id
from rachel.core.seeds import derived_seed


def _load_splits(uri: str | Path) -> Any:
    from rachel.core.data.splits import DatasetSplits

    return DatasetSplits.load(str(uri))


PRUNE_WEIGHT = 1e-3  # members below this mixture weight are left out of the export


# --------------------------------------------------------------------------- 1. data
def split_data(config: SearchConfig, splits_out: str | Path) -> dict[str, Any]:
    """Load ``config.dataset``, validate it, split it (stratified, seeded), write one file."""
    from rachel.core.data import load_dataset

    splits = load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        train_size=config.train_size,
        val_size=config.val_size,
        test_size=config.test_size,
    )
    splits.save(str(splits_out))
    return {
        "dataset": splits.name,
        "num_classes": int(splits.num_classes),
        "input_shape": list(splits.input_shape),
        "train": int(len(splits.y_train)),
        "val": int(len(splits.y_val)),
        "test": int(len(splits.y_test)),
        "augmentation": splits.augmentation,
        "seed": config.seed,
    }


# ---------------------------------------------------------------- 2. candidates
def controller_settings(config: SearchConfig) -> ControllerSettings:
    """The controller's settings, as the configuration's definitions route them."""
    return ControllerSettings(**module_settings(config, "controller"))


def generate_candidates(
    config: SearchConfig,
    iteration: int,
    controller_in: str | Path | None,
    ensemble_in: str | Path | None,
    controller_out: str | Path,
    *,
    plan: dict[str, Any] | str | None = None,
) -> list[dict[str, Any]]:
    """Sample the planned number of proposals that extend the ensemble's best subnetwork.

    The controller is created from the seed at iteration 0 (``controller_in`` None).  Its
    state, with the sampled decisions pending a reward, is written to ``controller_out``.
    Each candidate carries the planner's time limit for this iteration, or its recorded
    schedule when ``plan`` (a recorded plan) has one.
    """
    controller = (
        Controller.load(controller_in) if controller_in else Controller(controller_settings(config))
    )
    state = EnsembleState.read(ensemble_in)
    base = ArchitectureSpec.from_json(state.best_spec) if state.best_spec else ArchitectureSpec()
    if iteration == 0:
        planner.check_plan(planner.load_plan(plan), planner.plan_summary(config))
        decision = planner.decide(
            0,
            candidates=config.candidates,
            workers=config.parallel_candidates,
            budget_seconds=config.time_budget_seconds,
            elapsed_seconds=0.0,
            candidate_seconds=[],
            max_candidate_seconds=config.max_candidate_seconds,
            reserve_seconds=planner.reserve_seconds(config),
            recorded=planner.load_decisions(plan),
        )
    else:
        decision = planner.Decision.from_json(
            state.history[-1].get("next")
            or {"iteration": iteration, "action": "continue", "candidates": config.candidates},
            replayed=False,
        )
    if decision.action == "stop":
        raise CandidateFailedError(
            f"the plan stopped the search before iteration {iteration}",
            "evaluate the ensemble of the previous iteration",
        )
    schedules = planner.load_schedules(plan)
    ids = [candidate_id(iteration, k) for k in range(decision.candidates)]
    proposals = controller.propose(ids, config.temperature_at(iteration))
    controller.save(controller_out)
    return [
        Candidate(
            cid,
            iteration,
            k,
            base,
            proposals[cid],
            time_limit=decision.time_limit,
            schedule=schedules.get(cid),
        ).to_json()
        for k, cid in enumerate(ids)
    ]


# ------------------------------------------------------------------- 3. training
def training_settings(config: SearchConfig, seed: int, candidate: Candidate | None = None) -> Any:
    """The recipe for one candidate, with the planner's limits the candidate carries: a
    recorded schedule (replayed exactly) or a time limit (the trainer probes its speed)."""
    from rachel.core.training import TrainingSettings

    epochs, examples, time_limit = config.epochs, config.train_examples, None
    finish: dict[str, Any] = {}
    if candidate is not None and candidate.warm_start is not None:
        # The finish (rachel.core.finish): its own epochs and restart rate, and every core
        # of its machine (it trains alone, after the search).
        epochs = config.finish_epochs
        finish = {
            "learning_rate": config.finish_learning_rate or config.learning_rate,
            "threads": None,
            "fill_time": True,
        }
    if candidate is not None and candidate.schedule is not None:
        epochs, examples = candidate.schedule["epochs"], candidate.schedule["examples"]
        finish["replans"] = tuple(candidate.schedule.get("replans", ()))
        if candidate.schedule.get("cut"):
            cut = candidate.schedule["cut"]
            finish["cut"] = (int(cut["epoch"]), int(cut["batches"]))
    elif candidate is not None:
        time_limit = candidate.time_limit
    return TrainingSettings(
        **{
            **module_settings(config, "training"),
            "epochs": epochs,
            "train_examples": examples,
            "seed": seed,  # the candidate's own, derived from the run's
            "augmentation": None if config.augmentation == "dataset" else config.augmentation,
            "time_limit": time_limit,
            **finish,
        }
    )


TRANSIENT_ERROR_NAMES = frozenset(
    {
        "ResourceExhaustedError",  # TensorFlow: out of (GPU or host) memory
        "UnavailableError",
        "AbortedError",
        "DeadlineExceededError",
        "CancelledError",
    }
)


def is_transient(err: BaseException) -> bool:
    """Whether a training failure is the machine's (retry it) rather than the candidate's.

    Memory exhaustion (Python's, TensorFlow's, XLA/JAX's ``RESOURCE_EXHAUSTED``), I/O and
    network errors, and storage errors are transient; anything else (a layer that cannot be
    built, a shape error) is the candidate's own.
    """
    if isinstance(err, RachelError):  # ours: only a storage problem is the machine's
        return isinstance(err, (StorageError, TransientError))
    if isinstance(err, (MemoryError, OSError, TimeoutError, ConnectionError)):
        return True
    if type(err).__name__ in TRANSIENT_ERROR_NAMES:
        return True
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


MAX_TRANSIENT_ATTEMPTS = 3  # then a candidate that keeps running out of memory is failed


def _transient_attempts(checkpoint_uri: str | None, err: BaseException) -> int | None:
    """None for the candidate's own failure; else how many transient failures this candidate
    has had, counted in its checkpoint folder (without one, every transient failure is the
    first: the step is retried and no count survives it)."""
    if not is_transient(err):
        return None
    if not checkpoint_uri:
        return 1
    counter = storage.join(checkpoint_uri, "transient_attempts.json")
    try:
        seen = int(storage.read_json(counter)) if storage.exists(counter) else 0
        storage.write_json(counter, seen + 1)
    except (RachelError, ValueError, TypeError):
        return 1  # the counter itself is unreachable: treat as a first failure
    return seen + 1


def _warm_start_weights(uri: str) -> list[np.ndarray]:
    """The weights of the trained candidate at ``uri`` (local folder or gs:// prefix)."""
    import keras

    with storage.local_copy(storage.join(uri, MODEL_FILE)) as local:
        return list(keras.saving.load_model(local, compile=False).get_weights())


def train_candidate(
    config: SearchConfig,
    splits_in: str | Path,
    candidate: dict[str, Any] | str,
    model_out: str | Path,
    *,
    verbose: int = 0,
    checkpoint_uri: str | None = None,
) -> dict[str, Any]:
    """Train one candidate from scratch; write its model, validation logits and metrics.

    ``checkpoint_uri``: a folder or ``gs://`` prefix for per-epoch checkpoints; a retried
    step finds the interrupted training's last epoch there and continues it (the result is
    the uninterrupted one).  Removed once the candidate is written.

    A candidate that fails deterministically (it cannot be built, its loss diverges) is
    recorded with status ``failed`` and the search goes on without it.  A transient failure
    (:func:`is_transient`: out of memory, storage or network errors) raises
    :class:`~rachel.core.errors.TransientError` and writes nothing, so a retry trains the
    candidate again instead of replaying a failure.
    """
    from rachel.core import devices
    from rachel.core.training import train_candidate_model

    step_started = time.time()
    cand = Candidate.from_json(candidate)
    seed = derived_seed(config.seed, 1, cand.iteration, cand.index)
    options = devices.resolve(config.mixed_precision, config.xla, config.multi_gpu)
    splits = _load_splits(splits_in)
    initial_weights = _warm_start_weights(cand.warm_start) if cand.warm_start else None
    started = time.time()
    settings = training_settings(config, seed, cand)
    devices.limit_threads(settings.threads)  # a ConfigError here is the run's, not the candidate's
    with storage.atomic_dir(model_out) as tmp:
        (tmp / CANDIDATE_FILE).write_text(json.dumps(cand.to_json(), indent=2))
        try:
            result = train_candidate_model(
                cand.spec,
                splits,
                settings,
                options,
                verbose=verbose,
                checkpoint_uri=checkpoint_uri,
                initial_weights=initial_weights,
            )
            if np.isfinite(result.val_logits).all():
                result.model.save(tmp / MODEL_FILE)  # a full disk here is transient too
                np.save(tmp / VAL_LOGITS_FILE, result.val_logits)
        except Exception as err:  # noqa: BLE001 - a failed candidate must not stop the search
            attempts = _transient_attempts(checkpoint_uri, err)
            if attempts is not None and attempts < MAX_TRANSIENT_ATTEMPTS:
                # Not the candidate's fault: fail the step so that it is retried (KFP's retry
                # policy, or ``rachel search`` run again), and record nothing.
                raise TransientError(
                    f"training {cand.candidate_id} failed transiently (attempt {attempts} of "
                    f"{MAX_TRANSIENT_ATTEMPTS}): {type(err).__name__}: {str(err)[:300]}",
                    "run the same step again (a resumed search continues from here)",
                ) from err
            metrics: dict[str, Any] = {
                "status": "failed",
                "error": f"{type(err).__name__}: {err}"
                + (f" (on {attempts} attempts)" if attempts is not None else ""),
                "traceback": traceback.format_exc(limit=5),
                "seed": seed,
            }
        else:
            if np.isfinite(result.val_logits).all():
                metrics = {"status": "ok", **result.metrics}
            else:  # deterministic for this seed: retrying would diverge again
                metrics = {
                    "status": "failed",
                    "error": "the loss diverged: the validation logits are not finite",
                    "seed": seed,
                }
        metrics.update(
            candidate_id=cand.candidate_id,
            spec=cand.spec.to_json(),
            spec_text=cand.spec.describe(),
            started_at=started,
            step_seconds=time.time() - step_started,
        )
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    if checkpoint_uri:  # the candidate is written: nothing to resume
        from rachel.core import checkpoint

        checkpoint.remove(checkpoint_uri)
    return {k: v for k, v in metrics.items() if k not in ("history", "traceback")}


# ------------------------------------------------------- 4. weighting + safety net
def weigh_ensemble(
    config: SearchConfig,
    iteration: int,
    splits_in: str | Path,
    ensemble_in: str | Path | None,
    candidate_dirs: Sequence[str | Path],
    ensemble_out: str | Path,
    *,
    elapsed_seconds: float | None = None,
    plan: dict[str, Any] | str | None = None,
    candidate_uris: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score each candidate by the ensemble it would make, pick the best, apply the safety net,
    and take the planner's decision for the next iteration (:mod:`rachel.core.planner`).

    ``elapsed_seconds`` is the run's wall time so far (default: since the first candidate
    started); ``plan`` a recorded plan whose decisions are replayed instead of measured.

    ``candidate_dirs`` are read (local folders or ``gs://`` prefixes); the accepted one is
    recorded in ``ensemble_out`` by reference, as its entry in ``candidate_uris`` (default:
    ``candidate_dirs`` themselves).  A Kubeflow component reads its downloaded inputs'
    ``.path`` and records their ``.uri``, the only name a later task's pod can reach.
    The ensemble's earlier members are read through their references
    (:mod:`rachel.core.ensemble_state`); ``ensemble_out`` receives ``ensemble.json`` only.

    Reward of a candidate = -(validation cross-entropy of the current ensemble with the
    candidate added, mixture weights learned for ``config.ensemble_epochs`` epochs).  With
    ``config.ensemble`` False (the single-model ablation) a candidate is scored alone and
    the "ensemble" holds the single best model.
    """
    state = EnsembleState.read(ensemble_in)
    y_val = _load_splits(splits_in).y_val
    base_logits = state.member_logits() if config.ensemble else []
    trained = [TrainedCandidate.read(d) for d in candidate_dirs]
    if candidate_uris is None:
        candidate_uris = [str(d) for d in candidate_dirs]
    if len(candidate_uris) != len(trained):
        raise ValueError(f"{len(trained)} candidate folders but {len(candidate_uris)} URIs")
    references = {
        tc.candidate.candidate_id: absolute_reference(uri)
        for tc, uri in zip(trained, candidate_uris, strict=True)
    }
    fit_seed = derived_seed(config.seed, 2, iteration)

    def weigh(member_logits: list[np.ndarray]) -> Any:
        return fit_mixture_weights(
            member_logits,
            y_val,
            epochs=config.ensemble_epochs,
            learning_rate=config.ensemble_learning_rate,
            batch_size=config.ensemble_batch_size,
            seed=fit_seed,
            solver=config.ensemble_solver,
        )

    rewards: dict[str, float | None] = {}
    fits = {}
    for tc in trained:
        cid = tc.candidate.candidate_id
        state.candidates_trained += 1
        if not tc.ok:
            state.candidates_failed += 1
            rewards[cid] = None
            continue
        state.training_seconds += float(tc.metrics.get("train_seconds", 0.0))
        started = tc.metrics.get("started_at")
        if started is not None:
            state.started_at = min(state.started_at or started, started)
        fit = weigh(base_logits + [tc.val_logits()])
        fits[cid] = (tc, fit)
        rewards[cid] = fit.reward

    entry: dict[str, Any] = {
        "iteration": iteration,
        "temperature": config.temperature_at(iteration),
        "rewards": rewards,
        "candidates": {
            tc.candidate.candidate_id: {
                "spec": tc.candidate.spec.describe(),
                "status": tc.metrics.get("status"),
                "val_accuracy": tc.metrics.get("val_accuracy"),
                "val_loss": tc.metrics.get("val_loss"),
                "params": tc.metrics.get("params"),
                "error": tc.metrics.get("error"),
            }
            for tc in trained
        },
    }
    if not fits:
        if not state.members:
            raise CandidateFailedError(
                f"every candidate of iteration {iteration} failed and the ensemble is empty",
                "see the candidates' metrics.json for the errors "
                "(often out of memory: lower max_width)",
            )
        best_id = None
        decision = safety_net.check(float("inf"), state.objective, config.safety_tolerance)
    else:
        best_id = max(fits, key=lambda cid: fits[cid][1].reward)
        decision = safety_net.check(fits[best_id][1].loss, state.objective, config.safety_tolerance)

    if decision.accept and best_id is not None:
        tc, fit = fits[best_id]
        member = {
            "candidate_id": best_id,
            "spec": tc.candidate.spec.to_json(),
            "reused": False,
            "uri": references[best_id],
        }
        state.members = state.members + [member] if config.ensemble else [member]
        state.weights = [float(w) for w in fit.weights]
        state.objective = fit.loss
        state.best_spec = tc.candidate.spec.to_json()
        state.best_candidate_id = best_id
    elif config.ensemble:
        # Re-add the previously accepted subnetwork: its weight in the mixture grows.
        index = max(
            i for i, m in enumerate(state.members) if m["candidate_id"] == state.best_candidate_id
        )
        state.members = state.members + [{**state.members[index], "reused": True}]
        refit = weigh(base_logits + [base_logits[index]])  # logits already loaded above
        state.weights = [float(w) for w in refit.weights]
        state.objective = refit.loss
    entry["candidate_seconds"] = [
        float(tc.metrics.get("step_seconds", 0.0)) for tc in trained if tc.ok
    ]
    if elapsed_seconds is None:
        elapsed_seconds = time.time() - (state.started_at or time.time())
    entry["elapsed_seconds"] = float(elapsed_seconds)  # where a resumed run's clock restarts
    # What the iteration cost beyond its candidates' steps: the generate, weigh and update
    # steps and, in a pipeline, every task's start-up (kfp.local: a process each; a cluster:
    # a pod each).  Iteration 0's also holds the data split.
    since = float(state.history[-1].get("elapsed_seconds", 0.0)) if state.history else 0.0
    rounds = math.ceil(max(1, len(entry["candidate_seconds"])) / max(1, config.parallel_candidates))
    slowest = max(entry["candidate_seconds"], default=0.0)
    entry["iteration_overhead_seconds"] = round(
        max(0.0, entry["elapsed_seconds"] - since - rounds * slowest), 1
    )
    if iteration + 1 < config.iterations:
        seconds = [h.get("candidate_seconds", []) for h in state.history]
        seconds.append(entry["candidate_seconds"])
        overheads = [
            float(tc.metrics["step_seconds"]) - float(tc.metrics["train_seconds"])
            for tc in trained
            if tc.ok and "step_seconds" in tc.metrics and "train_seconds" in tc.metrics
        ]
        entry["next"] = planner.decide(
            iteration + 1,
            candidates=config.candidates,
            workers=config.parallel_candidates,
            budget_seconds=config.time_budget_seconds,
            elapsed_seconds=elapsed_seconds,
            candidate_seconds=seconds,
            max_candidate_seconds=config.max_candidate_seconds,
            overhead_seconds=max(overheads, default=planner.OVERHEAD_SECONDS),
            iteration_overhead_seconds=entry["iteration_overhead_seconds"],
            reserve_seconds=planner.reserve_seconds(config),
            min_share=planner.min_share(config),
            recorded=planner.load_decisions(plan),
        ).to_json()
    entry["schedules"] = {
        tc.candidate.candidate_id: tc.metrics["schedule"]
        for tc in trained
        if tc.ok and "schedule" in tc.metrics
    }
    entry.update(
        best_candidate=best_id,
        accepted=bool(decision.accept and best_id is not None),
        safety_net_activated=decision.activated,
        decision=decision.explain(),
        objective=state.objective,
        members=[m["candidate_id"] for m in state.members],
    )
    state.history = state.history + [entry]
    with storage.atomic_dir(ensemble_out) as tmp:
        state.write(tmp, location=ensemble_out)
    return entry


# -------------------------------------------------------------- 5. controller update
def update_controller(
    config: SearchConfig,
    controller_in: str | Path,
    ensemble_in: str | Path,
    controller_out: str | Path,
) -> dict[str, Any]:
    """One actor-critic update from the rewards of the ensemble's latest iteration (read from
    ``ensemble.json`` alone: no member is touched)."""
    controller = Controller.load(controller_in)
    state = EnsembleState.read(ensemble_in)
    if not state.history:
        raise CandidateFailedError(f"ensemble {ensemble_in} has no iteration to learn from")
    rewards = {k: v for k, v in state.history[-1]["rewards"].items() if v is not None}
    stats = controller.update(rewards)
    controller.save(controller_out)
    return {"iteration": state.history[-1]["iteration"], **stats}


# ----------------------------------------------------------- 6. final evaluation
def evaluate_ensemble(
    config: SearchConfig,
    splits_in: str | Path,
    ensemble_in: str | Path,
    model_out: str | Path,
    *,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Refit the mixture weights (``final_ensemble_epochs``), export ONE servable model,
    and measure it on the test split.

    ``model_out`` receives ``model.keras``, ``saved_model/``, ``metrics.json``,
    ``report.md`` and ``search_log.json``.  The members' logits and models are read through
    their references (a ``gs://`` model is streamed to a temporary file and loaded from it).
    ``wall_seconds`` counts from ``started_at`` (the in-process search passes its own start)
    or else from the first candidate's start.
    """
    import keras

    from rachel.core import devices
    from rachel.core import metrics as cls_metrics
    from rachel.core.export import build_servable, save_servable
    from rachel.core.report import render_report

    state = EnsembleState.read(ensemble_in)
    if not state.members:
        raise CandidateFailedError(
            f"ensemble {ensemble_in} has no members", "run at least one iteration"
        )
    if config.finish_epochs > 0 and state.finish is None:
        raise ConfigError(
            f"the configuration has a finish (finish_epochs={config.finish_epochs}) but ensemble "
            f"{ensemble_in} was not finished",
            "evaluate the finish step's ensemble (a pipeline compiled with finish_epochs=0 "
            "cannot run this configuration: compile it with this configuration)",
        )
    splits = _load_splits(splits_in)
    fit = fit_mixture_weights(
        state.member_logits(),
        splits.y_val,
        epochs=config.final_ensemble_epochs,
        learning_rate=config.ensemble_learning_rate,
        batch_size=config.ensemble_batch_size,
        seed=derived_seed(config.seed, 3),
        solver=config.ensemble_solver,
    )
    # A re-added subnetwork appears once in the export, with its weights summed.
    merged: dict[str, float] = {}
    for member, weight in zip(state.members, fit.weights, strict=True):
        merged[member["candidate_id"]] = merged.get(member["candidate_id"], 0.0) + float(weight)
    # Solved weights send useless members to ~0: leave those out of the servable model
    # (smaller and faster; the mixture changes by less than PRUNE_WEIGHT per member).
    pruned = sorted(cid for cid, w in merged.items() if w < PRUNE_WEIGHT and len(merged) > 1)
    kept = {cid: w for cid, w in merged.items() if cid not in pruned}
    total = sum(kept.values())
    merged = {cid: w / total for cid, w in kept.items()}
    models = []
    for cid in merged:
        with state.member_file(cid, MODEL_FILE) as local:
            models.append(keras.saving.load_model(local, compile=False))
    servable = build_servable(models, list(merged.values()), tuple(splits.input_shape))

    x_test = splits.x_test.astype(np.float32)
    servable.predict(x_test[:8], verbose=0)  # warm-up: build the graph outside the timing
    t0 = time.perf_counter()
    probs = servable.predict(x_test, batch_size=256, verbose=0)
    inference_seconds = time.perf_counter() - t0
    cm = cls_metrics.confusion_matrix(splits.y_test, probs.argmax(-1), splits.num_classes)
    options = devices.resolve(config.mixed_precision, config.xla, config.multi_gpu)
    wall = time.time() - (started_at or state.started_at or time.time())
    result: dict[str, Any] = {
        "dataset": splits.name,
        "test_accuracy": cls_metrics.accuracy(cm),
        "macro_f1": cls_metrics.macro_f1(cm),
        "confusion_matrix": cm.tolist(),
        "class_names": list(splits.class_names),
        "val_loss": fit.loss,
        "val_accuracy": fit.accuracy,
        "params": int(servable.count_params()),
        "members": [
            {
                "candidate_id": cid,
                "weight": w,
                "params": int(m.count_params()),
                "spec": ArchitectureSpec.from_json(
                    next(x["spec"] for x in state.members if x["candidate_id"] == cid)
                ).describe(),
            }
            for (cid, w), m in zip(merged.items(), models, strict=True)
        ],
        "mixture_weights": [float(w) for w in fit.weights],
        "pruned_members": pruned,
        "inference_seconds": inference_seconds,
        "test_examples": int(len(splits.y_test)),
        "wall_seconds": wall,
        "training_seconds": state.training_seconds,
        "device": options.device_kind,
        # wall-clock hours times the accelerators held (a CPU-only run counts as one device)
        "device_hours": wall / 3600.0 * max(1, options.gpus),
        "safety_net_activations": state.safety_net_activations,
        "iterations": len(state.history),
        "candidates_trained": state.candidates_trained,
        "candidates_failed": state.candidates_failed,
        "finish": state.finish,
        "seed": config.seed,
        "config": config.to_json(),
    }
    with storage.atomic_dir(model_out) as tmp:
        result["exported"] = save_servable(servable, tmp)
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2))
        (tmp / "search_log.json").write_text(json.dumps(state.history, indent=2))
        (tmp / "report.md").write_text(render_report(result, state.history))
    return result
