"""Compile the RACHEL pipeline to KFP IR YAML (what ``rachel compile`` does).

The KFP compiler gives every task its own component spec and executor (each with the full
embedded source of its component), so an unrolled search grows by ~19 KB per iteration:
50 iterations x 4 candidates is ~0.94 MB of IR before the backend turns it into an Argo
workflow.  :func:`deduplicate` merges executors and component specs that are identical
(same image, command, resources, platform config); the tasks then share them, which the
KFP backend's Argo compiler supports (it stores each component once in the workflow's
arguments and references it from every task).

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
MAX_IR_BYTES = ETCD_OBJECT_LIMIT // 2


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
    (default: half of etcd's object limit, leaving room for what the backend adds when it
    makes the Argo workflow).
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
        raise ConfigError(
            f"the compiled pipeline is {len(data):,} bytes, over the {max_bytes:,}-byte budget "
            f"(etcd stores the Argo workflow as one object of at most {ETCD_OBJECT_LIMIT:,})",
            "compile fewer iterations"
            + (" or drop the early stop (its nested conditions grow quadratically)"
               if early_stop is not None else ""),
        )
    return data


def set_images(spec: dict[str, Any], images: Images) -> None:
    """Point every executor at ``images``: the components are declared with the module's
    default images (:data:`~rachel.components.settings.CPU_IMAGE` / ``GPU_IMAGE``)."""
    wanted = {CPU_IMAGE: images.cpu, GPU_IMAGE: images.gpu}
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container", {})
        if container.get("image") not in wanted:
            raise ConfigError(f"executor image {container.get('image')!r} is not one of ours",
                              "declare components with settings.CPU_IMAGE or GPU_IMAGE")
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
        k8s = platform.get("platforms", {}).get("kubernetes", {}) \
            .get("deploymentSpec", {}).get("executors", {})
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
