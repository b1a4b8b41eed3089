"""The dataset artifact: train/val/test arrays plus metadata, saved as ONE ``.npz``.

* Images are uint8 N×H×W×C in 0..255 (not normalised: the trainer divides by 255), labels
  int64.  The arrays are made read-only when a :class:`DatasetSplits` is built, so that the
  frozen dataclass is really immutable (copy an array before changing it).
* ``save`` writes ``np.savez`` (no pickle) with the metadata as a JSON string in the
  ``__meta__`` entry, through :func:`rachel.core.storage.write_bytes`: atomic locally (temp
  file + rename) and on ``gs://`` (single-object upload).  ``load`` refuses anything that is not
  such an artifact and re-runs the data checks.
* Splitting is stratified: each class contributes in proportion to its size (largest-remainder
  rounding), every class keeps at least one example on each side when the sizes allow it, and
  the examples of a class are drawn with the given seed.  Selected examples keep their original
  order (the trainer shuffles).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.data import validation
from rachel.core.errors import ArtifactError, DataError

AUGMENTATIONS = ("natural", "digits", "none")
"""``natural``: random horizontal flips + ±10 % translation (the paper's setting);
``digits``: ±10 % translation only (flipping digits changes their meaning); ``none``."""

ARTIFACT_FORMAT = "rachel.dataset_splits"
ARTIFACT_VERSION = 1
META_KEY = "__meta__"
_ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Train/validation/test arrays of one dataset and the metadata the trainer needs."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    augmentation: str
    seed: int
    source: str

    def __post_init__(self) -> None:
        # Structural checks only (cheap); class coverage is checked by load_dataset / load.
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.augmentation not in AUGMENTATIONS:
            raise DataError(
                f"augmentation {self.augmentation!r} is unknown", f"use one of {AUGMENTATIONS}"
            )
        if self.num_classes < 2 or len(self.class_names) != self.num_classes:
            raise DataError(
                f"{self.name}: num_classes={self.num_classes} with "
                f"{len(self.class_names)} class names",
                "give one name per class and at least 2 classes",
            )
        for split in SPLITS:
            x, y = self.split(split)
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
                raise DataError(
                    f"{self.name}: x_{split} must be uint8 N×H×W×C, got "
                    f"{getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}",
                    "build DatasetSplits through load_dataset()",
                )
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
                raise DataError(
                    f"{self.name}: y_{split} must be an int64 vector, got "
                    f"{getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')}",
                    "build DatasetSplits through load_dataset()",
                )
            validation.check_lengths(x, y, split=split)
            validation.check_label_range(y, self.num_classes, split=split)
            if x.shape[1:] != self.input_shape:
                raise DataError(
                    f"{self.name}: x_{split} images are {x.shape[1:]} but "
                    f"input_shape is {self.input_shape}",
                    "all splits must share one H×W×C shape",
                )
            x.flags.writeable = False
            y.flags.writeable = False

    # ------------------------------------------------------------------ access

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}", f"use one of {SPLITS}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(self.split(s)[1]) for s in SPLITS}

    def class_counts(self, split: str) -> np.ndarray:
        return np.bincount(self.split(split)[1], minlength=self.num_classes)

    def metadata(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "augmentation": self.augmentation,
            "seed": self.seed,
            "source": self.source,
            "sizes": self.sizes,
        }

    def validate(self, min_per_class: int | Mapping[str, int] | None = None) -> None:
        """Run the full data checks (class coverage with ``min_per_class``)."""
        validation.check_splits(
            {s: self.split(s) for s in SPLITS},
            self.num_classes,
            min_per_class=min_per_class,
            class_names=self.class_names,
        )

    # ------------------------------------------------------------------ artifact

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays: dict[str, Any] = {k: getattr(self, k) for k in _ARRAY_KEYS}
        arrays[META_KEY] = np.array(json.dumps(self.metadata()))
        np.savez(buf, **arrays)
        return buf.getvalue()

    def save(self, uri: str | os.PathLike[str]) -> None:
        """Write the artifact as one ``.npz`` (atomic, local path or ``gs://``)."""
        storage.write_bytes(uri, self.to_bytes())

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        source: str = "<bytes>",
        min_per_class: int | Mapping[str, int] | None = None,
    ) -> DatasetSplits:
        try:
            npz = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ArtifactError(
                f"{source} is not a dataset artifact (.npz): {err}",
                "re-run the data step that writes it",
            ) from err
        if not hasattr(npz, "files"):
            raise ArtifactError(
                f"{source} holds a single array, not a dataset artifact",
                "re-run the data step that writes it",
            )
        with npz:
            missing = [k for k in (*_ARRAY_KEYS, META_KEY) if k not in npz.files]
            if missing:
                raise ArtifactError(
                    f"{source} lacks {missing}; it is not a DatasetSplits artifact",
                    "load user data with load_dataset() instead",
                )
            try:
                meta = json.loads(str(npz[META_KEY]))
                arrays = {k: npz[k] for k in _ARRAY_KEYS}
            except (ValueError, zipfile.BadZipFile, EOFError, OSError) as err:
                raise ArtifactError(
                    f"{source} is truncated or corrupt ({err})",
                    "re-run the data step that writes it",
                ) from err
        if meta.get("format") != ARTIFACT_FORMAT or meta.get("version") != ARTIFACT_VERSION:
            raise ArtifactError(
                f"{source} has format {meta.get('format')!r} version "
                f"{meta.get('version')!r}, expected {ARTIFACT_FORMAT!r} "
                f"version {ARTIFACT_VERSION}",
                "re-run the data step",
            )
        try:
            splits = cls(
                **arrays,
                name=str(meta["name"]),
                num_classes=int(meta["num_classes"]),
                class_names=tuple(meta["class_names"]),
                input_shape=tuple(meta["input_shape"]),
                augmentation=str(meta["augmentation"]),
                seed=int(meta["seed"]),
                source=str(meta["source"]),
            )
        except KeyError as err:
            raise ArtifactError(f"{source}: metadata lacks {err}", "re-run the data step") from err
        splits.validate(min_per_class)
        return splits

    @classmethod
    def load(
        cls, uri: str | os.PathLike[str], *, min_per_class: int | Mapping[str, int] | None = None
    ) -> DatasetSplits:
        """Read an artifact written by :meth:`save` and validate it (``min_per_class`` as in
        :func:`rachel.core.data.load_dataset`; pass 0 to skip the class-count checks)."""
        return cls.from_bytes(storage.read_bytes(uri), source=str(uri), min_per_class=min_per_class)


# ---------------------------------------------------------------------- stratification


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def allocate(counts: np.ndarray, n: int, *, keep_rest: bool) -> np.ndarray:
    """How many of each class to take so that the total is ``n``, proportional to ``counts``.

    Largest-remainder rounding (ties: lower class index).  Every present class gets ≥ 1 when
    ``n`` is at least the number of present classes; with ``keep_rest`` every class with ≥ 2
    examples also keeps ≥ 1 example outside the selection.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if n < 0 or n > total:
        raise DataError(f"cannot take {n} of {total} examples", "choose a size in range")
    present = counts > 0
    lo = np.where(present & (n >= int(present.sum())), 1, 0)
    hi = counts - (counts >= 2) if keep_rest else counts.copy()
    lo = np.minimum(lo, hi)
    if int(hi.sum()) < n:
        hi = counts.copy()
    quota = counts * (n / total) if total else np.zeros(len(counts))
    take = np.clip(np.floor(quota).astype(np.int64), lo, hi)
    while int(take.sum()) < n:
        gap = np.where(take < hi, quota - take, -np.inf)
        take[int(np.argmax(gap))] += 1
    while int(take.sum()) > n:
        gap = np.where(take > lo, quota - take, np.inf)
        take[int(np.argmin(gap))] -= 1
    return take


def stratified_indices(
    y: np.ndarray, n: int, rng: np.random.Generator | int | None, *, keep_rest: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(y))`` into ``(rest, selected)`` with ``len(selected) == n``, stratified."""
    y = np.asarray(y)
    rng = _as_rng(rng)
    classes, inverse = np.unique(y, return_inverse=True)
    take = allocate(np.bincount(inverse, minlength=len(classes)), n, keep_rest=keep_rest)
    chosen = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]] for c in range(len(classes))]
    selected = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    mask = np.zeros(len(y), bool)
    mask[selected] = True
    return np.flatnonzero(~mask), selected


def stratified_split(
    x: np.ndarray, y: np.ndarray, n_val: int, rng: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve ``n_val`` examples, stratified by class, off ``(x, y)``.

    Returns ``(x_rest, y_rest, x_val, y_val)``.  ``rng`` is a Generator or an int seed; the same
    seed gives the same split.
    """
    validation.check_lengths(x, y, split="input")
    if not 0 < n_val < len(y):
        raise DataError(
            f"cannot carve {n_val} validation examples out of {len(y)}",
            "choose 0 < n_val < number of examples",
        )
    rest, sel = stratified_indices(y, n_val, rng, keep_rest=True)
    return x[rest], y[rest], x[sel], y[sel]


def subsample(
    splits: DatasetSplits,
    *,
    train: int | None = None,
    val: int | None = None,
    test: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """Return a smaller copy with the given number of examples per split (None keeps a split).

    Stratified with ``seed``; every class keeps at least one example in each subsampled split,
    so a size below the number of classes is refused.
    """
    rng = np.random.default_rng(seed)
    changes: dict[str, Any] = {}
    for split, n in (("train", train), ("val", val), ("test", test)):
        if n is None:
            continue
        x, y = splits.split(split)
        n = int(n)
        present = int((np.bincount(y, minlength=splits.num_classes) > 0).sum())
        if n > len(y):
            raise DataError(
                f"{split}_size={n} is larger than the {len(y)} {split} examples of {splits.name}",
                f"use {split}_size ≤ {len(y)} or None for all",
            )
        if n < present:
            raise DataError(
                f"{split}_size={n} is smaller than the {present} classes of "
                f"{splits.name}; every class must keep an example",
                f"use {split}_size ≥ {present}",
            )
        if n == len(y):
            continue
        _, sel = stratified_indices(y, n, rng, keep_rest=False)
        changes[f"x_{split}"], changes[f"y_{split}"] = x[sel], y[sel]
    return dataclasses.replace(splits, **changes) if changes else splits
