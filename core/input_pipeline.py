"""tf.data input pipelines: normalisation to [0, 1] and per-dataset augmentation.

Augmentation kinds (section 2.3 uses flips and +-10 % translations and nothing more):

* ``natural``: random horizontal flip + random translation of up to 10 % (CIFAR-10, the
  binary pairs, Fashion-MNIST, whose classes are left-right symmetric);
* ``digits``: translation only; flipping a digit changes its meaning (MNIST, SVHN);
* ``none``: no augmentation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rachel.core.errors import ConfigError

AUGMENTATIONS = ("natural", "digits", "none")


def augmentation_layers(kind: str, seed: int) -> list[Any]:
    import keras

    if kind not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {kind!r}", f"use one of {AUGMENTATIONS}")
    layers: list[Any] = []
    if kind == "natural":
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if kind in ("natural", "digits"):
        layers.append(keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 1))
    return layers


def normalise(x: Any) -> Any:
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


def make_dataset(
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    batch_size: int,
    training: bool = False,
    augmentation: str = "none",
    seed: int = 0,
) -> Any:
    """A batched, prefetched dataset of ``([0,1] float images, int labels)``."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if y is not None:
        ds = ds.map(lambda a, b: (normalise(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augmentation != "none":
        layers = augmentation_layers(augmentation, seed)

        def augment(images: Any, labels: Any) -> Any:
            for layer in layers:
                images = layer(images, training=True)
            return images, labels

        # Sequential on purpose: the seeded random layers draw from one generator, and
        # parallel calls would consume its draws in a nondeterministic order, so the same
        # seed would not give the same training run.
        ds = ds.map(augment)
    return ds.prefetch(tf.data.AUTOTUNE)
