"""Every bad-data case fails early with a DataError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from rachel.core.data import load_dataset, validation
from rachel.core.errors import DataError


def _npz(tmp_path, x_train, y_train, x_test=None, y_test=None, **extra):
    path = tmp_path / "d.npz"
    np.savez(
        path,
        x_train=x_train,
        y_train=y_train,
        x_test=x_train if x_test is None else x_test,
        y_test=y_train if y_test is None else y_test,
        **extra,
    )
    return str(path)


def _good(n_per_class=10, classes=3, shape=(8, 8)):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), n_per_class)
    return rng.integers(0, 256, (len(y), *shape), dtype=np.uint8), y


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((30, 64), np.uint8), r"shape \(30, 64\); images must be N×H×W or N×H×W×C"),
        (np.zeros((30, 8, 8, 4), np.uint8), "4 channels, expected 1 or 3"),
        (np.zeros((30, 3, 8, 8), np.uint8), "channels must be last"),
        (np.zeros((30, 8, 8, 2, 1), np.uint8), "images must be N×H×W"),
        (np.full((30, 8, 8), "a"), "non-numeric dtype <U1"),
        (np.zeros((30, 8, 8), bool), "non-numeric dtype bool"),
        (np.zeros((30, 8, 8), np.complex64), "non-numeric dtype complex64"),
        (
            np.where(np.arange(30 * 64).reshape(30, 8, 8) == 70, np.nan, 0.5),
            r"1 NaN/inf .*example 1",
        ),
        (np.full((30, 8, 8), np.inf), "NaN/inf"),
        (np.full((30, 8, 8), -1.5), "outside \\[0, 1\\] and \\[0, 255\\]"),
        (np.full((30, 8, 8), 300, np.int32), "integer values in \\[300, 300\\], outside 0..255"),
    ],
)
def test_bad_images(tmp_path, x, match):
    _, y = _good()
    with pytest.raises(DataError, match=match):
        load_dataset(_npz(tmp_path, x, y))


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.repeat([0.0, 1.5, 2.0], 10), r"y_train is not integer: y_train\[10\] = 1.5"),
        (np.repeat([0.0, np.nan, 2.0], 10), "not integer"),
        (np.repeat(np.array([[0, 1], [1, 1], [1, 0]]), 10, axis=0), "rows are not one-hot"),
        (np.zeros((30, 2, 2)), r"labels must be a vector"),
        (np.repeat([0, -1, 2], 10), r"y_train\[10\] = -1 is negative"),
        (np.repeat([True, False, True], 10), "non-numeric dtype bool"),
    ],
)
def test_bad_labels(tmp_path, y, match):
    x, _ = _good()
    with pytest.raises(DataError, match=match):
        load_dataset(_npz(tmp_path, x, y, y_test=np.repeat([0, 1, 2], 10)))


def test_label_out_of_range_for_declared_class_names(tmp_path):
    x, y = _good()
    path = _npz(tmp_path, x, y, class_names=np.array(["a", "b"]))
    with pytest.raises(DataError, match="names 2 classes but labels go up to 2"):
        load_dataset(path)


def test_length_mismatch(tmp_path):
    x, y = _good()
    with pytest.raises(DataError, match="x_train has 30 examples but y_train has 29"):
        load_dataset(_npz(tmp_path, x, y[:29]))


def test_class_missing_from_a_split(tmp_path):
    x, y = _good()
    with pytest.raises(DataError, match=r"1 class\(es\) missing from the test split .*class 2"):
        load_dataset(_npz(tmp_path, x, y, x_test=x[:20], y_test=y[:20]))


def test_too_few_examples_configurable(tmp_path):
    x, y = _good(n_per_class=3)
    path = _npz(tmp_path, x, y)
    with pytest.raises(DataError, match=r"with too few examples in the train split \(need ≥ 5"):
        load_dataset(path, min_per_class={"train": 5})
    s = load_dataset(path, min_per_class={"train": 2, "val": 1})
    assert s.class_counts("val").tolist() == [1, 1, 1]


def test_default_needs_two_per_class_in_train(tmp_path):
    x, y = _good(n_per_class=2)  # one goes to validation, one stays: below the default of 2
    with pytest.raises(DataError, match="too few examples in the train split"):
        load_dataset(_npz(tmp_path, x, y))
    assert load_dataset(_npz(tmp_path, x, y), min_per_class=1).sizes["val"] == 3


def test_image_shapes_differ_between_splits(tmp_path):
    x, y = _good()
    xt, _ = _good(shape=(9, 9))
    with pytest.raises(DataError, match="image shapes differ between splits"):
        load_dataset(_npz(tmp_path, x, y, x_test=xt))


def test_single_class(tmp_path):
    x, _ = _good()
    with pytest.raises(DataError, match="single class"):
        load_dataset(_npz(tmp_path, x, np.zeros(30, np.int64)))


def test_unknown_split_in_min_per_class():
    with pytest.raises(DataError, match="unknown splits \\['dev'\\]"):
        validation.resolve_min_per_class({"dev": 1})


def test_error_carries_a_hint(tmp_path):
    x, y = _good()
    with pytest.raises(DataError) as err:
        load_dataset(_npz(tmp_path, x.astype(np.float32) * 10 - 100, y))
    assert err.value.hint and "raw pixel" in err.value.hint


def test_unknown_augmentation(tmp_path):
    x, y = _good()
    with pytest.raises(DataError, match="augmentation 'flip' is unknown"):
        load_dataset(_npz(tmp_path, x, y), augmentation="flip")
    assert load_dataset(_npz(tmp_path, x, y), augmentation="digits").augmentation == "digits"


def test_empty_training_split(tmp_path):
    x, y = _good()
    with pytest.raises(DataError, match="training split has 0 example"):
        load_dataset(_npz(tmp_path, x[:0], y[:0], x_test=x, y_test=y))
