"""Component: one actor-critic update of the controller from the iteration's rewards."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def update_controller(
    config_json: str,
    controller_in: Input[Artifact],
    ensemble: Input[Model],
    controller_out: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    """Write the updated controller state (read by the next iteration's generation)."""
    from rachel.core import steps
    from rachel.core.config import SearchConfig

    stats = steps.update_controller(
        SearchConfig.from_json(config_json),
        controller_in.path,
        ensemble.path,
        controller_out.path,
    )
    for key, value in stats.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.log_metric(key, value)
    controller_out.metadata.update(iteration=stats["iteration"])
