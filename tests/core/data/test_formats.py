"""Readers of the official and user formats, on files written here in those formats."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rachel.core.data import formats, load_dataset
from rachel.core.errors import DataError

# ------------------------------------------------------------------ IDX


def test_idx_gz_and_raw_read_the_same(tmp_path, make):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = make.idx_bytes(x)
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    assert raw[:4] == (2051).to_bytes(4, "big")
    np.testing.assert_array_equal(formats.read_idx(tmp_path / "a", expected_magic=2051), x)
    np.testing.assert_array_equal(formats.read_idx(str(tmp_path / "a.gz")), x)


def test_idx_real_fashion_headers(fashion_dir):
    y = formats.read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz", expected_magic=2049)
    assert y.shape == (10_000,) and np.bincount(y).tolist() == [1000] * 10


def test_idx_wrong_magic_names_the_swap(make):
    labels = make.idx_bytes(np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        formats.read_idx(labels, expected_magic=2051)


def test_idx_truncated_payload(make):
    data = make.idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3]
    with pytest.raises(DataError, match="truncated or corrupt"):
        formats.read_idx(data)


def test_idx_corrupt_gzip():
    data = gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc")[:-6]
    with pytest.raises(DataError, match="gzip"):
        formats.read_idx(data)


def test_idx_pair_length_mismatch(make):
    with pytest.raises(DataError, match="images hold 3 examples but labels hold 2"):
        formats.read_idx_pair(make.idx_bytes(np.zeros((3, 2, 2))), make.idx_bytes(np.zeros(2)))


# ------------------------------------------------------------------ CIFAR-10


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_dir_layout_and_names(tmp_path, make, protocol):
    truth = make.write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    raw = formats.read_cifar_dir(str(tmp_path / "cifar-10-batches-py"))
    x, y = raw.splits["train"]
    np.testing.assert_array_equal(x, truth["train"][0])  # channel-major → HWC exactly
    np.testing.assert_array_equal(y, truth["train"][1])
    np.testing.assert_array_equal(raw.splits["test"][0], truth["test"][0])
    assert raw.class_names == tuple(make.CIFAR_NAMES)


def test_cifar_archive(tmp_path, make):
    truth = make.write_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    make.write_cifar_archive(tmp_path / "src", archive)
    raw = formats.read_cifar_archive(archive)
    np.testing.assert_array_equal(raw.splits["train"][0], truth["train"][0])
    np.testing.assert_array_equal(raw.splits["test"][1], truth["test"][1])


def test_cifar_batch_refuses_code_in_pickle(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(DataError, match="not allowed"):
        formats.read_cifar_batch(pickle.dumps({b"data": Evil()}, protocol=2))
    assert not marker.exists()


def test_cifar_batch_wrong_width(make):
    bad = pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError, match="expected N×3072"):
        formats.read_cifar_batch(bad)


def test_cifar_batch_missing_key():
    with pytest.raises(DataError, match="no key b'labels'"):
        formats.read_cifar_batch(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}))


def test_cifar_missing_batch(tmp_path, make):
    make.write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4"):
        formats.read_cifar_dir(str(tmp_path / "c"))


# ------------------------------------------------------------------ SVHN


def test_svhn_mat_layout_and_ten_means_zero(tmp_path, make):
    truth = make.write_svhn(tmp_path)
    x, y = formats.read_svhn_mat(tmp_path / "train_32x32.mat")
    np.testing.assert_array_equal(x, truth["train"][0])
    np.testing.assert_array_equal(y, truth["train"][1])
    assert y.min() == 0 and y.max() == 9


def test_svhn_mat_wrong_layout(tmp_path):
    import scipy.io

    scipy.io.savemat(
        tmp_path / "t.mat",
        {"X": np.zeros((4, 32, 32, 3), np.uint8), "y": np.ones((4, 1), np.uint8)},
    )
    with pytest.raises(DataError, match=r"expected H×W×3×N"):
        formats.read_svhn_mat(tmp_path / "t.mat")


def test_svhn_not_a_mat_file(tmp_path):
    (tmp_path / "t.mat").write_bytes(b"not matlab")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        formats.read_svhn_mat(tmp_path / "t.mat")


# ------------------------------------------------------------------ user .npz


def _save_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_user_npz_with_val(tmp_path, make):
    x, y = make.digit_like(6)
    xt, yt = make.digit_like(2, seed=1)
    xv, yv = make.digit_like(2, seed=2)
    uri = _save_npz(
        tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt, x_val=xv, y_val=yv
    )
    s = load_dataset(uri)
    assert s.sizes == {"train": 18, "val": 6, "test": 6}
    assert s.input_shape == (8, 8, 1) and s.num_classes == 3 and s.name == "d"
    np.testing.assert_array_equal(s.x_val[..., 0], xv)
    assert s.augmentation == "natural" and s.source == uri


def test_user_npz_carves_stratified_ten_percent(tmp_path, make):
    x, y = make.digit_like(20, classes=4)
    xt, yt = make.digit_like(2, classes=4, seed=1)
    uri = _save_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    a = load_dataset(uri, seed=3)
    assert a.sizes == {"train": 72, "val": 8, "test": 8}
    assert a.class_counts("val").tolist() == [2, 2, 2, 2]
    b = load_dataset(uri, seed=3)
    np.testing.assert_array_equal(a.x_val, b.x_val)


def test_user_npz_float_unit_range_is_scaled_consistently(tmp_path, make):
    x, y = make.digit_like(5)
    xt, yt = make.digit_like(2, seed=1)
    xf = x.astype(np.float32) / 255.0
    xtf = (xt.astype(np.float32) / 255.0) * 0.5  # test max < 1: must still be ×255, not ×1
    uri = _save_npz(
        tmp_path / "f.npz", x_train=xf, y_train=y.astype(np.float64), x_test=xtf, y_test=yt
    )
    s = load_dataset(uri, min_per_class=1)
    assert s.x_train.dtype == np.uint8 and s.y_train.dtype == np.int64
    # the test split keeps the file's order; ×255 then rounding is within half a level
    assert np.abs(s.x_test[..., 0].astype(float) - xt * 0.5).max() <= 0.5 + 1e-3
    assert int(s.x_train.max()) > 200


def test_user_npz_float_0_255_kept(tmp_path, make):
    x, y = make.digit_like(5)
    uri = _save_npz(
        tmp_path / "f.npz",
        x_train=x.astype(np.float64),
        y_train=y,
        x_test=x.astype(np.float64),
        y_test=y,
    )
    s = load_dataset(uri, min_per_class=1)
    np.testing.assert_array_equal(np.sort(s.x_test.ravel()), np.sort(x.ravel()))


def test_user_npz_one_hot_and_column_labels(tmp_path, make):
    x, y = make.digit_like(5)
    uri = _save_npz(
        tmp_path / "o.npz", x_train=x, y_train=np.eye(3)[y], x_test=x, y_test=y.reshape(-1, 1)
    )
    s = load_dataset(uri, min_per_class=1)
    assert s.y_test.ndim == 1 and sorted(set(s.y_train.tolist())) == [0, 1, 2]


def test_user_npz_string_labels_become_class_names(tmp_path, make):
    x, y = make.digit_like(5)
    names = np.array(["cat", "dog", "emu"])
    uri = _save_npz(tmp_path / "s.npz", x_train=x, y_train=names[y], x_test=x, y_test=names[y])
    s = load_dataset(uri, min_per_class=1)
    assert s.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(np.array(s.class_names)[s.y_test], names[y])


def test_user_npz_missing_keys(tmp_path, make):
    x, y = make.digit_like(3)
    uri = _save_npz(tmp_path / "m.npz", x_train=x, y_train=y)
    with pytest.raises(DataError, match=r"lacks the arrays \['x_test', 'y_test'\]"):
        load_dataset(uri)


def test_user_npz_object_arrays_refused(tmp_path, make):
    x, y = make.digit_like(3)
    obj = np.empty(len(y), dtype=object)
    obj[:] = [list(r) for r in x.reshape(len(x), -1)]
    np.savez(tmp_path / "o.npz", x_train=obj, y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="object"):
        load_dataset(str(tmp_path / "o.npz"))


def test_user_file_not_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(str(tmp_path / "x.npz"))


def test_user_file_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.npz"))


# ------------------------------------------------------------------ user Parquet


def _parquet(path, **columns):
    pq.write_table(pa.table(columns), path)
    return str(path)


def test_parquet_png_bytes_with_split_column(tmp_path, make):
    x, y = make.digit_like(6)
    split = (["train"] * 4 + ["validation", "test"]) * 3  # per class: 4 / 1 / 1
    uri = _parquet(
        tmp_path / "p.parquet", image=[make.png_bytes(i) for i in x], label=y.tolist(), split=split
    )
    s = load_dataset(uri, min_per_class=1)
    assert s.sizes == {"train": 12, "val": 3, "test": 3}
    assert s.input_shape == (8, 8, 1)
    # PNG is lossless: every decoded image is one of the originals with its own label
    originals = {img.tobytes(): int(lab) for img, lab in zip(x, y, strict=True)}
    for img, lab in zip(s.x_train[..., 0], s.y_train, strict=True):
        assert originals[img.tobytes()] == lab


def test_parquet_rgb_png_and_custom_columns(tmp_path, make):
    x, y = make.cifar_arrays(4, seed=5, classes=2)
    uri = _parquet(tmp_path / "p.parquet", pixels=[make.png_bytes(i) for i in x], cls=y.tolist())
    s = load_dataset(uri, image_column="pixels", label_column="cls", min_per_class=1)
    assert s.input_shape == (32, 32, 3)
    # no split column: 10 % test, then 10 % of the rest as validation, each class kept
    assert s.sizes == {"train": 4, "val": 2, "test": 2}
    assert s.class_counts("test").tolist() == [1, 1]
    assert s.class_counts("val").tolist() == [1, 1]


def test_parquet_nested_lists(tmp_path, make):
    x, y = make.digit_like(5, shape=(6, 7))
    rows = [img.tolist() for img in x]
    split = ["train", "train", "train", "val", "test"] * 3
    uri = _parquet(tmp_path / "n.parquet", image=rows, label=y.tolist(), split=split)
    s = load_dataset(uri, min_per_class=1)
    assert s.input_shape == (6, 7, 1)
    np.testing.assert_array_equal(s.x_test[..., 0], x[np.array(split) == "test"])


def test_parquet_hugging_face_image_struct(tmp_path, make):
    x, y = make.digit_like(4)
    images = [{"bytes": make.png_bytes(i), "path": None} for i in x]
    uri = _parquet(tmp_path / "hf.parquet", image=images, label=y.tolist())
    assert load_dataset(uri, min_per_class=1).input_shape == (8, 8, 1)


def test_parquet_missing_column(tmp_path, make):
    x, y = make.digit_like(2)
    uri = _parquet(tmp_path / "p.parquet", img=[make.png_bytes(i) for i in x], label=y.tolist())
    with pytest.raises(DataError, match=r"no column 'image' \(columns: \['img', 'label'\]\)"):
        load_dataset(uri)


def test_parquet_ragged_nested_lists(tmp_path):
    uri = _parquet(
        tmp_path / "r.parquet", image=[[[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 6]]], label=[0, 1]
    )
    with pytest.raises(DataError, match="ragged"):
        load_dataset(uri)


def test_parquet_undecodable_bytes(tmp_path, make):
    x, y = make.digit_like(2)
    imgs = [make.png_bytes(i) for i in x]
    imgs[3] = b"\x89PNG broken"
    uri = _parquet(tmp_path / "b.parquet", image=imgs, label=y.tolist())
    with pytest.raises(DataError, match="row 3 of column 'image': cannot decode"):
        load_dataset(uri)


def test_parquet_images_of_different_sizes(tmp_path, make):
    a, _ = make.digit_like(1, classes=1, shape=(8, 8))
    b, _ = make.digit_like(1, classes=1, shape=(9, 8))
    uri = _parquet(
        tmp_path / "s.parquet", image=[make.png_bytes(a[0]), make.png_bytes(b[0])], label=[0, 1]
    )
    with pytest.raises(DataError, match="resize"):
        load_dataset(uri)


def test_parquet_unknown_split_value(tmp_path, make):
    x, y = make.digit_like(2)
    uri = _parquet(
        tmp_path / "u.parquet",
        image=[i.tolist() for i in x],
        label=y.tolist(),
        split=["train", "holdout"] * 3,
    )
    with pytest.raises(DataError, match="'holdout'"):
        load_dataset(uri)


def test_cifar_batch_with_numpy1_module_names(make):
    """Official batches were pickled by NumPy 1.x (numpy.core.multiarray); they must load."""
    x, y = make.cifar_arrays(1, seed=0)
    data = make.cifar_batch_bytes(x, y, protocol=2)
    legacy = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert legacy != data
    xb, yb = formats.read_cifar_batch(legacy)
    np.testing.assert_array_equal(xb, x)
