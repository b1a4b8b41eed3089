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


def test_normalise_and_digits_are_never_flipped():
    from rachel.core.input_pipeline import augment, normalise

    x = np.full((64, 10, 10, 1), 255, np.uint8)
    x[:, :, :5] = 0  # left half black, right half white
    scaled = normalise(x)
    assert scaled.dtype == np.float32 and scaled.max() == 1.0 and scaled.min() == 0.0
    rng = np.random.default_rng(0)
    digits = augment(x, "digits", rng)
    natural = augment(x, "natural", rng)
    # a flip puts white on the left; a <=10 % shift (1 px here) never does by itself
    assert (digits[:, :, 0] == 0).all()
    assert (natural[:, :, 0] == 255).any()
    assert augment(x, "none", rng) is x
    with pytest.raises(ConfigError):
        augment(x, "mixup", rng)


def test_translation_is_at_most_ten_percent_with_zero_fill():
    from rachel.core.input_pipeline import augment

    x = np.zeros((200, 20, 20, 1), np.uint8)
    x[:, 10, 10] = 200  # one bright pixel in the middle
    out = augment(x, "digits", np.random.default_rng(1))
    ys, xs = np.nonzero(out[..., 0] == 200)[1:]
    assert len(ys) == 200  # the pixel survives every shift (2 px at most)
    assert np.abs(ys - 10).max() == 2 and np.abs(xs - 10).max() == 2
    assert out.sum() == x.sum()  # nothing else appears: zero fill


def test_epoch_arrays_are_reproducible_for_a_seed():
    from rachel.core.input_pipeline import epoch_arrays

    x = np.random.default_rng(0).integers(0, 255, (512, 28, 28, 1), dtype=np.uint8)
    y = np.arange(512)

    def run(seed):
        return epoch_arrays(x, y, np.random.default_rng(seed), augmentation="natural")

    (a, ya), (b, yb), (c, _) = run(3), run(3), run(4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)
    assert sorted(ya.tolist()) == list(range(512))  # a permutation: every example once


def test_epoch_arrays_hold_whole_batches_and_rotate_the_rest_out():
    from rachel.core.input_pipeline import batches_per_epoch, epoch_arrays

    x = np.zeros((1000, 4, 4, 1), np.uint8)
    y = np.arange(1000)
    rng = np.random.default_rng(0)
    epochs = [epoch_arrays(x, y, rng, batch_size=128)[1] for _ in range(3)]
    assert [len(e) for e in epochs] == [896] * 3 == [128 * batches_per_epoch(1000, 128)] * 3
    assert all(len(set(e.tolist())) == 896 for e in epochs)  # no example twice
    assert len(set().union(*(set(e.tolist()) for e in epochs))) > 896  # a different rest out
    # fewer examples than one batch: all of them, one step
    assert len(epoch_arrays(x[:50], y[:50], rng, batch_size=128)[1]) == 50
    assert batches_per_epoch(50, 128) == 1
