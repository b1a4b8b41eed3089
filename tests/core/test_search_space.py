import json

import pytest

from rachel.core.errors import ConfigError
from rachel.core.search_space import (
    ArchitectureSpec,
    BlockType,
    Candidate,
    Layer,
    LayerTokens,
    token_from_width,
    width_from_token,
)


@pytest.mark.parametrize("token, width", [(0, 16), (50, 66), (240, 256)])
def test_width_token_mapping(token, width):
    assert width_from_token(token) == width
    assert token_from_width(width) == token


@pytest.mark.parametrize("token", [-1, 241])
def test_width_token_out_of_range(token):
    with pytest.raises(ConfigError, match="width token"):
        width_from_token(token)


def test_paper_example_tokens():
    # Table 1's example: present, standard block, token 50 -> width 66.
    assert LayerTokens(1, 0, 50).to_layer() == Layer(BlockType.STANDARD, 66)
    assert LayerTokens(0, 1, 200).to_layer() is None


def test_extend_appends_only_present_layers():
    base = ArchitectureSpec((Layer(BlockType.RESIDUAL, 32),))
    spec = base.extend([LayerTokens(1, 0, 0), LayerTokens(0, 1, 5), LayerTokens(1, 1, 240)])
    assert spec.layers == (
        Layer(BlockType.RESIDUAL, 32),
        Layer(BlockType.STANDARD, 16),
        Layer(BlockType.RESIDUAL, 256),
    )
    assert base.depth == 1  # the base is immutable


def test_spec_json_roundtrip_and_hash():
    spec = ArchitectureSpec((Layer(BlockType.STANDARD, 64), Layer(BlockType.RESIDUAL, 17)))
    again = ArchitectureSpec.from_json(json.dumps(spec.to_json()))
    assert again == spec and hash(again) == hash(spec)
    assert again.fingerprint() == spec.fingerprint()
    other = ArchitectureSpec((Layer(BlockType.STANDARD, 65), Layer(BlockType.RESIDUAL, 17)))
    assert other.fingerprint() != spec.fingerprint()


@pytest.mark.parametrize(
    "bad",
    [
        {"layers": [{"block": "dense", "width": 32}]},
        {"layers": [{"block": "standard", "width": 8}]},
        {},
    ],
)
def test_malformed_spec_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        ArchitectureSpec.from_json(bad)


def test_candidate_roundtrip():
    base = ArchitectureSpec((Layer(BlockType.STANDARD, 20),))
    cand = Candidate("it001-c02", 1, 2, base, (LayerTokens(1, 1, 10), LayerTokens(0, 0, 0)))
    again = Candidate.from_json(json.dumps(cand.to_json()))
    assert again == cand
    assert again.spec.depth == 2
