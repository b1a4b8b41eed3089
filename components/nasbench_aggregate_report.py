"""Component: one report over every agent's evaluation (Markdown + KFP Metrics)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Metrics, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def nasbench_aggregate_report(
    evaluations: Input[list[Artifact]],
    report: Output[Markdown],
    details: Output[Artifact],
    metrics: Output[Metrics],
) -> int:
    """Write ``report`` (Markdown table of all agents and the baselines) and ``details``
    (aggregate.json); return the best agent's seed (highest mean best-found at 100 queries)."""
    from rachel.core.nasbench.pipeline_steps import aggregate_report

    summary = aggregate_report([e.path for e in evaluations], report.path, details.path)
    for key, value in summary["metrics"].items():
        metrics.log_metric(key, value)
    return int(summary["best"])
