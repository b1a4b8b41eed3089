"""Component: load the NAS-Bench table (Parquet, or an official .tfrecord converted)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from rachel.components.settings import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def nasbench_load_table(table_uri: str, table: Output[Dataset]) -> bool:
    """Write ``table`` (table.parquet) from a local/gs:// Parquet or tfrecord; return True when
    the table is partial (some cell has no validation accuracy: the surrogate is needed)."""
    from rachel.core.nasbench.pipeline_steps import load_table

    summary = load_table(table_uri, table.path)
    table.metadata.update(summary)
    return bool(summary["partial"])
