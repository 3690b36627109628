"""Exact BPTT: analytic gradients against central finite differences (float64)."""

import itertools

import numpy as np
import pytest
from cell_variants import CELLS, LOSSES
from cell_variants import relative_error as _relative_error

from skrnn.nn._network import RecurrentNetwork

T, B, F, N_OUT = 4, 3, 2, 2


def _network(cell, kwargs, units, head, seed=0):
    rng = np.random.RandomState(seed)
    net = RecurrentNetwork(cell, F, units, N_OUT, head=head, cell_kwargs=kwargs)
    net.initialize(rng)
    # move away from the initial zeros (biases, peepholes) so every path carries signal
    net.theta += rng.normal(scale=0.3, size=net.size)
    X = rng.normal(size=(T, B, F))
    y_shape = (B, N_OUT) if head == "last" else (B, T, N_OUT)
    y = np.abs(rng.normal(size=y_shape)) * 2  # non-negative: valid for Poisson too
    sw = rng.uniform(0.5, 2.0, size=B)
    return net, X, y, sw, rng


@pytest.mark.parametrize(
    "cell,kwargs,loss,units,head",
    [
        (c, k, loss, units, head)
        for (c, k), loss, units, head in itertools.product(
            CELLS, LOSSES, [(3,), (3, 4)], ["last", "sequence"]
        )
    ],
    ids=lambda v: str(v),
)
def test_bptt_matches_finite_differences(cell, kwargs, loss, units, head):
    net, X, y, sw, _ = _network(cell, kwargs, units, head)
    err = _relative_error(
        net, X, y, sw, loss=loss, output_activation="identity", alpha=0.3, huber_delta=0.7
    )
    assert err < 1e-6


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_output_activations_and_dropout_masks(cell, kwargs, activation):
    net, X, y, sw, rng = _network(cell, kwargs, (3, 2), "last", seed=1)
    masks = []
    n_in = F
    for H in net.units:
        masks.append(((rng.rand(B, n_in) > 0.3) / 0.7, (rng.rand(B, H) > 0.3) / 0.7))
        n_in = H
    err = _relative_error(
        net, X, y, sw, masks=masks, loss="squared_error", output_activation=activation
    )
    assert err < 1e-6


def test_gradient_is_not_trivially_zero():
    # guards the check above against a network whose loss ignores its weights
    net, X, y, sw, _ = _network("lstm", {}, (3,), "last")
    net.loss_and_gradient(X, y, sw, loss="squared_error", output_activation="identity")
    for _, g in zip(net.params, net.grads):
        for name in ("W_ih", "W_hh", "b"):
            assert np.abs(g[name]).max() > 1e-4, name
