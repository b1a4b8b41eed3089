"""Prioritised experience replay (Schaul et al. 2016) and n-step transitions with partial
episode bootstrapping, for the Ape-X learner.  Pure numpy; no TensorFlow.

Transitions are stored as cell ids, not encodings (``obs_ids`` / ``next_ids``: ``(N+1,)``
int32, -1 = padding; see :meth:`IncrementalCore.observation_ids`), about 0.4 KB each instead of
5.7 KB, so actors in other processes ship them cheaply and 25,000 fit in 10 MB.

* :class:`PrioritizedReplay`: a ring buffer with a sum tree.  Sampling is proportional to
  ``p_i^alpha``; importance weights ``(N * P(i))^-beta`` normalised by their batch maximum
  (as RLlib).  New transitions get the largest priority seen so far (Schaul et al.; Ape-X
  actors compute initial priorities themselves, which costs an extra forward pass per step
  on this 2-core machine, so we keep the simpler rule).  Beta is constant (0.4, the paper's
  setting, no annealing).
* :class:`NStepAccumulator`: per environment, the last ``n`` (ids, action, reward) and emits
  ``(ids_t, a_t, R_t = sum_k gamma^k r_{t+k}, discount, ids_{t+n})``.  Partial episode
  bootstrapping (Pardo et al. 2018): when an episode is *truncated* (time limit), every pending
  transition bootstraps from the final observation with ``gamma^k`` (k = steps it covers);
  when it is *terminated* (the terminate action), the discount is 0 (no bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rachel.core.errors import ConfigError


@dataclass
class Batch:
    """A batch of n-step transitions (numpy)."""

    obs_ids: np.ndarray  # (B, T) int32
    actions: np.ndarray  # (B,) int64
    returns: np.ndarray  # (B,) float32
    discounts: np.ndarray  # (B,) float32: gamma^k, 0 when terminated
    next_ids: np.ndarray  # (B, T) int32

    def __len__(self) -> int:
        return len(self.actions)

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        return Batch(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("obs_ids", "actions", "returns", "discounts", "next_ids")
            )
        )


class PrioritizedReplay:
    """Proportional prioritised replay with a sum tree (see the module docstring)."""

    def __init__(
        self,
        capacity: int,
        tokens: int,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        seed: int = 0,
    ) -> None:
        if capacity < 1 or tokens < 1:
            raise ConfigError("replay capacity and tokens must be >= 1", "use e.g. 25000")
        self.capacity = int(capacity)
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.size = 0
        self.pos = 0
        self.added = 0
        self.max_priority = 1.0
        size = 1
        while size < self.capacity:
            size *= 2
        self._leaves = size
        self.tree = np.zeros(2 * size, dtype=np.float64)
        self.obs_ids = np.full((capacity, tokens), -1, dtype=np.int32)
        self.next_ids = np.full((capacity, tokens), -1, dtype=np.int32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def _set(self, idx: np.ndarray, values: np.ndarray) -> None:
        node = np.asarray(idx, dtype=np.int64) + self._leaves
        self.tree[node] = values
        node = np.unique(node // 2)
        while node.size and node[0] >= 1:
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    def add(self, batch: Batch) -> None:
        n = len(batch)
        if n == 0:
            return
        if n > self.capacity:
            batch = Batch(
                *(
                    getattr(batch, f)[-self.capacity :]
                    for f in ("obs_ids", "actions", "returns", "discounts", "next_ids")
                )
            )
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs_ids[idx] = batch.obs_ids
        self.next_ids[idx] = batch.next_ids
        self.actions[idx] = batch.actions
        self.returns[idx] = batch.returns
        self.discounts[idx] = batch.discounts
        self._set(idx, np.full(n, self.max_priority**self.alpha))
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        self.added += n

    def _find(self, values: np.ndarray) -> np.ndarray:
        node = np.ones(len(values), dtype=np.int64)
        v = values.copy()
        while node[0] < self._leaves:
            left = 2 * node
            go_right = v > self.tree[left]
            v = np.where(go_right, v - self.tree[left], v)
            node = np.where(go_right, left + 1, left)
        return np.minimum(node - self._leaves, self.size - 1)

    def sample(self, batch_size: int) -> tuple[Batch, np.ndarray, np.ndarray]:
        """``(batch, indices, importance weights)``; stratified over the priority mass."""
        if self.size == 0:
            raise ConfigError("sampling from an empty replay buffer", "add transitions first")
        total = self.tree[1]
        bounds = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        idx = self._find(np.minimum(bounds, np.nextafter(total, 0)))
        probs = self.tree[idx + self._leaves] / total
        weights = (self.size * probs) ** (-self.beta)
        weights = (weights / weights.max()).astype(np.float32)
        batch = Batch(
            self.obs_ids[idx],
            self.actions[idx],
            self.returns[idx],
            self.discounts[idx],
            self.next_ids[idx],
        )
        return batch, idx, weights

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        p = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(p.max()))
        self._set(idx, p**self.alpha)


class NStepAccumulator:
    """n-step returns with partial episode bootstrapping for ``num_envs`` environments."""

    def __init__(self, num_envs: int, n: int, gamma: float) -> None:
        self.num_envs, self.n, self.gamma = int(num_envs), int(n), float(gamma)
        self.pending: list[list[tuple[np.ndarray, int, float]]] = [[] for _ in range(num_envs)]

    def _emit(
        self,
        items: list[tuple[np.ndarray, int, float]],
        next_ids: np.ndarray,
        bootstrap: bool,
        out: list[tuple],
    ) -> None:
        ret = 0.0
        for k, (_, _, r) in enumerate(items):
            ret += (self.gamma**k) * r
        disc = self.gamma ** len(items) if bootstrap else 0.0
        out.append((items[0][0], items[0][1], ret, disc, next_ids))

    def step(
        self,
        obs_ids: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_ids: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        final_ids: dict[int, np.ndarray],
    ) -> Batch | None:
        """Record one vector step; ``next_ids`` are the returned observation's ids and
        ``final_ids[e]`` the final observation's ids of the envs that ended (autoreset)."""
        out: list[tuple] = []
        for e in range(self.num_envs):
            buf = self.pending[e]
            buf.append((obs_ids[e], int(actions[e]), float(rewards[e])))
            if terminated[e] or truncated[e]:
                last = final_ids[e]
                while buf:  # flush: each pending start gets its (partial) return
                    self._emit(buf, last, bool(truncated[e]) and not terminated[e], out)
                    buf.pop(0)
            elif len(buf) == self.n:
                self._emit(buf, next_ids[e], True, out)
                buf.pop(0)
        if not out:
            return None
        return Batch(
            np.stack([o[0] for o in out]).astype(np.int32),
            np.array([o[1] for o in out], dtype=np.int64),
            np.array([o[2] for o in out], dtype=np.float32),
            np.array([o[3] for o in out], dtype=np.float32),
            np.stack([o[4] for o in out]).astype(np.int32),
        )
