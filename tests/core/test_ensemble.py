import numpy as np
import pytest

from rachel.core import safety_net
from rachel.core.ensemble import (
    combine,
    cross_entropy,
    fit_mixture_weights,
    mixture_objective,
    softmax,
)
from rachel.core.errors import ConfigError, DataError


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
    fit = fit_mixture_weights([bad, good], y, solver="adam", epochs=10, seed=1)
    assert fit.weights[1] > 0.6 > fit.weights[0]
    assert fit.weights.sum() == pytest.approx(1.0)
    uniform = cross_entropy(combine([bad, good], np.array([0.5, 0.5])), y)
    assert fit.loss < uniform  # learning the weights beats the uniform mixture
    assert fit.reward == -fit.loss


def test_single_member_is_its_own_loss():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    z = _member(y, 0.7, rng)
    for solver in ("lbfgs", "slsqp", "adam"):
        fit = fit_mixture_weights([z], y, solver=solver)
        assert fit.weights.tolist() == [1.0]
        assert fit.loss == pytest.approx(cross_entropy(z, y))


def test_fit_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 500)
    members = [_member(y, a, rng) for a in (0.5, 0.6, 0.7)]
    for solver in ("lbfgs", "adam"):
        a = fit_mixture_weights(members, y, solver=solver, seed=3)
        b = fit_mixture_weights(members, y, solver=solver, seed=3)
        assert np.array_equal(a.weights, b.weights)


def _problem(seed, members, n, classes=10):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = []
    for accuracy in rng.uniform(0.3, 0.9, members):
        z = _member(y, accuracy, rng, classes=classes)
        logits.append(z * rng.uniform(0.3, 2.0))  # members differ in confidence as well
    return logits, y


def test_analytic_gradient_matches_finite_differences():
    logits, y = _problem(4, members=5, n=400)
    z = np.stack(logits)
    a = np.random.default_rng(5).normal(0, 1.0, 5)
    loss, grad = mixture_objective(a, z, y)
    assert loss == pytest.approx(cross_entropy(combine(logits, softmax(a)), y), rel=1e-12)
    eps = 1e-6
    numeric = np.array(
        [
            (mixture_objective(a + eps * e, z, y)[0] - mixture_objective(a - eps * e, z, y)[0])
            / (2 * eps)
            for e in np.eye(5)
        ]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    assert abs(grad.sum()) < 1e-12  # shift invariance: no component along (1, ..., 1)
    assert np.abs(grad).max() > 1e-3  # a non-trivial point, not an optimum


def test_solved_optimum_matches_a_long_adam_run():
    logits, y = _problem(6, members=4, n=1000)
    solved = fit_mixture_weights(logits, y)
    simplex = fit_mixture_weights(logits, y, solver="slsqp")
    long_adam = fit_mixture_weights(
        logits, y, solver="adam", epochs=3000, learning_rate=0.2, batch_size=1000
    )
    # Member 3's optimal weight is 0; Adam approaches it slowly (still 1e-5 after 3,000
    # full-batch steps), hence the 2e-6 tolerance on the loss.
    assert solved.loss == pytest.approx(long_adam.loss, abs=2e-6)
    assert solved.loss == pytest.approx(simplex.loss, abs=1e-9)
    assert solved.loss <= long_adam.loss + 1e-12
    np.testing.assert_allclose(solved.weights, long_adam.weights, atol=2e-3)
    # ... and the optimum is a real one: nudging the weights anywhere costs loss.
    rng = np.random.default_rng(7)
    for _ in range(20):
        w = np.clip(solved.weights + rng.normal(0, 0.02, 4), 0, None)
        assert cross_entropy(combine(logits, w / w.sum()), y) >= solved.loss - 1e-12


@pytest.mark.parametrize("seed", range(8))
def test_solvers_are_never_worse_than_ten_epochs_of_adam(seed):
    rng = np.random.default_rng(seed)
    logits, y = _problem(100 + seed, members=int(rng.integers(2, 7)), n=int(rng.integers(100, 800)))
    paper = fit_mixture_weights(logits, y, solver="adam", epochs=10, seed=seed)
    for solver in ("lbfgs", "slsqp"):
        fit = fit_mixture_weights(logits, y, solver=solver)
        assert fit.loss <= paper.loss + 1e-12
        assert fit.weights.sum() == pytest.approx(1.0, abs=1e-12)
        assert (fit.weights >= 0).all()
        assert fit.loss == pytest.approx(cross_entropy(combine(logits, fit.weights), y))


def test_duplicated_members_share_the_weight_of_one():
    logits, y = _problem(8, members=3, n=600)
    once = fit_mixture_weights(logits, y)
    twice = fit_mixture_weights([*logits, logits[1]], y)  # the safety net re-adds member 1
    assert twice.loss == pytest.approx(once.loss, abs=1e-8)
    assert twice.weights[1] == pytest.approx(twice.weights[3], abs=1e-6)
    assert twice.weights[1] + twice.weights[3] == pytest.approx(once.weights[1], abs=1e-4)
    assert fit_mixture_weights([*logits, logits[1]], y, solver="slsqp").loss == pytest.approx(
        once.loss, abs=1e-8
    )


def test_a_harmful_member_gets_no_weight():
    logits, y = _problem(9, members=2, n=800)
    harmful = -3.0 * np.eye(10)[y]  # votes against the true class everywhere
    for solver in ("lbfgs", "slsqp"):
        fit = fit_mixture_weights([*logits, harmful], y, solver=solver)
        assert fit.weights[2] < 1e-6
        assert fit.loss == pytest.approx(fit_mixture_weights(logits, y).loss, abs=1e-7)


def test_bad_inputs_raise_clear_errors():
    logits, y = _problem(11, members=2, n=50)
    broken = logits[1].copy()
    broken[3, 2] = np.nan
    with pytest.raises(DataError, match=r"member\(s\) \[1\].*non-finite"):
        fit_mixture_weights([logits[0], broken], y)
    with pytest.raises(ConfigError, match="unknown ensemble solver"):
        fit_mixture_weights(logits, y, solver="newton")
    with pytest.raises(ConfigError, match="at least one member"):
        fit_mixture_weights([], y)
    with pytest.raises(ConfigError, match="50 examples"):
        fit_mixture_weights(logits, y[:40])
    with pytest.raises(ConfigError, match="one shape"):
        fit_mixture_weights([logits[0], logits[1][:, :5]], y)
    with pytest.raises(DataError, match="labels span"):
        fit_mixture_weights(logits, y + 10)
    with pytest.raises(DataError, match="integers"):
        fit_mixture_weights(logits, y.astype(np.float64))


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
