"""The search agent's Q-network (paper section 3.2.3, figure 6), in backend-neutral Keras 3.

Layout (``T = N + 1`` tokens, ``d = latent``)::

    ids (B, T)  ->  encodings[ids]  (B, T, 56)   row 0 = current cell ("classification token"),
                                                  rows 1..N = shown neighbours, zeros = padding
      -> Dense(d, relu) x encoder_layers          the same encoder for every token
      -> + positional embedding (T, d)            learned, one vector per position
      -> transformer encoder x transformer_layers pre-norm: LN -> MHA (padding keys masked)
                                                  -> + ; LN -> MLP(mlp_dim, relu) -> +
      -> LN, token 0                              (B, d)
      -> duelling head:   A = Dense(T)            one advantage per presented cell (action 0 =
                          V = Dense(1)            terminate = the current cell, k = neighbour k)
         Q = V + A - mean_{valid}(A), invalid actions set to ``MASKED_Q``

Masks are applied everywhere an invalid action could leak in: the attention keys, the
duelling mean (over valid actions only), the Q-values themselves (so the greedy argmax and the
double-Q target's argmax never pick one), and the ε-random choice
(:func:`epsilon_greedy` draws only among valid actions).

Choices the paper leaves open (configurable in :class:`AgentConfig`, defaults documented
there): the number of encoder layers (2), transformer depth (2) and heads (4), MLP width
(512), learned (not sinusoidal) positional embeddings, pre-norm blocks, no dropout.  Every
initializer is seeded from ``AgentConfig.seed`` (no global seed).

Network size on a small machine (measured, niced on a shared 2-core machine, so absolute
figures are pessimistic): in a 60 s probe on the full graph (4 actors x 8 envs, inline) the
paper-sized network (latent 256, 2 blocks, MLP 512) made 8 learner updates including its
compilation, a small one (latent 64, 1 block, 2 heads, MLP 128) 440; ``bench/nasbench_agent.py``
therefore trains the small one (15 min: 35,648 env steps, 8,408 updates) and the defaults stay
the paper's for a GPU learner.

Only ``keras`` and ``keras.ops`` are used: the module runs on the TensorFlow backend here and
on JAX or PyTorch (``KERAS_BACKEND``); a test runs it on JAX.  Keras is imported lazily, so
importing this module (for :class:`AgentConfig`) does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rachel.core.errors import ConfigError
from rachel.core.nasbench.space import ENCODING_SIZE

MASKED_Q = -1e9


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class AgentConfig:
    """Every setting of the agent and its Ape-X training, defined once (CLI flags, pipeline
    parameters and validation are derived from these fields and their ``help``).

    Learner settings the paper does not give: RLlib 1.13's Ape-X defaults
    (``train_batch_size`` 512, ``learning_starts`` 50,000, ``target_network_update_freq``
    500,000 env steps) assume a GPU learner and 10 million steps; on a 2-core budget of tens of
    thousands of steps they would barely start learning.  The defaults here (batch 64, learning
    after 2,000 transitions, a target sync every 500 updates, i.e. about every 2,000 env steps
    at 0.25 updates per env step) keep the same order of syncs per replay turnover
    (capacity 25,000) at a budget that fits this machine.
    """

    # --- environment (paper section 4.1.1) ---
    max_neighbours: int = _f(50, "N, neighbours shown per step (ablation: 25/50/100)")
    episode_length: int = _f(16, "training episode length (evaluation uses 32)")
    shaping: float | None = _f(6.0, "reward shaping alpha (ablation: none/2/6/10); none = off")
    # --- network (section 3.2.3; depth/heads/MLP are not given in the paper) ---
    latent: int = _f(256, "T, the latent width of every token")
    encoder_layers: int = _f(2, "fully-connected ReLU layers encoding each cell")
    transformer_layers: int = _f(2, "transformer encoder blocks (paper: not given)")
    heads: int = _f(4, "attention heads (paper: not given)")
    mlp_dim: int = _f(512, "transformer MLP width (paper: not given)")
    # --- learner (section 4.1.1; RLlib 1.13 Ape-X defaults where the paper is silent) ---
    gamma: float = _f(0.9, "discount (ablation: 0.9/0.95/0.99)")
    learning_rate: float = _f(4e-5, "Adam learning rate")
    n_step: int = _f(3, "n-step returns")
    batch_size: int = _f(64, "learner batch size (paper: not given)")
    target_update_period: int = _f(500, "learner updates between target-network syncs")
    learning_starts: int = _f(2000, "transitions in the buffer before the first update")
    buffer_capacity: int = _f(25_000, "prioritised replay capacity")
    priority_alpha: float = _f(0.6, "prioritised replay alpha")
    priority_beta: float = _f(0.4, "prioritised replay beta (importance-sampling exponent)")
    priority_eps: float = _f(1e-6, "added to |TD error| for the priority")
    grad_clip: float = _f(40.0, "global gradient-norm clip (RLlib's default)")
    huber_delta: float = _f(1.0, "Huber loss delta")
    updates_per_step: float = _f(0.25, "learner updates per environment step (inline actors)")
    # --- actors (Ape-X, section 4.1 of Horgan et al.) ---
    num_actors: int = _f(8, "actors, each with its own epsilon_i")
    envs_per_actor: int = _f(8, "vectorised environments per actor (paper: 32)")
    actor_processes: int = _f(0, "processes the actors run in (0 = inside the learner)")
    epsilon_base: float = _f(0.4, "epsilon in epsilon_i = epsilon^(1 + alpha i/(n-1))")
    epsilon_alpha: float = _f(7.0, "alpha in epsilon_i = epsilon^(1 + alpha i/(n-1))")
    weight_sync_period: int = _f(50, "learner updates between weight broadcasts to actors")
    # --- budget and bookkeeping ---
    total_env_steps: int = _f(200_000, "environment steps over all actors")
    max_seconds: float = _f(0.0, "wall-clock limit for training (0 = none)")
    checkpoint_period: int = _f(2000, "learner updates between checkpoints")
    eval_epsilon: float = _f(0.0, "epsilon of the trained agent when it searches")
    seed: int = _f(0, "seed of the network, the replay sampling and the actors")

    def __post_init__(self) -> None:
        positive = (
            "max_neighbours",
            "episode_length",
            "latent",
            "encoder_layers",
            "heads",
            "mlp_dim",
            "n_step",
            "batch_size",
            "target_update_period",
            "buffer_capacity",
            "num_actors",
            "envs_per_actor",
            "weight_sync_period",
            "total_env_steps",
            "checkpoint_period",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ConfigError(
                    f"{name} must be >= 1, got {getattr(self, name)}",
                    f"set {name} to a positive integer",
                )
        if self.transformer_layers < 0 or self.actor_processes < 0 or self.learning_starts < 0:
            raise ConfigError(
                "transformer_layers, actor_processes and learning_starts must be >= 0",
                "use 0 or more",
            )
        if self.latent % self.heads:
            raise ConfigError(
                f"latent {self.latent} is not divisible by heads {self.heads}",
                "pick heads dividing latent (e.g. 256 and 4)",
            )
        if not 0 < self.gamma < 1 or not 0 < self.learning_rate < 1:
            raise ConfigError("gamma and learning_rate must lie in (0, 1)", "use 0.9 and 4e-5")
        for name in ("epsilon_base", "eval_epsilon", "priority_alpha", "priority_beta"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must lie in [0, 1]", f"set {name} within 0..1")
        if self.learning_starts < self.batch_size:
            raise ConfigError(
                f"learning_starts {self.learning_starts} < batch_size {self.batch_size}",
                "start learning after one batch at least",
            )
        if self.shaping is not None and self.shaping <= 0:
            raise ConfigError(
                f"shaping must be > 0 or None, got {self.shaping}", "use 6 (the paper) or none"
            )

    # ------------------------------------------------------------------ derived
    def epsilons(self) -> np.ndarray:
        """Per-actor ε_i = ε^(1 + α·i/(n−1)) (Ape-X; one actor gets ε)."""
        n = self.num_actors
        i = np.arange(n, dtype=np.float64)
        expo = 1.0 + (self.epsilon_alpha * i / (n - 1) if n > 1 else 0.0)
        return np.atleast_1d(self.epsilon_base**expo).astype(np.float64)

    def replace(self, **overrides: Any) -> AgentConfig:
        return dataclasses.replace(self, **overrides)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> AgentConfig:
        obj = json.loads(data) if isinstance(data, str) else dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ConfigError(
                f"unknown agent setting(s) {unknown}", f"use fields of AgentConfig: {sorted(known)}"
            )
        return cls(**obj)

    @classmethod
    def smoke(cls, **overrides: Any) -> AgentConfig:
        """A network and budget small enough for seconds-long tests and CI runs."""
        tiny: dict[str, Any] = {
            "max_neighbours": 8,
            "latent": 16,
            "mlp_dim": 32,
            "heads": 2,
            "transformer_layers": 1,
            "num_actors": 2,
            "envs_per_actor": 4,
            "learning_starts": 64,
            "batch_size": 16,
            "target_update_period": 20,
            "checkpoint_period": 40,
            "total_env_steps": 400,
            "weight_sync_period": 10,
        }
        return cls(**{**tiny, **overrides})

    @classmethod
    def ablation(cls, kind: str, value: Any, **overrides: Any) -> AgentConfig:
        """The section 5 ablations as configuration: ``gamma`` (0.9/0.95/0.99),
        ``neighbours`` (25/50/100), ``shaping`` (None/2/6/10)."""
        key = {"gamma": "gamma", "neighbours": "max_neighbours", "shaping": "shaping"}.get(kind)
        if key is None:
            raise ConfigError(f"unknown ablation {kind!r}", "use gamma, neighbours or shaping")
        return cls(**{**overrides, key: value})


def observation_from_ids(encodings: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(obs float32 (B, T, 56), mask int8 (B, T))`` from ``(B, T)`` ids (-1 = padding).

    ``encodings`` is ``CellIndex.encodings`` (uint8); the current cell (column 0) is always a
    valid action (terminate).
    """
    ids = np.asarray(ids, dtype=np.int64)
    mask = (ids >= 0).astype(np.int8)
    mask[:, 0] = 1
    obs = np.where(mask[..., None] > 0, encodings[np.maximum(ids, 0)], 0).astype(np.float32)
    return obs, mask


def masked_argmax(q: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Greedy action among the valid ones (numpy; ties: the lowest index)."""
    return np.argmax(np.where(np.asarray(mask) > 0, q, -np.inf), axis=-1)


def epsilon_greedy(
    q: np.ndarray, mask: np.ndarray, epsilon: np.ndarray | float, rng: np.random.Generator
) -> np.ndarray:
    """ε-greedy over the VALID actions only (``epsilon`` per row or one value)."""
    mask = np.asarray(mask) > 0
    greedy = masked_argmax(q, mask)
    eps = np.broadcast_to(np.asarray(epsilon, dtype=np.float64), greedy.shape)
    explore = rng.random(greedy.shape) < eps
    if explore.any():
        keys = np.where(mask[explore], rng.random(mask[explore].shape), -1.0)
        greedy = greedy.copy()
        greedy[explore] = np.argmax(keys, axis=-1)
    return greedy


# ---------------------------------------------------------------------- Keras network


def _layers() -> Any:
    import keras
    from keras import layers, ops

    def glorot(seed: int | None) -> Any:
        return keras.initializers.GlorotUniform(seed=seed)

    @keras.saving.register_keras_serializable(package="rachel_nasbench")
    class PositionalEmbedding(layers.Layer):
        """A learned vector per token position, added to the token (ViT style)."""

        def __init__(self, tokens: int, width: int, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.tokens, self.width, self.seed = tokens, width, seed

        def build(self, input_shape: Any) -> None:
            init = keras.initializers.RandomNormal(stddev=0.02, seed=self.seed)
            self.pos = self.add_weight(
                name="pos", shape=(self.tokens, self.width), initializer=init
            )

        def call(self, x: Any) -> Any:
            return x + ops.expand_dims(self.pos, 0)

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "tokens": self.tokens,
                "width": self.width,
                "seed": self.seed,
            }

    @keras.saving.register_keras_serializable(package="rachel_nasbench")
    class EncoderBlock(layers.Layer):
        """Pre-norm transformer encoder block; padding tokens are masked as keys."""

        def __init__(
            self, width: int, heads: int, mlp_dim: int, seed: int | None = None, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.width, self.heads, self.mlp_dim, self.seed = width, heads, mlp_dim, seed
            s = [None if seed is None else seed + k for k in range(3)]
            self.norm1 = layers.LayerNormalization(epsilon=1e-6)
            self.attn = layers.MultiHeadAttention(
                heads, width // heads, kernel_initializer=glorot(s[0])
            )
            self.norm2 = layers.LayerNormalization(epsilon=1e-6)
            self.mlp1 = layers.Dense(mlp_dim, activation="relu", kernel_initializer=glorot(s[1]))
            self.mlp2 = layers.Dense(width, kernel_initializer=glorot(s[2]))

        def call(self, x: Any, mask: Any) -> Any:
            keys = ops.cast(ops.expand_dims(mask, 1), "bool")  # (B, 1, T)
            attn_mask = ops.broadcast_to(keys, (ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[1]))
            h = self.norm1(x)
            x = x + self.attn(h, h, attention_mask=attn_mask)
            return x + self.mlp2(self.mlp1(self.norm2(x)))

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "width": self.width,
                "heads": self.heads,
                "mlp_dim": self.mlp_dim,
                "seed": self.seed,
            }

    @keras.saving.register_keras_serializable(package="rachel_nasbench")
    class DuellingHead(layers.Layer):
        """Q = V + A - mean over valid actions of A; invalid actions get MASKED_Q."""

        def __init__(self, actions: int, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.actions, self.seed = actions, seed
            self.adv = layers.Dense(actions, kernel_initializer=glorot(seed))
            self.val = layers.Dense(
                1, kernel_initializer=glorot(None if seed is None else seed + 1)
            )

        def call(self, h: Any, mask: Any) -> Any:
            valid = ops.cast(mask, "float32")
            a = self.adv(h)
            mean = ops.sum(a * valid, axis=-1, keepdims=True) / ops.maximum(
                ops.sum(valid, axis=-1, keepdims=True), 1.0
            )
            q = self.val(h) + a - mean
            return ops.where(valid > 0, q, MASKED_Q)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "actions": self.actions, "seed": self.seed}

    return PositionalEmbedding, EncoderBlock, DuellingHead


def build_q_network(
    config: AgentConfig, seed: int | None = None, name: str = "nasbench_q_network"
) -> Any:
    """The Q-network: inputs ``observations (B, N+1, 56)`` float32 and ``action_mask
    (B, N+1)``; output Q-values ``(B, N+1)`` with invalid actions at ``MASKED_Q``."""
    import keras
    from keras import layers

    base = (config.seed if seed is None else seed) * 1000  # per-layer initializer seeds
    positional, block, duelling = _layers()
    tokens = config.max_neighbours + 1
    obs = keras.Input((tokens, ENCODING_SIZE), name="observations")
    mask = keras.Input((tokens,), name="action_mask")
    x = obs
    for i in range(config.encoder_layers):
        x = layers.Dense(
            config.latent,
            activation="relu",
            name=f"cell_encoder_{i}",
            kernel_initializer=keras.initializers.GlorotUniform(seed=base + i),
        )(x)
    x = positional(tokens, config.latent, seed=base + 100, name="positions")(x)
    for i in range(config.transformer_layers):
        x = block(
            config.latent,
            config.heads,
            config.mlp_dim,
            seed=base + 200 + 10 * i,
            name=f"encoder_block_{i}",
        )(x, mask)
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    first = x[:, 0, :]
    q = duelling(tokens, seed=base + 900, name="duelling_head")(first, mask)
    return keras.Model([obs, mask], q, name=name)


def count_parameters(model: Any) -> int:
    return int(sum(math.prod(w.shape) for w in model.get_weights()))
