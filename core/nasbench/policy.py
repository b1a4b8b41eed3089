"""A trained search agent: its config and weights as an artifact, and the searcher that runs it.

Artifact layout (a folder, local or ``gs://``; every file written atomically)::

    agent.json     {"format", "config": AgentConfig, "meta": {...}}  (meta: training stats,
                   the surrogate fingerprint the agent was trained against, the Keras backend)
    weights.npz    the Q-network's weights, ``w000 .. wNNN`` in ``model.get_weights()`` order

The weights are plain numpy arrays, so an agent trained on the TensorFlow backend loads on JAX
or PyTorch (the layer order is fixed by :func:`agent.build_q_network`).

:class:`AgentSearcher` is an evaluation-protocol searcher with ``run_batch``: it steps a
vector environment (32-step episodes) over a whole set of initial states at once, follows the
greedy policy (``eval_epsilon`` > 0 adds ε-random valid moves), and maps episodes back to
their initial states with the environment's ``episode_ordinal``.  Its trace queries the cells
it visits (distinct, in order); the protocol charges it one query per episode (its final
architecture), as the paper does for Ape-X.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ArtifactError
from rachel.core.nasbench.agent import (
    AgentConfig,
    build_q_network,
    epsilon_greedy,
    observation_from_ids,
)
from rachel.core.nasbench.baselines import SearchTrace
from rachel.core.nasbench.environment import EVAL_EPISODE_LENGTH, NasBenchVectorEnv
from rachel.core.nasbench.index import CellIndex

AGENT_FORMAT = "rachel-nasbench-agent-v1"


def weights_to_bytes(weights: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    arrays: dict[str, Any] = {f"w{i:03d}": np.asarray(w) for i, w in enumerate(weights)}
    np.savez(buf, **arrays)
    return buf.getvalue()


def weights_from_bytes(data: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return [z[k] for k in sorted(z.files)]


@dataclass
class TrainedAgent:
    """Config + weights (+ metadata); builds its Q-network lazily."""

    config: AgentConfig
    weights: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    _net: Any = None

    @property
    def network(self) -> Any:
        if self._net is None:
            self._net = build_q_network(self.config)
            try:
                self._net.set_weights(self.weights)
            except ValueError as err:
                raise ArtifactError(
                    f"the weights do not fit the configured network ({err})",
                    "load the agent.json saved with these weights",
                ) from err
        return self._net

    def q_values(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.network.predict_on_batch([obs, mask]))

    def save(self, uri: str | os.PathLike[str]) -> str:
        uri = str(uri)
        storage.write_bytes(storage.join(uri, "weights.npz"), weights_to_bytes(self.weights))
        storage.write_json(
            storage.join(uri, "agent.json"),
            {"format": AGENT_FORMAT, "config": self.config.to_json(), "meta": self.meta},
        )
        return uri

    @classmethod
    def load(cls, uri: str | os.PathLike[str]) -> TrainedAgent:
        uri = str(uri)
        try:
            doc = storage.read_json(storage.join(uri, "agent.json"))
            weights = weights_from_bytes(storage.read_bytes(storage.join(uri, "weights.npz")))
        except (OSError, ValueError, KeyError) as err:
            raise ArtifactError(
                f"{uri} is not a saved agent ({err})",
                "pass the folder written by 'rachel nasbench train-agent'",
            ) from err
        if not isinstance(doc, dict) or doc.get("format") != AGENT_FORMAT:
            raise ArtifactError(
                f"{uri}/agent.json is not a {AGENT_FORMAT} file",
                "pass the folder written by 'rachel nasbench train-agent'",
            )
        return cls(AgentConfig.from_json(doc["config"]), weights, dict(doc.get("meta") or {}))


class AgentSearcher:
    """Runs a trained agent over sets of initial states (see the module docstring)."""

    def __init__(
        self,
        agent: TrainedAgent,
        index: CellIndex,
        accuracy: np.ndarray,
        report: np.ndarray | None = None,
        *,
        vertex_range: tuple[int, int] = (2, 7),
        episode_length: int = EVAL_EPISODE_LENGTH,
        num_envs: int = 256,
        epsilon: float | None = None,
    ) -> None:
        self.agent = agent
        self.index = index
        self.accuracy = np.asarray(accuracy, dtype=np.float64)
        self.report = self.accuracy if report is None else np.asarray(report, np.float64)
        self.vertex_range = vertex_range
        self.episode_length = int(episode_length)
        self.num_envs = int(num_envs)
        self.epsilon = agent.config.eval_epsilon if epsilon is None else float(epsilon)
        self.env_steps = 0
        self.seconds = 0.0

    def run_batch(self, states: list[int], set_index: int, seed: int) -> list[SearchTrace]:
        import time

        start = time.perf_counter()
        ids = np.asarray(states, dtype=np.int64)
        n = len(ids)
        b = max(1, min(self.num_envs, n))
        env = NasBenchVectorEnv(
            self.index,
            self.accuracy,
            num_envs=b,
            max_neighbours=self.agent.config.max_neighbours,
            episode_length=self.episode_length,
            alpha=self.agent.config.shaping,
            vertex_range=self.vertex_range,
        )
        env.reset(
            seed=int(np.random.SeedSequence([seed, 7, set_index]).generate_state(1)[0]),
            options={"initial_ids": ids},
        )
        rng = np.random.default_rng([seed, 8, set_index])
        core = env.core
        visits: list[list[int]] = [[int(c)] for c in core.cur]
        ordinal = core.ordinal.copy()
        finals: dict[int, tuple[list[int], int]] = {}
        while len(finals) < n:
            obs, mask = observation_from_ids(self.index.encodings, core.observation_ids())
            q = self.agent.q_values(obs, mask)
            actions = epsilon_greedy(q, mask, self.epsilon, rng)
            _, _, term, trunc, info = env.step(actions)
            self.env_steps += b
            done = term | trunc
            ended = {int(e): j for j, e in enumerate(info.get("final_env_index", []))}
            for e in range(b):
                if done[e]:
                    j = ended[e]
                    final = int(info["final_cell_id"][j])
                    path = visits[e] + ([final] if trunc[e] else [])
                    if ordinal[e] < n:
                        finals[int(ordinal[e])] = (path, final)
                    visits[e] = [int(core.cur[e])]
                    ordinal[e] = core.ordinal[e]
                else:
                    visits[e].append(int(core.cur[e]))
        traces = []
        for k in range(n):
            path, final = finals[k]
            seen = list(dict.fromkeys(path))
            q_ids = np.array(seen, dtype=np.int64)
            traces.append(
                SearchTrace(
                    self.accuracy[q_ids],
                    float(self.accuracy[ids[k]]),
                    float(self.accuracy[final]),
                    self.report[q_ids],
                    float(self.report[ids[k]]),
                    float(self.report[final]),
                )
            )
        self.seconds += time.perf_counter() - start
        return traces
