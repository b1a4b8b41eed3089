"""Component: continue the best subnetwork's training and add it to the ensemble (the GPU
step after the search; :mod:`rachel.core.finish`)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from rachel.components.settings import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def finish_ensemble(
    config_json: str,
    splits: Input[Dataset],
    ensemble_in: Input[Model],
    member: Output[Model],
    ensemble_out: Output[Model],
    metrics: Output[Metrics],
    plan_json: str = "",
    started_at: float = 0.0,
    job_created: str = "",
    checkpoint_root: str = "",
) -> None:
    """Write ``member`` (the continued model, a trained-candidate artifact; empty when the
    finish does not train) and ``ensemble_out`` (``ensemble_in`` with it, or as it was).

    The time left is counted from the run's start (:func:`rachel.core.run_clock.run_start`:
    ``started_at`` as ``rachel run`` passes it, else the job's creation time, else, when the
    backend resolved neither, the first candidate's start as the weigh step does).  The
    evaluation task that follows starts up as this one did: this task's own start-up
    (:func:`rachel.core.run_clock.process_age`) is kept free for it.

    Under ``checkpoint_root`` (gs:// or local) the first attempt records its decision and
    each finished epoch, keyed by the task's inputs only, so a retried task takes the same
    decision and continues the training instead of deciding again on a later clock.
    """
    import os
    import time

    from rachel.core import finish, planner, run_clock, steps, storage
    from rachel.core.checkpoint import task_prefix
    from rachel.core.config import SearchConfig
    from rachel.core.ensemble_state import EnsembleState

    config = SearchConfig.from_json(config_json)
    recorded: str | None = None
    plan = dict(planner.load_plan(plan_json or None) or {}) or None
    prefix = task_prefix(
        checkpoint_root, config_json, plan_json, ensemble_in.uri, splits.uri, "finish"
    )
    if prefix is not None:
        recorded = storage.join(prefix, "decision.json")
        if storage.exists(recorded):  # a retry: the first attempt's decision
            plan = {**(plan or {}), "finish": storage.read_json(recorded)}
    start = run_clock.run_start(started_at, job_created)
    if start is None:
        start = EnsembleState.read(ensemble_in.path).started_at
        print("finish: the run's start is unknown; counting from the first candidate's start")
    elapsed = time.time() - start if start is not None else 0.0
    decision, candidate = finish.finish_candidate(
        config,
        ensemble_in.path,
        elapsed_seconds=elapsed,
        plan=plan,
        overhead_seconds=planner.OVERHEAD_SECONDS + run_clock.process_age(),
    )
    if recorded is not None and not storage.exists(recorded):
        storage.write_json(recorded, decision.to_json())
    trained_dir = None
    if candidate is None:  # an output artifact must exist: say why it holds no model
        os.makedirs(member.path, exist_ok=True)
        storage.write_json(f"{member.path}/skipped.json", decision.to_json())
    else:
        summary = steps.train_candidate(
            config,
            splits.path,
            candidate,
            member.path,
            checkpoint_uri=storage.join(prefix, "training") if prefix else None,
        )
        trained_dir = member.path
        for key in ("val_accuracy", "val_loss", "epochs_run", "train_seconds"):
            if isinstance(summary.get(key), (int, float)):
                metrics.log_metric(f"finish_{key}", summary[key])
    record = finish.add_finished_member(
        config,
        splits.path,
        ensemble_in.path,
        decision,
        trained_dir,
        ensemble_out.path,
        candidate_uri=member.uri if trained_dir else None,
    )
    metrics.log_metric("finish_trained", 1.0 if trained_dir else 0.0)
    metrics.log_metric("finish_accepted", 1.0 if record["accepted"] else 0.0)
    ensemble_out.metadata.update(finish=finish.describe(decision), accepted=record["accepted"])
