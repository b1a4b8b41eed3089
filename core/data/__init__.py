"""The dataset layer: built-in datasets and user files → validated :class:`DatasetSplits`.

``load_dataset`` is the public entry.  It never imports TensorFlow and never downloads.

Choices where the brief or the paper leave room (see also catalog.py and validation.py):

* A user file without a validation split gets a stratified, seeded 10 % of its training
  examples as validation, raised to one example per class when every class has ≥ 2 (so a
  small file still has every class in validation).
* A user Parquet file without a test split (no ``split`` column, or no ``test`` rows) gets a
  stratified 10 % of *all* its rows as test first (same rounding), then the validation carve.
* User images in floats are rescaled once per dataset (all splits in [0, 1] → ×255), then
  stored as uint8; see :mod:`rachel.core.data.validation`.
* User data get ``augmentation="natural"`` (the paper's flips + translation) unless told
  otherwise; pass ``augmentation="digits"`` for digits or text, ``"none"`` to switch it off.
* A path to an artifact written by :meth:`DatasetSplits.save` is loaded as is (sizes apply).
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from pathlib import PurePosixPath

import numpy as np

from rachel.core import storage
from rachel.core.data import catalog, formats, validation
from rachel.core.data.catalog import CATALOG, CatalogEntry, dataset_names, get_entry
from rachel.core.data.splits import (
    AUGMENTATIONS,
    META_KEY,
    DatasetSplits,
    stratified_split,
    subsample,
)
from rachel.core.data.validation import DEFAULT_MIN_PER_CLASS
from rachel.core.errors import DataError, StorageError

__all__ = [
    "AUGMENTATIONS",
    "CATALOG",
    "CatalogEntry",
    "DEFAULT_MIN_PER_CLASS",
    "DatasetSplits",
    "USER_VAL_FRACTION",
    "dataset_names",
    "get_entry",
    "load_dataset",
    "stratified_split",
    "subsample",
]

USER_VAL_FRACTION = 0.1
"""Share of a user file's training examples carved out as validation when it has none
(and, for Parquet without test rows, the share of all rows carved out as test)."""

_USER_SUFFIXES = (".npz", ".parquet", ".pq")


def _carve_count(y: np.ndarray, fraction: float) -> int:
    """``fraction`` of ``len(y)``, raised to one per class when every class can spare one."""
    if len(y) < 2:
        raise DataError(
            f"the training split has {len(y)} example(s); cannot carve another split from it",
            "provide more training data, or x_val/x_test",
        )
    n = max(1, int(round(len(y) * fraction)))
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if counts.min() >= 2:
        n = max(n, len(counts))
    return min(n, len(y) - 1)


def _convert(raw: formats.RawDataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw arrays → uint8 NHWC images and int64 labels, one float scale for all splits."""
    for split, (x, y) in raw.splits.items():
        validation.check_images(np.asarray(x), split=split)
        validation.check_lengths(x, y, split=split)
    scale = validation.image_scale(np.asarray(x) for x, _ in raw.splits.values())
    return {
        split: (
            validation.to_uint8_images(np.asarray(x), split=split, scale=scale),
            validation.to_int64_labels(y, split=split),
        )
        for split, (x, y) in raw.splits.items()
    }


def _builtin(
    entry: CatalogEntry, data_dir: str | os.PathLike[str] | None, seed: int
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str, tuple[str, ...]]:
    place, reader = catalog.locate(entry, data_dir)
    raw = reader()
    arrays = _convert(raw)
    names = entry.class_names
    if entry.classes is not None:
        keep = np.asarray(entry.classes)
        remap = np.full(max(int(keep.max()) + 1, 10), -1, np.int64)
        remap[keep] = np.arange(len(keep))
        for split, (x, y) in list(arrays.items()):
            validation.check_label_range(y, 10, split=split)
            mask = np.isin(y, keep)
            arrays[split] = (x[mask], remap[y[mask]])
    elif entry.family == "cifar10" and raw.class_names and len(raw.class_names) == 10:
        names = raw.class_names
    for split, (x, _) in arrays.items():
        if x.shape[1:] != entry.input_shape:
            raise DataError(
                f"{entry.name} {split} images in {place} are {x.shape[1:]}, "
                f"expected {entry.input_shape}",
                f"check that the files are the official {entry.name} files",
            )
    x_tr, y_tr = arrays["train"]
    for split, (_, y) in arrays.items():
        validation.check_label_range(y, entry.num_classes, split=split)
    n_val = entry.val_count(len(y_tr))
    if not 0 < n_val < len(y_tr):
        raise DataError(
            f"{entry.name} in {place} has only {len(y_tr)} training examples",
            "use the complete official files",
        )
    x_tr, y_tr, x_val, y_val = stratified_split(x_tr, y_tr, n_val, np.random.default_rng(seed))
    arrays["train"], arrays["val"] = (x_tr, y_tr), (x_val, y_val)
    return arrays, place, names


def _read_user_bytes(uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except StorageError as err:
        raise DataError(f"cannot read {uri}: {err.problem}", err.hint) from err


def _is_artifact(data: bytes) -> bool:
    """Whether ``data`` is a DatasetSplits artifact (an .npz with the metadata entry)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return META_KEY in getattr(npz, "files", ())
    except Exception:  # noqa: BLE001 - not an npz at all: read_npz will report it
        return False


def _user_file(
    uri: str,
    data: bytes,
    *,
    seed: int,
    image_column: str,
    label_column: str,
    split_column: str | None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[str, ...] | None]:
    suffix = PurePosixPath(uri).suffix.lower()
    if suffix == ".npz":
        raw = formats.read_npz(data, name=uri)
    else:
        raw = formats.read_parquet(
            data,
            image_column=image_column,
            label_column=label_column,
            split_column=split_column,
            name=uri,
        )
    arrays = _convert(raw)
    rng = np.random.default_rng(seed)
    if "test" not in arrays:
        x, y = arrays["train"]
        x, y, x_te, y_te = stratified_split(x, y, _carve_count(y, USER_VAL_FRACTION), rng)
        arrays["train"], arrays["test"] = (x, y), (x_te, y_te)
    if "val" not in arrays:
        x, y = arrays["train"]
        x, y, x_v, y_v = stratified_split(x, y, _carve_count(y, USER_VAL_FRACTION), rng)
        arrays["train"], arrays["val"] = (x, y), (x_v, y_v)
    return arrays, raw.class_names


def load_dataset(
    name_or_uri: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    min_per_class: int | Mapping[str, int] | None = None,
    augmentation: str | None = None,
    image_column: str = "image",
    label_column: str = "label",
    split_column: str | None = "split",
) -> DatasetSplits:
    """Load a built-in dataset or a user file, split it, check it, and return DatasetSplits.

    Args:
        name_or_uri: a built-in name (:func:`dataset_names`), or a local path / ``gs://`` URI
            to a user ``.npz`` (Keras keys) or ``.parquet`` file, or to a saved DatasetSplits.
        data_dir: where a built-in dataset's files are (folder, archive or gs:// prefix); when
            given it is the only place searched.  Ignored for user files.
        seed: seeds the stratified validation carve and the subsampling.
        train_size, val_size, test_size: stratified subsample sizes (None keeps all).
        min_per_class: minimum examples of each class per split: an int for every split or a
            mapping such as ``{"train": 2, "val": 1}``; default :data:`DEFAULT_MIN_PER_CLASS`.
        augmentation: override the augmentation kind (``natural``/``digits``/``none``).
        image_column, label_column, split_column: Parquet column names.
    """
    if augmentation is not None and augmentation not in AUGMENTATIONS:
        raise DataError(
            f"augmentation {augmentation!r} is unknown", f"use one of {', '.join(AUGMENTATIONS)}"
        )
    name_or_uri = str(name_or_uri)
    if name_or_uri in CATALOG:
        entry = get_entry(name_or_uri)
        arrays, source, names = _builtin(entry, data_dir, seed)
        name, num_classes, aug = entry.name, entry.num_classes, entry.augmentation
    elif (
        storage.is_gcs(name_or_uri)
        or PurePosixPath(name_or_uri).suffix.lower() in _USER_SUFFIXES
        or os.path.exists(name_or_uri)
    ):
        suffix = PurePosixPath(name_or_uri).suffix.lower()
        if suffix not in _USER_SUFFIXES:
            raise DataError(
                f"{name_or_uri} is neither a .npz nor a .parquet file",
                "save user data as .npz (x_train, y_train, x_test, y_test) or "
                "Parquet (image, label[, split] columns)",
            )
        data = _read_user_bytes(name_or_uri)
        if suffix == ".npz" and _is_artifact(data):
            splits = DatasetSplits.from_bytes(data, source=name_or_uri, min_per_class=0)
            if augmentation is not None:
                splits = dataclasses.replace(splits, augmentation=augmentation)
            return _finish(splits, train_size, val_size, test_size, seed, min_per_class)
        arrays, file_names = _user_file(
            name_or_uri,
            data,
            seed=seed,
            image_column=image_column,
            label_column=label_column,
            split_column=split_column,
        )
        num_classes = max(int(y.max()) for _, y in arrays.values() if len(y)) + 1
        if file_names is not None:
            if len(file_names) < num_classes:
                raise DataError(
                    f"{name_or_uri} names {len(file_names)} classes but labels go "
                    f"up to {num_classes - 1}",
                    "fix class_names or the labels",
                )
            num_classes = len(file_names)
        names = file_names or tuple(str(i) for i in range(num_classes))
        if num_classes < 2:
            raise DataError(f"{name_or_uri} has a single class", "provide at least 2 classes")
        name = PurePosixPath(name_or_uri).stem
        source, aug = name_or_uri, "natural"
    else:
        raise DataError(
            f"{name_or_uri!r} is not a built-in dataset and no such file exists",
            f"use one of {', '.join(CATALOG)}, or a path / gs:// URI to a .npz or .parquet file",
        )
    shapes = {s: x.shape[1:] for s, (x, _) in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(
            f"image shapes differ between splits: {shapes}",
            "every split must hold images of one H×W×C shape",
        )
    for split, (_, y) in arrays.items():
        validation.check_label_range(y, num_classes, split=split)
    splits = DatasetSplits(
        x_train=arrays["train"][0],
        y_train=arrays["train"][1],
        x_val=arrays["val"][0],
        y_val=arrays["val"][1],
        x_test=arrays["test"][0],
        y_test=arrays["test"][1],
        name=name,
        num_classes=num_classes,
        class_names=names,
        input_shape=arrays["train"][0].shape[1:],
        augmentation=augmentation or aug,
        seed=seed,
        source=source,
    )
    return _finish(splits, train_size, val_size, test_size, seed, min_per_class)


def _finish(
    splits: DatasetSplits,
    train_size: int | None,
    val_size: int | None,
    test_size: int | None,
    seed: int,
    min_per_class: int | Mapping[str, int] | None,
) -> DatasetSplits:
    if any(s is not None for s in (train_size, val_size, test_size)):
        splits = subsample(splits, train=train_size, val=val_size, test=test_size, seed=seed)
    splits.validate(min_per_class)
    return splits
