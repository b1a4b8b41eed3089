"""The actor-critic LSTM controller of section 2.3, and the random-search ablation.

Reading of the paper, where it leaves room:

* **Sequence.** One decision step per possible new layer (``max_new_layers`` steps).  Each
  step emits three heads (presence: 2 logits, block type: 2, width: 241).  The sequence
  is started by a fixed random tensor drawn once from the seed; the LSTM state carries
  the context, and from the second step on the previous step's tokens are fed back
  (concatenated to the fixed tensor) so the state "encodes all previous layer-addition
  decisions".
* **Temperature.** Logits are divided by ``T = 1.5 * 0.95**iteration`` before the
  softmax, both for sampling and in the loss, so the update improves the policy that
  actually acted.
* **Critic.** Flatten -> Dense(64, ReLU) -> Dense(1) on ``concat(h, c)`` after each step.
  The candidate's reward arrives after the last step; the return of step ``t`` is
  ``gamma**(T-1-t) * r`` (gamma = 0.9) and the advantage is ``A_t = G_t - V(s_t)``.
* **Loss.** ``-sum_t A_t * log pi(a_t|s_t)  +  0.5 * MSE(V, G)  -  0.01 * entropy``,
  averaged over the iteration's candidates, one Adam(1e-3) step per iteration.  When a
  step's presence token is 0, its block-type and width tokens had no effect on the
  architecture, so they are left out of the policy-gradient term (they still count in
  the entropy bonus).
* **Width cap.** Budgets may cap the width below 256; tokens above the cap are masked
  out of the width head instead of being clipped, so no probability mass is wasted on
  equivalent choices.

The full state (weights, Adam slots, the fixed input, the sampling RNG, pending episodes)
saves to a folder and reloads exactly: the same seed and history give the same proposals.
TensorFlow is imported only when a controller is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ArtifactError, ConfigError
from rachel.core.search_space import HEAD_SIZES, NUM_WIDTH_TOKENS, WIDTH_OFFSET, LayerTokens

STATE_FILE = "controller.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"
LSTM_UNITS = 64
INPUT_DIM = 16
FEEDBACK_DIM = 5  # one-hot presence (2) + one-hot type (2) + width / 240


@dataclass(frozen=True)
class ControllerSettings:
    kind: str = "rl"
    max_new_layers: int = 3
    max_width: int = 256
    seed: int = 0
    learning_rate: float = 1e-3
    gamma: float = 0.9
    entropy_coef: float = 0.01
    critic_coef: float = 0.5

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _width_mask(max_width: int) -> np.ndarray:
    allowed = max_width - WIDTH_OFFSET + 1
    mask = np.zeros(NUM_WIDTH_TOKENS, dtype=np.float32)
    mask[allowed:] = -1e9
    return mask


def _feedback(tokens: tuple[int, int, int] | None) -> np.ndarray:
    out = np.zeros(FEEDBACK_DIM, dtype=np.float32)
    if tokens is not None:
        presence, block, width = tokens
        out[presence] = 1.0
        out[2 + block] = 1.0
        out[4] = width / (NUM_WIDTH_TOKENS - 1)
    return out


class Controller:
    """Proposes decision sequences and learns from their rewards.

    ``kind="random"`` is the random-search ablation: tokens are sampled uniformly (within
    the width cap) and :meth:`update` learns nothing.
    """

    def __init__(self, settings: ControllerSettings) -> None:
        if settings.kind not in ("rl", "random"):
            raise ConfigError(f"unknown controller kind {settings.kind!r}", "use 'rl' or 'random'")
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)
        self.width_mask = _width_mask(settings.max_width)
        self.pending: dict[str, list[list[int]]] = {}
        self.pending_temperature: float | None = None
        self.updates = 0
        init_rng = np.random.default_rng([settings.seed, 1])
        self.fixed_input = init_rng.standard_normal(INPUT_DIM).astype(np.float32)
        self._nets: dict[str, Any] | None = None
        self._optimizer: Any = None
        if settings.kind == "rl":
            self._build()

    # ----------------------------------------------------------------- network
    def _build(self) -> None:
        import keras

        seed = self.settings.seed
        init = lambda k: keras.initializers.GlorotUniform(seed=seed * 100 + k)  # noqa: E731
        cell = keras.layers.LSTMCell(
            LSTM_UNITS,
            kernel_initializer=init(1),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed * 100 + 2),
        )
        heads = [
            keras.layers.Dense(n, kernel_initializer=init(3 + i)) for i, n in enumerate(HEAD_SIZES)
        ]
        critic = keras.Sequential(
            [
                keras.layers.Flatten(),
                keras.layers.Dense(64, activation="relu", kernel_initializer=init(7)),
                keras.layers.Dense(1, kernel_initializer=init(8)),
            ]
        )
        cell.build((None, INPUT_DIM + FEEDBACK_DIM))
        for head in heads:
            head.build((None, LSTM_UNITS))
        critic.build((None, 2 * LSTM_UNITS))
        self._nets = {"cell": cell, "heads": heads, "critic": critic}
        self._optimizer = keras.optimizers.Adam(self.settings.learning_rate)
        self._optimizer.build(self.trainable_variables)

    @property
    def trainable_variables(self) -> list[Any]:
        assert self._nets is not None
        variables = list(self._nets["cell"].trainable_variables)
        for head in self._nets["heads"]:
            variables += head.trainable_variables
        variables += self._nets["critic"].trainable_variables
        return variables

    def _step(
        self, x: Any, state: list[Any], temperature: float
    ) -> tuple[list[Any], Any, list[Any]]:
        """One LSTM step -> (tempered head logits, value, new state)."""
        import tensorflow as tf

        nets = self._nets
        assert nets is not None
        out, new_state = nets["cell"](x, state)
        logits = [head(out) / temperature for head in nets["heads"]]
        logits[2] = logits[2] + tf.constant(self.width_mask)[None, :]
        value = nets["critic"](tf.concat(new_state, axis=-1))[:, 0]
        return logits, value, new_state

    def _run(self, feedback: np.ndarray, temperature: float) -> tuple[list[list[Any]], list[Any]]:
        """Teacher-forced pass over a batch: ``feedback`` is (batch, T, FEEDBACK_DIM)."""
        import tensorflow as tf

        batch = feedback.shape[0]
        state = [tf.zeros((batch, LSTM_UNITS)), tf.zeros((batch, LSTM_UNITS))]
        fixed = tf.repeat(tf.constant(self.fixed_input)[None, :], batch, axis=0)
        all_logits, values = [], []
        for t in range(self.settings.max_new_layers):
            x = tf.concat([fixed, tf.constant(feedback[:, t])], axis=-1)
            logits, value, state = self._step(x, state, temperature)
            all_logits.append(logits)
            values.append(value)
        return all_logits, values

    # ---------------------------------------------------------------- proposals
    def probabilities(
        self, temperature: float, previous: list[tuple[int, int, int]] | None = None
    ) -> list[np.ndarray]:
        """Head probabilities at the step after ``previous`` decisions (for tests and logs)."""
        previous = previous or []
        if self.settings.kind == "random":
            width = np.exp(self.width_mask - self.width_mask.max())
            return [np.full(2, 0.5), np.full(2, 0.5), width / width.sum()]
        import tensorflow as tf

        feedback = np.zeros((1, self.settings.max_new_layers, FEEDBACK_DIM), dtype=np.float32)
        for t, tokens in enumerate(previous):
            feedback[0, t + 1] = _feedback(tokens)
        logits, _ = self._run(feedback, temperature)
        step = logits[len(previous)]
        return [tf.nn.softmax(lg[0]).numpy().astype(np.float64) for lg in step]

    def _sample(self, probs: np.ndarray) -> int:
        probs = probs / probs.sum()
        return int(self.rng.choice(len(probs), p=probs))

    def propose(
        self, candidate_ids: list[str], temperature: float
    ) -> dict[str, tuple[LayerTokens, ...]]:
        """Sample one decision sequence per candidate id and remember them for :meth:`update`."""
        proposals: dict[str, tuple[LayerTokens, ...]] = {}
        for cid in candidate_ids:
            tokens: list[tuple[int, int, int]] = []
            for _ in range(self.settings.max_new_layers):
                probs = self.probabilities(temperature, tokens)
                tokens.append(
                    (self._sample(probs[0]), self._sample(probs[1]), self._sample(probs[2]))
                )
            proposals[cid] = tuple(LayerTokens(*t) for t in tokens)
            self.pending[cid] = [list(t) for t in tokens]
        self.pending_temperature = temperature
        return proposals

    # ------------------------------------------------------------------ learning
    def update(self, rewards: dict[str, float]) -> dict[str, float]:
        """One actor-critic step on the pending episodes that received a reward."""
        ids = [cid for cid in self.pending if cid in rewards and np.isfinite(rewards[cid])]
        if not ids:
            self.pending = {}
            return {"episodes": 0}
        if self.settings.kind == "random":
            self.pending = {}
            self.updates += 1
            return {"episodes": len(ids)}
        import tensorflow as tf

        steps = self.settings.max_new_layers
        tokens = np.array([self.pending[cid] for cid in ids], dtype=np.int64)  # (B, T, 3)
        feedback = np.zeros((len(ids), steps, FEEDBACK_DIM), dtype=np.float32)
        for b in range(len(ids)):
            for t in range(1, steps):
                feedback[b, t] = _feedback(tuple(tokens[b, t - 1]))
        reward = np.array([rewards[cid] for cid in ids], dtype=np.float32)
        discounts = self.settings.gamma ** np.arange(steps - 1, -1, -1, dtype=np.float32)
        returns = tf.constant(reward[:, None] * discounts[None, :])  # (B, T)
        presence = tf.constant(tokens[:, :, 0].astype(np.float32))
        temperature = float(self.pending_temperature or 1.0)

        with tf.GradientTape() as tape:
            logits, values = self._run(feedback, temperature)
            value = tf.stack(values, axis=1)  # (B, T)
            advantage = tf.stop_gradient(returns - value)
            logp = tf.zeros_like(value)
            entropy = tf.zeros_like(value)
            for head in range(3):
                head_logits = tf.stack([logits[t][head] for t in range(steps)], axis=1)
                log_probs = tf.nn.log_softmax(head_logits, axis=-1)
                chosen = tf.gather(log_probs, tokens[:, :, head], axis=-1, batch_dims=2)
                weight = 1.0 if head == 0 else presence
                logp += weight * chosen
                probs = tf.exp(log_probs)
                entropy += -tf.reduce_sum(probs * tf.where(probs > 0, log_probs, 0.0), axis=-1)
            actor_loss = -tf.reduce_mean(tf.reduce_sum(advantage * logp, axis=1))
            critic_loss = tf.reduce_mean(tf.square(returns - value))
            entropy_term = tf.reduce_mean(tf.reduce_sum(entropy, axis=1))
            loss = (
                actor_loss
                + self.settings.critic_coef * critic_loss
                - self.settings.entropy_coef * entropy_term
            )
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self._optimizer.apply_gradients(zip(grads, variables, strict=True))
        self.pending = {}
        self.updates += 1
        return {
            "episodes": len(ids),
            "loss": float(loss),
            "actor_loss": float(actor_loss),
            "critic_loss": float(critic_loss),
            "entropy": float(entropy_term),
            "mean_reward": float(reward.mean()),
        }

    # --------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> None:
        """Write the full state into ``folder`` atomically."""
        with storage.atomic_dir(folder) as tmp:
            state = {
                "format": 1,
                "settings": self.settings.to_json(),
                "rng_state": self.rng.bit_generator.state,
                "pending": self.pending,
                "pending_temperature": self.pending_temperature,
                "updates": self.updates,
                "fixed_input": self.fixed_input.tolist(),
            }
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
            if self.settings.kind == "rl":
                np.savez(tmp / WEIGHTS_FILE, *[v.numpy() for v in self.trainable_variables])
                np.savez(
                    tmp / OPTIMIZER_FILE,
                    *[np.asarray(v.numpy()) for v in self._optimizer.variables],
                )

    @classmethod
    def load(cls, folder: str | Path) -> Controller:
        folder = Path(folder)
        try:
            state = json.loads((folder / STATE_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ArtifactError(
                f"controller state in {folder} is missing or unreadable ({err})",
                "pass the controller artifact written by generate/update",
            ) from err
        self = cls(ControllerSettings(**state["settings"]))
        self.rng.bit_generator.state = state["rng_state"]
        self.pending = {k: [list(map(int, t)) for t in v] for k, v in state["pending"].items()}
        self.pending_temperature = state["pending_temperature"]
        self.updates = int(state["updates"])
        self.fixed_input = np.asarray(state["fixed_input"], dtype=np.float32)
        if self.settings.kind == "rl":
            with np.load(folder / WEIGHTS_FILE) as weights:
                arrays = [weights[f"arr_{i}"] for i in range(len(weights.files))]
            variables = self.trainable_variables
            if len(arrays) != len(variables):
                raise ArtifactError(f"controller weights in {folder} do not match the network")
            for var, value in zip(variables, arrays, strict=True):
                var.assign(value)
            with np.load(folder / OPTIMIZER_FILE) as slots:
                arrays = [slots[f"arr_{i}"] for i in range(len(slots.files))]
            for var, value in zip(self._optimizer.variables, arrays, strict=True):
                var.assign(value)
        return self
