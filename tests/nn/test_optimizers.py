"""Optimizer update rules against reference implementations."""

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from skrnn.nn._optimizers import SGD, Adam, RMSprop, clip_gradient


def _grads(rng, n_steps, size):
    return [rng.normal(size=size) for _ in range(n_steps)]


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_matches_sklearn(nesterov):
    rng = np.random.RandomState(0)
    theta = rng.normal(size=7)
    ref_params = [theta.copy()]
    ref = SGDOptimizer(ref_params, learning_rate_init=0.05, momentum=0.8,
                       nesterov=nesterov)
    ours = SGD(7, np.float64, 0.05, momentum=0.8, nesterov=nesterov)
    for g in _grads(rng, 5, 7):
        ref.update_params(ref_params, [g])
        ours.step(theta, g.copy())
    np.testing.assert_allclose(theta, ref_params[0], rtol=1e-13)


def test_sgd_invscaling_matches_sklearn():
    ref = SGDOptimizer([np.zeros(2)], learning_rate_init=0.1, lr_schedule="invscaling",
                       power_t=0.5)
    ours = SGD(2, np.float64, 0.1)
    for time_step in (10, 50, 200):
        ref.iteration_ends(time_step)
        ours.end_epoch("invscaling", time_step, 0.5)
        assert ours.learning_rate == pytest.approx(ref.learning_rate, rel=1e-15)


def test_adam_matches_sklearn():
    rng = np.random.RandomState(1)
    theta = rng.normal(size=6)
    ref_params = [theta.copy()]
    ref = AdamOptimizer(ref_params, learning_rate_init=0.01, beta_1=0.8, beta_2=0.99,
                        epsilon=1e-7)
    ours = Adam(6, np.float64, 0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    for g in _grads(rng, 6, 6):
        ref.update_params(ref_params, [g])
        ours.step(theta, g.copy())
    np.testing.assert_allclose(theta, ref_params[0], rtol=1e-12)


def test_rmsprop_matches_pytorch_formula():
    # torch.optim.RMSprop (no momentum, not centered):
    # v = alpha v + (1 - alpha) g^2 ; theta -= lr g / (sqrt(v) + eps)
    rng = np.random.RandomState(2)
    theta = rng.normal(size=5)
    expected = theta.copy()
    v = np.zeros(5)
    ours = RMSprop(5, np.float64, 0.01, rho=0.95, epsilon=1e-6)
    for g in _grads(rng, 4, 5):
        v = 0.95 * v + 0.05 * g * g
        expected = expected - 0.01 * g / (np.sqrt(v) + 1e-6)
        ours.step(theta, g.copy())
    np.testing.assert_allclose(theta, expected, rtol=1e-13)


def test_clipping_by_global_norm_and_value():
    g = np.array([3.0, 4.0])
    norm = clip_gradient(g, clipnorm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(g, [0.6, 0.8])
    g = np.array([3.0, -0.5, -7.0])
    norm = clip_gradient(g, clipvalue=1.0)
    assert norm == pytest.approx(np.sqrt(9 + 0.25 + 49))
    np.testing.assert_allclose(g, [1.0, -0.5, -1.0])
