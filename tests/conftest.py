"""Fixtures shared by the whole suite: where the real data lives, and tiny real splits.

Under CI (``$CI`` set, and not ``0``/``false``) nothing may skip: a missing shared data set
or a missing dev tool fails the test with the reason, so a green CI run cannot be a run
that skipped the data-backed tests.  Locally those tests skip as before.  The fixtures here
say so themselves (:func:`missing`); the hooks below apply the same rule to every other
skip under tests/ (the NAS-Bench table, ``skipif`` marks, module-level ``importorskip``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CI_STRICT_HINT = (
    "CI is set, so this fails instead of skipping: CI must provide the shared "
    "data (RACHEL_SHARED_DIR, default ../shared) and the dev extra "
    "(pip install -e '.[dev]')"
)


def ci_strict() -> bool:
    """True when ``$CI`` is set to anything but empty, ``0`` or ``false``."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false"}


def missing(reason: str) -> NoReturn:
    """Skip for ``reason`` locally; under CI, fail with it."""
    if ci_strict():
        pytest.fail(f"{reason} ({CI_STRICT_HINT})", pytrace=False)
    pytest.skip(reason)


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr
    return str(reason).removeprefix("Skipped: ")  # longrepr: (path, line, "Skipped: ...")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and ci_strict():
        report.outcome = "failed"
        report.longrepr = f"{_skip_reason(report)} ({CI_STRICT_HINT})"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if report.skipped and ci_strict():  # e.g. a module-level importorskip
        report.outcome = "failed"
        report.longrepr = f"{_skip_reason(report)} ({CI_STRICT_HINT})"
    return report


def shared_dir() -> Path:
    env = os.environ.get("RACHEL_SHARED_DIR")
    return (Path(env) if env else REPO / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def fashion_files() -> Path:
    """The official Fashion-MNIST files (../shared/data/fashion-mnist)."""
    folder = shared_dir() / "data" / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        missing(f"real Fashion-MNIST not found at {folder}; set RACHEL_SHARED_DIR")
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_emulator():
    """gcp-storage-emulator on a free 127.0.0.1 port (in memory); yields its URL."""
    try:
        from gcp_storage_emulator.server import create_server
    except ImportError:
        missing("gcp-storage-emulator is not installed (pip install -e '.[dev]')")

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_emulator, monkeypatch, request):
    """A fresh bucket on the emulator, reached by the real google-cloud-storage client."""
    from rachel.core import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    storage.reset_client()
    name = f"b-{abs(hash(request.node.nodeid)) % 10**10}"
    storage._gcs_client().create_bucket(name)
    yield f"gs://{name}"
    storage.reset_client()
