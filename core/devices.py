"""Accelerator options: mixed precision, XLA and multi-GPU, on only where a GPU is present.

On this project's 2-core CPU machines XLA made a small CNN about 7x slower and mixed
precision has no fast kernels, so ``auto`` turns all three on only when TensorFlow sees
a GPU.  Asking for ``on`` without a GPU is a configuration error, caught before training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rachel.core.errors import ConfigError


@dataclass(frozen=True)
class DeviceOptions:
    gpus: int
    mixed_precision: bool
    xla: bool
    multi_gpu: bool

    @property
    def device_kind(self) -> str:
        return f"{self.gpus}xGPU" if self.gpus else "CPU"


def visible_gpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def resolve(
    mixed_precision: str = "auto",
    xla: str = "auto",
    multi_gpu: str = "auto",
    *,
    gpus: int | None = None,
) -> DeviceOptions:
    gpus = visible_gpus() if gpus is None else gpus

    def decide(name: str, value: str, needs: int) -> bool:
        if value == "off":
            return False
        if value == "on":
            if gpus < needs:
                raise ConfigError(
                    f"{name}=on needs {needs} GPU(s) but {gpus} are visible",
                    f"use {name}=auto (on only with a GPU) or run on a GPU node",
                )
            return True
        return gpus >= needs

    return DeviceOptions(
        gpus=gpus,
        mixed_precision=decide("mixed_precision", mixed_precision, 1),
        xla=decide("xla", xla, 1),
        multi_gpu=decide("multi_gpu", multi_gpu, 2),
    )


@contextlib.contextmanager
def training_scope(options: DeviceOptions) -> Iterator[Any]:
    """Set the dtype policy and distribution strategy for building and fitting a model."""
    import keras
    import tensorflow as tf

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if options.mixed_precision else "float32"
    )
    strategy = (
        tf.distribute.MirroredStrategy() if options.multi_gpu else tf.distribute.get_strategy()
    )
    try:
        with strategy.scope():
            yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)
