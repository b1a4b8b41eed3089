"""Component: reward each candidate by the ensemble it would make; apply the safety net."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def weigh_ensemble(
    config_json: str,
    iteration: int,
    splits: Input[Dataset],
    candidates: Input[list[Model]],
    ensemble_out: Output[Model],
    metrics: Output[Metrics],
    ensemble_in: Input[Model] = None,
    plan_json: str = "",
    started_at: float = 0.0,
    job_created: str = "",
) -> NamedTuple(  # type: ignore[valid-type]  # KFP's form for named outputs
    "WeighOutputs", safety_net_activations=int, best_val_accuracy=float, keep_searching=bool
):
    """Write the new ensemble state; ``ensemble_in`` is absent at iteration 0.

    The candidates are read from their downloaded ``.path``; the accepted one is recorded by
    its ``.uri`` (``gs://`` on a cluster, where a later task's pod holds only its own
    declared inputs; a local path under kfp.local), and its files are not copied.

    Returns the safety-net activations so far, the best validation accuracy of this
    iteration's candidates, and ``keep_searching``: the stop rules of ``rachel search``
    (:func:`rachel.core.stop_rules.stop_reason`: the time budget, the configuration's
    ``max_safety_net_activations`` and ``target_accuracy``), read from the ensemble state's
    history (``plan_json``: a recorded plan whose decisions are replayed instead of measured).
    The run's time counts from its start (:func:`rachel.core.run_clock.run_start`:
    ``started_at``, else ``job_created``, else the first candidate's start).
    """
    import time
    from collections import namedtuple

    from rachel.core import run_clock, steps, stop_rules
    from rachel.core.config import SearchConfig
    from rachel.core.ensemble_state import EnsembleState

    config = SearchConfig.from_json(config_json)
    start = run_clock.run_start(started_at, job_created)
    entry = steps.weigh_ensemble(
        config,
        iteration,
        splits.path,
        ensemble_in.path if ensemble_in else None,
        [c.path for c in candidates],
        ensemble_out.path,
        elapsed_seconds=time.time() - start if start is not None else None,
        plan=plan_json or None,
        candidate_uris=[c.uri for c in candidates],
    )
    history = EnsembleState.read(ensemble_out.path).history
    fired = stop_rules.safety_net_activations(history)
    for cid, reward in entry["rewards"].items():
        if reward is not None:
            metrics.log_metric(f"reward_{cid}", reward)
    metrics.log_metric("members", len(entry["members"]))
    metrics.log_metric("accepted", int(entry["accepted"]))
    metrics.log_metric("safety_net_activations", fired)
    ensemble_out.metadata.update(
        iteration=iteration,
        best_candidate=entry["best_candidate"],
        decision=entry["decision"],
        members=entry["members"],
        accepted=entry["accepted"],
        objective=entry["objective"],
    )
    best = stop_rules.best_val_accuracy(entry)
    stop = stop_rules.config_stop_reason(config, history) is not None
    WeighOutputs = namedtuple(
        "WeighOutputs", ["safety_net_activations", "best_val_accuracy", "keep_searching"]
    )
    return WeighOutputs(fired, best, not stop)
