"""Per-epoch checkpoints: an interrupted training continues bit for bit; a checkpoint of
something else is never restored; the pointer is published last (local and on GCS)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rachel.core import checkpoint as ckpt
from rachel.core import steps, storage
from rachel.core.config import budget_config
from rachel.core.search_space import ArchitectureSpec, Candidate, LayerTokens

CONFIG = dict(
    train_size=600,
    val_size=200,
    test_size=200,
    iterations=1,
    candidates=1,
    max_new_layers=1,
    max_width=16,
    epochs=3,
    batch_size=64,
    parallel_candidates=1,
    patience=5,
    time_budget_seconds=None,
    finish_epochs=0,
)


class Killed(BaseException):  # not an Exception: a kill is not a candidate failure
    """Stands in for SIGKILL / a preempted node in the middle of a training."""


def _candidate() -> dict:
    # two layers; the head's dropout and the data order draw from the two RNG streams
    return Candidate(
        "it000-c00", 0, 0, ArchitectureSpec(), (LayerTokens(1, 0, 0), LayerTokens(1, 1, 0))
    ).to_json()


def _config():
    return budget_config("smoke", **CONFIG).replace(train_threads=None, max_candidate_seconds=None)


def test_interrupted_training_continues_to_the_uninterrupted_result(
    tiny_fashion, tmp_path, monkeypatch
):
    cfg = _config()
    whole = steps.train_candidate(cfg, tiny_fashion, _candidate(), tmp_path / "whole")
    assert whole["status"] == "ok" and whole["epochs_run"] == 3

    real_save = ckpt.EpochCheckpoint.save

    def save_then_die(self, epoch, state, arrays):
        real_save(self, epoch, state, arrays)
        if epoch == 1:
            raise Killed  # epochs 0 and 1 are done and saved; epoch 2 never starts

    uri = str(tmp_path / ".it000-c00.ckpt")
    monkeypatch.setattr(ckpt.EpochCheckpoint, "save", save_then_die)
    with pytest.raises(Killed):
        steps.train_candidate(
            cfg, tiny_fashion, _candidate(), tmp_path / "resumed", checkpoint_uri=uri
        )
    assert not (tmp_path / "resumed").exists()  # nothing half-written where a reader looks
    assert json.loads((tmp_path / ".it000-c00.ckpt" / "state.json").read_text())["epoch"] == 1
    monkeypatch.setattr(ckpt.EpochCheckpoint, "save", real_save)

    resumed = steps.train_candidate(
        cfg, tiny_fashion, _candidate(), tmp_path / "resumed", checkpoint_uri=uri
    )
    assert resumed["resumed_after_epoch"] == 2  # only epoch 2 was trained again
    for key in ("val_loss", "val_accuracy", "train_accuracy", "best_epoch", "epochs_run"):
        assert resumed[key] == whole[key], key
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed" / "val_logits.npy"),
        np.load(tmp_path / "whole" / "val_logits.npy"),
    )
    assert not (tmp_path / ".it000-c00.ckpt").exists()  # cleared once the candidate is written


def test_a_checkpoint_of_another_training_is_ignored(tiny_fashion, tmp_path):
    cfg = _config()
    uri = str(tmp_path / "ck")
    other = ckpt.EpochCheckpoint(uri, "another-architecture")
    other.save(0, {"training": {}}, {"model/0": np.zeros(3)})
    summary = steps.train_candidate(
        cfg.replace(epochs=1), tiny_fashion, _candidate(), tmp_path / "m", checkpoint_uri=uri
    )
    assert summary["status"] == "ok" and "resumed_after_epoch" not in summary


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_the_pointer_names_only_complete_epochs(where, tmp_path, request):
    base = request.getfixturevalue("gcs_bucket") if where == "gcs" else str(tmp_path)
    uri = storage.join(base, "ck")
    c = ckpt.EpochCheckpoint(uri, "k")
    assert c.load() is None
    c.save(0, {"training": {"wait": 0}}, {"a": np.arange(3)})
    c.save(1, {"training": {"wait": 1}}, {"a": np.arange(4)})
    assert storage.list_files(uri) == ["epoch-0001.npz", "state.json"]  # epoch 0 dropped
    saved = c.load()
    assert saved is not None and saved.epoch == 1 and saved.state["training"]["wait"] == 1
    np.testing.assert_array_equal(saved.arrays["a"], np.arange(4))
    assert ckpt.EpochCheckpoint(uri, "other").load() is None

    def failing_upload(*args, **kwargs):
        raise storage.StorageError("simulated lost connection")

    original = storage.write_bytes
    storage.write_bytes = failing_upload  # the arrays of epoch 2 never arrive
    try:
        with pytest.raises(storage.StorageError):
            c.save(2, {"training": {}}, {"a": np.arange(5)})
    finally:
        storage.write_bytes = original
    assert c.load().epoch == 1  # the pointer still names the last complete epoch
    c.clear()
    assert storage.list_files(uri) == []
