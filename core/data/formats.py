"""Readers for the on-disk dataset formats, in pure NumPy (no TensorFlow anywhere in core/data).

Every reader takes a URI (a local path or ``gs://bucket/path``, read through
:mod:`rachel.core.storage`) or raw bytes, and returns NumPy arrays exactly as stored:
images are *not* converted or normalised here (that is :mod:`rachel.core.data.validation`'s
job), except for the layout changes that each format needs to become N×H×W[×C]:

* IDX (MNIST, Fashion-MNIST): gzip-compressed or raw; magic 2051 (images) / 2049 (labels) and
  the dimensions in the header are checked against the payload length.
* CIFAR-10 python pickles: ``b'data'`` is N×3072 uint8, channel-major (1024 R, 1024 G, 1024 B,
  each row-major), reshaped to N×32×32×3.  Unpickling uses a restricted unpickler that only
  resolves the NumPy names an array pickle needs, so a hostile file cannot run code.
* SVHN format 2 ``.mat``: ``X`` is 32×32×3×N, transposed to N×32×32×3; ``y`` is N×1 with the
  label 10 standing for the digit 0, mapped to 0.
* User ``.npz`` (Keras keys) and user Parquet (encoded PNG/JPEG bytes or nested lists).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import DataError, StorageError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

#: IDX type byte → NumPy dtype (big-endian on disk).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass
class RawDataset:
    """Arrays as read from files, before conversion and validation.

    ``splits`` maps ``"train"``/``"val"``/``"test"`` to ``(x, y)``; ``val`` and ``test`` may be
    absent (the caller carves them).  ``class_names`` is ``None`` when the files do not name
    the classes.
    """

    splits: dict[str, Arrays]
    source: str
    class_names: tuple[str, ...] | None = None


def _name(source: str | os.PathLike[str] | bytes, default: str) -> str:
    return default if isinstance(source, bytes | bytearray) else str(source)


def _read(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    try:
        return storage.read_bytes(source)
    except StorageError as err:
        raise DataError(f"cannot read {source}: {err.problem}", err.hint) from err


# --------------------------------------------------------------------------- IDX


def read_idx(
    source: str | os.PathLike[str] | bytes, *, expected_magic: int | None = None
) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) and return its array in native byte order.

    ``expected_magic`` (2051 for images, 2049 for labels) is checked when given.
    """
    name = _name(source, "IDX data")
    data = _read(source)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DataError(
                f"{name} is a corrupt or truncated gzip file ({err})",
                "copy the official file again and compare its md5/sha256",
            ) from err
    if len(data) < 4:
        raise DataError(
            f"{name} is too short to be an IDX file ({len(data)} bytes)",
            "use the official *-idx?-ubyte(.gz) files",
        )
    magic = int.from_bytes(data[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{name} has IDX magic number {magic}, expected {expected_magic}",
            "check that images and label files are not swapped and the file is an IDX file",
        )
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{name} is not an IDX file (magic {magic})", "use the official *-idx?-ubyte(.gz) files"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: IDX header is truncated", "copy the file again")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{name}: header says shape {dims} ({expected} bytes of data) "
            f"but the file holds {len(data) - header} bytes",
            "the file is truncated or corrupt; copy the official file again",
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx_pair(
    images: str | os.PathLike[str] | bytes, labels: str | os.PathLike[str] | bytes
) -> Arrays:
    """Read an IDX image file (magic 2051, N×H×W) and its label file (magic 2049, N)."""
    x = read_idx(images, expected_magic=IMAGES_MAGIC)
    y = read_idx(labels, expected_magic=LABELS_MAGIC)
    if x.ndim != 3:
        raise DataError(
            f"{_name(images, 'IDX images')} has {x.ndim} dimensions, expected 3 (N×H×W)",
            "use the *-images-idx3-ubyte file",
        )
    if y.ndim != 1:
        raise DataError(
            f"{_name(labels, 'IDX labels')} has {y.ndim} dimensions, expected 1",
            "use the *-labels-idx1-ubyte file",
        )
    if len(x) != len(y):
        raise DataError(
            f"IDX images hold {len(x)} examples but labels hold {len(y)}",
            "the two files come from different splits or copies; use matching files",
        )
    return x, y


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_file(folder: str, names: tuple[str, ...]) -> str | None:
    """Return the first of ``folder/name`` that exists (local or ``gs://``), else ``None``."""
    for name in names:
        uri = storage.join(folder, name)
        if storage.exists(uri):
            return uri
    return None


def _idx_uri(folder: str, stem: str) -> str | None:
    return find_file(folder, (f"{stem}.gz", stem))


def has_idx_files(folder: str) -> bool:
    """Whether ``folder`` holds the four MNIST-style IDX files (``.gz`` or raw)."""
    return all(_idx_uri(folder, s) for pair in IDX_FILES.values() for s in pair)


def read_idx_dir(folder: str) -> RawDataset:
    """Read train/t10k IDX files (MNIST or Fashion-MNIST layout) from one folder."""
    splits: dict[str, Arrays] = {}
    for split, stems in IDX_FILES.items():
        uris = [_idx_uri(folder, s) for s in stems]
        missing = [s for s, u in zip(stems, uris, strict=True) if u is None]
        if missing:
            raise DataError(
                f"{folder} lacks {', '.join(m + '(.gz)' for m in missing)}",
                "copy all four official IDX files into the folder",
            )
        splits[split] = read_idx_pair(uris[0], uris[1])  # type: ignore[arg-type]
    return RawDataset(splits=splits, source=str(folder))


# --------------------------------------------------------------------------- CIFAR-10


try:  # NumPy 2 moved the pickle helpers to numpy._core; NumPy 1.x has numpy.core.
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _np_numeric  # type: ignore[no-redef]

import _codecs  # noqa: E402  (the protocol-2 bytes reconstructor that Python 3 pickles use)

_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _SAFE_GLOBALS[(_mod, "_reconstruct")] = _np_multiarray._reconstruct
    _SAFE_GLOBALS[(_mod, "scalar")] = _np_multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _SAFE_GLOBALS[(_mod, "_frombuffer")] = getattr(_np_numeric, "_frombuffer")  # noqa: B009


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only builds dicts/lists/bytes/str/numbers and NumPy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def _unpickle(data: bytes, name: str) -> Any:
    try:
        return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise DataError(
            f"{name} is not a CIFAR-10 python pickle ({err})",
            "use the files from cifar-10-python.tar.gz",
        ) from err


def _key(d: Mapping[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def read_cifar_batch(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> Arrays:
    """Read one CIFAR-10 python batch: ``b'data'`` N×3072 uint8 (channel-major), ``b'labels'``.

    Returns images N×32×32×3 uint8 (HWC) and labels as an int64 vector.
    """
    name = name or _name(source, "CIFAR-10 batch")
    batch = _unpickle(_read(source), name)
    if not isinstance(batch, dict):
        raise DataError(
            f"{name} holds a {type(batch).__name__}, expected a dict",
            "use the files from cifar-10-python.tar.gz",
        )
    try:
        data, labels = _key(batch, "data"), _key(batch, "labels")
    except KeyError as err:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in batch)
        raise DataError(
            f"{name} has no key b'{err.args[0]}' (keys: {keys})",
            "a CIFAR-10 batch needs b'data' and b'labels'",
        ) from err
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(
            f"{name}: b'data' has shape {data.shape}, expected N×3072",
            "use the CIFAR-10 (not CIFAR-100 or binary) python batches",
        )
    if data.dtype != np.uint8:
        raise DataError(
            f"{name}: b'data' has dtype {data.dtype}, expected uint8",
            "use the official python batches",
        )
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(data):
        raise DataError(
            f"{name}: {len(data)} images but labels of shape {y.shape}",
            "the batch is corrupt; copy it again",
        )
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y.astype(np.int64)


def read_cifar_meta(source: str | os.PathLike[str] | bytes) -> tuple[str, ...]:
    """Read ``batches.meta`` and return the label names (``b'label_names'``)."""
    name = _name(source, "batches.meta")
    meta = _unpickle(_read(source), name)
    try:
        names = _key(meta, "label_names")
    except (KeyError, TypeError) as err:
        raise DataError(f"{name} has no b'label_names'", "use the official batches.meta") from err
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN_BATCHES, "test_batch")


def _cifar_from_files(files: Mapping[str, bytes | str], source: str) -> RawDataset:
    missing = [f for f in CIFAR_FILES if f not in files]
    if missing:
        raise DataError(
            f"{source} lacks CIFAR-10 files {missing}",
            "provide data_batch_1..5 and test_batch (or cifar-10-python.tar.gz)",
        )
    parts = [read_cifar_batch(files[f], name=f"{source}/{f}") for f in CIFAR_TRAIN_BATCHES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    test = read_cifar_batch(files["test_batch"], name=f"{source}/test_batch")
    names = read_cifar_meta(files["batches.meta"]) if "batches.meta" in files else None
    return RawDataset(
        splits={"train": (x_train, y_train), "test": test}, source=source, class_names=names
    )


def read_cifar_archive(source: str | os.PathLike[str] | bytes) -> RawDataset:
    """Read CIFAR-10 straight from ``cifar-10-python.tar.gz`` (members found by base name)."""
    name = _name(source, "CIFAR-10 archive")
    data = _read(source)
    wanted = {*CIFAR_FILES, "batches.meta"}
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if member.isfile() and base in wanted and base not in files:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        files[base] = fh.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(
            f"{name} is not a readable tar archive ({err})",
            "copy cifar-10-python.tar.gz again and check its md5",
        ) from err
    return _cifar_from_files(files, name)


def read_cifar_dir(folder: str) -> RawDataset:
    """Read CIFAR-10 from a folder holding ``data_batch_1..5``, ``test_batch``, ``batches.meta``."""
    files: dict[str, bytes | str] = {}
    for f in (*CIFAR_FILES, "batches.meta"):
        uri = find_file(folder, (f,))
        if uri is not None:
            files[f] = uri
    return _cifar_from_files(files, str(folder))


# --------------------------------------------------------------------------- SVHN


def read_svhn_mat(source: str | os.PathLike[str] | bytes) -> Arrays:
    """Read an SVHN format-2 ``.mat`` file: ``X`` 32×32×3×N uint8, ``y`` N×1 with 10 → 0."""
    import scipy.io

    name = _name(source, "SVHN .mat")
    try:
        mat = scipy.io.loadmat(io.BytesIO(_read(source)), variable_names=["X", "y"])
    except Exception as err:  # noqa: BLE001 - scipy raises many kinds for a bad file
        raise DataError(
            f"{name} is not a readable MATLAB file ({err})",
            "use train_32x32.mat / test_32x32.mat (format 2) from the SVHN site",
        ) from err
    if "X" not in mat or "y" not in mat:
        raise DataError(
            f"{name} lacks variable {'X' if 'X' not in mat else 'y'}",
            "SVHN format 2 files hold X (32×32×3×N) and y (N×1)",
        )
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if x.ndim != 4 or x.shape[2] != 3:
        raise DataError(
            f"{name}: X has shape {x.shape}, expected H×W×3×N (32×32×3×N)",
            "use the cropped-digits format 2 files (*_32x32.mat)",
        )
    y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or len(y) != x.shape[3]:
        raise DataError(
            f"{name}: y has shape {np.asarray(mat['y']).shape} for {x.shape[3]} "
            "images, expected N×1",
            "the file is corrupt; copy it again",
        )
    y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), y


SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_svhn_dir(folder: str) -> RawDataset:
    """Read ``train_32x32.mat`` and ``test_32x32.mat`` from one folder (``extra`` is not used)."""
    splits = {}
    for split, fname in SVHN_FILES.items():
        uri = find_file(folder, (fname,))
        if uri is None:
            raise DataError(f"{folder} lacks {fname}", "copy both SVHN format-2 .mat files")
        splits[split] = read_svhn_mat(uri)
    return RawDataset(
        splits=splits, source=str(folder), class_names=tuple(str(i) for i in range(10))
    )


# --------------------------------------------------------------------------- user NumPy .npz


NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def encode_string_labels(
    labels: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], tuple[str, ...] | None]:
    """Map string labels to indices into their sorted unique values (the class names).

    Non-string label arrays are returned unchanged with ``None`` for the class names.
    """
    kinds = {k: np.asarray(v).dtype.kind for k, v in labels.items()}
    if not any(kind in "USO" for kind in kinds.values()):
        return dict(labels), None
    if not all(kind in "USO" for kind in kinds.values()):
        raise DataError(
            "labels are strings in some splits and numbers in others",
            "use one label type for every split",
        )
    as_str = {k: np.asarray(v).astype(str) for k, v in labels.items()}
    names = tuple(sorted(set().union(*(set(v.tolist()) for v in as_str.values()))))
    index = {n: i for i, n in enumerate(names)}
    return {k: np.array([index[s] for s in v], dtype=np.int64) for k, v in as_str.items()}, names


def read_npz(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> RawDataset:
    """Read a user ``.npz`` with Keras keys ``x_train, y_train, x_test, y_test`` [``x_val, y_val``].

    An optional ``class_names`` array (strings) names the classes.  Object (pickled) arrays are
    refused: the file is loaded with ``allow_pickle=False``.  ``name`` labels error messages
    (default: the path).
    """
    name = name or _name(source, "NumPy .npz")
    try:
        npz = np.load(io.BytesIO(_read(source)), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{name} is not a readable .npz file, or it is truncated ({err})",
            "upload the complete file again, or write it with numpy.savez(path, "
            "x_train=..., y_train=..., x_test=..., y_test=...)",
        ) from err
    if not hasattr(npz, "files"):
        raise DataError(
            f"{name} holds a single array, not an .npz archive",
            "write it with numpy.savez(path, x_train=..., y_train=..., ...)",
        )
    with npz:
        keys = set(npz.files)
        missing = [k for k in NPZ_REQUIRED if k not in keys]
        if missing:
            raise DataError(
                f"{name} lacks the arrays {missing} (it has {sorted(keys)})",
                "save x_train, y_train, x_test, y_test (and optionally x_val, y_val)",
            )
        if ("x_val" in keys) != ("y_val" in keys):
            raise DataError(f"{name} has only one of x_val / y_val", "save both or neither")
        try:
            arrays = {k: npz[k] for k in keys if k.startswith(("x_", "y_")) or k == "class_names"}
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(
                f"{name} is truncated or corrupt ({type(err).__name__}: {err})",
                "upload the file again (compare its size and checksum with the original)",
            ) from err
        except ValueError as err:
            raise DataError(
                f"{name} holds object (pickled) arrays ({err})",
                "save plain numeric arrays (np.asarray(x, dtype=np.uint8))",
            ) from err
    splits_present = [s for s in SPLIT_NAMES if f"x_{s}" in arrays]
    labels, names = encode_string_labels({s: arrays[f"y_{s}"] for s in splits_present})
    if "class_names" in arrays:
        names = tuple(str(n) for n in np.asarray(arrays["class_names"]).reshape(-1))
    splits = {s: (arrays[f"x_{s}"], labels[s]) for s in splits_present}
    return RawDataset(splits=splits, source=name, class_names=names)


# --------------------------------------------------------------------------- user Parquet


def decode_image(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG (any Pillow format) bytes to H×W (grey) or H×W×3 (colour) uint8.

    Alpha is dropped, palette and CMYK images become RGB; 16-bit and float images are refused.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            mode = opened.mode
            if mode in ("1", "L", "LA"):
                img = opened.convert("L")
            elif mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = opened.convert("RGB")
            else:
                raise DataError(
                    f"image mode {mode} (16-bit or float) is not supported",
                    "store 8-bit greyscale or RGB PNG/JPEG images",
                )
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(
            f"cannot decode image bytes ({err})", "store PNG or JPEG bytes, or the pixel array"
        ) from err


def _decode_column(values: list[Any], column: str) -> np.ndarray:
    images = []
    for i, v in enumerate(values):
        if v is None:
            raise DataError(
                f"row {i} of column {column!r} is empty (null)", "drop rows without an image"
            )
        try:
            images.append(decode_image(v))
        except DataError as err:
            raise DataError(f"row {i} of column {column!r}: {err.problem}", err.hint) from err
    if any(img.ndim == 3 for img in images):  # mixed grey/colour: grey is repeated to RGB
        images = [np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img for img in images]
    first = images[0].shape if images else None
    for i, img in enumerate(images):
        if img.shape != first:
            raise DataError(
                f"row {i} of column {column!r} is {img.shape[:2]} pixels but row 0 is {first[:2]}",  # type: ignore[index]
                "resize all images to one size before writing the Parquet file",
            )
    return np.stack(images) if images else np.zeros((0, 1, 1), np.uint8)


def _nested_to_numpy(arr: Any, column: str) -> np.ndarray:
    """Turn a (possibly nested) Arrow list array with uniform lengths into an N×… array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shape = [len(arr)]
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        if arr.null_count:
            raise DataError(f"column {column!r} holds null entries", "drop incomplete rows")
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DataError(
                f"column {column!r} has ragged arrays (length {lengths[bad]} vs "
                f"{lengths[0]} at depth {len(shape)})",
                "store every image with the same H×W(×C) shape",
            )
        shape.append(int(lengths[0]) if len(lengths) else 0)
        arr = arr.flatten()
    if arr.null_count:
        raise DataError(f"column {column!r} holds null pixel values", "fill or drop them")
    return arr.to_numpy(zero_copy_only=False).reshape(shape)


def read_parquet(
    source: str | os.PathLike[str] | bytes,
    *,
    image_column: str = "image",
    label_column: str = "label",
    split_column: str | None = "split",
    name: str | None = None,
) -> RawDataset:
    """Read a user Parquet table: one image column, one label column, optional split column.

    The image column holds encoded PNG/JPEG bytes (``binary``, or a struct with a ``bytes``
    field as Hugging Face ``datasets`` writes it) or nested lists of pixels (H×W or H×W×C).
    Labels are integers, or strings (mapped to their sorted unique values, which become the
    class names).  The split column's values are ``train``/``val``/``test`` (``validation``,
    ``valid`` and ``dev`` mean ``val``); without it every row is training data.  ``name``
    labels error messages (default: the path).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = name or _name(source, "Parquet data")
    try:
        if isinstance(source, bytes | bytearray):
            table = pq.read_table(pa.BufferReader(bytes(source)))
        else:  # streamed to a local file (gs://) or read in place, never held twice
            with storage.local_copy(source) as path:
                table = pq.read_table(path)
    except StorageError as err:
        raise DataError(f"cannot read {name}: {err.problem}", err.hint) from err
    except (pa.ArrowException, OSError) as err:
        raise DataError(
            f"{name} is not a readable Parquet file ({err})",
            "write it with pyarrow.parquet.write_table or DataFrame.to_parquet",
        ) from err
    for col in (image_column, label_column):
        if col not in table.column_names:
            raise DataError(
                f"{name} has no column {col!r} (columns: {table.column_names})",
                "pass image_column= / label_column= with your column names",
            )
    img = table.column(image_column).combine_chunks()
    if pa.types.is_struct(img.type) and img.type.get_field_index("bytes") >= 0:
        img = img.field("bytes")
    if pa.types.is_binary(img.type) or pa.types.is_large_binary(img.type):
        x = _decode_column(img.to_pylist(), image_column)
    elif (
        pa.types.is_list(img.type)
        or pa.types.is_large_list(img.type)
        or pa.types.is_fixed_size_list(img.type)
    ):
        x = _nested_to_numpy(img, image_column)
    else:
        raise DataError(
            f"column {image_column!r} has type {img.type}",
            "store encoded PNG/JPEG bytes or nested lists of pixel values",
        )
    lab = table.column(label_column).combine_chunks()
    if lab.null_count:
        raise DataError(
            f"column {label_column!r} holds {lab.null_count} null labels", "drop unlabelled rows"
        )
    if pa.types.is_dictionary(lab.type):
        lab = lab.cast(lab.type.value_type)
    y_all = lab.to_numpy(zero_copy_only=False)
    if split_column and split_column in table.column_names:
        sp = table.column(split_column).combine_chunks()
        if pa.types.is_dictionary(sp.type):
            sp = sp.cast(sp.type.value_type)
        raw = np.asarray(sp.to_pylist(), dtype=object)
        norm = np.array([_SPLIT_ALIASES.get(str(s).strip().lower(), "") for s in raw])
        bad = np.flatnonzero(norm == "")
        if len(bad):
            raise DataError(
                f"column {split_column!r} has value {raw[bad[0]]!r} in row {bad[0]}",
                "use train, val (or validation) and test",
            )
    else:
        norm = np.full(len(y_all), "train")
    present = [s for s in SPLIT_NAMES if (norm == s).any()]
    labels, names = encode_string_labels({s: y_all[norm == s] for s in present})
    splits = {s: (x[norm == s], labels[s]) for s in present}
    if "train" not in splits:
        raise DataError(f"{name} has no training rows", "mark some rows with split='train'")
    return RawDataset(splits=splits, source=name, class_names=names)
