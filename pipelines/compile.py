"""Compile the RACHEL pipeline to KFP IR YAML (what ``rachel compile`` does).

The KFP compiler gives every task its own component spec and executor (each with the full
embedded source of its component), so an unrolled search grows by ~19 KB per iteration
(10 x 4: 224,019 bytes).  :func:`deduplicate` merges executors and component specs that are
identical (same image, command, resources, platform config); the tasks then share them
(10 x 4: 84,133 bytes), which the KFP backend's Argo compiler supports.

``rachel run`` executes the same pipeline without that sharing: kfp.local names each task's
folder after its component, so two tasks of one shared component would write into one
folder (checked: two ``make`` tasks of a shared component made ``add`` return 2+2 instead of
1+2).  ``tests/pipelines/test_compile.py`` inlines every component and executor into its task
and asserts that the shipped and the executed IR are then identical: task for task, the
cluster runs what the local run ran.

Imports kfp and the component declarations only: compiling never imports TensorFlow
(a test checks it in a fresh interpreter).  The images are a compile parameter
(:class:`~rachel.components.settings.Images`, default from ``$RACHEL_IMAGE_REGISTRY`` /
``$RACHEL_IMAGE_TAG``), written into the executors after KFP's compiler has run.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from rachel.components.settings import CPU_IMAGE, DEFAULT_PLACEMENT, GPU_IMAGE, Images, Placement
from rachel.core import storage
from rachel.core.config import SearchConfig
from rachel.core.errors import ConfigError
from rachel.pipelines.rachel_pipeline import PIPELINE_NAME, EarlyStop, build_pipeline

ETCD_OBJECT_LIMIT = 1_572_864  # 1.5 MiB: etcd's default request size limit for one object
ARGO_WORKFLOW_LIMIT = 1_048_576  # 1 MiB: Argo refuses a larger Workflow object
# Measured outside CI with KFP 2.17's backend compiler: the deduplicated 10x4 IR became an
# Argo Workflow of 183,142 bytes; that IR is 84,133 bytes from this compiler, so the
# Workflow is ~2.18x the IR.  The guard below uses that ratio as its estimate.
WORKFLOW_BYTES_PER_IR_BYTE = 183_142 / 84_133
MAX_IR_BYTES = int(ARGO_WORKFLOW_LIMIT / WORKFLOW_BYTES_PER_IR_BYTE)


def compile_pipeline(output: str | os.PathLike[str], **options: Any) -> int:
    """Write the pipeline IR YAML to ``output`` (local path or ``gs://``); return its size.

    ``options`` are those of :func:`compile_to_bytes`.
    """
    data = compile_to_bytes(**options)
    storage.write_bytes(output, data)
    return len(data)


def compile_to_bytes(
    *,
    iterations: int = 2,
    candidates: int = 2,
    placement: Placement = DEFAULT_PLACEMENT,
    config: SearchConfig | None = None,
    early_stop: EarlyStop | None = None,
    name: str = PIPELINE_NAME,
    dedupe: bool = True,
    max_bytes: int | None = MAX_IR_BYTES,
    images: Images | None = None,
) -> bytes:
    """The IR YAML (pipeline spec, then the Kubernetes platform spec) as bytes.

    ``images``: the CPU and GPU images the tasks run (default :meth:`Images.from_env`),
    written into every executor.  Raises ConfigError when the IR exceeds ``max_bytes``
    (default: the IR whose estimated Argo Workflow reaches Argo's 1 MiB limit, see
    :data:`WORKFLOW_BYTES_PER_IR_BYTE`).
    """
    from kfp import compiler

    pipeline = build_pipeline(
        iterations, candidates, placement, config, early_stop=early_stop, name=name
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        data = path.read_bytes()
    docs = list(yaml.safe_load_all(data))
    spec, platform = docs[0], (docs[1] if len(docs) > 1 else None)
    set_images(spec, images or Images.from_env())
    if dedupe:
        spec, platform = deduplicate(spec, platform)
    out = [spec] + ([platform] if platform is not None else [])
    data = yaml.safe_dump_all(out, sort_keys=True).encode()
    if max_bytes is not None and len(data) > max_bytes:
        estimate = int(len(data) * WORKFLOW_BYTES_PER_IR_BYTE)
        raise ConfigError(
            f"the compiled pipeline is {len(data):,} bytes, over the {max_bytes:,}-byte budget: "
            f"its Argo Workflow is estimated at {estimate:,} bytes "
            f"({WORKFLOW_BYTES_PER_IR_BYTE:.2f}x the IR, as measured with KFP 2.17's backend "
            f"compiler), and Argo refuses one "
            f"over {ARGO_WORKFLOW_LIMIT:,}",
            "compile fewer iterations"
            + (
                " or drop the early stop (its nested conditions grow quadratically)"
                if early_stop is not None
                else ""
            ),
        )
    return data


def set_images(spec: dict[str, Any], images: Images) -> None:
    """Point every executor at ``images``: the components are declared with the module's
    default images (:data:`~rachel.components.settings.CPU_IMAGE` / ``GPU_IMAGE``)."""
    wanted = {CPU_IMAGE: images.cpu, GPU_IMAGE: images.gpu}
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container", {})
        if container.get("image") not in wanted:
            raise ConfigError(
                f"executor image {container.get('image')!r} is not one of ours",
                "declare components with settings.CPU_IMAGE or GPU_IMAGE",
            )
        container["image"] = wanted[container["image"]]


def deduplicate(
    spec: dict[str, Any], platform: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Share identical executors and container component specs between tasks.

    Two executors are merged only when their container spec AND their Kubernetes platform
    config are equal; two components only when they are equal once their executors are
    merged.  Task names, DAGs and parameters are unchanged.
    """
    spec, platform = copy.deepcopy(spec), copy.deepcopy(platform)
    executors = spec["deploymentSpec"]["executors"]
    k8s: dict[str, Any] = {}
    if platform is not None:
        k8s = (
            platform.get("platforms", {})
            .get("kubernetes", {})
            .get("deploymentSpec", {})
            .get("executors", {})
        )
    exec_map: dict[str, str] = {}
    seen: dict[str, str] = {}
    for label in sorted(executors, key=_natural):
        key = json.dumps([executors[label], k8s.get(label)], sort_keys=True)
        exec_map[label] = seen.setdefault(key, label)
    components = spec["components"]
    comp_map: dict[str, str] = {}
    seen = {}
    for name in sorted(components, key=_natural):
        comp = components[name]
        if "executorLabel" not in comp:
            continue
        comp["executorLabel"] = exec_map[comp["executorLabel"]]
        comp_map[name] = seen.setdefault(json.dumps(comp, sort_keys=True), name)
    for dag in [spec["root"].get("dag", {})] + [c.get("dag", {}) for c in components.values()]:
        for task in dag.get("tasks", {}).values():
            ref = task["componentRef"]
            ref["name"] = comp_map.get(ref["name"], ref["name"])
    for name, target in comp_map.items():
        if name != target:
            del components[name]
    for label, target in exec_map.items():
        if label != target:
            del executors[label]
            k8s.pop(label, None)
    return spec, platform


def _natural(name: str) -> tuple[str, int]:
    """``exec-x`` < ``exec-x-2`` < ``exec-x-10`` (the first one becomes the shared one)."""
    stem, _, suffix = name.rpartition("-")
    return (stem, int(suffix)) if suffix.isdigit() else (name, 0)
