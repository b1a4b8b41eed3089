"""What a candidate costs to train, from its spec alone (no TensorFlow, no timing).

The planner cannot stop a candidate half-way without making results depend on the wall
clock, so it bounds each candidate's work *before* training, deterministically: a
candidate whose ``epochs x examples x cost per example`` exceeds the per-candidate cap
trains fewer epochs (then on fewer examples).  The cap comes from the preset's
``max_candidate_seconds`` and a reference speed of this project's 2-core CPU machines,
:data:`REFERENCE_MACS_PER_SECOND` (per training thread), so the same configuration always
gives the same schedule.

Cost per example = 3 x the forward pass (forward + backward) in multiply-accumulates, with
every element-wise op (BatchNorm, ReLU, Dropout, Add) counted as :data:`ELEMENTWISE_MACS`
per activation: on 2 CPU cores those memory-bound ops, not the convolutions, dominate
small nets.  Calibrated with ``bench/recipe.py`` / ``bench/training_throughput.py``
(figures in their JSON): the estimate is within a factor of ~2 of the measured time,
which is what a cap needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rachel.core.search_space import ArchitectureSpec, BlockType

ELEMENTWISE_MACS = 8.0
TRAIN_FACTOR = 3.0  # forward + backward
REFERENCE_MACS_PER_SECOND = 12.0e9  # per training thread, this project's 2-core CPU machine
HEAD_MAX_SIDE = 7


def forward_macs(
    spec: ArchitectureSpec,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    pool_first: bool = False,
) -> float:
    """Multiply-accumulate equivalents of one forward pass of ``spec`` (one example)."""
    h, w, c = input_shape
    total = 0.0
    for layer in spec.layers:
        out = layer.width
        if layer.block == BlockType.STANDARD:
            total += h * w * 9 * c * out
            can_pool = min(h, w) >= 2
            if pool_first and can_pool:
                h, w = h // 2, w // 2
                total += 3 * ELEMENTWISE_MACS * h * w * out  # BN, ReLU, Dropout
            else:
                total += 3 * ELEMENTWISE_MACS * h * w * out
                if can_pool:
                    h, w = h // 2, w // 2
        else:
            total += h * w * 9 * (c * out + out * out)
            elementwise = 5  # 2 x (BN, ReLU) + Add
            if c != out:
                total += h * w * c * out
                elementwise += 1
            total += elementwise * ELEMENTWISE_MACS * h * w * out
        c = out
    while max(h, w) > HEAD_MAX_SIDE:
        h, w = (h + 1) // 2, (w + 1) // 2
    return total + h * w * c * num_classes


@dataclass(frozen=True)
class Schedule:
    """How much a candidate trains: epochs over ``examples`` training examples."""

    epochs: int
    examples: int
    estimated_seconds: float
    capped: bool


def schedule(
    spec: ArchitectureSpec,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    epochs: int,
    examples: int,
    max_seconds: float | None,
    threads: int | None,
    pool_first: bool = False,
) -> Schedule:
    """The candidate's epochs and examples within ``max_seconds`` (None: no cap)."""
    per_example = TRAIN_FACTOR * forward_macs(
        spec, input_shape, num_classes, pool_first=pool_first
    )
    rate = REFERENCE_MACS_PER_SECOND * (threads or 2)

    def seconds(e: int, n: int) -> float:
        return e * n * per_example / rate

    if max_seconds is None or seconds(epochs, examples) <= max_seconds:
        return Schedule(epochs, examples, seconds(epochs, examples), False)
    fit_epochs = int(max_seconds // seconds(1, examples))
    if fit_epochs >= 1:
        return Schedule(fit_epochs, examples, seconds(fit_epochs, examples), True)
    fit_examples = max(min(examples, 1000), int(max_seconds // seconds(1, 1)))
    return Schedule(1, fit_examples, seconds(1, fit_examples), True)
