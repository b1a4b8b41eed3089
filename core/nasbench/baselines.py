"""Baselines of the paper (section 3.2.3) on a :class:`CellIndex` and an accuracy source.

Every baseline returns a :class:`SearchTrace` per run: the accuracies of the queried cells in
query order (a cell is paid for once: re-reading a cell already queried in the same run is
free and not repeated), plus the initial and the final accuracy of the run.  Best-so-far vs
number of queries is ``np.maximum.accumulate(trace.queried)``.

* :func:`random_search` - draws cells independently: ``sampler="uniform"`` over all ids (or over
  the known ids in ``real_subset`` mode), ``sampler="quasi"`` with the paper's quasi-uniform
  sampler (uniform #vertices + rejection).  initial = first query, final = best query.
* :func:`random_walk` - one episode of the incremental MDP (same neighbour subsample as the
  environment): at every step a uniformly random valid action, terminate included.
  initial = start cell, final = the cell where the episode ended (not the best one visited).
* :func:`local_search` - hill climbing.  Each step shows up to ``N`` neighbours (same subsample
  as the environment) and inspects them one at a time in random order; every inspection of a
  new cell is a paid query.  ``strategy="best"`` (the paper's) inspects all shown neighbours and
  moves to the best if it beats the current cell; ``strategy="first"`` moves to the first
  improvement.  With no improvement the climb is stuck: without a ``budget`` the run ends there
  (one episode: initial = start, final = local optimum, the paper's setting); with a ``budget``
  it restarts from a fresh initial state until the budget is spent, and final = best found.
  A budget larger than the number of queryable cells is clamped, and a search that stops
  finding new cells (1,000 rounds without a new query) ends early with a shorter trace.

Modes are those of the environment: ``"tabular"`` raises :class:`MissingMetricsError` when an
unknown (NaN) accuracy would be read; ``"real_subset"`` limits neighbours and initial states to
cells with known accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rachel.core.errors import ConfigError, MissingMetricsError
from rachel.core.nasbench.environment import (
    EVAL_EPISODE_LENGTH,
    AccuracySource,
    IncrementalCore,
)
from rachel.core.nasbench.index import CellIndex

#: a search that makes no new query in this many rounds (all reachable cells seen) stops early
_MAX_STALLED = 1000


@dataclass(frozen=True)
class SearchTrace:
    """One run of a search: accuracies in query order, initial and final accuracy."""

    queried: np.ndarray
    initial_accuracy: float
    final_accuracy: float

    @property
    def improvement(self) -> float:
        return self.final_accuracy - self.initial_accuracy

    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(self.queried) if len(self.queried) else self.queried


class _Ledger:
    """Query bookkeeping of one run: each distinct cell is paid once."""

    def __init__(self, acc: np.ndarray, index: CellIndex) -> None:
        self.acc = acc
        self.index = index
        self.seen: set[int] = set()
        self.values: list[float] = []

    def query(self, cell_id: int) -> float:
        value = float(self.acc[cell_id])
        if np.isnan(value):
            raise MissingMetricsError(
                f"cell {self.index.hash_of(cell_id)} (id {cell_id}) has no accuracy",
                "use mode='real_subset' or a surrogate accuracy source",
            )
        if cell_id not in self.seen:
            self.seen.add(cell_id)
            self.values.append(value)
        return value

    @property
    def spent(self) -> int:
        return len(self.values)

    def trace(self, initial: float, final: float) -> SearchTrace:
        return SearchTrace(np.array(self.values, dtype=np.float64), float(initial), float(final))


class SearchProblem:
    """An index + accuracy source + mode, prepared once and shared by many baseline runs.

    Holds a one-environment :class:`IncrementalCore` (same neighbour restriction and subsample
    as the environment).  ``vertex_range`` limits the quasi-uniform initial-state sampler
    (needed for an index built on a subset of the table).
    """

    def __init__(
        self,
        index: CellIndex,
        accuracy: AccuracySource | np.ndarray,
        mode: str = "real_subset",
        max_neighbours: int = 50,
        vertex_range: tuple[int, int] = (2, 7),
    ) -> None:
        self.index = index
        self.mode = mode
        self.core = IncrementalCore(index, accuracy, num_envs=1, max_neighbours=max_neighbours,
                                    episode_length=EVAL_EPISODE_LENGTH, mode=mode,
                                    vertex_range=vertex_range)
        self.acc = self.core.acc

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
    budget: int,
    rng: np.random.Generator,
    sampler: str = "uniform",
) -> SearchTrace:
    """``budget`` distinct random cells; see the module docstring."""
    if budget < 1:
        raise ConfigError(f"budget must be >= 1, got {budget}", "set budget >= 1")
    if sampler not in ("uniform", "quasi"):
        raise ConfigError(f"unknown sampler {sampler!r}", "use 'uniform' or 'quasi'")
    core = problem.core
    core.rng = rng
    core._queue = np.zeros(0, dtype=np.int64)
    ledger = _Ledger(core.acc, problem.index)
    pool = (np.flatnonzero(core.known) if problem.mode == "real_subset"
            else np.arange(len(problem.index)))
    budget = min(budget, len(pool))
    stalled = 0
    while ledger.spent < budget and stalled < _MAX_STALLED:
        before = ledger.spent
        if sampler == "uniform":
            ids = pool[rng.integers(0, len(pool), size=budget)]
        else:
            ids = core._take_initial(budget)
        for i in ids.tolist():
            ledger.query(i)
            if ledger.spent >= budget:
                break
        stalled = stalled + 1 if ledger.spent == before else 0
    q = ledger.values
    return ledger.trace(q[0], max(q))


def random_walk(
    problem: SearchProblem,
    rng: np.random.Generator,
    episode_length: int = EVAL_EPISODE_LENGTH,
    initial_id: int | None = None,
) -> SearchTrace:
    """One random-walk episode of the incremental MDP."""
    if episode_length < 1:
        raise ConfigError(f"episode_length must be >= 1, got {episode_length}",
                          "set episode_length >= 1")
    core = problem.core
    core.episode_length = int(episode_length)
    ledger = _Ledger(core.acc, problem.index)
    problem.start(rng, initial_id)
    initial = ledger.query(int(core.cur[0]))
    while True:
        core.refresh_shown()
        valid = np.flatnonzero(np.concatenate([[True], core.shown[0] >= 0]))
        action = int(valid[rng.integers(0, len(valid))])
        out = core.step(np.array([action]))
        ledger.query(int(core.cur[0]))
        if out["terminated"][0] or out["truncated"][0]:
            break
    return ledger.trace(initial, float(core.acc[core.cur[0]]))


def local_search(
    problem: SearchProblem,
    rng: np.random.Generator,
    budget: int | None = None,
    strategy: str = "best",
    max_steps: int | None = None,
    initial_id: int | None = None,
) -> SearchTrace:
    """Hill climbing with paid neighbour inspections; see the module docstring."""
    if strategy not in ("best", "first"):
        raise ConfigError(f"unknown strategy {strategy!r}", "use 'best' or 'first'")
    if budget is not None and budget < 1:
        raise ConfigError(f"budget must be >= 1, got {budget}", "set budget >= 1 or None")
    core = problem.core
    ledger = _Ledger(core.acc, problem.index)
    env0 = np.array([0])
    cur = problem.start(rng, initial_id)
    cur_acc = ledger.query(cur)
    initial = cur_acc
    best = cur_acc
    steps = 0
    restarts_without_news = 0
    if budget is not None:
        budget = min(budget, int(core.known.sum()) if problem.mode == "real_subset"
                     else len(problem.index))

    def out_of_budget() -> bool:
        return budget is not None and ledger.spent >= budget

    while not out_of_budget() and restarts_without_news < _MAX_STALLED:
        spent_before = ledger.spent
        core.cur[0] = cur
        core.refresh_shown()
        shown = core.shown[0][core.shown[0] >= 0]
        shown = shown[rng.permutation(len(shown))]
        move_to, move_acc = -1, cur_acc
        for nb in shown.tolist():
            if out_of_budget():
                break
            a = ledger.query(nb)
            best = max(best, a)
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
            best = max(best, cur_acc)
            steps = 0
            restarts_without_news = restarts_without_news + 1 if ledger.spent == spent_before else 0
    final = cur_acc if budget is None else best
    if budget is not None:
        ledger.values = ledger.values[:budget]
    return ledger.trace(initial, final)
