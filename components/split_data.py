"""Component: load the dataset and write the stratified, seeded train/val/test split."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def split_data(config_json: str, splits: Output[Dataset], finish_in_dag: bool = True) -> None:
    """Write ``splits`` (one .npz: train/val/test arrays + metadata) for the search.

    ``finish_in_dag``: whether the compiled DAG has the finish task.  A run whose
    ``config_json`` asks for a finish the DAG lacks is refused here, at its first step,
    instead of at the evaluation after the whole search."""
    from rachel.core import steps
    from rachel.core.config import SearchConfig
    from rachel.core.errors import ConfigError

    config = SearchConfig.from_json(config_json)
    if config.finish_epochs > 0 and not finish_in_dag:
        raise ConfigError(
            f"config_json asks for a finish (finish_epochs={config.finish_epochs}) but this "
            "pipeline was compiled without the finish task",
            "compile the pipeline with this configuration (rachel compile --budget small "
            "...), or run it with finish_epochs=0",
        )
    summary = steps.split_data(config, splits.path)
    splits.metadata.update(summary)
