"""Compile the RACHEL pipeline to KFP IR YAML (what ``rachel compile`` does).

Imports kfp and the component declarations only: compiling never imports TensorFlow
(a test checks it in a fresh interpreter).  Image names come from
:mod:`rachel.components.settings`, read when the components are first imported; set
``RACHEL_IMAGE_REGISTRY`` / ``RACHEL_IMAGE_TAG`` before that (the CLI does).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rachel.components.settings import DEFAULT_PLACEMENT, Placement
from rachel.core import storage
from rachel.core.config import SearchConfig
from rachel.pipelines.rachel_pipeline import PIPELINE_NAME, EarlyStop, build_pipeline

ETCD_OBJECT_LIMIT = 1_572_864  # 1.5 MiB: etcd's default request size limit for one object


def compile_pipeline(
    output: str | os.PathLike[str],
    *,
    iterations: int = 2,
    candidates: int = 2,
    placement: Placement = DEFAULT_PLACEMENT,
    config: SearchConfig | None = None,
    early_stop: EarlyStop | None = None,
    name: str = PIPELINE_NAME,
) -> int:
    """Write the pipeline IR YAML to ``output`` (local path or ``gs://``); return its size."""
    from kfp import compiler

    pipeline = build_pipeline(
        iterations, candidates, placement, config, early_stop=early_stop, name=name
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        data = path.read_bytes()
    storage.write_bytes(output, data)
    return len(data)
