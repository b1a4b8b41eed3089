"""Baselines of the paper (section 3.2.3) on a :class:`CellIndex` and an accuracy source.

Every baseline returns a :class:`SearchTrace` per episode: the accuracies of the queried cells
in query order, the initial and the final accuracy, and the same three on the *report* metric
(:class:`SearchProblem`'s ``report``; the paper decides on validation and reports test
accuracy).  Best-so-far vs number of queries is ``np.maximum.accumulate(trace.queried)``.

Each searcher's query accounting (how :func:`evaluation.evaluate` charges its episodes) is
stated in :data:`ACCOUNTING`, as in the paper:

* :func:`random_search` - one architecture from the same quasi-uniform sampler as the
  environment's initial states (section 3.2.3).  An episode is one query; its improvement is
  that architecture against the episode's initial state (initial = the initial state, final =
  the random architecture), as the paper's histograms.  A run of Q queries is Q episodes.
  Accounting ``"episode"``.
* :func:`random_walk` - one episode of the incremental MDP (same neighbour subsample as the
  environment): at every step a uniformly random valid action, terminate included.
  initial = start cell, final = the cell where the episode ended (not the best one visited).
  Accounting ``"episode"`` (the paper charges the final architecture).
* :func:`local_search` - hill climbing.  Each step shows up to ``N`` neighbours (same subsample
  as the environment) and inspects them one at a time in random order; every inspection is a
  paid query, the paper's "every neighbour at every timestep" (a neighbour inspected again at a
  later step is paid again; ``distinct=True`` charges each cell once).  ``strategy="best"``
  (the paper's) inspects all shown neighbours and moves to the best if it beats the current
  cell; ``strategy="first"`` moves to the first improvement.  With no improvement the climb is
  stuck: without a ``budget`` the run ends there (one episode: initial = start, final = local
  optimum, the paper's setting); with a ``budget`` it restarts from a fresh initial state until
  the budget is spent, and final = best found.  A search that stops finding new cells (1,000
  rounds without a new query) ends early with a shorter trace.  Accounting ``"queries"``.

Modes are those of the environment: ``"tabular"`` (the default: the full graph; pair it with a
surrogate when the table is partial) raises :class:`MissingMetricsError` when an unknown (NaN)
accuracy would be read; ``"real_subset"`` limits neighbours and initial states to cells with
known accuracy (a degenerate graph on the shared table: mean degree 1.47 instead of 25.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from rachel.core.errors import ConfigError, MissingMetricsError
from rachel.core.nasbench.environment import (
    EVAL_EPISODE_LENGTH,
    AccuracySource,
    IncrementalCore,
)
from rachel.core.nasbench.index import CellIndex

#: how the paper charges each baseline (evaluation.evaluate needs one entry per searcher)
ACCOUNTING: dict[str, Literal["queries", "episode"]] = {
    "random_search": "episode",
    "random_walk": "episode",
    "local_search": "queries",
}

#: a search that makes no new query in this many rounds (all reachable cells seen) stops early
_MAX_STALLED = 1000


@dataclass(frozen=True)
class SearchTrace:
    """One episode of a search: decide-metric accuracies in query order, initial and final
    accuracy; the report-metric values of the same cells (``None``: same as decide)."""

    queried: np.ndarray
    initial_accuracy: float
    final_accuracy: float
    reported: np.ndarray | None = None
    initial_report: float | None = None
    final_report: float | None = None

    @property
    def improvement(self) -> float:
        return self.final_accuracy - self.initial_accuracy

    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(self.queried) if len(self.queried) else self.queried


class _Ledger:
    """Query bookkeeping of one run: with ``distinct`` each cell is paid once."""

    def __init__(
        self,
        acc: np.ndarray,
        index: CellIndex,
        report: np.ndarray | None = None,
        distinct: bool = True,
    ) -> None:
        self.acc = acc
        self.report = acc if report is None else report
        self.index = index
        self.distinct = distinct
        self.seen: set[int] = set()
        self.ids: list[int] = []

    def query(self, cell_id: int) -> float:
        value = float(self.acc[cell_id])
        if np.isnan(value):
            raise MissingMetricsError(
                f"cell {self.index.hash_of(cell_id)} (id {cell_id}) has no accuracy",
                "use mode='real_subset' or a surrogate accuracy source",
            )
        if not self.distinct or cell_id not in self.seen:
            self.seen.add(cell_id)
            self.ids.append(cell_id)
        return value

    @property
    def spent(self) -> int:
        return len(self.ids)

    def trace(
        self,
        initial_id: int,
        final_id: int,
        final_acc: float | None = None,
        final_report: float | None = None,
    ) -> SearchTrace:
        ids = np.array(self.ids, dtype=np.int64)
        return SearchTrace(
            self.acc[ids].astype(np.float64),
            float(self.acc[initial_id]),
            float(self.acc[final_id] if final_acc is None else final_acc),
            self.report[ids].astype(np.float64),
            float(self.report[initial_id]),
            float(self.report[final_id] if final_report is None else final_report),
        )


class SearchProblem:
    """An index + accuracy source + mode, prepared once and shared by many baseline runs.

    Holds a one-environment :class:`IncrementalCore` (same neighbour restriction and subsample
    as the environment).  ``vertex_range`` limits the quasi-uniform initial-state sampler
    (needed for an index built on a subset of the table).  ``report`` is the accuracy the
    traces are reported on (default: ``accuracy``).
    """

    def __init__(
        self,
        index: CellIndex,
        accuracy: AccuracySource | np.ndarray,
        mode: str = "tabular",
        max_neighbours: int = 50,
        vertex_range: tuple[int, int] = (2, 7),
        report: AccuracySource | np.ndarray | None = None,
    ) -> None:
        self.index = index
        self.mode = mode
        self.core = IncrementalCore(
            index,
            accuracy,
            num_envs=1,
            max_neighbours=max_neighbours,
            episode_length=EVAL_EPISODE_LENGTH,
            mode=mode,
            vertex_range=vertex_range,
            report=report,
        )
        self.acc = self.core.acc
        self.report = self.core.report

    def ledger(self, distinct: bool = True) -> _Ledger:
        return _Ledger(self.acc, self.index, self.report, distinct)

    def start(self, rng: np.random.Generator, initial_id: int | None = None) -> int:
        """Put the core in a fresh episode (from ``initial_id`` or the sampler)."""
        core = self.core
        core.rng = rng
        core._queue = np.zeros(0, dtype=np.int64)
        if initial_id is not None:
            core.queue_initial(np.array([initial_id]))
        core.queried = [set()]
        core.reset_envs(np.array([0]))
        return int(core.cur[0])


def random_search(
    problem: SearchProblem,
    rng: np.random.Generator,
    initial_id: int | None = None,
) -> SearchTrace:
    """One random architecture from the quasi-uniform sampler; see the module docstring.

    ``initial_id`` (default: drawn from the sampler first) is the episode's initial state the
    improvement is measured against; it is not a query.
    """
    start = problem.start(rng, initial_id)
    core = problem.core
    pick = int(core._take_initial(1)[0])
    ledger = problem.ledger()
    ledger.query(pick)
    return ledger.trace(start, pick)


def random_walk(
    problem: SearchProblem,
    rng: np.random.Generator,
    episode_length: int = EVAL_EPISODE_LENGTH,
    initial_id: int | None = None,
) -> SearchTrace:
    """One random-walk episode of the incremental MDP."""
    if episode_length < 1:
        raise ConfigError(
            f"episode_length must be >= 1, got {episode_length}", "set episode_length >= 1"
        )
    core = problem.core
    core.episode_length = int(episode_length)
    ledger = problem.ledger()
    start = problem.start(rng, initial_id)
    ledger.query(start)
    while True:
        core.refresh_shown()
        valid = np.flatnonzero(np.concatenate([[True], core.shown[0] >= 0]))
        action = int(valid[rng.integers(0, len(valid))])
        out = core.step(np.array([action]))
        ledger.query(int(core.cur[0]))
        if out["terminated"][0] or out["truncated"][0]:
            break
    return ledger.trace(start, int(core.cur[0]))


def local_search(
    problem: SearchProblem,
    rng: np.random.Generator,
    budget: int | None = None,
    strategy: str = "best",
    max_steps: int | None = None,
    initial_id: int | None = None,
    distinct: bool = False,
) -> SearchTrace:
    """Hill climbing with paid neighbour inspections; see the module docstring."""
    if strategy not in ("best", "first"):
        raise ConfigError(f"unknown strategy {strategy!r}", "use 'best' or 'first'")
    if budget is not None and budget < 1:
        raise ConfigError(f"budget must be >= 1, got {budget}", "set budget >= 1 or None")
    core = problem.core
    ledger = problem.ledger(distinct)
    env0 = np.array([0])
    cur = problem.start(rng, initial_id)
    start = cur
    cur_acc = ledger.query(cur)
    best_id, best = cur, cur_acc
    steps = 0
    restarts_without_news = 0
    if budget is not None and distinct:
        budget = min(
            budget, int(core.known.sum()) if problem.mode == "real_subset" else len(problem.index)
        )

    def out_of_budget() -> bool:
        return budget is not None and ledger.spent >= budget

    while not out_of_budget() and restarts_without_news < _MAX_STALLED:
        seen_before = len(ledger.seen)
        core.cur[0] = cur
        core.refresh_shown()
        shown = core.shown[0][core.shown[0] >= 0]
        shown = shown[rng.permutation(len(shown))]
        move_to, move_acc = -1, cur_acc
        for nb in shown.tolist():
            if out_of_budget():
                break
            a = ledger.query(nb)
            if a > best:
                best_id, best = nb, a
            if a > move_acc:
                move_to, move_acc = nb, a
                if strategy == "first":
                    break
        steps += 1
        if move_to >= 0:
            cur, cur_acc = move_to, move_acc
        if move_to < 0 or (max_steps is not None and steps >= max_steps):
            if budget is None:
                break
            core.reset_envs(env0)  # restart from a fresh initial state
            cur = int(core.cur[0])
            if out_of_budget() and cur not in ledger.seen:
                break
            cur_acc = ledger.query(cur)
            if cur_acc > best:
                best_id, best = cur, cur_acc
            steps = 0
            restarts_without_news = (
                restarts_without_news + 1 if len(ledger.seen) == seen_before else 0
            )
    if budget is not None:
        ledger.ids = ledger.ids[:budget]
    return ledger.trace(start, cur if budget is None else best_id)
