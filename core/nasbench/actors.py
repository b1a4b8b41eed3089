"""Ape-X actors: vectorised NAS-Bench environments stepped with ε-greedy Q-values.

An :class:`ActorGroup` holds one or more actors; actor ``i`` has ``envs_per_actor``
environments and its own ε_i (:meth:`AgentConfig.epsilons`).  All actors of a group are
stepped together with ONE batched forward pass of the Q-network, and each produces n-step
transitions (:class:`~rachel.core.nasbench.replay.NStepAccumulator`) as cell ids.

Groups run inside the learner's process (``actor_processes = 0``) or each in its own process
(:func:`actor_process_main`, started with the ``spawn`` method so that no TensorFlow state is
forked); the process loads the cell index and the reward accuracies from files, builds its own
copy of the network, takes the newest weights the learner broadcast, and sends transition
batches back.  Each process is limited to one compute thread (the machine's cores are shared
by the actors and the learner).

Seeds: actor ``i`` of a run seeded ``s`` steps environments seeded ``[s, 1, i]`` and draws
its ε-choices from ``default_rng([s, 2, i])``.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rachel.core.nasbench.agent import AgentConfig, epsilon_greedy, observation_from_ids
from rachel.core.nasbench.environment import NasBenchVectorEnv
from rachel.core.nasbench.index import CellIndex
from rachel.core.nasbench.replay import Batch, NStepAccumulator

QFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ActorGroup:
    """Actors ``actor_ids`` (each with its vector env, ε and n-step accumulator)."""

    def __init__(
        self,
        config: AgentConfig,
        index: CellIndex,
        accuracy: np.ndarray,
        actor_ids: Sequence[int],
        vertex_range: tuple[int, int] = (2, 7),
    ) -> None:
        self.config = config
        self.encodings = index.encodings
        self.actor_ids = list(actor_ids)
        eps = config.epsilons()
        self.envs: list[NasBenchVectorEnv] = []
        self.nstep: list[NStepAccumulator] = []
        self.rngs: list[np.random.Generator] = []
        self.eps: list[float] = []
        for i in self.actor_ids:
            env = NasBenchVectorEnv(
                index,
                accuracy,
                num_envs=config.envs_per_actor,
                max_neighbours=config.max_neighbours,
                episode_length=config.episode_length,
                alpha=config.shaping,
                vertex_range=vertex_range,
            )
            env.reset(seed=int(np.random.SeedSequence([config.seed, 1, i]).generate_state(1)[0]))
            self.envs.append(env)
            self.nstep.append(NStepAccumulator(config.envs_per_actor, config.n_step, config.gamma))
            self.rngs.append(np.random.default_rng([config.seed, 2, i]))
            self.eps.append(float(eps[i]))
        self.env_steps = 0
        self.episodes = 0
        self.recent_improvement: list[float] = []
        self.recent_greedy_improvement: list[float] = []

    def step(self, q_fn: QFunction) -> Batch | None:
        """One step of every env of every actor; returns the transitions that completed."""
        ids = [env.core.observation_ids() for env in self.envs]
        obs, mask = observation_from_ids(self.encodings, np.concatenate(ids))
        q = q_fn(obs, mask)
        out: list[Batch] = []
        b = self.config.envs_per_actor
        for k, env in enumerate(self.envs):
            rows = slice(k * b, (k + 1) * b)
            actions = epsilon_greedy(q[rows], mask[rows], self.eps[k], self.rngs[k])
            _, rewards, term, trunc, info = env.step(actions)
            final: dict[int, np.ndarray] = {}
            if "final_obs_ids" in info:
                ended = info["final_env_index"]
                for j, e in enumerate(ended.tolist()):
                    final[e] = info["final_obs_ids"][j]
                gain = (info["final_accuracy"] - info["final_initial_accuracy"]).tolist()
                self.recent_improvement = (self.recent_improvement + gain)[-2000:]
                if self.actor_ids[k] == self.config.num_actors - 1:  # the lowest ε
                    self.recent_greedy_improvement = (self.recent_greedy_improvement + gain)[-500:]
                self.episodes += len(ended)
            batch = self.nstep[k].step(
                ids[k], actions, rewards, env.core.observation_ids(), term, trunc, final
            )
            if batch is not None:
                out.append(batch)
        self.env_steps += b * len(self.envs)
        return Batch.concat(out) if out else None

    def stats(self) -> dict[str, float]:
        def mean(x: list[float]) -> float:
            return float(np.mean(x)) if x else float("nan")

        return {
            "episodes": self.episodes,
            "train_improvement": mean(self.recent_improvement),
            "lowest_eps_improvement": mean(self.recent_greedy_improvement),
        }


def limit_threads() -> None:
    """One compute thread for this process (call before importing the Keras backend)."""
    for var in (
        "OMP_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    ):
        os.environ[var] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (
            flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()


def actor_process_main(
    config_json: str,
    group_index: int,
    actor_ids: list[int],
    index_path: str,
    accuracy_path: str,
    vertex_range: tuple[int, int],
    backend: str,
    weights_queue: Any,
    out_queue: Any,
    stop: Any,
    send_every: int = 4,
) -> None:
    """Entry point of an actor process (see the module docstring)."""
    limit_threads()
    os.environ["KERAS_BACKEND"] = backend
    from rachel.core.nasbench.agent import build_q_network

    config = AgentConfig.from_json(config_json)
    index = CellIndex.load(index_path)
    accuracy = np.load(accuracy_path)
    group = ActorGroup(config, index, accuracy, actor_ids, vertex_range)
    net = build_q_network(config)
    weights = weights_queue.get()  # the learner's initial weights
    net.set_weights(weights)

    def q_fn(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(net.predict_on_batch([obs, mask]))

    pending: list[Batch] = []
    steps_since = 0
    while not stop.is_set():
        try:
            while True:
                weights = weights_queue.get_nowait()
                net.set_weights(weights)
        except queue.Empty:
            pass
        batch = group.step(q_fn)
        steps_since += config.envs_per_actor * len(actor_ids)
        if batch is not None:
            pending.append(batch)
        if len(pending) >= send_every:
            _send(out_queue, stop, (group_index, Batch.concat(pending), steps_since, group.stats()))
            pending, steps_since = [], 0
    out_queue.cancel_join_thread()


def _send(out_queue: Any, stop: Any, item: Any) -> None:
    while not stop.is_set():
        try:
            out_queue.put(item, timeout=0.5)
            return
        except queue.Full:
            time.sleep(0.01)
