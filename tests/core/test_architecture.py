import numpy as np
import pytest

from rachel.core.architecture import decode, dropout_rate
from rachel.core.search_space import ArchitectureSpec, BlockType, Layer

keras = pytest.importorskip("keras")


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_head_only_spec_outputs_logits():
    model = decode(ArchitectureSpec(), (28, 28, 1), 10)
    out = model(np.zeros((2, 28, 28, 1), np.float32))
    assert out.shape == (2, 10)
    assert model.layers[-1].activation.__name__ == "linear"  # logits, not probabilities


def test_standard_block_structure_and_width():
    model = decode(ArchitectureSpec((Layer(BlockType.STANDARD, 66),)), (32, 32, 3), 2)
    conv = _layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in conv] == [66] and conv[0].kernel_size == (3, 3)
    assert len(_layers_of(model, keras.layers.BatchNormalization)) == 1
    assert len(_layers_of(model, keras.layers.Dropout)) == 2  # block + head
    assert len(_layers_of(model, keras.layers.MaxPooling2D)) == 1
    assert model.output_shape == (None, 2)


def test_residual_block_projects_only_when_channels_change():
    same = decode(
        ArchitectureSpec((Layer(BlockType.RESIDUAL, 16), Layer(BlockType.RESIDUAL, 16))),
        (28, 28, 1),
        10,
    )
    names = [layer.name for layer in same.layers]
    assert "b0_res_proj" in names  # 1 channel -> 16: projected
    assert "b1_res_proj" not in names  # 16 -> 16: identity skip
    assert len(_layers_of(same, keras.layers.Add)) == 2


def test_deep_spec_skips_pooling_below_one_pixel():
    layers = tuple(Layer(BlockType(i % 2), 16) for i in range(12))
    model = decode(ArchitectureSpec(layers), (28, 28, 1), 10)
    pools = _layers_of(model, keras.layers.MaxPooling2D)
    # 6 standard blocks, but 28 -> 14 -> 7 -> 3 -> 1 allows only 4 pools
    assert len(pools) == 4
    assert model(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 10)


def test_dropout_adapts_to_depth():
    rates = [dropout_rate(i) for i in range(10)]
    assert rates == sorted(rates) and rates[0] == pytest.approx(0.1) and max(rates) <= 0.4


def test_downsampling_residual_halves_only_large_maps():
    spec = ArchitectureSpec(
        (
            Layer(BlockType.RESIDUAL, 16),
            Layer(BlockType.RESIDUAL, 16),
            Layer(BlockType.RESIDUAL, 16),
        )
    )
    kept = decode(spec, (28, 28, 1), 10)
    halved = decode(spec, (28, 28, 1), 10, downsample_residual=True)

    def sides(model):
        return [model.get_layer(f"b{i}_res_add").output.shape[1] for i in range(3)]

    assert sides(kept) == [28, 28, 28]
    assert sides(halved) == [14, 7, 7]  # halved while a side exceeds the head's 7
    names = [layer.name for layer in halved.layers]
    # the halving block projects its shortcut with the same stride, even at equal widths
    assert "b1_res_proj" in names and "b2_res_proj" not in names
    assert halved.get_layer("b0_res_proj").strides == (2, 2)
    assert halved(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    # a 32x32 input: 32 -> 16 -> 8 -> 4
    wide = decode(spec, (32, 32, 3), 10, downsample_residual=True)
    assert sides(wide) == [16, 8, 4]
