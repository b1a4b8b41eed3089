"""The incremental NAS MDP of the paper (section 3.2.1) on NAS-Bench-101, vectorised.

State: a cell id of a :class:`~rachel.core.nasbench.index.CellIndex`.  At every step the agent
sees the current cell and up to ``N`` of its neighbours (default 50).  Actions::

    action 0       terminate: the episode ends at the current cell (reward 0)
    action k>=1    move to neighbour k-1 of the observation

The observation is a dict::

    "observations"  float32 (N+1, 56): row 0 = current cell encoding, rows 1..N = neighbours,
                    zero rows for padding (encoding: rachel.core.nasbench.space)
    "action_mask"   int8 (N+1,): 1 = valid action (row 0, terminate, is always valid)

Choices where the paper is ambiguous (documented here, tested in tests/nasbench):

* **Neighbour subsample.** When a cell has more than ``N`` neighbours, ``N`` of them are drawn
  uniformly without replacement from the environment's generator at every observation (reset and
  every step), and shown in id order.  With ``N`` or fewer all are shown, in id order.
* **Reward.** ``r_t = exp(alpha * acc_t) - exp(alpha * acc_{t-1})`` (section 3.2.2, alpha = 6);
  ``alpha=None`` is the "no shaping" setting of the section 5.3 ablation (``acc_t - acc_{t-1}``).
  The paper's "for the first timestep, since there is no previous architecture, the reward is 0"
  is the timestep that *produces* the initial state: in Gymnasium that is ``reset()``, which
  carries no reward.  Hence every ``step()`` (the first included) returns the difference between
  the new and the previous cell, and the return of an episode telescopes to
  ``exp(alpha*acc_final) - exp(alpha*acc_initial)``.  ``zero_first_step=True`` gives the
  literal alternative (the first ``step()`` returns 0).
* **Episode length.** ``episode_length`` steps (16 for training, 32 for evaluation), then the
  episode is truncated; the terminate action ends it earlier (``terminated``).
* **Masked actions.** Choosing a masked action is treated as terminate and flagged in
  ``info["invalid_action"]`` (``strict=True`` raises instead).
* **Initial states** come from the quasi-uniform sampler of section 3.2.3 (uniform number of
  vertices, then rejection sampling), drawn exactly from its per-cell probabilities
  (``CellIndex.sampler_cdf``); in ``real_subset`` mode conditioned on cells with a known
  accuracy.  ``reset(options={"initial_ids": ids})`` queues fixed initial states instead.
* **Modes.** ``"tabular"``: all neighbours are shown; moving to (or starting in) a cell whose
  accuracy is NaN raises :class:`MissingMetricsError`.  ``"real_subset"``: neighbours and
  initial states are restricted to cells with known accuracy.  A surrogate source has no NaN,
  so both modes coincide for it.
* **Decide / report.**  Rewards use ``accuracy`` (validation).  ``report`` (default: the same
  array) is the accuracy a search is *reported* on (the paper reports NAS-Bench-101 test
  accuracy); the info carries both.
* **Episode bookkeeping.**  ``info["initial_cell_id"]`` is each env's episode's initial cell and
  ``info["episode_ordinal"]`` the running number of that episode across all envs (episodes are
  numbered in the order they start, envs in index order within a step), so the k-th id queued
  with ``initial_ids`` is episode ``k`` of the queue: evaluation keeps the (set, initial state)
  pairing.  Seeding or queueing initial states (when none is queued) restarts the numbering
  at 0.  The final info of an ended episode has ``final_initial_cell_id`` and
  ``final_episode_ordinal``.
* **Queries**: distinct cells whose accuracy was read (initial and visited cells; neighbours
  shown to the agent are not queried), counted per environment across episodes.

The vector environment uses Gymnasium's ``SAME_STEP`` autoreset: when an episode ends, the
returned observation is already the next episode's first one and the final one is in
``info["final_obs"]`` (rows where ``info["_final_obs"]`` is True; ``info["final_obs_ids"]``
gives the ids behind it, see :meth:`IncrementalCore.observation_ids`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rachel.core.errors import ConfigError, MissingMetricsError, NasBenchError
from rachel.core.nasbench.index import CellIndex
from rachel.core.nasbench.space import ENCODING_SIZE

MODES = ("tabular", "real_subset")
TRAIN_EPISODE_LENGTH = 16
EVAL_EPISODE_LENGTH = 32
ALPHA_NASBENCH101 = 6.0


@runtime_checkable
class AccuracySource(Protocol):
    """Anything that maps module hashes to accuracies (float64, NaN where unknown)."""

    def accuracy_array(self, hashes: np.ndarray) -> np.ndarray: ...


def accuracy_for_index(index: CellIndex, source: AccuracySource | np.ndarray) -> np.ndarray:
    """The accuracy array aligned with ``index`` ids (float64, NaN = unknown)."""
    if isinstance(source, np.ndarray):
        acc = np.asarray(source, dtype=np.float64)
    elif isinstance(source, AccuracySource):
        acc = np.asarray(source.accuracy_array(index.hashes), dtype=np.float64)
    else:
        raise ConfigError(
            f"{type(source).__name__} is not an accuracy source",
            "pass an object with accuracy_array(hashes) or a float array",
        )
    if acc.shape != (len(index),):
        raise ConfigError(
            f"accuracy array has shape {acc.shape}, expected ({len(index)},)",
            "align it with the CellIndex ids",
        )
    return acc


def restrict_csr(
    indptr: np.ndarray, indices: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the neighbours whose ``keep`` flag is False (CSR in, CSR out, int32)."""
    n = len(indptr) - 1
    src = np.repeat(np.arange(n), np.diff(indptr))
    ok = keep[indices]
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src[ok], minlength=n), out=new_indptr[1:])
    return new_indptr.astype(np.int32), indices[ok].astype(np.int32)


class IncrementalCore:
    """Batched state and transition logic shared by the single and the vector environment."""

    def __init__(
        self,
        index: CellIndex,
        accuracy: AccuracySource | np.ndarray,
        num_envs: int = 1,
        max_neighbours: int = 50,
        episode_length: int = TRAIN_EPISODE_LENGTH,
        alpha: float | None = ALPHA_NASBENCH101,
        mode: str = "tabular",
        zero_first_step: bool = False,
        strict: bool = False,
        vertex_range: tuple[int, int] = (2, 7),
        seed: int | None = None,
        report: AccuracySource | np.ndarray | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}", f"use one of {MODES}")
        for name, value in (
            ("num_envs", num_envs),
            ("max_neighbours", max_neighbours),
            ("episode_length", episode_length),
        ):
            if int(value) < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}", f"set {name} >= 1")
        self.index = index
        self.acc = accuracy_for_index(index, accuracy)
        self.known = ~np.isnan(self.acc)
        self.mode = mode
        self.num_envs = int(num_envs)
        self.n = int(max_neighbours)
        self.episode_length = int(episode_length)
        self.alpha = None if alpha is None else float(alpha)
        self.report = self.acc if report is None else accuracy_for_index(index, report)
        self.zero_first_step = zero_first_step
        self.strict = strict
        self.vertex_range = vertex_range
        if mode == "real_subset":
            if not self.known.any():
                raise MissingMetricsError(
                    "no cell has a known accuracy", "use an accuracy source with metrics"
                )
            self.indptr, self.indices = restrict_csr(index.indptr, index.indices, self.known)
        else:
            self.indptr, self.indices = index.indptr, index.indices
        # NaN stays NaN; alpha=None: no shaping
        self.shaped = self.acc if self.alpha is None else np.exp(self.alpha * self.acc)
        # uint8 encodings plus one zero row at the end: id -1 selects padding
        self.enc = np.vstack([index.encodings, np.zeros((1, ENCODING_SIZE), np.uint8)])
        self.rng = np.random.default_rng(seed)
        b = self.num_envs
        self.cur = np.zeros(b, dtype=np.int64)
        self.start = np.zeros(b, dtype=np.int64)
        self.t = np.zeros(b, dtype=np.int64)
        self.prev = np.zeros(b, dtype=np.float64)
        self.shown = np.full((b, self.n), -1, dtype=np.int64)
        self.queried: list[set[int]] = [set() for _ in range(b)]
        self.ordinal = np.full(b, -1, dtype=np.int64)
        self.episodes_started = 0
        self._queue = np.zeros(0, dtype=np.int64)
        self.ready = np.zeros(b, dtype=bool)
        self._cdf = index.sampler_cdf(self.known if mode == "real_subset" else None, vertex_range)

    # ------------------------------------------------------------------ helpers
    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)
        self._queue = np.zeros(0, dtype=np.int64)
        self.episodes_started = 0

    def queue_initial(self, ids: np.ndarray) -> None:
        """Use these ids (in order) as the next initial states before sampling new ones."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if not self._queue.size:
            self.episodes_started = 0  # a queued set of initial states is numbered from 0
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.index)):
            raise NasBenchError("initial id out of range", f"use ids in 0..{len(self.index) - 1}")
        if self.mode == "real_subset" and ids.size and not self.known[ids].all():
            raise MissingMetricsError(
                "an initial id has no known accuracy (real_subset mode)",
                "pick initial cells with known accuracy",
            )
        self._queue = np.concatenate([ids, self._queue])

    def _take_initial(self, k: int) -> np.ndarray:
        out, self._queue = self._queue[:k], self._queue[k:]
        if out.size < k:
            extra = self.index.sample_ids(self.rng, k - out.size, cdf=self._cdf)
            out = np.concatenate([out, extra])
        return out

    def _check_known(self, ids: np.ndarray) -> None:
        bad = np.isnan(self.acc[ids])
        if bad.any():
            cid = int(ids[np.argmax(bad)])
            raise MissingMetricsError(
                f"cell {self.index.hash_of(cid)} (id {cid}) has no accuracy in the table",
                "use mode='real_subset' or a surrogate accuracy source",
            )

    def _query(self, envs: np.ndarray, ids: np.ndarray) -> None:
        q = self.queried
        for e, i in zip(envs.tolist(), ids.tolist(), strict=True):
            q[e].add(i)

    def reset_envs(self, envs: np.ndarray) -> None:
        ids = self._take_initial(len(envs))
        self._check_known(ids)
        self.cur[envs] = ids
        self.start[envs] = ids
        self.ordinal[envs] = self.episodes_started + np.arange(len(envs))
        self.episodes_started += len(envs)
        self.t[envs] = 0
        self.prev[envs] = self.shaped[ids]
        self._query(envs, ids)
        self.ready[envs] = True

    def refresh_shown(self, envs: np.ndarray | None = None) -> None:
        """Draw the shown neighbours of the current cell of ``envs`` (default: all)."""
        cur = self.cur if envs is None else self.cur[envs]
        lo = self.indptr[cur].astype(np.int64)
        deg = self.indptr[cur + 1].astype(np.int64) - lo
        n = self.n
        pos = np.broadcast_to(np.arange(n), (len(cur), n)).copy()
        big = np.flatnonzero(deg > n)
        if big.size:
            width = int(deg[big].max())
            keys = self.rng.random((big.size, width))
            keys[np.arange(width)[None, :] >= deg[big][:, None]] = 2.0
            pick = np.argpartition(keys, n - 1, axis=1)[:, :n]
            pos[big] = np.sort(pick, axis=1)
        valid = pos < deg[:, None]
        flat = np.where(valid, lo[:, None] + pos, 0)
        shown = np.where(valid, self.indices[flat], -1)
        if envs is None:
            self.shown = shown
        else:
            self.shown[envs] = shown

    def observation_ids(self, envs: np.ndarray | None = None) -> np.ndarray:
        """``(B, N+1)`` int64 ids behind the observation: current cell, then the shown
        neighbours, -1 for padding (``observation`` is ``encodings[ids]``, mask ``ids >= 0``)."""
        cur, shown = (self.cur, self.shown) if envs is None else (self.cur[envs], self.shown[envs])
        return np.concatenate([cur[:, None], shown], axis=1)

    def observation(self, envs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        cur, shown = (self.cur, self.shown) if envs is None else (self.cur[envs], self.shown[envs])
        ids = np.concatenate([cur[:, None], shown], axis=1)
        obs = self.enc[ids].astype(np.float32)
        mask = np.empty((len(cur), self.n + 1), dtype=np.int8)
        mask[:, 0] = 1
        mask[:, 1:] = shown >= 0
        return {"observations": obs, "action_mask": mask}

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Apply one action per env; returns rewards/terminated/truncated and bookkeeping."""
        if not self.ready.all():
            raise NasBenchError("step() before reset()", "call reset() first")
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        rows = np.arange(self.num_envs)
        in_range = (a >= 0) & (a <= self.n)
        target = np.where(in_range & (a > 0), self.shown[rows, np.clip(a - 1, 0, self.n - 1)], -1)
        move = target >= 0
        invalid = ~in_range | ((a > 0) & ~move)
        if self.strict and invalid.any():
            raise NasBenchError(
                f"masked or out-of-range action {a[invalid][0]}",
                "pick an action whose action_mask entry is 1",
            )
        movers = np.flatnonzero(move)
        new_ids = target[movers]
        self._check_known(new_ids)
        reward = np.zeros(self.num_envs, dtype=np.float64)
        new_shaped = self.shaped[new_ids]
        reward[movers] = new_shaped - self.prev[movers]
        if self.zero_first_step:
            reward[self.t == 0] = 0.0
        self.prev[movers] = new_shaped
        self.cur[movers] = new_ids
        self._query(movers, new_ids)
        self.t += 1
        terminated = ~move
        truncated = move & (self.t >= self.episode_length)
        return {
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "invalid_action": invalid,
        }

    def queries(self) -> np.ndarray:
        return np.array([len(q) for q in self.queried], dtype=np.int64)

    def info(self) -> dict[str, Any]:
        return {
            "cell_id": self.cur.copy(),
            "accuracy": self.acc[self.cur],
            "initial_accuracy": self.acc[self.start],
            "report_accuracy": self.report[self.cur],
            "initial_cell_id": self.start.copy(),
            "episode_ordinal": self.ordinal.copy(),
            "step": self.t.copy(),
            "queries": self.queries(),
        }


def _spaces(n: int) -> tuple[spaces.Dict, spaces.Discrete]:
    obs = spaces.Dict(
        {
            "observations": spaces.Box(0.0, 1.0, shape=(n + 1, ENCODING_SIZE), dtype=np.float32),
            "action_mask": spaces.MultiBinary(n + 1),
        }
    )
    return obs, spaces.Discrete(n + 1)


class NasBenchEnv(gym.Env):
    """One incremental NAS-Bench environment (Gymnasium API); see the module docstring."""

    metadata = {"render_modes": []}

    def __init__(
        self, index: CellIndex, accuracy: AccuracySource | np.ndarray, **kwargs: Any
    ) -> None:
        kwargs.pop("num_envs", None)
        self.core = IncrementalCore(index, accuracy, num_envs=1, **kwargs)
        self.observation_space, self.action_space = _spaces(self.core.n)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        if options and "initial_ids" in options:
            self.core.queue_initial(np.atleast_1d(options["initial_ids"]))
        self.core.reset_envs(np.array([0]))
        self.core.refresh_shown()
        return self._obs(), self._info()

    def step(self, action: Any):
        out = self.core.step(np.array([action]))
        if not (out["terminated"][0] or out["truncated"][0]):
            self.core.refresh_shown()
        else:
            self.core.ready[0] = False
        info = self._info()
        info["invalid_action"] = bool(out["invalid_action"][0])
        return (
            self._obs(),
            float(out["reward"][0]),
            bool(out["terminated"][0]),
            bool(out["truncated"][0]),
            info,
        )

    def _obs(self) -> dict[str, np.ndarray]:
        o = self.core.observation()
        return {"observations": o["observations"][0], "action_mask": o["action_mask"][0]}

    def _info(self) -> dict[str, Any]:
        return {k: v[0].item() for k, v in self.core.info().items()}

    @property
    def queries(self) -> int:
        return int(self.core.queries()[0])


class NasBenchVectorEnv(VectorEnv):
    """``num_envs`` incremental environments stepped together with numpy (SAME_STEP autoreset)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        index: CellIndex,
        accuracy: AccuracySource | np.ndarray,
        num_envs: int = 32,
        **kwargs: Any,
    ) -> None:
        self.core = IncrementalCore(index, accuracy, num_envs=num_envs, **kwargs)
        self.num_envs = self.core.num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.core.n)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.core.seed(seed if isinstance(seed, int) else int(seed[0]))
        if options and "initial_ids" in options:
            self.core.queue_initial(np.asarray(options["initial_ids"]))
        self.core.reset_envs(np.arange(self.num_envs))
        self.core.refresh_shown()
        return self.core.observation(), self.core.info()

    def step(self, actions: Any):
        core = self.core
        out = core.step(actions)
        done = out["terminated"] | out["truncated"]
        final: dict[str, Any] = {}
        core.refresh_shown()
        if done.any():
            ended = np.flatnonzero(done)
            final["final_obs"] = core.observation(ended)
            final["final_obs_ids"] = core.observation_ids(ended)
            final["_final_obs"] = done
            final["final_env_index"] = ended
            final["final_cell_id"] = core.cur[ended].copy()
            final["final_accuracy"] = core.acc[core.cur[ended]]
            final["final_initial_accuracy"] = core.acc[core.start[ended]]
            final["final_queries"] = core.queries()[ended]
            final["final_report_accuracy"] = core.report[core.cur[ended]]
            final["final_initial_cell_id"] = core.start[ended].copy()
            final["final_episode_ordinal"] = core.ordinal[ended].copy()
            core.reset_envs(ended)
            core.refresh_shown(ended)
        info = core.info()
        info["invalid_action"] = out["invalid_action"]
        info.update(final)
        return core.observation(), out["reward"], out["terminated"], out["truncated"], info

    @property
    def queries(self) -> np.ndarray:
        return self.core.queries()
