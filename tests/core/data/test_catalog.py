"""Built-in datasets: the real Fashion-MNIST, CIFAR-10 / SVHN / binary pairs from small files
in the official formats, and where files are looked for."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rachel.core.data import CATALOG, catalog, dataset_names, formats, load_dataset
from rachel.core.errors import DataError

PAIRS = [
    "cifar10_cat_dog",
    "cifar10_deer_truck",
    "cifar10_deer_horse",
    "cifar10_automobile_truck",
    "cifar10_dog_horse",
]


def test_names_and_augmentation_kinds():
    assert set(dataset_names()) == {"fashion_mnist", "mnist", "cifar10", "svhn", *PAIRS}
    kinds = {n: e.augmentation for n, e in CATALOG.items()}
    assert kinds["mnist"] == kinds["svhn"] == "digits"
    assert kinds["fashion_mnist"] == kinds["cifar10"] == "natural"
    assert all(kinds[p] == "natural" for p in PAIRS)
    assert CATALOG["cifar10"].official_sizes == (45_000, 5_000, 10_000)
    assert CATALOG["svhn"].val_count(73_257) == 7_326


def test_unknown_name():
    with pytest.raises(DataError, match="unknown dataset|not a built-in") as err:
        load_dataset("imagenet")
    assert "fashion_mnist" in str(err.value)


# ------------------------------------------------------------------ real Fashion-MNIST


def test_fashion_shapes_and_sizes(fashion):
    assert fashion.sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    assert fashion.x_train.shape == (55_000, 28, 28, 1) and fashion.x_train.dtype == np.uint8
    assert fashion.y_train.dtype == np.int64 and fashion.input_shape == (28, 28, 1)
    assert fashion.num_classes == 10 and fashion.class_names[9] == "Ankle boot"
    assert fashion.augmentation == "natural" and fashion.name == "fashion_mnist"
    assert 72 < fashion.x_test.mean() < 74  # README: test mean 73.15, uint8 0..255 kept


def test_fashion_stratified(fashion):
    assert fashion.class_counts("val").tolist() == [500] * 10
    assert fashion.class_counts("train").tolist() == [5_500] * 10
    assert fashion.class_counts("test").tolist() == [1_000] * 10


def test_fashion_val_and_train_partition_the_official_train(fashion, fashion_dir):
    x, _ = formats.read_idx_pair(
        fashion_dir / "train-images-idx3-ubyte.gz", fashion_dir / "train-labels-idx1-ubyte.gz"
    )
    both = np.concatenate([fashion.x_train, fashion.x_val])[..., 0].reshape(60_000, -1)
    key = lambda a: np.sort(a.view(f"V{a.shape[1]}").ravel())  # noqa: E731
    assert (key(both) == key(x.reshape(60_000, -1))).all()


def test_fashion_deterministic_by_seed(fashion, fashion_dir):
    again = load_dataset("fashion_mnist", data_dir=fashion_dir, seed=0)
    np.testing.assert_array_equal(again.x_val, fashion.x_val)
    np.testing.assert_array_equal(again.y_train, fashion.y_train)
    other = load_dataset("fashion_mnist", data_dir=fashion_dir, seed=1, val_size=1000)
    assert other.seed == 1
    assert not np.array_equal(other.x_val[:100], fashion.x_val[:100])


def test_fashion_subsample_keeps_every_class(fashion, fashion_dir):
    s = load_dataset(
        "fashion_mnist", data_dir=fashion_dir, train_size=200, val_size=50, test_size=100
    )
    assert s.sizes == {"train": 200, "val": 50, "test": 100}
    assert s.class_counts("train").tolist() == [20] * 10
    assert (s.class_counts("val") == 5).all() and (s.class_counts("test") == 10).all()


def test_fashion_found_in_rachel_data_dir(fashion_dir, tmp_path, monkeypatch):
    (tmp_path / "fashion_mnist").symlink_to(fashion_dir)
    monkeypatch.setenv("RACHEL_DATA_DIR", str(tmp_path))
    s = load_dataset("fashion_mnist", test_size=20)
    assert s.source == str(tmp_path / "fashion_mnist") and s.sizes["train"] == 55_000


def test_fashion_found_in_keras_cache(fashion_dir, tmp_path, monkeypatch):
    datasets = tmp_path / "kh" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "fashion-mnist").symlink_to(fashion_dir)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert load_dataset("fashion_mnist").source == str(datasets / "fashion-mnist")


def test_not_found_lists_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("RACHEL_DATA_DIR", str(tmp_path / "rd"))
    with pytest.raises(DataError) as err:
        load_dataset("cifar10")
    msg = str(err.value)
    assert str(tmp_path / "rd" / "cifar10") in msg
    assert "datasets/cifar-10-batches-py" in msg and "data_dir" in msg and "offline" in msg


def test_explicit_data_dir_is_the_only_place(tmp_path, fashion_dir, monkeypatch):
    monkeypatch.setenv("RACHEL_DATA_DIR", str(fashion_dir.parent))  # would be found here
    with pytest.raises(DataError, match="not found; looked in") as err:
        load_dataset("fashion_mnist", data_dir=tmp_path / "empty")
    assert "/usr/share/datasets" not in str(err.value)


def test_fashion_debian_path_is_last_candidate():
    places = catalog.candidate_places(CATALOG["fashion_mnist"])
    assert places[-1] == "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------ MNIST (IDX and Keras npz)


def _write_idx_dataset(folder, make, n_train=24, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            data = make.idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def test_mnist_raw_idx_files(tmp_path, make):
    _write_idx_dataset(tmp_path / "mnist", make, n_train=120, gz=False)
    s = load_dataset("mnist", data_dir=tmp_path)  # finds data_dir/mnist/
    assert s.augmentation == "digits" and s.sizes == {"train": 110, "val": 10, "test": 10}


def test_builtin_too_small_for_a_class_in_val(tmp_path, make):
    _write_idx_dataset(tmp_path, make, n_train=36)  # 1/12 of 36 = 3 validation images
    with pytest.raises(DataError, match="7 class\\(es\\) missing from the val split"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_from_keras_npz(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    y = np.arange(120) % 10
    x = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
    (tmp_path / "kh" / "datasets").mkdir(parents=True)
    np.savez(
        tmp_path / "kh" / "datasets" / "mnist.npz",
        x_train=x,
        y_train=y,
        x_test=x[:20],
        y_test=y[:20],
    )
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    s = load_dataset("mnist")
    assert s.sizes == {"train": 110, "val": 10, "test": 20}


def test_idx_label_out_of_range(tmp_path, make):
    _write_idx_dataset(tmp_path, make)
    y = (np.arange(24) % 10).astype(np.uint8)
    y[5] = 12
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(make.idx_bytes(y)))
    with pytest.raises(DataError, match=r"y_train\[5\] = 12 is outside \[0, 10\)"):
        load_dataset("mnist", data_dir=tmp_path)


# ------------------------------------------------------------------ CIFAR-10 and binary pairs


@pytest.fixture
def cifar_dir(tmp_path_factory, make):
    root = tmp_path_factory.mktemp("cifar")
    truth = make.write_cifar(root / "cifar-10-batches-py", n_per_class=20, n_test_per_class=4)
    return root, truth


def test_cifar10_from_folder(cifar_dir):
    root, truth = cifar_dir
    s = load_dataset("cifar10", data_dir=root)
    assert s.sizes == {"train": 180, "val": 20, "test": 40}
    assert s.input_shape == (32, 32, 3) and s.class_names[3] == "cat"
    assert (s.x_train[:, 0, 0, 0] == s.y_train).all()  # the label pixel survived the layout
    assert s.class_counts("val").tolist() == [2] * 10


def test_cifar10_from_archive_in_keras3_cache(cifar_dir, tmp_path, monkeypatch, make):
    root, _ = cifar_dir
    datasets = tmp_path / "kh" / "datasets"
    datasets.mkdir(parents=True)
    make.write_cifar_archive(
        root / "cifar-10-batches-py", datasets / "cifar-10-batches-py-target_archive"
    )
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    s = load_dataset("cifar10")
    assert s.sizes["test"] == 40
    assert s.source == str(datasets / "cifar-10-batches-py-target_archive")


def test_cifar10_archive_as_data_dir(cifar_dir, tmp_path, make):
    root, _ = cifar_dir
    make.write_cifar_archive(root / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz")
    assert (
        load_dataset("cifar10", data_dir=tmp_path / "cifar-10-python.tar.gz").sizes["train"] == 180
    )


@pytest.mark.parametrize("name", PAIRS)
def test_binary_pairs(cifar_dir, name):
    root, truth = cifar_dir
    a, b = name.split("_")[1:]
    s = load_dataset(name, data_dir=root)
    assert s.num_classes == 2 and s.class_names == (a, b)
    assert s.sizes == {"train": 36, "val": 4, "test": 8}
    ia, ib = catalog.CIFAR10_CLASSES.index(a), catalog.CIFAR10_CLASSES.index(b)
    original = np.where(s.y_train == 0, ia, ib)  # the label pixel holds the original class
    assert (s.x_train[:, 0, 0, 0] == original).all()
    assert s.class_counts("val").tolist() == [2, 2] and s.augmentation == "natural"


def test_pair_found_under_rachel_data_dir_cifar10(cifar_dir, monkeypatch):
    root, _ = cifar_dir
    monkeypatch.setenv("RACHEL_DATA_DIR", str(root))  # root holds cifar-10-batches-py/
    assert load_dataset("cifar10_cat_dog").num_classes == 2


# ------------------------------------------------------------------ SVHN


def test_svhn(tmp_path, make):
    truth = make.write_svhn(tmp_path / "svhn", n_train_per_class=10, n_test_per_class=3)
    s = load_dataset("svhn", data_dir=tmp_path)
    assert s.sizes == {"train": 90, "val": 10, "test": 30}
    assert s.augmentation == "digits" and s.class_names[0] == "0"
    assert (s.x_test[:, 0, 0, 0] == s.y_test).all()
    assert np.bincount(s.y_test).tolist() == np.bincount(truth["test"][1]).tolist()


def test_svhn_missing_test_file(tmp_path, make):
    make.write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DataError, match="lacks test_32x32.mat"):
        load_dataset("svhn", data_dir=tmp_path)
