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
* **One update per candidate, as in Algorithm 1, after sampling the whole iteration.**
  Algorithm 1 rewards the agent inside the candidate loop.  The pipeline samples all of
  an iteration's candidates up front and trains them in parallel (one task each), so
  :meth:`Controller.propose` draws them all from the policy as it stands at the start of
  the iteration, and :meth:`Controller.update` (called once per iteration with all its
  rewards) then takes one actor-critic step per rewarded candidate, in sorted
  candidate-id order (= sampling order).  Relative to Algorithm 1 this keeps the number
  of updates (one per reward: 40 at paper scale, where one batched step per iteration
  gave 10) but candidate ``k`` of an iteration is sampled without the updates from
  candidates ``0..k-1`` of the same iteration, and its own update is applied to a policy
  up to ``candidates - 1`` steps newer than the one that sampled it (not importance-
  corrected: at most 3 Adam steps at paper scale).
* **The rewards' common offset: a running baseline, then the critic.**  Rewards are minus
  validation losses (-0.3..-2) whose differences between candidates are 0.01-0.1.  Read
  literally (``advantage="critic"``: ``A = G - V(s)`` on the raw reward), the critic
  starts near 0 and has not learned the offset of ~-1 within 40 rewards, so every sampled
  action is pushed down alike and the policy does not move.  The default
  (``advantage="ema_critic"``) first standardises each reward against the debiased
  exponential moving averages (decay ``baseline_decay`` = 0.9, about the last 10 rewards)
  of the rewards *before* it: ``r~ = (r - mean) / max(std, scale_floor)``; the returns
  ``G_t = gamma**(T-1-t) * r~`` (gamma = 0.9) are what the critic learns (MSE, weight
  0.5) and ``A_t = G_t - V(s_t)``.  ``advantage="ema"`` uses ``A_t = G_t`` (the critic is
  still trained but not used).  The first reward's advantage is 0.
* **Learning rate.**  The paper's 1e-3 (:data:`PAPER_LEARNING_RATE`) barely moves the
  policy in 40 rewards even with the baseline; the default is 1e-2.
* **Measured** (synthetic reward -1.0 + 0.067 per residual block + N(0, 0.01), 10
  iterations x 4 candidates at ``T = 1.5 * 0.95**it``, 6 seeds, mean reward of the 40
  candidates +- its standard error; P = P(present and residual) at the first step after
  the run; ``tests/core/test_controller_learning.py``'s ``mean_reward``):

  ========================================  ===============  ======
  controller                                mean of 40       P
  ========================================  ===============  ======
  random search                             -0.950 +- 0.002  0.25
  ``critic``, lr 1e-3 (the paper)           -0.949 +- 0.007  0.28
  ``critic``, lr 1e-2                       -0.964 +- 0.012  0.26
  ``ema_critic``, lr 1e-3                   -0.926 +- 0.011  0.45
  ``ema``, lr 1e-2                          -0.864 +- 0.015  0.96
  ``ema_critic``, lr 1e-2 (default)         -0.871 +- 0.015  0.94
  ``ema_critic``, lr 1e-2, no scaling       -0.898 +- 0.015  0.69
  ``ema_critic``, lr 3e-2                   -0.850 +- 0.009  0.99
  ========================================  ===============  ======

  "No scaling" is ``scale_floor=1.0`` (centred, not scaled); centred only at lr 1e-1 gave
  -0.935.  ``baseline_decay`` 0.7 / 0.97 gave -0.868 / -0.869, no entropy bonus -0.872.
  With noise N(0, 0.03): random -0.949, paper -0.948, ``ema`` -0.863, ``ema_critic``
  -0.867 (1e-2) / -0.875 (3e-2).  On a reward peaked at width 64 (-1.0 + 0.05 per present
  layer times ``exp(-((w - 64) / 16)**2)``) every variant is within 0.006 of random
  search (random -0.991, paper -0.990, ``ema_critic`` 1e-2 -0.985, 3e-2 -0.985).
  ``ema`` and ``ema_critic`` are equal within the noise; ``ema_critic`` is the default
  because it keeps the paper's ``A = r - V(s)``, with the critic learning what is left of
  the value once the offset is gone; 1e-2 rather than 3e-2 because 3e-2 was worse at
  noise 0.03.
* **Loss.** ``-sum_t A_t * log pi(a_t|s_t)  +  0.5 * MSE(V, G)  -  0.01 * entropy`` for
  one episode, one Adam step.  When a step's presence token is 0, its block-type and
  width tokens had no effect on the architecture, so they are left out of the
  policy-gradient term (they still count in the entropy bonus).
* **Width cap.** Budgets may cap the width below 256; tokens above the cap are masked
  out of the width head instead of being clipped, so no probability mass is wasted on
  equivalent choices.
* **Random ablation.**  Tokens are drawn uniformly (within the width cap) from its own
  stream, ``default_rng([seed, 2])``: with the RL controller's stream, a near-uniform
  policy and the uniform one proposed the same architectures from the same seed.

The full state (weights, Adam slots, the fixed input, the sampling RNG, pending episodes,
the baseline's statistics) saves to a folder and reloads exactly: the same seed and
history give the same proposals.  TensorFlow is imported only when a controller is built.
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


ADVANTAGES = ("critic", "ema", "ema_critic")
PAPER_LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class ControllerSettings:
    """The controller's settings; see the module docstring for how each was chosen."""

    kind: str = "rl"
    max_new_layers: int = 3
    max_width: int = 256
    seed: int = 0
    learning_rate: float = 1e-2
    gamma: float = 0.9
    entropy_coef: float = 0.01
    critic_coef: float = 0.5
    advantage: str = "ema_critic"
    baseline_decay: float = 0.9
    scale_floor: float = 1e-3

    def __post_init__(self) -> None:
        if self.kind not in ("rl", "random"):
            raise ConfigError(f"unknown controller kind {self.kind!r}", "use 'rl' or 'random'")
        if self.advantage not in ADVANTAGES:
            raise ConfigError(
                f"unknown controller advantage {self.advantage!r}", f"use one of {ADVANTAGES}"
            )
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ConfigError(
                f"baseline_decay must be in [0, 1), got {self.baseline_decay}",
                "0.9 averages over about the last 10 rewards",
            )
        if not self.learning_rate > 0 or not self.scale_floor > 0:
            raise ConfigError(
                f"learning_rate and scale_floor must be > 0, got {self.learning_rate}, "
                f"{self.scale_floor}",
                f"the paper's controller learning rate is {PAPER_LEARNING_RATE}",
            )
        if self.max_new_layers < 1:
            raise ConfigError(
                f"max_new_layers must be >= 1, got {self.max_new_layers}",
                "the paper uses 3 decision steps per candidate",
            )

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


@dataclass
class RewardBaseline:
    """Bias-corrected exponential moving averages of the reward and its squared deviation.

    ``advantage(r)`` returns ``(r - mean) / max(std, floor)`` against the statistics of the
    rewards seen *before* ``r`` and then adds ``r`` to them, like Adam's debiased moments:
    the first reward's advantage is 0 (there is nothing to compare it with), the second's
    is +-1.
    """

    decay: float
    floor: float
    count: int = 0
    mean_acc: float = 0.0
    var_acc: float = 0.0

    @property
    def mean(self) -> float:
        return self.mean_acc / (1.0 - self.decay**self.count) if self.count else 0.0

    @property
    def scale(self) -> float:
        """Debiased RMS deviation of each reward from the mean before it (>= ``floor``)."""
        deviations = self.count - 1  # the first reward has none
        var = self.var_acc / (1.0 - self.decay**deviations) if deviations > 0 else 0.0
        return max(float(np.sqrt(var)), self.floor)

    def advantage(self, reward: float) -> float:
        if self.count == 0:
            self.count, self.mean_acc = 1, (1.0 - self.decay) * reward
            return 0.0
        delta = reward - self.mean
        self.var_acc = self.decay * self.var_acc + (1.0 - self.decay) * delta**2
        self.mean_acc = self.decay * self.mean_acc + (1.0 - self.decay) * reward
        self.count += 1
        return delta / self.scale

    def to_json(self) -> dict[str, float]:
        return {"count": self.count, "mean_acc": self.mean_acc, "var_acc": self.var_acc}


class Controller:
    """Proposes decision sequences and learns from their rewards.

    ``kind="random"`` is the random-search ablation: tokens are sampled uniformly (within
    the width cap) and :meth:`update` learns nothing.
    """

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        # The random ablation samples from its own stream: with one stream, a near-uniform
        # RL policy and the uniform one drew the same tokens from the same seed.
        rl = settings.kind == "rl"
        self.rng = np.random.default_rng(settings.seed if rl else [settings.seed, 2])
        self.baseline = RewardBaseline(settings.baseline_decay, settings.scale_floor)
        self.width_mask = _width_mask(settings.max_width)
        self.pending: dict[str, list[list[int]]] = {}
        self.pending_temperature: float | None = None
        self.updates = 0
        init_rng = np.random.default_rng([settings.seed, 1])
        self.fixed_input = init_rng.standard_normal(INPUT_DIM).astype(np.float32)
        self._nets: dict[str, Any] | None = None
        self._optimizer: Any = None
        self._compiled: dict[str, Any] = {}
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

    def _step(self, x: Any, state: list[Any], temperature: Any) -> tuple[list[Any], Any, list[Any]]:
        """One LSTM step -> (tempered head logits, value, new state)."""
        import tensorflow as tf

        nets = self._nets
        assert nets is not None
        out, new_state = nets["cell"](x, state)
        logits = [head(out) / temperature for head in nets["heads"]]
        logits[2] = logits[2] + tf.constant(self.width_mask)[None, :]
        value = nets["critic"](tf.concat(new_state, axis=-1))[:, 0]
        return logits, value, new_state

    def _run(
        self, fixed: Any, feedback: Any, temperature: Any
    ) -> tuple[list[list[Any]], list[Any]]:
        """Teacher-forced pass over a batch: ``feedback`` is (batch, T, FEEDBACK_DIM)."""
        import tensorflow as tf

        batch = tf.shape(feedback)[0]
        state = [tf.zeros((batch, LSTM_UNITS)), tf.zeros((batch, LSTM_UNITS))]
        fixed = tf.repeat(fixed[None, :], batch, axis=0)
        all_logits, values = [], []
        for t in range(self.settings.max_new_layers):
            x = tf.concat([fixed, feedback[:, t]], axis=-1)
            logits, value, state = self._step(x, state, temperature)
            all_logits.append(logits)
            values.append(value)
        return all_logits, values

    def _graph(self, name: str) -> Any:
        """The compiled (``tf.function``) policy step and training step, built on first use.

        Measured once on this machine: eager, proposing an iteration's 4 candidates took
        0.39 s and their 4 updates 0.62 s; compiled, 0.005 s and 0.009 s after a one-off
        trace of ~2 s per controller.
        """
        if name in self._compiled:
            return self._compiled[name]
        import tensorflow as tf

        steps = self.settings.max_new_layers
        scalar = tf.TensorSpec((), tf.float32)

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, INPUT_DIM + FEEDBACK_DIM), tf.float32),
                tf.TensorSpec((None, LSTM_UNITS), tf.float32),
                tf.TensorSpec((None, LSTM_UNITS), tf.float32),
                scalar,
            ]
        )
        def policy_step(x: Any, h: Any, c: Any, temperature: Any) -> Any:
            logits, _, (h, c) = self._step(x, [h, c], temperature)
            return [tf.nn.softmax(lg, axis=-1) for lg in logits], h, c

        @tf.function(
            input_signature=[
                tf.TensorSpec((INPUT_DIM,), tf.float32),
                tf.TensorSpec((None, steps, FEEDBACK_DIM), tf.float32),
                tf.TensorSpec((None, steps, 3), tf.int64),
                tf.TensorSpec((None, steps), tf.float32),
                scalar,
            ]
        )
        def train_step(
            fixed: Any, feedback: Any, tokens: Any, returns: Any, temperature: Any
        ) -> Any:
            settings = self.settings
            presence = tf.cast(tokens[:, :, 0], tf.float32)
            with tf.GradientTape() as tape:
                logits, values = self._run(fixed, feedback, temperature)
                value = tf.stack(values, axis=1)  # (B, T)
                if settings.advantage == "ema":
                    advantage = returns
                else:
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
                    + settings.critic_coef * critic_loss
                    - settings.entropy_coef * entropy_term
                )
            variables = self.trainable_variables
            grads = tape.gradient(loss, variables)
            self._optimizer.apply_gradients(zip(grads, variables, strict=True))
            return {
                "loss": loss,
                "actor_loss": actor_loss,
                "critic_loss": critic_loss,
                "entropy": entropy_term,
            }

        self._compiled = {"policy_step": policy_step, "train_step": train_step}
        return self._compiled[name]

    # ---------------------------------------------------------------- proposals
    def _step_probabilities(
        self, feedback: np.ndarray, state: tuple[Any, Any] | None, temperature: float
    ) -> tuple[list[np.ndarray], tuple[Any, Any]]:
        """Head probabilities (float64, one row per episode) for the next decision step."""
        batch = feedback.shape[0]
        if self.settings.kind == "random":
            width = np.exp(self.width_mask - self.width_mask.max())
            uniform = [np.full(2, 0.5), np.full(2, 0.5), width / width.sum()]
            return [np.tile(p, (batch, 1)) for p in uniform], (None, None)
        import tensorflow as tf

        if state is None:
            zeros = tf.zeros((batch, LSTM_UNITS))
            state = (zeros, zeros)
        fixed = np.repeat(self.fixed_input[None, :], batch, axis=0)
        x = tf.constant(np.concatenate([fixed, feedback], axis=1))
        probs, h, c = self._graph("policy_step")(x, *state, tf.constant(temperature, tf.float32))
        return [p.numpy().astype(np.float64) for p in probs], (h, c)

    def probabilities(
        self, temperature: float, previous: list[tuple[int, int, int]] | None = None
    ) -> list[np.ndarray]:
        """Head probabilities at the step after ``previous`` decisions (for tests and logs)."""
        state = None
        feedback = np.zeros((1, FEEDBACK_DIM), dtype=np.float32)
        for tokens in [None, *(previous or [])]:
            if tokens is not None:
                feedback[0] = _feedback(tokens)
            probs, state = self._step_probabilities(feedback, state, temperature)
        return [p[0] for p in probs]

    def _sample(self, probs: np.ndarray) -> int:
        probs = probs / probs.sum()
        return int(self.rng.choice(len(probs), p=probs))

    def propose(
        self, candidate_ids: list[str], temperature: float
    ) -> dict[str, tuple[LayerTokens, ...]]:
        """Sample one decision sequence per candidate id and remember them for :meth:`update`.

        The candidates are sampled together, one decision step at a time: at each step the
        tokens of every candidate are drawn (in the order given) before the next step.
        """
        batch = len(candidate_ids)
        tokens: list[list[tuple[int, int, int]]] = [[] for _ in candidate_ids]
        feedback = np.zeros((batch, FEEDBACK_DIM), dtype=np.float32)
        state = None
        for _ in range(self.settings.max_new_layers):
            probs, state = self._step_probabilities(feedback, state, temperature)
            for b in range(batch):
                step = tuple(self._sample(p[b]) for p in probs)
                tokens[b].append(step)  # type: ignore[arg-type]
                feedback[b] = _feedback(step)  # type: ignore[arg-type]
        proposals: dict[str, tuple[LayerTokens, ...]] = {}
        for cid, episode in zip(candidate_ids, tokens, strict=True):
            proposals[cid] = tuple(LayerTokens(*t) for t in episode)
            self.pending[cid] = [list(t) for t in episode]
        self.pending_temperature = temperature
        return proposals

    # ------------------------------------------------------------------ learning
    def update(self, rewards: dict[str, float]) -> dict[str, float]:
        """One actor-critic step per rewarded pending episode, in sorted candidate-id order.

        Episodes without a finite reward (failed candidates) are dropped.  All pending
        episodes are cleared.  Returns the number of episodes and the steps' mean losses.
        """
        ids = sorted(cid for cid in self.pending if cid in rewards and np.isfinite(rewards[cid]))
        temperature = float(self.pending_temperature or 1.0)
        steps = [self._learn(self.pending[cid], float(rewards[cid]), temperature) for cid in ids]
        self.pending = {}
        if not ids:
            return {"episodes": 0}
        self.updates += len(ids)
        stats = {"episodes": len(ids), "mean_reward": float(np.mean([rewards[c] for c in ids]))}
        if self.settings.kind == "rl":
            for key in steps[0]:
                stats[key] = float(np.mean([step[key] for step in steps]))
            stats["baseline_mean"] = self.baseline.mean
            stats["baseline_scale"] = self.baseline.scale
        return stats

    def _learn(
        self, tokens: list[list[int]], reward: float, temperature: float
    ) -> dict[str, float]:
        """One actor-critic step on one episode (a batch of one)."""
        if self.settings.kind == "random":
            return {}
        import tensorflow as tf

        settings = self.settings
        steps = settings.max_new_layers
        feedback = np.zeros((1, steps, FEEDBACK_DIM), dtype=np.float32)
        for t in range(1, steps):
            feedback[0, t] = _feedback(tuple(tokens[t - 1]))  # type: ignore[arg-type]
        signal = reward if settings.advantage == "critic" else self.baseline.advantage(reward)
        discounts = settings.gamma ** np.arange(steps - 1, -1, -1, dtype=np.float64)
        returns = (signal * discounts)[None, :].astype(np.float32)  # (1, T)
        out = self._graph("train_step")(
            tf.constant(self.fixed_input),
            tf.constant(feedback),
            tf.constant(np.array([tokens], dtype=np.int64)),
            tf.constant(returns),
            tf.constant(temperature, tf.float32),
        )
        return {key: float(value) for key, value in out.items()}

    # --------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> None:
        """Write the full state into ``folder`` atomically."""
        with storage.atomic_dir(folder) as tmp:
            state = {
                "format": 2,
                "baseline": self.baseline.to_json(),
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
        baseline = state.get("baseline", {})  # format 1 had no baseline statistics
        self.baseline.count = int(baseline.get("count", 0))
        self.baseline.mean_acc = float(baseline.get("mean_acc", 0.0))
        self.baseline.var_acc = float(baseline.get("var_acc", 0.0))
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
