"""The wall-clock planner: fit the search into ``time_budget_seconds``.

The plan is the configuration's schedule (candidates per iteration, epochs, examples per
candidate, candidates trained at once) plus one *decision* per iteration, taken from the
candidate times measured so far:

* **Before iteration 0** every candidate gets a training time limit of
  ``min(max_candidate_seconds, (budget - reserve) / rounds)`` (``rounds`` = candidates /
  candidates trained at once).
* **Before iteration i >= 1**: the seconds left (budget - elapsed - reserve) are shared by
  the rounds of the next iteration; the most candidates whose share is at least
  ``min_share`` of the estimated candidate time continue (each capped at that share),
  else the search stops.  ``min_share`` is :data:`MIN_SHARE` (half) without a finish, and
  1 with one (:func:`min_share`): the finish spends what a stopped search leaves, so an
  iteration runs only if its candidates get all the time they are estimated to need.  The
  estimate is the slowest candidate of the last iteration x its growth over the iteration
  before (clamped to 1..2): the next candidates extend the accepted network, so they cost
  at least as much.  The seconds left are first reduced by the last iteration's overhead
  beyond its candidates (task start-ups in a pipeline).
* **Within a candidate** the trainer turns its time limit into a schedule: it times a few
  training steps, then trains the most epochs (at most ``epochs``; then fewer examples)
  that fit, with the cosine decay over exactly those epochs
  (:func:`rachel.core.training.probe_schedule`).

``reserve`` covers the final refit, evaluation and export (:data:`RESERVE_SECONDS`), and,
when the configuration has a finish (``finish_epochs`` > 0, :mod:`rachel.core.finish`),
``finish_fraction`` of the budget for it.

* **The finish**, after the last iteration (or the decision to stop): whatever the budget
  has left beyond :data:`RESERVE_SECONDS` and the measured per-task overhead becomes its
  time limit (:func:`decide_finish`; under :data:`MIN_FINISH_SECONDS` it is skipped), so the
  time an iteration that did not fit leaves unused is spent on the best subnetwork.

Wall clock varies between runs; results must not.  Every decision, and every candidate's
schedule, is recorded (in the ensemble state's history, and in ``plan.json`` by ``rachel
search``) with the figures it was taken from.  Given a recorded plan, :func:`decide` and
the trainer replay it instead of measuring: the pipeline's tasks and ``--plan FILE``
then take exactly the recorded decisions and schedules.  Without a time
budget every decision is "continue" without limits and the plan depends only on the
configuration.  The module is pure Python (no TensorFlow).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rachel.core.errors import ConfigError
from rachel.core.search_space import parse_schedule

RESERVE_SECONDS = 15.0  # final mixture refit + servable export + test inference, 2 CPU cores
MIN_FINISH_SECONDS = 10.0  # a shorter finish would not complete one epoch worth having
MAX_GROWTH = 2.0
MIN_SHARE = 0.5  # continue only if each candidate can train >= half its estimated time
# With a finish, a candidate must get its whole estimate.  Measured (smoke + finish, seed 2,
# 41d3009): iteration 1 ran with 10-s candidates (half the estimate); they trained a third of
# an epoch (val_acc 0.15 and 0.37), tied the ensemble's loss, so the safety net took one,
# and the finish continued that net instead of the 0.88 one before it: test accuracy 0.879
# against 0.905 and 0.904 for seeds 0 and 1, which stopped the search instead.
MIN_SHARE_WITH_FINISH = 1.0
OVERHEAD_SECONDS = 5.0  # per candidate outside training (start-up, probe, save), until measured


@dataclass(frozen=True)
class Decision:
    """What to do before iteration ``iteration`` (>= 1)."""

    iteration: int
    action: str  # "continue" | "stop"
    candidates: int
    elapsed_seconds: float | None = None
    estimate_seconds: float | None = None
    budget_seconds: float | None = None
    time_limit: float | None = None  # training seconds allowed per candidate
    replayed: bool = False
    overhead_seconds: float | None = None  # the last iteration's, beyond its candidates

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
                time_limit=data.get("time_limit"),
                replayed=replayed,
                overhead_seconds=data.get("overhead_seconds"),
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
                + (f"+ {self.overhead_seconds:.0f} s overhead " if self.overhead_seconds else "")
                + f"of {self.budget_seconds:.0f} s"
            )
            if self.replayed:
                how = "recorded plan: " + how
        if self.action == "stop":
            return f"stop before iteration {self.iteration} ({how})"
        limit = f", <= {self.time_limit:.0f} s each" if self.time_limit is not None else ""
        return f"iteration {self.iteration}: {self.candidates} candidate(s){limit} ({how})"


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


def load_plan(plan: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    """A plan given as a dict or as its JSON text (the pipeline's ``plan_json``)."""
    if plan is None or isinstance(plan, Mapping):
        return plan
    try:
        data = json.loads(plan)
    except json.JSONDecodeError as err:
        raise ConfigError(f"the plan is not JSON ({err})", "pass a plan.json from a run") from err
    if not isinstance(data, Mapping):
        raise ConfigError("the plan is not a JSON object", "pass a plan.json from a run")
    return data


def check_plan(plan: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> None:
    """Refuse a plan recorded for another configuration (``summary``: this run's
    :func:`plan_summary`, which holds the configuration's fingerprint)."""
    if plan is None:
        return
    load_decisions(plan)
    load_schedules(plan)
    load_finish(plan)
    differs = sorted(k for k in summary if k in plan and plan[k] != summary[k])
    missing = [k for k in ("config_fingerprint",) if k not in plan]
    if differs or missing:
        raise ConfigError(
            "the plan was recorded for another configuration "
            f"({', '.join(differs + missing)} differ)",
            "run with the configuration in the plan's run folder (config.json), "
            "or leave out --plan",
        )


def load_schedules(plan: Mapping[str, Any] | str | None) -> dict[str, dict[str, Any]]:
    """Each candidate's recorded schedule ``{"epochs", "examples"}`` by candidate id, and
    its re-plans (``replans``: ``{"after", "epochs", "examples"}`` each) and the epoch its
    deadline cut short (``cut``: ``{"epoch", "batches"}``)."""
    if plan is None:
        return {}
    data = json.loads(plan) if isinstance(plan, str) else plan
    raw = data.get("schedules", {}) if isinstance(data, Mapping) else None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            "a plan's schedules must map candidate ids to schedules", "pass a plan.json from a run"
        )
    try:
        out: dict[str, dict[str, Any]] = {}
        for k, v in raw.items():
            out[str(k)] = parse_schedule(v)
        return out
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ConfigError(
            f"malformed schedule in the plan ({err})", "pass a plan.json from a run"
        ) from err


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
    max_candidate_seconds: float | None = None,
    overhead_seconds: float = OVERHEAD_SECONDS,
    iteration_overhead_seconds: float = 0.0,
    reserve_seconds: float = RESERVE_SECONDS,
    min_share: float = MIN_SHARE,
    recorded: Mapping[int, Decision] | None = None,
) -> Decision:
    """The decision before ``iteration``: replayed when recorded, else measured.

    ``iteration_overhead_seconds``: what the last iteration cost beyond its candidates
    (its wall time between two weighs less the rounds of its slowest candidate), which the
    next one will cost too.  Without it, ``rachel run`` (smoke, kfp.local, a process per
    task) ended 31 s past its 120-s budget."""
    if recorded and iteration in recorded:
        return recorded[iteration]
    if budget_seconds is None:  # no budget, no limits: the plan is the configuration's
        return Decision(iteration, "continue", candidates)

    def limit(share: float) -> float:
        cap = share - overhead_seconds
        return round(max(1.0, min(cap, max_candidate_seconds or cap)), 1)

    if iteration == 0 or not candidate_seconds:
        rounds = math.ceil(candidates / max(1, workers))
        share = (budget_seconds - elapsed_seconds - reserve_seconds) / rounds
        return Decision(
            iteration,
            "continue",
            candidates,
            round(elapsed_seconds, 1),
            None,
            budget_seconds,
            limit(share),
        )
    left = budget_seconds - elapsed_seconds - reserve_seconds - iteration_overhead_seconds
    per_candidate = estimate_iteration(candidate_seconds, 1, 1)
    for count in range(candidates, 0, -1):
        rounds = math.ceil(count / max(1, workers))
        share = left / rounds
        if share >= min_share * per_candidate:
            return Decision(
                iteration,
                "continue",
                count,
                round(elapsed_seconds, 1),
                round(rounds * min(share, per_candidate), 1),
                budget_seconds,
                limit(share),
                overhead_seconds=iteration_overhead_seconds,
            )
        if count <= workers:  # fewer than one round of workers saves no time
            break
    return Decision(
        iteration,
        "stop",
        0,
        round(elapsed_seconds, 1),
        round(per_candidate, 1),
        budget_seconds,
        overhead_seconds=iteration_overhead_seconds,
    )


def reserve_seconds(config: Any) -> float:
    """What the iterations must leave: the final evaluation, and the finish's share."""
    share = config.finish_fraction if config.finish_epochs > 0 else 0.0
    return RESERVE_SECONDS + share * float(config.time_budget_seconds or 0.0)


def min_share(config: Any) -> float:
    """The least share of its estimated time a candidate must get for an iteration to run."""
    return MIN_SHARE_WITH_FINISH if config.finish_epochs > 0 else MIN_SHARE


def decide_finish(
    iteration: int,
    *,
    budget_seconds: float | None,
    elapsed_seconds: float,
    overhead_seconds: float = OVERHEAD_SECONDS,
    recorded: Decision | None = None,
) -> Decision:
    """The finish's decision after ``iteration`` iterations: replayed when recorded; without
    a budget "continue" without a limit (the configured epochs); else the time left."""
    if recorded is not None:
        return recorded
    if budget_seconds is None:
        return Decision(iteration, "continue", 1)
    left = budget_seconds - elapsed_seconds - RESERVE_SECONDS - overhead_seconds
    action, count = ("continue", 1) if left >= MIN_FINISH_SECONDS else ("stop", 0)
    return Decision(
        iteration,
        action,
        count,
        round(elapsed_seconds, 1),
        None,
        budget_seconds,
        round(left, 1) if action == "continue" else None,
    )


def load_finish(plan: Mapping[str, Any] | str | None) -> Decision | None:
    """The finish decision of a recorded plan (None: not recorded)."""
    data = load_plan(plan)
    if not data or data.get("finish") is None:
        return None
    return Decision.from_json(data["finish"])


def keep_searching(history: Sequence[Mapping[str, Any]]) -> bool:
    """False once the last iteration's decision was to stop."""
    return not (
        history
        and isinstance(history[-1].get("next"), Mapping)
        and history[-1]["next"]["action"] == "stop"
    )


def plan_summary(config: Any) -> dict[str, Any]:
    """The configuration's schedule, as printed at the start and recorded in plan.json
    (with the whole configuration's fingerprint: a plan replays only on its own config)."""
    canonical = json.dumps(config.to_json(), sort_keys=True, separators=(",", ":"))
    return {
        "config_fingerprint": hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "budget_seconds": config.time_budget_seconds,
        "iterations": config.iterations,
        "candidates": config.candidates,
        "epochs": config.epochs,
        "train_examples": config.train_examples,
        "parallel_candidates": config.parallel_candidates,
        "train_threads": config.train_threads,
        "reserve_seconds": reserve_seconds(config),
        "finish_epochs": config.finish_epochs,
        "seed": config.seed,
    }
