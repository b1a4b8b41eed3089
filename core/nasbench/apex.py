"""Ape-X training of the search agent (Horgan et al. 2018, as used in section 4.1.1).

One learner, ``num_actors`` actors (:mod:`rachel.core.nasbench.actors`), one prioritised
replay (:mod:`rachel.core.nasbench.replay`).  Each learner update:

1. samples a batch by priority (α 0.6, importance weights with β 0.4);
2. computes the n-step double-Q target
   ``y = R + γ^k · Q_target(s', argmax_a' Q_online(s', a'))`` (argmax over valid actions;
   ``γ^k = 0`` on termination, bootstrap on truncation: partial episode bootstrapping);
3. takes one Adam step (lr 4e-5, gradient-norm clip) on the importance-weighted Huber loss of
   ``Q_online(s, a) - y`` through ``train_on_batch`` (so it runs on any Keras backend);
4. sets the sampled priorities to ``|y - Q_online(s, a)|`` (from the same forward pass);
5. every ``target_update_period`` updates copies the online weights to the target network,
   every ``weight_sync_period`` broadcasts them to the actors.

Actors either run inside the learner's loop (``actor_processes = 0``: per round every actor
steps once, then the learner makes ``updates_per_step`` updates per environment step), or in
``actor_processes`` processes that step as fast as they can while the learner trains as fast
as it can (Ape-X proper), except that the learner stops taking transitions while it is more
than ``updates_per_step`` updates per environment step behind, so the actors wait on the full
queue (back-pressure: the same replay ratio in both modes on a machine with few cores; the
ratio reached is reported as ``updates_per_env_step``).

Checkpoints (every ``checkpoint_period`` updates and at the end) are artifacts under
``<output>/checkpoints/``: ``ckpt-<updates>/`` with ``online.npz``, ``target.npz``,
``optimizer.npz`` and ``state.json`` (counters, history, elapsed time), then ``latest.json``
pointing at it, written last.  ``train(..., resume=True)`` continues from the latest one; the
replay buffer is not saved (it refills within ``learning_starts`` transitions; 25,000 ids-only
transitions are refilled in seconds).  The trained agent is written to ``<output>/agent/``
(:class:`rachel.core.nasbench.policy.TrainedAgent`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ArtifactError
from rachel.core.nasbench.actors import ActorGroup, actor_process_main
from rachel.core.nasbench.agent import (
    AgentConfig,
    build_q_network,
    masked_argmax,
    observation_from_ids,
)
from rachel.core.nasbench.index import CellIndex
from rachel.core.nasbench.policy import TrainedAgent, weights_from_bytes, weights_to_bytes
from rachel.core.nasbench.replay import Batch, PrioritizedReplay


class Learner:
    """Online and target Q-networks, the optimizer, and the double-Q update."""

    def __init__(self, config: AgentConfig, encodings: np.ndarray) -> None:
        import keras

        self.config = config
        self.encodings = encodings
        self.online = build_q_network(config, seed=config.seed)
        self.target = build_q_network(config, seed=config.seed, name="target_q_network")
        self.target.set_weights(self.online.get_weights())
        obs, mask = self.online.inputs
        tokens = config.max_neighbours + 1
        onehot = keras.Input((tokens,), name="action_onehot")
        q = self.online([obs, mask])
        q_sa = keras.ops.sum(keras.ops.where(onehot > 0, q, 0.0), axis=-1)
        self.train_model = keras.Model([obs, mask, onehot], q_sa, name="q_of_action")
        self.optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.grad_clip)
        self.train_model.compile(
            optimizer=self.optimizer, loss=keras.losses.Huber(delta=config.huber_delta)
        )
        # one forward call for everything the target needs (fewer per-call overheads):
        # Q_online(s), Q_online(s') and Q_target(s')
        nobs = keras.Input(obs.shape[1:], name="next_observations")
        nmask = keras.Input(mask.shape[1:], name="next_action_mask")
        self.target_model = keras.Model(
            [obs, mask, nobs, nmask],
            [q, self.online([nobs, nmask]), self.target([nobs, nmask])],
            name="td_inputs",
        )
        self.updates = 0
        self.last_loss = float("nan")

    def q_values(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.online.predict_on_batch([obs, mask]))

    def update(self, batch: Batch, weights: np.ndarray) -> np.ndarray:
        """One learner step on a sampled batch; returns the TD errors (new priorities)."""
        n = len(batch)
        obs, mask = observation_from_ids(self.encodings, batch.obs_ids)
        nobs, nmask = observation_from_ids(self.encodings, batch.next_ids)
        q_cur, q_next_online, q_next_target = (
            np.asarray(x) for x in self.target_model.predict_on_batch([obs, mask, nobs, nmask])
        )
        rows = np.arange(n)
        best_next = masked_argmax(q_next_online, nmask)  # double Q: the online net chooses
        q_next = q_next_target[rows, best_next]
        y = batch.returns + batch.discounts * np.where(batch.discounts > 0, q_next, 0.0)
        td = y - q_cur[rows, batch.actions]
        onehot = np.zeros_like(mask, dtype=np.float32)
        onehot[rows, batch.actions] = 1.0
        loss = self.train_model.train_on_batch(
            [obs, mask, onehot], y.astype(np.float32), sample_weight=weights
        )
        self.last_loss = float(np.asarray(loss).reshape(-1)[0])
        self.updates += 1
        if self.updates % self.config.target_update_period == 0:
            self.target.set_weights(self.online.get_weights())
        return td

    # ------------------------------------------------------------------ checkpoints
    def optimizer_state(self) -> list[np.ndarray]:
        import keras

        return [keras.ops.convert_to_numpy(v) for v in self.optimizer.variables]

    def restore(
        self, online: list[np.ndarray], target: list[np.ndarray], optimizer: list[np.ndarray]
    ) -> None:
        self.online.set_weights(online)
        self.target.set_weights(target)
        if optimizer:
            if not self.optimizer.built:
                self.optimizer.build(self.train_model.trainable_variables)
            if len(optimizer) != len(self.optimizer.variables):
                raise ArtifactError(
                    "the checkpoint's optimizer state does not fit",
                    "resume with the config the checkpoint was written with",
                )
            for var, value in zip(self.optimizer.variables, optimizer, strict=True):
                var.assign(value)


@dataclass
class TrainingResult:
    agent: TrainedAgent
    agent_uri: str
    state: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _latest(output: str) -> dict[str, Any] | None:
    uri = storage.join(output, "checkpoints", "latest.json")
    return storage.read_json(uri) if storage.exists(uri) else None


def _save_checkpoint(output: str, learner: Learner, state: dict[str, Any]) -> str:
    name = f"ckpt-{learner.updates:08d}"
    base = storage.join(output, "checkpoints", name)
    storage.write_bytes(
        storage.join(base, "online.npz"), weights_to_bytes(learner.online.get_weights())
    )
    storage.write_bytes(
        storage.join(base, "target.npz"), weights_to_bytes(learner.target.get_weights())
    )
    storage.write_bytes(
        storage.join(base, "optimizer.npz"), weights_to_bytes(learner.optimizer_state())
    )
    storage.write_json(storage.join(base, "state.json"), state)
    storage.write_json(
        storage.join(output, "checkpoints", "latest.json"),
        {"checkpoint": name, "updates": learner.updates, "env_steps": state["env_steps"]},
    )
    return base


def train(
    config: AgentConfig,
    index: CellIndex,
    accuracy: np.ndarray,
    output: str,
    *,
    vertex_range: tuple[int, int] = (2, 7),
    resume: bool = True,
    meta: dict[str, Any] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: int = 500,
) -> TrainingResult:
    """Train an agent on ``accuracy`` (aligned with ``index`` ids, no NaN: the full graph)
    and write checkpoints and the agent under ``output`` (local or ``gs://``)."""
    import keras

    accuracy = np.asarray(accuracy, dtype=np.float64)
    if np.isnan(accuracy).any():
        raise ArtifactError(
            "the training accuracy has unknown (NaN) cells",
            "train on the full graph with the surrogate (estimator auto)",
        )
    output = str(output)
    learner = Learner(config, index.encodings)
    replay = PrioritizedReplay(
        config.buffer_capacity,
        config.max_neighbours + 1,
        config.priority_alpha,
        config.priority_beta,
        config.priority_eps,
        seed=config.seed,
    )
    state: dict[str, Any] = {
        "env_steps": 0,
        "updates": 0,
        "episodes": 0,
        "seconds": 0.0,
        "history": [],
        "resumed_from": None,
    }
    latest = _latest(output) if resume else None
    if latest is not None:
        base = storage.join(output, "checkpoints", latest["checkpoint"])
        state = storage.read_json(storage.join(base, "state.json"))
        learner.restore(
            *(
                weights_from_bytes(storage.read_bytes(storage.join(base, f)))
                for f in ("online.npz", "target.npz", "optimizer.npz")
            )
        )
        learner.updates = int(state["updates"])
        state["resumed_from"] = latest["checkpoint"]
    started = time.perf_counter()
    seconds_before = float(state["seconds"])
    sample_rng = np.random.default_rng([config.seed, 3, int(state["updates"])])
    replay.rng = sample_rng
    groups_stats: list[dict[str, float]] = []
    last_progress = [learner.updates]

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - started

    def out_of_budget() -> bool:
        return state["env_steps"] >= config.total_env_steps or (
            config.max_seconds > 0 and elapsed() >= config.max_seconds
        )

    def learn() -> None:
        batch, idx, weights = replay.sample(config.batch_size)
        replay.update_priorities(idx, learner.update(batch, weights))
        if learner.updates % config.checkpoint_period == 0:
            checkpoint()
        if learner.updates - last_progress[0] >= progress_every:
            last_progress[0] = learner.updates
            record()

    def record() -> None:
        stats = _merge(groups_stats)
        state["episodes"] = stats.get("episodes", state["episodes"])
        entry = {
            "updates": learner.updates,
            "env_steps": int(state["env_steps"]),
            "seconds": round(elapsed(), 2),
            "loss": learner.last_loss,
            "replay": len(replay),
            **stats,
        }
        state["history"].append(entry)
        if on_progress:
            on_progress(entry)

    def checkpoint() -> None:
        state["updates"] = learner.updates
        state["seconds"] = elapsed()
        _save_checkpoint(output, learner, state)

    n_proc = min(config.actor_processes, config.num_actors)
    wall_start = time.perf_counter()
    steps_start = int(state["env_steps"])
    if n_proc == 0:
        group = ActorGroup(config, index, accuracy, range(config.num_actors), vertex_range)
        groups_stats = [group.stats()]
        owed = 0.0
        while not out_of_budget():
            batch = group.step(learner.q_values)
            state["env_steps"] += config.envs_per_actor * config.num_actors
            if batch is not None:
                replay.add(batch)
            groups_stats[0] = group.stats()
            if len(replay) >= config.learning_starts:
                owed += config.updates_per_step * config.envs_per_actor * config.num_actors
                while owed >= 1.0:
                    learn()
                    owed -= 1.0
    else:
        _run_processes(
            config,
            index,
            accuracy,
            vertex_range,
            n_proc,
            learner,
            replay,
            state,
            groups_stats,
            out_of_budget,
            learn,
            keras.backend.backend(),
        )
    wall = time.perf_counter() - wall_start
    state["train_env_steps_per_second"] = (state["env_steps"] - steps_start) / max(wall, 1e-9)
    state["updates_per_env_step"] = learner.updates / max(1, state["env_steps"])
    record()
    checkpoint()
    agent = TrainedAgent(
        config,
        learner.online.get_weights(),
        {
            **(meta or {}),
            "backend": keras.backend.backend(),
            "env_steps": state["env_steps"],
            "updates": learner.updates,
            "train_seconds": state["seconds"],
            "train_env_steps_per_second": state["train_env_steps_per_second"],
            "updates_per_env_step": state["updates_per_env_step"],
        },
    )
    agent._net = learner.online
    uri = agent.save(storage.join(output, "agent"))
    return TrainingResult(agent, uri, state, state["history"])


def _merge(stats: list[dict[str, float]]) -> dict[str, float]:
    if not stats:
        return {}
    out: dict[str, float] = {"episodes": float(sum(s["episodes"] for s in stats))}
    for key in ("train_improvement", "lowest_eps_improvement"):
        vals = [s[key] for s in stats if not np.isnan(s[key])]
        out[key] = float(np.mean(vals)) if vals else float("nan")
    return out


def _run_processes(
    config: AgentConfig,
    index: CellIndex,
    accuracy: np.ndarray,
    vertex_range: tuple[int, int],
    n_proc: int,
    learner: Learner,
    replay: PrioritizedReplay,
    state: dict[str, Any],
    groups_stats: list[dict[str, float]],
    out_of_budget: Callable[[], bool],
    learn: Callable[[], None],
    backend: str,
) -> None:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="rachel-apex-") as tmp:
        index_path = str(Path(tmp, "index.npz"))
        acc_path = str(Path(tmp, "accuracy.npy"))
        index.save(index_path)
        np.save(acc_path, accuracy)
        stop = ctx.Event()
        out_q = ctx.Queue(maxsize=64)
        weight_qs = [ctx.Queue(maxsize=2) for _ in range(n_proc)]
        actor_sets = [list(range(p, config.num_actors, n_proc)) for p in range(n_proc)]
        groups_stats[:] = [
            {
                "episodes": 0.0,
                "train_improvement": float("nan"),
                "lowest_eps_improvement": float("nan"),
            }
            for _ in range(n_proc)
        ]
        procs = [
            ctx.Process(
                target=actor_process_main,
                daemon=True,
                args=(
                    json.dumps(config.to_json()),
                    p,
                    actor_sets[p],
                    index_path,
                    acc_path,
                    vertex_range,
                    backend,
                    weight_qs[p],
                    out_q,
                    stop,
                ),
            )
            for p in range(n_proc)
        ]
        try:
            for p in procs:
                p.start()
            weights = learner.online.get_weights()
            for q in weight_qs:
                q.put(weights)
            while not out_of_budget():
                got = False
                behind = len(
                    replay
                ) >= config.learning_starts and learner.updates < config.updates_per_step * (
                    state["env_steps"] - config.learning_starts
                )
                try:
                    if behind:
                        raise queue.Empty  # back-pressure: actors wait on the full queue
                    while True:
                        group, batch, steps, stats = out_q.get(timeout=0.0 if got else 0.05)
                        got = True
                        replay.add(batch)
                        state["env_steps"] += steps
                        groups_stats[group] = stats
                        if out_of_budget():
                            break
                except queue.Empty:
                    pass
                for p in procs:
                    if not p.is_alive() and p.exitcode not in (0, None):
                        raise ArtifactError(
                            f"an actor process exited with {p.exitcode}",
                            "run with actor_processes=0 to see its error",
                        )
                if len(replay) >= config.learning_starts:
                    learn()
                    if learner.updates % config.weight_sync_period == 0:
                        weights = learner.online.get_weights()
                        for q in weight_qs:
                            try:
                                q.put_nowait(weights)
                            except queue.Full:
                                pass
        finally:
            stop.set()
            for p in procs:
                if p.pid is None:
                    continue
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
