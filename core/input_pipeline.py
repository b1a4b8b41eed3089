"""Training inputs as NumPy arrays: normalisation to [0, 1], seeded shuffling and augmentation.

Backend-neutral on purpose: the trainer feeds ``model.fit`` in-memory arrays, so the same
code runs under ``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch`` (a GPU node may offer JAX
or PyTorch with CUDA and no TensorFlow build).  Feeding arrays is also what a user's plain
``model.fit(x, y)`` does, which is the speed the trainer is measured against
(``bench/training_throughput.py``).

Augmentation kinds (section 2.3 uses flips and +-10 % translations and nothing more):

* ``natural``: random horizontal flip + random translation of up to 10 % (CIFAR-10, the
  binary pairs, Fashion-MNIST, whose classes are left-right symmetric);
* ``digits``: translation only; flipping a digit changes its meaning (MNIST, SVHN);
* ``none``: no augmentation.

Translations are whole pixels (``round(0.1 * side)`` at most, zero fill), drawn per image.
Everything random comes from the ``np.random.Generator`` passed in, so a seed reproduces an
epoch's arrays bit for bit on any backend.

**Whole batches.**  An epoch's arrays hold a whole number of batches: the shuffled order is
cut to a multiple of the batch size (fewer than one batch of examples sit out an epoch, a
different few each epoch).  Measured on this machine (TensorFlow 2.21, oneDNN on, two
intra-op threads): a model fed epochs of changing length, so the last, partial batch
changed shape from one ``fit`` to the next, crashed the process within 3-7 epochs
(``free(): invalid pointer``, ``double free or corruption``, segmentation faults) in each
of three runs; with whole batches only, or one thread, or oneDNN off, 40 epochs ran clean.
The finish re-plans its examples per epoch and trains on two threads, so it met this in
real runs (600 s, seed 1, twice).  The trainer also traces one batch shape instead of two.
"""

from __future__ import annotations

import numpy as np

from rachel.core.errors import ConfigError

AUGMENTATIONS = ("natural", "digits", "none")
MAX_SHIFT = 0.1


def normalise(x: np.ndarray) -> np.ndarray:
    """uint8 0..255 images -> float32 in [0, 1]."""
    return np.asarray(x, dtype=np.float32) * np.float32(1.0 / 255.0)


def _translate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, h, w, _ = x.shape
    ph, pw = int(round(MAX_SHIFT * h)), int(round(MAX_SHIFT * w))
    if ph == 0 and pw == 0:
        return x
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    top = np.asarray(rng.integers(0, 2 * ph + 1, n))
    left = np.asarray(rng.integers(0, 2 * pw + 1, n))
    rows = top[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = left[:, None] + np.arange(w)[None, :]  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def augment(x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A randomly flipped / translated copy of the image batch ``x`` (N, H, W, C)."""
    if kind not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {kind!r}", f"use one of {AUGMENTATIONS}")
    if kind == "none":
        return x
    out = x
    if kind == "natural":
        flip = rng.random(len(x)) < 0.5
        out = out.copy()
        out[flip] = out[flip, :, ::-1]
    return _translate(out, rng)


def batches_per_epoch(examples: int, batch_size: int) -> int:
    """Optimizer steps of an epoch over ``examples`` (:func:`epoch_arrays` keeps whole
    batches; fewer examples than one batch make one step)."""
    return max(1, examples // batch_size)


def epoch_arrays(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    augmentation: str = "none",
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's training arrays: shuffled, augmented (uint8 in, float32 [0, 1] out); with
    ``batch_size``, cut to whole batches (see the module's docstring)."""
    order = rng.permutation(len(x))
    if batch_size is not None and len(order) > batch_size:
        order = order[: batches_per_epoch(len(order), batch_size) * batch_size]
    images = augment(x[order], augmentation, rng)
    return normalise(images), y[order]
