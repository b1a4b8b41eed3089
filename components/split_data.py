"""Component: load the dataset and write the stratified, seeded train/val/test split."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def split_data(config_json: str, splits: Output[Dataset]) -> None:
    """Write ``splits`` (one .npz: train/val/test arrays + metadata) for the search."""
    from rachel.core import steps
    from rachel.core.config import SearchConfig

    summary = steps.split_data(SearchConfig.from_json(config_json), splits.path)
    splits.metadata.update(summary)
