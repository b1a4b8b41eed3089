"""Component: the promotion gate, publishing the final model to the champion registry."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def promote_champion(
    config_json: str,
    registry: str,
    splits: Input[Dataset],
    model: Input[Model],
    controller: Input[Artifact],
    metrics: Output[Metrics],
    report: Output[Markdown],
    promotion_margin: float = 0.0,
    run_id: str = "",
) -> None:
    """Publish ``model`` (the evaluation's folder) and ``controller`` as the champion of
    ``registry`` if it beats the champion on the same test split by ``promotion_margin``;
    log the decision and write its Markdown summary."""
    import json
    import tempfile

    from rachel.core import planner
    from rachel.core import registry as champions
    from rachel.core.config import SearchConfig

    config = SearchConfig.from_json(config_json)
    info = {
        "runner": "kubeflow",
        "run_id": run_id,
        "model_uri": model.uri,
        "seed": config.seed,
        "config_fingerprint": planner.plan_summary(config)["config_fingerprint"],
    }
    with tempfile.TemporaryDirectory() as records:  # the input model artifact stays untouched
        record = champions.promote(
            registry,
            model.path,
            controller.path,
            champions.splits_fingerprint(splits.path),
            promotion_margin,
            info,
            record_dir=records,
        )
    with open(report.path, "w") as fh:
        fh.write(champions.render_markdown(record))
    metrics.log_metric("promoted", float(record["promoted"]))
    metrics.log_metric("new_test_accuracy", record["new_test_accuracy"])
    if record["champion_test_accuracy"] is not None:
        metrics.log_metric("champion_test_accuracy", record["champion_test_accuracy"])
    metrics.log_metric("promotion_margin", record["margin"])
    report.metadata.update(
        record=json.dumps(record, sort_keys=True),
        decision=record["decision"],
        champion=record["champion_after"],
    )
