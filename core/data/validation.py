"""Early, explicit checks on dataset arrays; every failure is a DataError naming the problem.

Conversion rules (one place, used by every loader):

* Images become uint8 N×H×W×C with C in {1, 3}; N×H×W gains C = 1.  Values stay 0..255:
  the trainer, not the dataset artifact, normalises to [0, 1].
* Integer images (any integer dtype) must already lie in 0..255 and are cast; they are never
  rescaled (so 0/1 masks stay 0/1).
* Float images are rescaled *per dataset, not per split*: if every float split lies in [0, 1]
  the whole dataset is taken as [0, 1] data and multiplied by 255; otherwise values must lie in
  [0, 255].  Both are rounded to the nearest integer.  Deciding once keeps train/val/test on
  the same scale (a test split whose maximum happens to be 0.9 is not treated differently).
  Negative or larger values (standardised data, 16-bit) are refused: store raw pixels.
* Labels become an int64 vector.  N×1 is flattened, N×K one-hot rows are turned into indices,
  floats are accepted only when every value is integral (1.0, not 0.5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from rachel.core.errors import DataError

#: Default minimum number of examples of *each* class per split.
DEFAULT_MIN_PER_CLASS: dict[str, int] = {"train": 2, "val": 1, "test": 1}

_RAW_PIXELS = "store raw pixel values (uint8 0..255, or floats in [0, 1])"


def _is_numeric(x: np.ndarray) -> bool:
    return x.dtype.kind in "uif"


def check_images(x: np.ndarray, *, split: str) -> None:
    """Shape N×H×W or N×H×W×C (C in {1, 3}), real numeric dtype, finite values."""
    if not isinstance(x, np.ndarray):
        raise DataError(
            f"x_{split} is a {type(x).__name__}, not a NumPy array", "pass numpy arrays"
        )
    if not _is_numeric(x):
        raise DataError(f"x_{split} has non-numeric dtype {x.dtype}", _RAW_PIXELS)
    if x.ndim not in (3, 4):
        raise DataError(
            f"x_{split} has shape {x.shape}; images must be N×H×W or N×H×W×C",
            "reshape flat vectors to N×H×W(×C); channels go last",
        )
    if x.ndim == 4 and x.shape[3] not in (1, 3):
        hint = (
            "channels must be last (N×H×W×C); transpose channel-first data"
            if x.shape[1] in (1, 3)
            else "use greyscale (C=1) or RGB (C=3) images"
        )
        raise DataError(
            f"x_{split} has shape {x.shape}: {x.shape[3]} channels, expected 1 or 3", hint
        )
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"x_{split} has empty images (shape {x.shape})", "check the arrays")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))[0])
            raise DataError(
                f"x_{split} holds {int(bad.sum())} NaN/inf values (first in example {i})",
                "fix or drop the broken images",
            )


def check_lengths(x: np.ndarray, y: np.ndarray, *, split: str) -> None:
    if len(x) != len(y):
        raise DataError(
            f"x_{split} has {len(x)} examples but y_{split} has {len(y)}",
            "images and labels must be aligned one to one",
        )


def image_scale(arrays: Iterable[np.ndarray]) -> float:
    """255.0 when every float array lies in [0, 1] (data in [0, 1]), else 1.0."""
    floats = [a for a in arrays if a.dtype.kind == "f" and a.size]
    if floats and all(float(a.min()) >= 0.0 and float(a.max()) <= 1.0 for a in floats):
        return 255.0
    return 1.0


def to_uint8_images(x: np.ndarray, *, split: str, scale: float = 1.0) -> np.ndarray:
    """Check ``x`` and return it as uint8 N×H×W×C (see the module docstring for the rules)."""
    check_images(x, split=split)
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if x.dtype.kind == "f":
        if scale != 1.0:
            x = x.astype(np.float64) * scale
            lo, hi = lo * scale, hi * scale
        if lo < 0 or hi > 255:
            raise DataError(
                f"x_{split} has float values in [{lo:g}, {hi:g}], outside [0, 1] "
                "and [0, 255] (standardised data?)",
                _RAW_PIXELS,
            )
        return np.ascontiguousarray(np.rint(x).astype(np.uint8))
    if lo < 0 or hi > 255:
        raise DataError(
            f"x_{split} has integer values in [{lo:g}, {hi:g}], outside 0..255",
            "rescale to 8-bit (0..255) before loading",
        )
    return np.ascontiguousarray(x.astype(np.uint8))


def to_int64_labels(y: np.ndarray, *, split: str) -> np.ndarray:
    """Return labels as an int64 vector; refuse non-integer values (see module docstring)."""
    y = np.asarray(y)
    if y.dtype.kind in "USO":
        raise DataError(
            f"y_{split} holds strings/objects (dtype {y.dtype})", "use integer class indices 0..K-1"
        )
    if y.dtype.kind not in "uif":
        raise DataError(
            f"y_{split} has non-numeric dtype {y.dtype}", "use integer class indices 0..K-1"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1:
        is_one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        if not is_one_hot:
            raise DataError(
                f"y_{split} has shape {y.shape} but its rows are not one-hot",
                "use a vector of integer class indices",
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataError(
            f"y_{split} has shape {y.shape}; labels must be a vector (N,)",
            "use integer class indices 0..K-1",
        )
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"y_{split} is not integer: y_{split}[{i}] = {y[i].item()!r}",
                "labels must be whole class indices 0..K-1",
            )
    if y.size and y.min() < 0:
        i = int(np.flatnonzero(y < 0)[0])
        raise DataError(
            f"y_{split}[{i}] = {y[i].item()} is negative", "labels must be class indices 0..K-1"
        )
    return y.astype(np.int64)


def check_label_range(y: np.ndarray, num_classes: int, *, split: str) -> None:
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"y_{split}[{i}] = {int(y[i])} is outside [0, {num_classes})",
            f"labels must be class indices 0..{num_classes - 1}",
        )


def resolve_min_per_class(min_per_class: int | Mapping[str, int] | None) -> dict[str, int]:
    """An int applies to every split; a mapping overrides :data:`DEFAULT_MIN_PER_CLASS`."""
    if min_per_class is None:
        return dict(DEFAULT_MIN_PER_CLASS)
    if isinstance(min_per_class, int | np.integer):
        return {s: int(min_per_class) for s in DEFAULT_MIN_PER_CLASS}
    unknown = set(min_per_class) - set(DEFAULT_MIN_PER_CLASS)
    if unknown:
        raise DataError(
            f"min_per_class names unknown splits {sorted(unknown)}", "use the keys train, val, test"
        )
    return {**DEFAULT_MIN_PER_CLASS, **{k: int(v) for k, v in min_per_class.items()}}


def check_class_counts(
    y: np.ndarray,
    num_classes: int,
    minimum: int,
    *,
    split: str,
    class_names: Sequence[str] | None = None,
) -> None:
    """Every class has at least ``minimum`` examples in this split (and the split is not empty)."""
    if len(y) == 0:
        raise DataError(f"the {split} split is empty", "provide examples for every split")
    counts = np.bincount(y, minlength=num_classes)
    short = np.flatnonzero(counts < minimum)
    if len(short):

        def label(c: int) -> str:
            return f"{c} ({class_names[c]!r})" if class_names else str(c)

        listed = ", ".join(f"class {label(int(c))}: {int(counts[c])}" for c in short[:5])
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        what = "missing from" if (counts[short] == 0).all() else "with too few examples in"
        raise DataError(
            f"{len(short)} class(es) {what} the {split} split (need ≥ {minimum} "
            f"each; {listed}{more})",
            "add examples of those classes, use a larger split size, or lower min_per_class",
        )


def check_splits(
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    *,
    min_per_class: int | Mapping[str, int] | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Full check of converted arrays: shapes agree across splits, labels in range, counts."""
    mins = resolve_min_per_class(min_per_class)
    shapes = {}
    for split, (x, y) in splits.items():
        check_images(x, split=split)
        check_lengths(x, y, split=split)
        check_label_range(y, num_classes, split=split)
        check_class_counts(y, num_classes, mins.get(split, 1), split=split, class_names=class_names)
        shapes[split] = x.shape[1:]
    if len(set(shapes.values())) > 1:
        raise DataError(
            f"image shapes differ between splits: {shapes}",
            "every split must hold images of one H×W×C shape",
        )
