"""Fixtures for the dataset layer: the real Fashion-MNIST, small files in the official
CIFAR-10 / SVHN formats, user .npz / Parquet writers, and a GCS emulator."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    env = os.environ.get("RACHEL_SHARED_DIR")
    base = Path(env) if env else REPO / ".." / "shared"
    return (base / "data").resolve()


@pytest.fixture(autouse=True)
def _isolated_lookup(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test finds datasets through the developer's own env vars or ~/.keras."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.delenv("RACHEL_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    folder = shared_data_dir() / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(
            f"real Fashion-MNIST not found at {folder} (set RACHEL_SHARED_DIR to the "
            "folder holding data/fashion-mnist)"
        )
    return folder


@pytest.fixture(scope="session")
def fashion(fashion_dir: Path):
    from rachel.core.data import load_dataset

    return load_dataset("fashion_mnist", data_dir=fashion_dir, seed=0)


# ------------------------------------------------------------------ official-format writers


def cifar_arrays(n_per_class: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Random HWC images whose first pixel's red value equals the label (to check layouts)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(classes), n_per_class))
    x = rng.integers(0, 256, size=(len(y), 32, 32, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = y
    return x, y


def cifar_batch_bytes(x: np.ndarray, y: np.ndarray, protocol: int = 2) -> bytes:
    data = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)  # channel-major rows, as official
    batch = {
        b"batch_label": b"training batch",
        b"labels": [int(v) for v in y],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(y))],
    }
    return pickle.dumps(batch, protocol=protocol)


CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_cifar(
    folder: Path, n_per_class: int = 5, n_test_per_class: int = 2, protocol: int = 2
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write cifar-10-batches-py files (5 train batches) into ``folder``; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = cifar_arrays(n_per_class, seed=1)
    xt, yt = cifar_arrays(n_test_per_class, seed=2)
    for i, (xb, yb) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5), strict=True)):
        (folder / f"data_batch_{i + 1}").write_bytes(cifar_batch_bytes(xb, yb, protocol))
    (folder / "test_batch").write_bytes(cifar_batch_bytes(xt, yt, protocol))
    meta = {
        b"label_names": [n.encode() for n in CIFAR_NAMES],
        b"num_cases_per_batch": len(y) // 5,
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return {"train": (x, y), "test": (xt, yt)}


def write_cifar_archive(folder: Path, path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")


def write_svhn(
    folder: Path, n_train_per_class: int = 10, n_test_per_class: int = 3
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write train_32x32.mat / test_32x32.mat (X 32×32×3×N, y N×1 with 10 for the digit 0)."""
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train_per_class, 3), ("test", n_test_per_class, 4)):
        x, y = cifar_arrays(n, seed)
        y_file = np.where(y == 0, 10, y).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": y_file})
        out[split] = (x, y)
    return out


def idx_bytes(arr: np.ndarray, magic_dims: int | None = None) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, magic_dims if magic_dims is not None else arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def digit_like(
    n_per_class: int, classes: int = 3, shape=(8, 8), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 256, size=(len(y), *shape), dtype=np.uint8)
    return x, y


@pytest.fixture(scope="session")
def make():
    """The writers above (conftest modules cannot be imported under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        cifar_arrays=cifar_arrays,
        cifar_batch_bytes=cifar_batch_bytes,
        write_cifar=write_cifar,
        write_cifar_archive=write_cifar_archive,
        write_svhn=write_svhn,
        idx_bytes=idx_bytes,
        png_bytes=png_bytes,
        digit_like=digit_like,
        CIFAR_NAMES=CIFAR_NAMES,
    )
