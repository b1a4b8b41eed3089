"""Fixtures shared by the whole suite: where the real data lives, and tiny real splits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def shared_dir() -> Path:
    env = os.environ.get("RACHEL_SHARED_DIR")
    return (Path(env) if env else REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def fashion_files() -> Path:
    """The official Fashion-MNIST files (../shared/data/fashion-mnist)."""
    folder = shared_dir() / "data" / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not found at {folder}; set RACHEL_SHARED_DIR")
    return folder


@pytest.fixture(scope="session")
def tiny_fashion(fashion_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small stratified subset of real Fashion-MNIST, written as a splits artifact."""
    from rachel.core.data import load_dataset

    splits = load_dataset(
        "fashion_mnist", data_dir=fashion_files, seed=0, train_size=600, val_size=200, test_size=200
    )
    path = tmp_path_factory.mktemp("tiny_fashion") / "splits.npz"
    splits.save(path)
    return path


@pytest.fixture(scope="session")
def fashion_data_dir(fashion_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RACHEL_DATA_DIR-style folder whose fashion-mnist/ points at the real files."""
    root = tmp_path_factory.mktemp("rachel_data")
    (root / "fashion-mnist").symlink_to(fashion_files, target_is_directory=True)
    return root
