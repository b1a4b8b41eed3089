"""Fixtures: real Fashion-MNIST (from ../shared) behind $RACHEL_DATA_DIR, and a tiny config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FASHION_MNIST = REPO.parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A $RACHEL_DATA_DIR holding a ``fashion-mnist`` link to the shared files."""
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION_MNIST}")
    root = tmp_path_factory.mktemp("data")
    (root / "fashion-mnist").symlink_to(FASHION_MNIST, target_is_directory=True)
    old = os.environ.get("RACHEL_DATA_DIR")
    os.environ["RACHEL_DATA_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("RACHEL_DATA_DIR", None)
    else:
        os.environ["RACHEL_DATA_DIR"] = old


@pytest.fixture(scope="session")
def tiny_config():  # noqa: ANN201 - SearchConfig
    from rachel.core.config import budget_config

    return budget_config(
        "smoke", train_size=300, val_size=100, test_size=100, epochs=1, max_width=16,
        iterations=2, candidates=2, max_new_layers=1, ensemble_epochs=2, final_ensemble_epochs=2,
    )
