import numpy as np
import pytest

from rachel.core import safety_net
from rachel.core.ensemble import combine, cross_entropy, fit_mixture_weights


def _member(labels, accuracy, rng, classes=5, scale=3.0):
    """Logits that put the mass on the true class for ``accuracy`` of the examples."""
    n = len(labels)
    right = rng.random(n) < accuracy
    target = np.where(right, labels, (labels + 1 + rng.integers(0, classes - 1, n)) % classes)
    logits = rng.normal(0, 0.5, (n, classes))
    logits[np.arange(n), target] += scale
    return logits


def test_weights_favour_the_better_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    good, bad = _member(y, 0.9, rng), _member(y, 0.3, rng)
    fit = fit_mixture_weights([bad, good], y, epochs=10, seed=1)
    assert fit.weights[1] > 0.6 > fit.weights[0]
    assert fit.weights.sum() == pytest.approx(1.0)
    uniform = cross_entropy(combine([bad, good], np.array([0.5, 0.5])), y)
    assert fit.loss < uniform  # learning the weights beats the uniform mixture
    assert fit.reward == -fit.loss


def test_single_member_is_its_own_loss():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    z = _member(y, 0.7, rng)
    fit = fit_mixture_weights([z], y)
    assert fit.weights.tolist() == [1.0]
    assert fit.loss == pytest.approx(cross_entropy(z, y))


def test_fit_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 500)
    members = [_member(y, a, rng) for a in (0.5, 0.6, 0.7)]
    a = fit_mixture_weights(members, y, seed=3)
    b = fit_mixture_weights(members, y, seed=3)
    assert np.array_equal(a.weights, b.weights)


def test_cross_entropy_matches_definition():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 0])
    p0 = np.exp(2) / (np.exp(2) + 1)
    p1 = 1 / (1 + np.e)
    assert cross_entropy(logits, y) == pytest.approx(-(np.log(p0) + np.log(p1)) / 2)


@pytest.mark.parametrize(
    "candidate, previous, accept",
    [
        (0.50, None, True),  # first member always joins
        (0.40, 0.45, True),  # better
        (0.455, 0.45, True),  # worse, but within the 0.01 tolerance
        (0.47, 0.45, False),  # worse by more than 0.01: safety net fires
    ],
)
def test_safety_net_rule_both_ways(candidate, previous, accept):
    decision = safety_net.check(candidate, previous, 0.01)
    assert decision.accept is accept
    assert decision.activated is (not accept)
    assert ("safety net" in decision.explain()) is (not accept)
