"""Ensemble weighting (section 2.2): learned softmax mixture weights over fixed members.

Each member's logits on the validation set are held fixed; the ensemble's logits are the
weighted average ``sum_i softmax(a)_i * z_i``, and the trainable logits ``a`` minimise the
ensemble's cross-entropy with Adam (10 epochs to score a candidate, 50 for the final
ensemble).  The problem is convex in the mixture weights; the gradient is written out
here, so this module needs only NumPy (the weighting step never loads TensorFlow).

Epochs are passes over the validation set in shuffled mini-batches (Keras's default of
32 examples and Adam's default learning rate 1e-3); the shuffling is seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rachel.core.errors import ConfigError


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy of ``logits`` (N, C) against int ``labels``."""
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def combine(member_logits: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The ensemble's logits: the weighted average of the members' logits."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), np.stack(member_logits), axes=1)


@dataclass(frozen=True)
class MixtureFit:
    weights: np.ndarray  # softmax of the trained logits, sums to 1
    loss: float  # validation cross-entropy of the weighted ensemble (the objective)
    accuracy: float

    @property
    def reward(self) -> float:
        """``r = -obj`` (section 2.2)."""
        return -self.loss


def fit_mixture_weights(
    member_logits: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    epochs: int = 10,
    learning_rate: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> MixtureFit:
    """Learn the softmax mixture weights of ``member_logits`` on (validation) ``labels``."""
    if not member_logits:
        raise ConfigError("an ensemble needs at least one member")
    z = np.stack([np.asarray(m, dtype=np.float64) for m in member_logits])  # (M, N, C)
    labels = np.asarray(labels, dtype=np.int64)
    if z.shape[1] != len(labels):
        raise ConfigError(
            f"member logits cover {z.shape[1]} examples but there are {len(labels)} labels"
        )
    members, n, _ = z.shape
    a = np.zeros(members)
    m_t, v_t, step = np.zeros(members), np.zeros(members), 0
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    rng = np.random.default_rng(seed)
    if members > 1:
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                zb, yb = z[:, idx], labels[idx]
                w = softmax(a)
                p = softmax(np.tensordot(w, zb, axes=1))
                p[np.arange(len(idx)), yb] -= 1.0  # dL/dlogits, times batch size
                g_w = np.einsum("nc,mnc->m", p, zb) / len(idx)
                grad = w * (g_w - np.dot(w, g_w))  # through the softmax over members
                step += 1
                m_t = beta1 * m_t + (1 - beta1) * grad
                v_t = beta2 * v_t + (1 - beta2) * grad**2
                m_hat = m_t / (1 - beta1**step)
                v_hat = v_t / (1 - beta2**step)
                a -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)
    weights = softmax(a)
    ens = combine(list(z), weights)
    return MixtureFit(
        weights=weights,
        loss=cross_entropy(ens, labels),
        accuracy=float((ens.argmax(-1) == labels).mean()),
    )
