"""Component: fit the bounded XGBoost surrogate when the table is partial."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def nasbench_fit_surrogate(
    settings_json: str, table: Input[Dataset], surrogate: Output[Model], metrics: Output[Metrics]
) -> None:
    """Write ``surrogate`` (surrogate.json) and its held-out tau, rho, RMSE and top-k quality;
    for a complete table write a marker instead (the table itself is the reward)."""
    from rachel.core.nasbench.pipeline_steps import fit_surrogate

    summary = fit_surrogate(settings_json, table.path, surrogate.path)
    for key, value in summary["metrics"].items():
        metrics.log_metric(key, value)
    surrogate.metadata.update(summary["metadata"])
