"""Settings shared by the components, the pipeline, the images and the manifests.

Image names are defined here ONCE.  Compilation takes them explicitly (:class:`Images`,
``rachel compile --image-registry R --image-tag T``), defaulting to the environment, so a CI
job builds, pushes and compiles against the same tag::

    RACHEL_IMAGE_REGISTRY=europe-west4-docker.pkg.dev/my-project/rachel \\
    RACHEL_IMAGE_TAG=$GIT_SHA rachel compile --output pipeline.yaml

Placement (GPU type, node selector, tolerations, resources, retries) is a frozen dataclass
that :func:`rachel.pipelines.rachel_pipeline.build_pipeline` applies to the tasks; the
defaults target a GKE node pool of NVIDIA L4 GPUs.  This module imports neither kfp nor
TensorFlow.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from rachel.core.errors import ConfigError

REGISTRY_ENV = "RACHEL_IMAGE_REGISTRY"
TAG_ENV = "RACHEL_IMAGE_TAG"
DEFAULT_REGISTRY = "europe-west4-docker.pkg.dev/rachel-nas/rachel"
DEFAULT_TAG = "0.1.0"
CPU_IMAGE_NAME = "rachel-cpu"
GPU_IMAGE_NAME = "rachel-gpu"

_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def image_registry() -> str:
    return os.environ.get(REGISTRY_ENV, DEFAULT_REGISTRY).rstrip("/")


def _checked_tag(tag: str, source: str) -> str:
    if tag == "latest" or not _TAG_RE.match(tag):
        raise ConfigError(
            f"{source}={tag!r} is not a pinned image tag",
            "use a version or a commit SHA (never 'latest')",
        )
    return tag


def image_tag() -> str:
    return _checked_tag(os.environ.get(TAG_ENV, DEFAULT_TAG), TAG_ENV)


def image(name: str) -> str:
    """``<registry>/<name>:<tag>`` for one of our images."""
    return f"{image_registry()}/{name}:{image_tag()}"


@dataclass(frozen=True)
class Images:
    """The two images a compiled pipeline runs, given to compilation explicitly
    (:func:`rachel.pipelines.compile.compile_to_bytes` writes them into the IR), so two
    compilations in one process can differ.  :meth:`from_env` is the default."""

    registry: str = DEFAULT_REGISTRY
    tag: str = DEFAULT_TAG

    def __post_init__(self) -> None:
        _checked_tag(self.tag, "image tag")
        if not self.registry or self.registry != self.registry.strip() or " " in self.registry:
            raise ConfigError(
                f"image registry {self.registry!r} is not a registry path",
                "write e.g. europe-west4-docker.pkg.dev/PROJECT/REPO",
            )

    @classmethod
    def from_env(cls, registry: str | None = None, tag: str | None = None) -> Images:
        """``registry`` / ``tag`` when given, else ``$RACHEL_IMAGE_REGISTRY`` /
        ``$RACHEL_IMAGE_TAG``, else the defaults."""
        return cls((registry or image_registry()).rstrip("/"), tag or image_tag())

    @property
    def cpu(self) -> str:
        return f"{self.registry}/{CPU_IMAGE_NAME}:{self.tag}"

    @property
    def gpu(self) -> str:
        return f"{self.registry}/{GPU_IMAGE_NAME}:{self.tag}"


# The images the component decorators are declared with; compilation replaces them with the
# Images it is given, so these only matter to code that uses the components directly.
CPU_IMAGE = image(CPU_IMAGE_NAME)
"""Data split, candidate generation, ensemble weighting, controller update, evaluation."""
GPU_IMAGE = image(GPU_IMAGE_NAME)
"""Candidate training (CUDA-enabled TensorFlow)."""


@dataclass(frozen=True)
class Placement:
    """Where and how the tasks run on Kubernetes (ignored by ``kfp.local``).

    ``gpu=False`` keeps training on CPU nodes (no accelerator request, no node selector).
    Resource strings use Kubernetes quantities ("2", "500m", "8G").
    """

    gpu: bool = True
    accelerator_type: str = "nvidia.com/gpu"
    accelerator_limit: int = 1
    node_selector_key: str = "cloud.google.com/gke-accelerator"
    node_selector_value: str = "nvidia-l4"
    toleration_key: str = "nvidia.com/gpu"
    toleration_operator: str = "Exists"
    toleration_effect: str = "NoSchedule"
    # requests for the light tasks (split, generate, weigh, update, evaluate)
    cpu_request: str = "1"
    memory_request: str = "4G"
    # requests for training (an L4 node g2-standard-8 has 8 vCPU / 32 GB)
    train_cpu_request: str = "4"
    train_memory_request: str = "16G"
    # training runs on spot / preemptible nodes: retry with exponential backoff
    train_retries: int = 3
    train_backoff_duration: str = "60s"
    train_backoff_factor: float = 2.0
    train_backoff_max_duration: str = "3600s"
    parallelism: int = 4  # candidates trained at once (ParallelFor)

    def __post_init__(self) -> None:
        if self.accelerator_limit < 1:
            raise ConfigError("accelerator_limit must be >= 1")
        if self.train_retries < 0:
            raise ConfigError("train_retries must be >= 0")
        if self.parallelism < 1:
            raise ConfigError("parallelism must be >= 1")
        if self.train_backoff_factor < 1:
            raise ConfigError("train_backoff_factor must be >= 1")
        for name in ("cpu_request", "memory_request", "train_cpu_request", "train_memory_request"):
            if not re.match(r"^[0-9.]+[A-Za-z]*$", getattr(self, name)):
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} is not a Kubernetes quantity",
                    "write e.g. 2, 500m, 8G",
                )

    def replace(self, **overrides: Any) -> Placement:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PLACEMENT = Placement()
