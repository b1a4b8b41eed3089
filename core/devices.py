"""Accelerator options (mixed precision, XLA, multi-GPU) and CPU threads, for any Keras backend.

On this project's 2-core CPU machines XLA made a small CNN about 7x slower and mixed
precision has no fast kernels, so ``auto`` turns all three on only when the backend sees
a GPU.  Asking for ``on`` without a GPU is a configuration error, caught before training.
Multi-GPU data parallelism (``MirroredStrategy``) exists on the TensorFlow backend only.
"""

from __future__ import annotations

import contextlib
import os
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


def backend() -> str:
    """The Keras backend that will be used (``KERAS_BACKEND``, default tensorflow)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def visible_gpus() -> int:
    name = backend()
    if name == "jax":
        import jax

        return sum(1 for d in jax.devices() if d.platform == "gpu")
    if name == "torch":
        import torch

        return int(torch.cuda.device_count())
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
        multi_gpu=decide("multi_gpu", multi_gpu, 2) and backend() == "tensorflow",
    )


def limit_threads(threads: int | None) -> None:
    """Pin the backend's intra-op threads to ``threads`` (None: leave the default).

    TensorFlow accepts this only before its runtime starts; a process that has already
    run TensorFlow ops with other settings gets a clear error instead of silently
    training with a different thread count (which changes results in the last bits).
    """
    if threads is None:
        return
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        threading = tf.config.threading
        if threading.get_intra_op_parallelism_threads() == threads:
            return
        try:
            threading.set_intra_op_parallelism_threads(threads)
            threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as err:
            raise ConfigError(
                f"cannot limit TensorFlow to {threads} thread(s): its runtime already started",
                "train the candidate in a fresh process (the search's worker pool does)",
            ) from err
    elif name == "torch":
        import torch

        torch.set_num_threads(threads)
    # jax: XLA's CPU thread pool is fixed at import; the worker pool sets XLA_FLAGS first.


@contextlib.contextmanager
def training_scope(options: DeviceOptions) -> Iterator[Any]:
    """Set the dtype policy (and, on TensorFlow, the distribution strategy) for training."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if options.mixed_precision else "float32"
    )
    try:
        if backend() == "tensorflow":
            import tensorflow as tf

            strategy = (
                tf.distribute.MirroredStrategy()
                if options.multi_gpu
                else tf.distribute.get_strategy()
            )
            with strategy.scope():
                yield strategy
        else:
            yield None
    finally:
        keras.mixed_precision.set_global_policy(previous)
