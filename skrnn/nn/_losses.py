"""Losses and output activations, each with the gradient the engine needs.

A loss takes the raw head output ``Z`` (before the output activation), the target
and per-row weights, and returns the weighted mean loss and ``dLoss/dZ``. The mean is
over outputs and over rows, weighted by ``sample_weight`` and divided by its sum, so
that an integer weight is the same as repeating the row.

The quantile (pinball) loss has one head output per target and quantile level,
target-major: column ``j * n_quantiles + k`` predicts level ``k`` of target ``j``.
Its mean runs over targets and levels, so with one level it equals scikit-learn's
``mean_pinball_loss``.
"""

import numpy as np
from scipy.special import expit


def _identity(z):
    return z


def _relu(z):
    return np.maximum(z, 0)


def _softplus(z):
    return np.logaddexp(0, z)


OUTPUT_ACTIVATIONS = {"identity": _identity, "relu": _relu, "softplus": _softplus}


def _activation_derivative(name, z):
    if name == "identity":
        return None
    if name == "relu":
        return (z > 0).astype(z.dtype)
    return expit(z)  # softplus


def _pointwise(loss, p, y, huber_delta):
    """Elementwise loss and its derivative with respect to the prediction ``p``."""
    r = p - y
    if loss == "squared_error":
        return 0.5 * r * r, r
    if loss == "absolute_error":
        return np.abs(r), np.sign(r)
    if loss == "huber":
        a = np.abs(r)
        quad = a <= huber_delta
        val = np.where(quad, 0.5 * r * r, huber_delta * (a - 0.5 * huber_delta))
        grad = np.where(quad, r, huber_delta * np.sign(r))
        return val, grad
    raise ValueError(f"unknown loss {loss!r}")


def _pinball(p, y, quantiles):
    """Pinball loss of every head output and its derivative with respect to ``p``.

    ``p`` has ``n_quantiles`` times the last axis of ``y`` (target-major), ``y`` is
    compared with each of its target's levels.
    """
    q = np.asarray(quantiles, dtype=p.dtype)
    P = p.reshape(y.shape + (len(q),))
    diff = y[..., None] - P
    above = diff >= 0  # y at or above the prediction: the q side (sklearn's convention)
    val = np.where(above, q * diff, (q - 1) * diff)
    grad = np.where(above, -q, 1 - q).astype(p.dtype, copy=False)
    return val.reshape(p.shape), grad.reshape(p.shape)


def predict_from_raw(Z, loss, output_activation):
    """Map the head's raw output to predictions (Poisson uses the log link)."""
    if loss == "poisson":
        return np.exp(Z)
    return OUTPUT_ACTIVATIONS[output_activation](Z)


def loss_and_grad(Z, y, sw, loss, output_activation, huber_delta=1.0, quantiles=None):
    """Weighted mean loss and its gradient with respect to the raw output ``Z``.

    ``Z`` and ``y`` have the same shape, ``(B, n_outputs)`` or ``(B, T, n_outputs)``;
    ``sw`` has shape ``(B,)`` or is None. With ``loss="quantile"``, ``quantiles``
    holds the levels and ``Z``'s last axis is ``n_outputs * len(quantiles)``.
    """
    n_per_row = Z[0].size
    if loss == "poisson":
        # log link: mean = exp(z); the loss exp(z) - y z drops the y-only terms
        mu = np.exp(Z)
        val = mu - y * Z
        dval = mu - y
    else:
        p = OUTPUT_ACTIVATIONS[output_activation](Z)
        if loss == "quantile":
            val, dval = _pinball(p, y, quantiles)
        else:
            val, dval = _pointwise(loss, p, y, huber_delta)
        dact = _activation_derivative(output_activation, Z)
        if dact is not None:
            dval = dval * dact
    row = val.reshape(len(Z), -1).sum(axis=1)
    if sw is None:
        denom = len(Z) * n_per_row
        return row.sum() / denom, dval / denom
    denom = sw.sum() * n_per_row
    if denom == 0:  # a batch made only of zero-weight rows teaches nothing
        return 0.0, np.zeros_like(Z)
    shape = (-1,) + (1,) * (Z.ndim - 1)
    return (row @ sw) / denom, dval * (sw.reshape(shape) / denom)
