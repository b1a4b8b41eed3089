"""``decode``: an :class:`~rachel.core.search_space.ArchitectureSpec` -> a Keras model.

The paper's ``decode_full_candidate`` (section 2.3).  Choices the paper leaves open:

* Dropout adapts to depth: block ``i`` (0-based) uses ``min(0.1 + 0.05 * i, 0.4)``.
* Pooling adapts to the feature map: a standard block max-pools 2x2 only while both
  spatial sides are >= 2, so a deep spec on 28x28 inputs still builds (28 -> 14 -> 7 ->
  3 -> 1, then no more pooling).  Residual blocks keep the resolution.
* BatchNorm momentum 0.9: with ~40 steps per epoch the default 0.99 leaves the moving
  statistics far behind the weights and validation accuracy far below training accuracy.
* Head (``head``): ``flatten`` (default) = [AveragePooling2D 2x2 while a side exceeds 7]
  -> Flatten -> Dropout(0.2) -> Dense(num_classes) logits; ``gap`` = GlobalAveragePooling2D
  -> Dropout(0.2) -> Dense.  Measured on the smoke split: one conv32 block reached 0.376
  test accuracy with ``gap`` and 0.767 with ``flatten``; averaging the map away throws out
  the spatial layout a shallow net needs.  The pooling before Flatten keeps the dense layer
  at most 7x7xwidth x classes for nets of residual blocks that never downsample.
* Pooling position (``pool_first``): the paper's standard block is Conv -> BN -> ReLU ->
  Dropout -> MaxPool.  With ``pool_first`` the max-pool follows the convolution directly
  (Conv -> MaxPool -> BN -> ReLU -> Dropout), so BatchNorm, ReLU and Dropout touch a
  quarter of the activations.  MaxPool commutes with ReLU and with a BatchNorm of
  positive scale, so the two differ only through BN statistics and dropout placement;
  the fast order trained 1.5x more images/s on 2 CPU cores (``bench/recipe.py``).  Off
  in the ``paper`` preset.
* Residual downsampling (``downsample_residual``): the paper's residual block keeps the
  resolution, so a residual block convolves whatever map it gets twice at its width: first
  in the net, the full 28x28.  With ``downsample_residual`` a residual block whose input
  map exceeds the head's 7x7 on both sides halves it (28 -> 14 -> 7), as ResNet's
  downsampling blocks do (stride-2 first convolution, stride-2 1x1 projection on the
  shortcut): a quarter of the multiply-adds per halving; the head would average-pool those
  maps to 7x7 anyway.  Measured (``bench/search_vs_baselines.py --budgets 600``, seeds 0-2):
  without it the finish trained 2-4 epochs of the nets the search handed it and RACHEL
  reached 0.916 +- 0.006; with it (and the finish without early stopping) 8, 4 and 10
  epochs, 0.922 +- 0.002.  With a 14x14 threshold a seed-0 run still finished a net of
  14x14 residual blocks for 2 epochs (0.914).  Off in the ``paper`` preset.

Models use standard Keras layers only, so a saved model loads with plain ``keras``.
Inputs are images already scaled to [0, 1]; the exported ensemble adds the scaling.
"""

from __future__ import annotations

from typing import Any

from rachel.core.errors import ConfigError
from rachel.core.search_space import ArchitectureSpec, BlockType

BN_MOMENTUM = 0.9
HEAD_DROPOUT = 0.2
HEADS = ("flatten", "gap")
HEAD_MAX_SIDE = 7
DOWNSAMPLE_ABOVE = HEAD_MAX_SIDE  # the map the head flattens


def dropout_rate(index: int) -> float:
    return min(0.1 + 0.05 * index, 0.4)


def _conv_bn_relu(x: Any, width: int, name: str, kernel: int = 3, strides: int = 1) -> Any:
    import keras

    x = keras.layers.Conv2D(
        width, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _can_pool(x: Any) -> bool:
    height, width_px = x.shape[1], x.shape[2]
    return height is not None and width_px is not None and min(height, width_px) >= 2


def _standard_block(x: Any, width: int, index: int, pool_first: bool) -> Any:
    import keras

    name = f"b{index}_std"
    if pool_first:
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
        if _can_pool(x):
            x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
        return keras.layers.Dropout(dropout_rate(index), name=f"{name}_drop")(x)
    x = _conv_bn_relu(x, width, name)
    x = keras.layers.Dropout(dropout_rate(index), name=f"{name}_drop")(x)
    if _can_pool(x):
        x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return x


def _should_downsample(x: Any) -> bool:
    height, width_px = x.shape[1], x.shape[2]
    return height is not None and width_px is not None and min(height, width_px) > DOWNSAMPLE_ABOVE


def _residual_block(x: Any, width: int, index: int, downsample: bool) -> Any:
    import keras

    name = f"b{index}_res"
    strides = 2 if downsample and _should_downsample(x) else 1
    shortcut = x
    y = _conv_bn_relu(x, width, f"{name}_a", strides=strides)
    y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_b_bn")(y)
    if shortcut.shape[-1] != width or strides != 1:
        shortcut = keras.layers.Conv2D(
            width, 1, strides=strides, use_bias=False, name=f"{name}_proj"
        )(shortcut)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(
            shortcut
        )
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu")(y)


def decode(
    spec: ArchitectureSpec,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    head: str = "flatten",
    pool_first: bool = False,
    downsample_residual: bool = False,
    name: str = "subnetwork",
) -> Any:
    """Build the Keras model for ``spec``; its output is ``num_classes`` logits."""
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}", f"use one of {', '.join(HEADS)}")
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for index, layer in enumerate(spec.layers):
        if layer.block == BlockType.STANDARD:
            x = _standard_block(x, layer.width, index, pool_first)
        else:
            x = _residual_block(x, layer.width, index, downsample_residual)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    else:
        step = 0
        while max(x.shape[1], x.shape[2]) > HEAD_MAX_SIDE:
            x = keras.layers.AveragePooling2D(2, padding="same", name=f"head_pool{step}")(x)
            step += 1
        x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dropout(HEAD_DROPOUT, name="head_drop")(x)
    # float32 logits even under a mixed-precision policy, for a stable softmax
    outputs = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
