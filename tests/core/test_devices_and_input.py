import numpy as np
import pytest

from rachel.core import devices
from rachel.core.errors import ConfigError


@pytest.mark.parametrize(
    "gpus, expected",
    [(0, (False, False, False)), (1, (True, True, False)), (4, (True, True, True))],
)
def test_auto_turns_gpu_options_on_only_with_gpus(gpus, expected):
    opts = devices.resolve("auto", "auto", "auto", gpus=gpus)
    assert (opts.mixed_precision, opts.xla, opts.multi_gpu) == expected
    assert opts.device_kind == ("CPU" if gpus == 0 else f"{gpus}xGPU")


def test_explicit_on_without_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="xla=on needs 1 GPU"):
        devices.resolve("off", "on", "off", gpus=0)
    assert not devices.resolve("off", "off", "off", gpus=2).xla


def test_this_machine_resolves_to_cpu_without_xla():
    opts = devices.resolve()
    if opts.gpus == 0:
        assert not (opts.xla or opts.mixed_precision)


def test_pipeline_normalises_and_digits_are_never_flipped():
    pytest.importorskip("tensorflow")
    import keras

    from rachel.core.input_pipeline import augmentation_layers, make_dataset

    x = np.full((8, 6, 6, 1), 255, np.uint8)
    x[:, :, :3] = 0  # left half black, right half white
    y = np.arange(8)
    images, labels = next(iter(make_dataset(x, y, batch_size=8)))
    assert float(images.numpy().max()) == 1.0 and float(images.numpy().min()) == 0.0
    assert labels.numpy().tolist() == list(range(8))
    kinds = {
        k: [type(layer) for layer in augmentation_layers(k, 0)]
        for k in ("natural", "digits", "none")
    }
    assert keras.layers.RandomFlip in kinds["natural"]
    assert (
        keras.layers.RandomFlip not in kinds["digits"]
        and keras.layers.RandomTranslation in kinds["digits"]
    )
    assert kinds["none"] == []
    with pytest.raises(ConfigError):
        augmentation_layers("mixup", 0)


def test_augmented_pipeline_is_reproducible_for_a_seed():
    pytest.importorskip("tensorflow")
    from rachel.core.input_pipeline import make_dataset

    x = np.random.default_rng(0).integers(0, 255, (512, 28, 28, 1), dtype=np.uint8)
    y = np.zeros(512, dtype=np.int64)

    def run(seed):
        ds = make_dataset(x, y, batch_size=64, training=True, augmentation="natural", seed=seed)
        return np.concatenate([images.numpy() for images, _ in ds])

    first = run(3)
    assert np.array_equal(first, run(3))
    assert not np.array_equal(first, run(4))
