"""The dataset layer on gs:// through the real google-cloud-storage client and an emulator."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core import storage
from rachel.core.data import DatasetSplits, load_dataset
from rachel.core.errors import DataError


def test_artifact_round_trip_on_gcs(gcs_bucket):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 10).astype(np.int64)
    x = rng.integers(0, 256, (20, 5, 5, 3), dtype=np.uint8)
    s = DatasetSplits(
        x,
        y,
        x,
        y,
        x,
        y,
        name="t",
        num_classes=2,
        class_names=("a", "b"),
        input_shape=(5, 5, 3),
        augmentation="natural",
        seed=3,
        source="mem",
    )
    uri = f"{gcs_bucket}/runs/1/splits.npz"
    s.save(uri)
    back = DatasetSplits.load(uri)
    np.testing.assert_array_equal(back.x_val, x)
    assert back.metadata() == s.metadata()
    assert load_dataset(uri).name == "t"


def test_user_npz_from_gcs(gcs_bucket, tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = rng.integers(0, 256, (30, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "u.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    storage.write_bytes(f"{gcs_bucket}/user/u.npz", (tmp_path / "u.npz").read_bytes())
    s = load_dataset(f"{gcs_bucket}/user/u.npz")
    assert s.sizes == {"train": 27, "val": 3, "test": 30}
    assert s.source == f"{gcs_bucket}/user/u.npz"


def test_builtin_from_gcs_data_dir(gcs_bucket, tmp_path, make):
    truth = make.write_cifar(tmp_path / "cifar-10-batches-py", n_per_class=10)
    storage.upload_dir(tmp_path, f"{gcs_bucket}/datasets")
    s = load_dataset("cifar10_deer_truck", data_dir=f"{gcs_bucket}/datasets")
    assert s.source == f"{gcs_bucket}/datasets/cifar-10-batches-py"
    assert s.sizes == {"train": 18, "val": 2, "test": 4}
    assert np.bincount(truth["test"][1])[[4, 9]].tolist() == s.class_counts("test").tolist()


def test_fashion_from_gcs_rachel_data_dir(gcs_bucket, fashion_dir, monkeypatch):
    for f in fashion_dir.glob("*.gz"):
        storage.write_bytes(f"{gcs_bucket}/data/fashion_mnist/{f.name}", f.read_bytes())
    monkeypatch.setenv("RACHEL_DATA_DIR", f"{gcs_bucket}/data")
    s = load_dataset("fashion_mnist", train_size=100, val_size=20, test_size=20)
    assert s.source == f"{gcs_bucket}/data/fashion_mnist" and s.sizes["test"] == 20


def test_missing_bucket_is_reported(gcs_bucket):
    with pytest.raises(DataError, match="gs://no-such-bucket-x/d .*does not exist"):
        load_dataset("svhn", data_dir="gs://no-such-bucket-x/d")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"{gcs_bucket}/missing.npz")
