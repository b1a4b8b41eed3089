"""Component: publish the best agent (weights, config, surrogate, evaluation) to a registry."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def nasbench_publish_agent(
    registry_uri: str,
    agent_name: str,
    version: str,
    best_seed: int,
    agents: Input[list[Model]],
    evaluations: Input[list[Artifact]],
    surrogate: Input[Model],
    published: Output[Artifact],
) -> str:
    """Copy the agent of seed ``best_seed`` under ``<registry_uri>/<agent_name>/<version>``
    (local or gs://; an empty version = a UTC timestamp); return its URI."""
    from rachel.core.nasbench.pipeline_steps import publish_agent

    card = publish_agent(
        registry_uri,
        agent_name,
        version,
        [a.path for a in agents],
        [e.path for e in evaluations],
        best_seed,
        surrogate.path,
        published.path,
    )
    published.metadata.update(uri=card["uri"], version=card["version"])
    return str(card["uri"])
