"""Stratified splitting, subsampling and the one-file .npz artifact."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from rachel.core import storage
from rachel.core.data import DatasetSplits, load_dataset, stratified_split, subsample
from rachel.core.data.splits import allocate
from rachel.core.errors import ArtifactError, DataError


def _splits(n_per_class=(10, 20, 30), seed=0, **overrides) -> DatasetSplits:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(n_per_class)), n_per_class).astype(np.int64)
    x = rng.integers(0, 256, (len(y), 4, 4, 1), dtype=np.uint8)
    kw = dict(
        x_train=x,
        y_train=y,
        x_val=x.copy(),
        y_val=y.copy(),
        x_test=x.copy(),
        y_test=y.copy(),
        name="toy",
        num_classes=len(n_per_class),
        class_names=tuple("abc"[: len(n_per_class)]),
        input_shape=(4, 4, 1),
        augmentation="none",
        seed=seed,
        source="memory",
    )
    kw.update(overrides)
    return DatasetSplits(**kw)


# ------------------------------------------------------------------ stratification


def test_stratified_split_proportional_and_disjoint():
    y = np.repeat([0, 1, 2], [100, 200, 700])
    x = np.arange(len(y))
    xr, yr, xv, yv = stratified_split(x, y, 100, np.random.default_rng(0))
    assert np.bincount(yv).tolist() == [10, 20, 70]
    assert len(xr) == 900 and not set(xr) & set(xv) and set(xr) | set(xv) == set(x)
    assert (y[xv] == yv).all() and (y[xr] == yr).all()


def test_stratified_split_seeded():
    y = np.repeat([0, 1], 50)
    x = np.arange(100)
    a = stratified_split(x, y, 10, 7)[2]
    assert (a == stratified_split(x, y, 10, np.random.default_rng(7))[2]).all()
    assert not (a == stratified_split(x, y, 10, 8)[2]).all()


def test_stratified_split_keeps_rare_class_on_both_sides():
    y = np.array([0] * 98 + [1, 1])
    _, yr, _, yv = stratified_split(np.arange(100), y, 10, 0)
    assert 1 in yr and 1 in yv


def test_stratified_split_bad_size():
    with pytest.raises(DataError, match="cannot carve 100"):
        stratified_split(np.arange(10), np.zeros(10), 100, 0)


def test_allocate_largest_remainder():
    assert allocate(np.array([1, 1, 1]), 2, keep_rest=False).sum() == 2
    assert allocate(np.array([5, 5, 90]), 10, keep_rest=False).tolist() == [1, 1, 8]
    assert allocate(np.array([3, 3, 3]), 3, keep_rest=True).tolist() == [1, 1, 1]


def test_subsample_keeps_every_class_and_seed():
    s = _splits()
    small = subsample(s, train=6, val=3, seed=1)
    assert small.sizes == {"train": 6, "val": 3, "test": 60}
    assert small.class_counts("train").tolist() == [1, 2, 3]
    assert small.class_counts("val").tolist() == [1, 1, 1]
    again = subsample(s, train=6, val=3, seed=1)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    assert small.x_test is s.x_test  # untouched split is shared, not copied


def test_subsample_errors():
    s = _splits()
    with pytest.raises(DataError, match="train_size=61 is larger than the 60 train"):
        subsample(s, train=61)
    with pytest.raises(DataError, match="val_size=2 is smaller than the 3 classes"):
        subsample(s, val=2)


# ------------------------------------------------------------------ the dataclass


def test_arrays_are_read_only_and_metadata_checked():
    s = _splits()
    with pytest.raises(ValueError, match="read-only"):
        s.x_train[0, 0, 0, 0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "x"  # type: ignore[misc]
    with pytest.raises(DataError, match="must be uint8"):
        _splits(x_train=np.zeros((60, 4, 4, 1), np.float32))
    with pytest.raises(DataError, match="input_shape"):
        _splits(input_shape=(4, 4, 3))
    with pytest.raises(DataError, match="augmentation 'flips'"):
        _splits(augmentation="flips")
    with pytest.raises(DataError, match="outside"):
        _splits(num_classes=2, class_names=("a", "b"))


# ------------------------------------------------------------------ artifact


def test_artifact_round_trip(tmp_path):
    s = _splits()
    path = tmp_path / "out" / "splits.npz"
    s.save(path)
    back = DatasetSplits.load(path)
    for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(back, k), getattr(s, k))
        assert getattr(back, k).dtype == getattr(s, k).dtype
    assert back.metadata() == s.metadata()
    assert back.class_names == ("a", "b", "c") and back.input_shape == (4, 4, 1)
    with np.load(path, allow_pickle=False) as npz:  # plain npz, metadata as JSON text
        meta = json.loads(str(npz["__meta__"]))
    assert meta["format"] == "rachel.dataset_splits" and meta["sizes"]["train"] == 60
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~storage._UMASK  # not mkstemp's 0600


def test_artifact_through_load_dataset(tmp_path):
    s = _splits()
    s.save(tmp_path / "s.npz")
    again = load_dataset(str(tmp_path / "s.npz"), val_size=3, min_per_class=1)
    assert again.sizes["val"] == 3 and again.name == "toy"


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    s = _splits()
    target = tmp_path / "splits.npz"

    def boom(*_a):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        s.save(target)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_failed_save_keeps_previous_version(tmp_path, monkeypatch):
    target = tmp_path / "splits.npz"
    _splits(seed=1).save(target)
    before = target.read_bytes()
    monkeypatch.setattr(storage.os, "replace", lambda *_a: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        _splits(seed=2).save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["splits.npz"]


def test_load_rejects_non_artifacts(tmp_path):
    np.savez(tmp_path / "user.npz", x_train=np.zeros((2, 2, 2)))
    with pytest.raises(ArtifactError, match="not a DatasetSplits artifact"):
        DatasetSplits.load(tmp_path / "user.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ArtifactError, match="not a dataset artifact"):
        DatasetSplits.load(tmp_path / "junk.npz")
    data = _splits().to_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        DatasetSplits.load(tmp_path / "cut.npz")


def test_load_validates_contents(tmp_path):
    s = _splits()
    buf = io.BytesIO()
    arrays = {k: getattr(s, k) for k in ("x_train", "y_train", "x_val", "y_val", "x_test")}
    meta = {**s.metadata(), "num_classes": 3}
    np.savez(buf, **arrays, y_test=np.full(60, 7, np.int64), __meta__=np.array(json.dumps(meta)))
    (tmp_path / "bad.npz").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"y_test\[0\] = 7 is outside \[0, 3\)"):
        DatasetSplits.load(tmp_path / "bad.npz")
    small = subsample(s, val=3)
    small.save(tmp_path / "small.npz")
    with pytest.raises(DataError, match="too few"):
        DatasetSplits.load(tmp_path / "small.npz", min_per_class=2)
    assert DatasetSplits.load(tmp_path / "small.npz").sizes["val"] == 3


def test_artifact_is_a_zip_without_pickles(tmp_path):
    _splits().save(tmp_path / "s.npz")
    with zipfile.ZipFile(tmp_path / "s.npz") as z:
        assert sorted(z.namelist()) == sorted(
            [
                "__meta__.npy",
                "x_train.npy",
                "y_train.npy",
                "x_val.npy",
                "y_val.npy",
                "x_test.npy",
                "y_test.npy",
            ]
        )


# ------------------------------------------------------------------ no TensorFlow


def test_importing_the_data_layer_does_not_import_tensorflow():
    code = (
        "import sys, rachel.core.data, rachel.core.data.formats, rachel.core.data.catalog, "
        "rachel.core.data.splits, rachel.core.data.validation; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
