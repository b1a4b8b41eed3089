"""Component: evaluate one trained agent against the baselines through the protocol."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def nasbench_evaluate_agent(
    settings_json: str,
    protocol_json: str,
    table: Input[Dataset],
    surrogate: Input[Model],
    agent: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    """Write ``evaluation`` (report.json, report.md, plots) and the agent's table as metrics."""
    from rachel.core.nasbench.pipeline_steps import evaluate_agent

    summary = evaluate_agent(
        settings_json, protocol_json, table.path, surrogate.path, agent.path, evaluation.path
    )
    for key, value in summary["metrics"].items():
        metrics.log_metric(key, value)
