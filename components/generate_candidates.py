"""Component: the controller samples this iteration's candidate architectures."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def generate_candidates(
    config_json: str,
    iteration: int,
    controller_out: Output[Artifact],
    controller_in: Input[Artifact] = None,
    ensemble_in: Input[Model] = None,
    plan_json: str = "",
) -> list[dict]:
    """Return the candidates (JSON dicts, one ``dsl.ParallelFor`` item each).

    ``controller_in`` and ``ensemble_in`` are absent at iteration 0: the controller is then
    created from the seed and the candidates extend the empty network.  ``plan_json``: a
    recorded plan whose candidate schedules are replayed.
    """
    from rachel.core import steps
    from rachel.core.config import SearchConfig

    candidates = steps.generate_candidates(
        SearchConfig.from_json(config_json),
        iteration,
        controller_in.path if controller_in else None,
        ensemble_in.path if ensemble_in else None,
        controller_out.path,
        plan=plan_json or None,
    )
    controller_out.metadata.update(iteration=iteration, pending=len(candidates))
    return candidates
