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
    activations_before: int = 0,
    max_safety_net_activations: int = 0,
    target_accuracy: float = 0.0,
    plan_json: str = "",
) -> NamedTuple(  # type: ignore[valid-type]  # KFP's form for named outputs
    "WeighOutputs", safety_net_activations=int, best_val_accuracy=float, keep_searching=bool
):
    """Write the new ensemble state; ``ensemble_in`` is absent at iteration 0.

    The candidates are read from their downloaded ``.path``; the accepted one is recorded by
    its ``.uri`` (``gs://`` on a cluster, where a later task's pod holds only its own
    declared inputs; a local path under kfp.local), and its files are not copied.

    Returns the safety-net activations so far (``activations_before`` + this iteration's),
    the best validation accuracy of this iteration's candidates, and ``keep_searching``:
    False once the activations reach ``max_safety_net_activations``, the accuracy reaches
    ``target_accuracy`` (0 disables either test), or the wall-clock planner decides to stop
    (``plan_json``: a recorded plan whose decisions are replayed instead of measured).
    """
    from collections import namedtuple

    from rachel.core import planner, steps
    from rachel.core.config import SearchConfig

    entry = steps.weigh_ensemble(
        SearchConfig.from_json(config_json), iteration, splits.path,
        ensemble_in.path if ensemble_in else None, [c.path for c in candidates],
        ensemble_out.path, plan=plan_json or None, candidate_uris=[c.uri for c in candidates],
    )
    fired = activations_before + int(entry["safety_net_activated"])
    accuracies = [c["val_accuracy"] for c in entry["candidates"].values() if c["val_accuracy"]]
    for cid, reward in entry["rewards"].items():
        if reward is not None:
            metrics.log_metric(f"reward_{cid}", reward)
    metrics.log_metric("members", len(entry["members"]))
    metrics.log_metric("accepted", int(entry["accepted"]))
    metrics.log_metric("safety_net_activations", fired)
    ensemble_out.metadata.update(
        iteration=iteration, best_candidate=entry["best_candidate"], decision=entry["decision"],
        members=entry["members"], accepted=entry["accepted"], objective=entry["objective"],
    )
    best = float(max(accuracies, default=0.0))
    stop = (0 < max_safety_net_activations <= fired) or (0 < target_accuracy <= best)
    stop = stop or not planner.keep_searching([entry])
    WeighOutputs = namedtuple("WeighOutputs", ["safety_net_activations", "best_val_accuracy",
                                               "keep_searching"])
    return WeighOutputs(fired, best, not stop)
