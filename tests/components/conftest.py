"""Fixtures: real Fashion-MNIST behind $RACHEL_DATA_DIR (the suite's ``fashion_data_dir``),
and a tiny configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir(fashion_data_dir: Path) -> Iterator[Path]:
    """Point $RACHEL_DATA_DIR at a folder holding ``fashion-mnist`` for this session."""
    old = os.environ.get("RACHEL_DATA_DIR")
    os.environ["RACHEL_DATA_DIR"] = str(fashion_data_dir)
    yield fashion_data_dir
    if old is None:
        os.environ.pop("RACHEL_DATA_DIR", None)
    else:
        os.environ["RACHEL_DATA_DIR"] = old


@pytest.fixture(scope="session")
def tiny_config():  # noqa: ANN201 - SearchConfig
    from rachel.core.config import budget_config

    return budget_config(
        "smoke",
        train_size=300,
        val_size=100,
        test_size=100,
        epochs=1,
        max_width=16,
        iterations=2,
        candidates=2,
        max_new_layers=1,
        ensemble_epochs=2,
        final_ensemble_epochs=2,
        parallel_candidates=1,
        finish_epochs=0,
    ).replace(time_budget_seconds=None, train_threads=None, max_candidate_seconds=None)
