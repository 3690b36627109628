"""The cell variants and losses the engine and estimator tests run over (each cell with
each of its switches: activation, peepholes, reset-gate placement), and the central
finite-difference check of a network's gradient, written once."""

import numpy as np

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor

CELLS = [
    ("rnn", {"activation": "tanh"}),
    ("rnn", {"activation": "relu"}),
    ("lstm", {"peephole": False}),
    ("lstm", {"peephole": True}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
]
LOSSES = ["squared_error", "absolute_error", "huber", "poisson"]

REGRESSOR = {"rnn": SimpleRNNRegressor, "lstm": LSTMRegressor, "gru": GRURegressor}
# the same variants as estimators: (class, constructor keywords)
VARIANTS = [(REGRESSOR[cell], kwargs) for cell, kwargs in CELLS]
IDS = [f"{cls.__name__}-{kwargs}" for cls, kwargs in VARIANTS]


def relative_error(net, X, y, sw, masks=None, **kw):
    """Relative distance of ``net``'s BPTT gradient from central finite differences."""
    net.loss_and_gradient(X, y, sw, masks=masks, **kw)
    analytic = net.grad.copy()
    theta = net.theta.copy()
    numeric = np.empty_like(theta)
    eps = 1e-6
    for i in range(theta.size):
        net.theta[:] = theta
        net.theta[i] += eps
        plus = net.loss_and_gradient(X, y, sw, masks=masks, **kw)
        net.theta[i] -= 2 * eps
        minus = net.loss_and_gradient(X, y, sw, masks=masks, **kw)
        numeric[i] = (plus - minus) / (2 * eps)
    net.theta[:] = theta
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return np.linalg.norm(analytic - numeric) / scale
