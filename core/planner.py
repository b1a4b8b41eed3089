"""The wall-clock planner: fit the search into ``time_budget_seconds``.

The plan is the configuration's schedule (candidates per iteration, epochs, examples per
candidate, candidates trained at once) plus one *decision* before every iteration after
the first, taken from the candidate times measured so far::

    elapsed + estimate(next iteration) + reserve  <=  budget   -> continue
    ... with fewer candidates (at least one round of workers)  -> continue, fewer
    otherwise                                                  -> stop

* ``estimate(next iteration)`` = rounds x the slowest candidate of the last iteration x
  its growth over the iteration before (clamped to 1..2): the next candidates extend the
  accepted network, so they cost at least as much.
* ``reserve`` = the final refit, evaluation and export, estimated as the measured
  per-candidate overhead plus a fixed part (:data:`RESERVE_SECONDS`).

Wall clock varies between runs; results must not.  Every decision is recorded (in the
ensemble state's history, and in ``plan.json`` by ``rachel search``) with the figures it
was taken from, and :func:`decide` replays a recorded decision instead of measuring when
one is given: the pipeline's tasks, a resumed search and ``--plan FILE`` take exactly the
recorded decisions.  Without a time budget every decision is "continue" and the plan
depends only on the configuration.  The module is pure Python (no TensorFlow).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rachel.core.errors import ConfigError

RESERVE_SECONDS = 15.0  # final mixture refit + servable export + test inference, 2 CPU cores
MAX_GROWTH = 2.0


@dataclass(frozen=True)
class Decision:
    """What to do before iteration ``iteration`` (>= 1)."""

    iteration: int
    action: str  # "continue" | "stop"
    candidates: int
    elapsed_seconds: float | None = None
    estimate_seconds: float | None = None
    budget_seconds: float | None = None
    replayed: bool = False

    def __post_init__(self) -> None:
        if self.action not in ("continue", "stop"):
            raise ConfigError(f"unknown plan action {self.action!r}", "use continue or stop")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, replayed: bool = True) -> Decision:
        try:
            return cls(
                iteration=int(data["iteration"]),
                action=str(data["action"]),
                candidates=int(data["candidates"]),
                elapsed_seconds=data.get("elapsed_seconds"),
                estimate_seconds=data.get("estimate_seconds"),
                budget_seconds=data.get("budget_seconds"),
                replayed=replayed,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"malformed plan decision {dict(data)!r}",
                "pass a plan.json written by rachel search (or remove --plan)",
            ) from err

    def describe(self) -> str:
        if self.estimate_seconds is None:
            how = "recorded plan" if self.replayed else "no time budget"
        else:
            how = (
                f"elapsed {self.elapsed_seconds:.0f} s + next ~{self.estimate_seconds:.0f} s "
                f"of {self.budget_seconds:.0f} s"
            )
            if self.replayed:
                how = "recorded plan: " + how
        if self.action == "stop":
            return f"stop before iteration {self.iteration} ({how})"
        return f"iteration {self.iteration}: {self.candidates} candidate(s) ({how})"


def load_decisions(plan: Mapping[str, Any] | str | None) -> dict[int, Decision]:
    """Decisions of a recorded plan (a ``plan.json`` dict or its text), by iteration."""
    if plan is None:
        return {}
    data = json.loads(plan) if isinstance(plan, str) else plan
    raw = data.get("decisions", []) if isinstance(data, Mapping) else None
    if not isinstance(raw, list):
        raise ConfigError("a plan must hold a list of decisions", "pass a plan.json from a run")
    decisions = [Decision.from_json(d) for d in raw]
    return {d.iteration: d for d in decisions}


def estimate_iteration(
    candidate_seconds: Sequence[Sequence[float]], candidates: int, workers: int
) -> float:
    """Seconds for ``candidates`` more candidates, from the per-iteration candidate times."""
    last = [s for s in candidate_seconds[-1] if s > 0] or [0.0]
    slowest = max(last)
    growth = 1.0
    if len(candidate_seconds) >= 2:
        before = [s for s in candidate_seconds[-2] if s > 0]
        if before and max(before) > 0:
            growth = min(MAX_GROWTH, max(1.0, slowest / max(before)))
    rounds = math.ceil(candidates / max(1, workers))
    return rounds * slowest * growth


def decide(
    iteration: int,
    *,
    candidates: int,
    workers: int,
    budget_seconds: float | None,
    elapsed_seconds: float,
    candidate_seconds: Sequence[Sequence[float]],
    reserve_seconds: float = RESERVE_SECONDS,
    recorded: Mapping[int, Decision] | None = None,
) -> Decision:
    """The decision before ``iteration``: replayed when recorded, else measured."""
    if recorded and iteration in recorded:
        return recorded[iteration]
    if budget_seconds is None:
        return Decision(iteration, "continue", candidates)
    left = budget_seconds - elapsed_seconds - reserve_seconds
    for count in range(candidates, 0, -1):
        estimate = estimate_iteration(candidate_seconds, count, workers)
        if estimate <= left:
            return Decision(
                iteration, "continue", count, round(elapsed_seconds, 1), round(estimate, 1),
                budget_seconds,
            )
        if count <= workers:  # fewer than one round of workers saves no time
            break
    estimate = estimate_iteration(candidate_seconds, min(candidates, workers), workers)
    return Decision(
        iteration, "stop", 0, round(elapsed_seconds, 1), round(estimate, 1), budget_seconds
    )


def planned_candidates(history: Sequence[Mapping[str, Any]], default: int) -> int:
    """The candidates the ensemble history's last decision allows for the next iteration."""
    if history and isinstance(history[-1].get("next"), Mapping):
        return int(history[-1]["next"]["candidates"])
    return default


def keep_searching(history: Sequence[Mapping[str, Any]]) -> bool:
    """False once the last iteration's decision was to stop."""
    return not (
        history
        and isinstance(history[-1].get("next"), Mapping)
        and history[-1]["next"]["action"] == "stop"
    )
