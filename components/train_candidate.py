"""Component: train one candidate from scratch (the GPU step)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from rachel.components.settings import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train_candidate(
    config_json: str,
    candidate: dict,
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    checkpoint_root: str = "",
) -> None:
    """Write ``model`` (model.keras, val_logits.npy, candidate.json, metrics.json).

    A candidate that fails deterministically (it cannot be built, its loss diverges) is
    recorded with status "failed" and the task still succeeds, so one bad architecture does
    not stop the iteration.  A transient failure (out of memory, storage) fails the task, so
    that KFP's retry policy runs it again; each finished epoch is checkpointed under
    ``checkpoint_root`` (the pipeline root), so the retry continues the training instead of
    starting over.  The checkpoint's place depends only on the task's inputs, which keeps
    the task cacheable.
    """
    from rachel.core import steps
    from rachel.core.checkpoint import task_prefix
    from rachel.core.config import SearchConfig

    # the task's inputs only: a retry finds its own checkpoint
    checkpoint = task_prefix(checkpoint_root, config_json, candidate, splits.uri)
    summary = steps.train_candidate(
        SearchConfig.from_json(config_json),
        splits.path,
        candidate,
        model.path,
        checkpoint_uri=checkpoint,
    )
    for key in ("val_accuracy", "val_loss", "params", "epochs_run", "train_seconds"):
        if isinstance(summary.get(key), (int, float)):
            metrics.log_metric(key, summary[key])
    metrics.log_metric("succeeded", 1.0 if summary["status"] == "ok" else 0.0)  # UI: numbers
    model.metadata.update(
        candidate_id=summary["candidate_id"],
        status=summary["status"],
        framework="keras",
        seed=summary.get("seed"),
        val_accuracy=summary.get("val_accuracy"),
    )
