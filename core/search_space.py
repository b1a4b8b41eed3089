"""The RACHEL search space (paper section 2.3, Table 1), as plain data.

A *layer decision* is three tokens chosen by the controller::

    presence    0 = no layer at this step, 1 = add the layer below
    block type  0 = standard block   Conv2D 3x3 -> BatchNorm -> ReLU -> Dropout -> MaxPool
                1 = residual block   [Conv2D 3x3 -> BN -> ReLU] x 2, 1x1 projection on the
                                     skip when the channel count changes, then Add
    width       token 0..240  ->  width = token + 16  (16..256 filters)

A candidate appends the present layers of ``max_new_layers`` decisions to the previous
accepted subnetwork.  An :class:`ArchitectureSpec` is JSON-serialisable, hashable and
immutable; :func:`rachel.core.architecture.decode` turns it into a Keras model.  This
module imports no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from rachel.core.errors import ConfigError

WIDTH_OFFSET = 16
NUM_WIDTH_TOKENS = 241  # tokens 0..240 -> widths 16..256
MIN_WIDTH = WIDTH_OFFSET
MAX_WIDTH = WIDTH_OFFSET + NUM_WIDTH_TOKENS - 1
HEAD_SIZES = (2, 2, NUM_WIDTH_TOKENS)  # presence, block type, width


class BlockType(IntEnum):
    STANDARD = 0
    RESIDUAL = 1


def width_from_token(token: int) -> int:
    """Table 1: ``width = token + 16``."""
    if not 0 <= int(token) < NUM_WIDTH_TOKENS:
        raise ConfigError(f"width token {token} is outside 0..{NUM_WIDTH_TOKENS - 1}")
    return int(token) + WIDTH_OFFSET


def token_from_width(width: int) -> int:
    if not MIN_WIDTH <= int(width) <= MAX_WIDTH:
        raise ConfigError(f"width {width} is outside {MIN_WIDTH}..{MAX_WIDTH}")
    return int(width) - WIDTH_OFFSET


@dataclass(frozen=True)
class Layer:
    """One block of a subnetwork."""

    block: BlockType
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "block", BlockType(int(self.block)))
        token_from_width(self.width)  # validates the range

    def to_json(self) -> dict[str, Any]:
        return {"block": self.block.name.lower(), "width": self.width}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layer:
        try:
            return cls(BlockType[str(data["block"]).upper()], int(data["width"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"malformed layer {data!r}",
                'write layers as {"block": "standard"|"residual", "width": 16..256}',
            ) from err


@dataclass(frozen=True)
class LayerTokens:
    """The controller's three tokens for one decision step."""

    presence: int
    block_type: int
    width_token: int

    def __post_init__(self) -> None:
        if self.presence not in (0, 1) or self.block_type not in (0, 1):
            raise ConfigError(f"presence/block tokens must be 0 or 1, got {self}")
        width_from_token(self.width_token)

    def to_layer(self) -> Layer | None:
        """The layer these tokens add, or ``None`` when presence is 0."""
        if not self.presence:
            return None
        return Layer(BlockType(self.block_type), width_from_token(self.width_token))

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.presence, self.block_type, self.width_token)


@dataclass(frozen=True)
class ArchitectureSpec:
    """A sequential subnetwork: blocks in order, then the classification head."""

    layers: tuple[Layer, ...] = ()

    def extend(self, decisions: Iterable[LayerTokens]) -> ArchitectureSpec:
        """Append the present layers of ``decisions`` (Algorithm 1's inner loop)."""
        new = [layer for d in decisions if (layer := d.to_layer()) is not None]
        return ArchitectureSpec(self.layers + tuple(new))

    @property
    def depth(self) -> int:
        return len(self.layers)

    def to_json(self) -> dict[str, Any]:
        return {"layers": [layer.to_json() for layer in self.layers]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> ArchitectureSpec:
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise ConfigError(f"malformed architecture spec {data!r}", 'expected {"layers": [...]}')
        return cls(tuple(Layer.from_json(layer) for layer in data["layers"]))

    def fingerprint(self) -> str:
        """A short stable hash of the canonical JSON (same spec -> same fingerprint)."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> str:
        if not self.layers:
            return "[head only]"
        return " -> ".join(f"{'res' if lyr.block else 'conv'}{lyr.width}" for lyr in self.layers)


@dataclass(frozen=True)
class Candidate:
    """One proposal of an iteration: the base it extends and the decisions that extend it."""

    candidate_id: str
    iteration: int
    index: int
    base: ArchitectureSpec
    decisions: tuple[LayerTokens, ...]
    # The planner's limits (rachel.core.planner): a wall-clock cap on training, or the
    # recorded schedule {"epochs", "examples"} of a replayed plan (which then wins), with
    # its re-plans ("replans") and deadline cut ("cut") if it had any.
    time_limit: float | None = None
    schedule: dict[str, Any] | None = None
    # The finish (rachel.core.finish): the trained-candidate artifact whose weights this
    # training starts from instead of a fresh initialisation.
    warm_start: str | None = None

    @property
    def spec(self) -> ArchitectureSpec:
        return self.base.extend(self.decisions)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "candidate_id": self.candidate_id,
            "iteration": self.iteration,
            "index": self.index,
            "base": self.base.to_json(),
            "decisions": [list(d.as_tuple()) for d in self.decisions],
            "spec": self.spec.to_json(),
        }
        if self.time_limit is not None:
            out["time_limit"] = self.time_limit
        if self.schedule is not None:
            out["schedule"] = dict(self.schedule)
        if self.warm_start is not None:
            out["warm_start"] = self.warm_start
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any] | str) -> Candidate:
        data: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
        try:
            return cls(
                candidate_id=str(data["candidate_id"]),
                iteration=int(data["iteration"]),
                index=int(data["index"]),
                base=ArchitectureSpec.from_json(data["base"]),
                decisions=tuple(LayerTokens(*map(int, d)) for d in data["decisions"]),
                time_limit=None if data.get("time_limit") is None else float(data["time_limit"]),
                schedule=None if data.get("schedule") is None else parse_schedule(data["schedule"]),
                warm_start=None if data.get("warm_start") is None else str(data["warm_start"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"malformed candidate {str(data)[:200]}", "re-run generate") from err


def candidate_id(iteration: int, index: int) -> str:
    return f"it{iteration:03d}-c{index:02d}"


def decisions_from_tokens(tokens: Sequence[Sequence[int]]) -> tuple[LayerTokens, ...]:
    return tuple(LayerTokens(int(p), int(b), int(w)) for p, b, w in tokens)


def parse_schedule(data: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded schedule ``{"epochs", "examples"}`` with its ``replans`` and ``cut``, as
    ints (KeyError, TypeError or ValueError when malformed)."""
    out: dict[str, Any] = {k: int(data[k]) for k in ("epochs", "examples")}
    if data.get("replans"):
        out["replans"] = [
            {k: int(r[k]) for k in ("after", "epochs", "examples")} for r in data["replans"]
        ]
    if data.get("cut"):
        out["cut"] = {k: int(data["cut"][k]) for k in ("epoch", "batches")}
    return out
