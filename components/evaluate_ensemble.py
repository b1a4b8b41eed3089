"""Component: export the final ensemble as one servable model and test it."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def evaluate_ensemble(
    config_json: str,
    splits: Input[Dataset],
    ensemble: Input[Model],
    model: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    report: Output[Markdown],
    started_at: float = 0.0,
    job_created: str = "",
) -> None:
    """Write ``model`` (model.keras, saved_model/, metrics.json, report.md, search_log.json),
    the test metrics, the test confusion matrix and the Markdown report; ``wall_seconds``
    counts from the run's start (:func:`rachel.core.run_clock.run_start`)."""
    import shutil

    from rachel.core import run_clock, steps
    from rachel.core.config import SearchConfig

    result = steps.evaluate_ensemble(
        SearchConfig.from_json(config_json),
        splits.path,
        ensemble.path,
        model.path,
        started_at=run_clock.run_start(started_at, job_created),
    )
    for key in (
        "test_accuracy",
        "macro_f1",
        "params",
        "wall_seconds",
        "training_seconds",
        "safety_net_activations",
        "iterations",
        "candidates_trained",
        "candidates_failed",
    ):
        metrics.log_metric(key, result[key])
    confusion.log_confusion_matrix(result["class_names"], result["confusion_matrix"])
    shutil.copyfile(f"{model.path}/report.md", report.path)
    model.metadata.update(
        framework="keras",
        keras_file="model.keras",
        saved_model_dir="saved_model",
        test_accuracy=result["test_accuracy"],
        params=result["params"],
    )
