"""Component: train one Ape-X search agent (one seed of the ParallelFor)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from rachel.components.settings import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def nasbench_train_agent(
    settings_json: str,
    agent_config_json: str,
    seed: int,
    table: Input[Dataset],
    surrogate: Input[Model],
    agent: Output[Model],
    metrics: Output[Metrics],
) -> None:
    """Write ``agent`` (agent/, checkpoints/, training.json); resumes from its checkpoints
    when the task is retried."""
    from rachel.core.nasbench.pipeline_steps import train_agent

    summary = train_agent(
        settings_json, agent_config_json, seed, table.path, surrogate.path, agent.path
    )
    for key in ("env_steps", "updates", "seconds", "train_env_steps_per_second"):
        metrics.log_metric(key, float(summary[key]))
    agent.metadata.update(seed=seed, framework="keras", env_steps=summary["env_steps"])
