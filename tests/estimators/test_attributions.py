"""input_gradients: exact input gradients and integrated gradients of predictions."""

import numpy as np
import pytest
from cell_variants import IDS, VARIANTS
from sklearn.exceptions import NotFittedError

from skrnn import GRURegressor, LSTMRegressor
from skrnn.nn._cells import compiled_available, engine

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.RandomState(0)
X3 = RNG.normal(size=(5, 4, 2))  # 5 sequences, 4 steps, 2 features per step
Y2 = np.c_[X3[:, -1, 0] + 0.5 * X3[:, 0, 1], X3[:, :, 1].sum(axis=1)]


def _fit(cls, kw, y, **params):
    args = {"units": (4, 3), "max_iter": 3, "random_state": 0, "learning_rate_init": 0.05}
    args.update(params)
    model = cls(**kw, **args).fit(X3, y)
    # move away from the initial zeros (biases, peepholes) so every path carries signal
    model._net.theta += np.random.RandomState(1).normal(scale=0.3, size=model._net.size)
    return model


def _numeric(model, X, eps=1e-6):
    """Central differences of predict, shaped (n_samples, n_outputs) + X.shape[1:]."""
    base = model.predict(X)
    n_out = 1 if base.ndim == 1 else base.shape[1]
    out = np.zeros((len(X), n_out) + X.shape[1:])
    for i in range(len(X)):
        for idx in np.ndindex(X.shape[1:]):
            Xp, Xm = X.copy(), X.copy()
            Xp[(i,) + idx] += eps
            Xm[(i,) + idx] -= eps
            diff = (model.predict(Xp)[i] - model.predict(Xm)[i]) / (2 * eps)
            out[(i, slice(None)) + idx] = diff
    return out


@pytest.mark.parametrize("cls,kw", VARIANTS, ids=IDS)
def test_gradient_matches_finite_differences_for_every_cell(cls, kw):
    model = _fit(cls, kw, Y2)
    grad = model.input_gradients(X3)
    assert grad.shape == (5, 2, 4, 2)  # one gradient per output, shaped like X's samples
    numeric = _numeric(model, X3)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert np.abs(grad).max() > 1e-3
    # the flattened layout gives the same numbers in X's 2D shape
    flat = model.input_gradients(X3.reshape(5, 8))
    np.testing.assert_array_equal(flat, grad.reshape(5, 2, 8))


@pytest.mark.skipif(not compiled_available(), reason="the compiled engine is not built")
@pytest.mark.parametrize("cls,kw", VARIANTS, ids=IDS)
def test_both_engines_give_the_same_gradient(cls, kw):
    model = _fit(cls, kw, Y2)
    with engine("compiled"):
        compiled = model.input_gradients(X3)
    with engine("numpy"):
        reference = model.input_gradients(X3)
    np.testing.assert_allclose(compiled, reference, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("params", [
    {"loss": "poisson"},
    {"output_activation": "softplus"},
    {"output_activation": "relu"},
    {"loss": "quantile", "quantiles": [0.1, 0.5, 0.9]},
    {"loss": "quantile", "quantiles": [0.2, 0.6]},  # predict interpolates two levels
], ids=str)
def test_gradient_goes_through_the_output_link(params):
    y = np.abs(Y2[:, 0]) + 0.1
    model = _fit(GRURegressor, {}, y, **params)
    if params.get("output_activation") == "relu":  # keep every row off relu's kink
        model._net.head_params["b"] += 3.0
    grad = model.input_gradients(X3)
    assert grad.shape == X3.shape  # 1D y: shaped like X
    np.testing.assert_allclose(grad, _numeric(model, X3)[:, 0], rtol=1e-5, atol=1e-8)


def test_per_step_targets_attribute_the_last_step():
    Y3 = np.repeat(Y2[:, None, :1], 4, axis=1)
    model = _fit(LSTMRegressor, {}, Y3)
    grad = model.input_gradients(X3)
    assert grad.shape == (5, 1, 4, 2)
    np.testing.assert_allclose(grad, _numeric(model, X3), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("cls,kw", VARIANTS, ids=IDS)
def test_integrated_gradients_are_complete(cls, kw):
    model = _fit(cls, kw, Y2)
    # relu's gradient jumps along the path: quadrature converges like 1/n there,
    # against spectrally for the smooth cells
    relu = kw.get("activation") == "relu"
    n_steps, tol = (256, 1e-3) if relu else (50, 1e-6)
    ig = model.input_gradients(X3, method="integrated", n_steps=n_steps)
    gap = model.predict(X3) - model.predict(np.zeros_like(X3))
    total = ig.sum(axis=(2, 3))
    np.testing.assert_allclose(total, gap, rtol=tol, atol=tol)
    # a baseline given as one sample is broadcast to all
    base = RNG.normal(size=(4, 2))
    ig_b = model.input_gradients(X3.reshape(5, 8), method="integrated",
                                 baseline=base.reshape(8), n_steps=n_steps)
    assert ig_b.shape == (5, 2, 8)
    gap_b = model.predict(X3) - model.predict(np.broadcast_to(base, X3.shape))
    np.testing.assert_allclose(ig_b.sum(axis=2), gap_b, rtol=tol, atol=tol)


def test_integrated_gradients_with_one_node_is_the_midpoint_rule():
    model = _fit(GRURegressor, {}, Y2[:, 0])
    base = np.full_like(X3, 0.3)
    ig = model.input_gradients(X3, method="integrated", baseline=base, n_steps=1)
    mid = model.input_gradients((X3 + base) / 2)
    np.testing.assert_allclose(ig, (X3 - base) * mid, rtol=1e-12)


def test_bad_arguments():
    model = _fit(GRURegressor, {}, Y2[:, 0])
    with pytest.raises(ValueError, match="method must be 'gradient' or 'integrated'"):
        model.input_gradients(X3, method="saliency")
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        model.input_gradients(X3, method="integrated", n_steps=0)
    with pytest.raises(ValueError, match=r"baseline must have the shape of X, \(5, 4, 2\)"):
        model.input_gradients(X3, method="integrated", baseline=np.zeros(3))
    with pytest.raises(ValueError, match="baseline contains NaN"):
        model.input_gradients(X3, method="integrated", baseline=np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="3 time steps"):
        model.input_gradients(X3[:, :3])
    with pytest.raises(NotFittedError):
        GRURegressor().input_gradients(X3)


def test_plot_lag_importance_bars_are_mean_absolute_attributions():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skrnn.plotting import plot_lag_importance

    model = _fit(GRURegressor, {}, Y2)  # two outputs, 4 steps of 2 features
    fig = plot_lag_importance(model, X3, method="gradient", output=1)
    bars = fig.axes[0].patches
    assert len(bars) == 8  # 4 lags x 2 stacked step features
    expected = np.abs(model.input_gradients(X3)[:, 1]).mean(axis=0)  # (T, F)
    heights = np.array([b.get_height() for b in bars]).reshape(2, 4).T
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["1", "2", "3", "4"]  # lag 1 (the last step) is the rightmost bar
    assert fig.axes[0].get_xticks()[0] == 3
    with pytest.raises(ValueError, match=r"output must be in \[0, 2\)"):
        plot_lag_importance(model, X3, output=2)
    # a Pipeline explains its regressor's input: the scaled lags
    one = GRURegressor(units=3, max_iter=2, random_state=0)
    pipe = make_pipeline(StandardScaler(), one).fit(X3.reshape(5, 8), Y2[:, 0])
    fig = plot_lag_importance(pipe, X3.reshape(5, 8))
    ig = one.input_gradients(pipe[0].transform(X3.reshape(5, 8)), method="integrated")
    heights = [b.get_height() for b in fig.axes[0].patches]
    np.testing.assert_allclose(heights, np.abs(ig).mean(axis=0), rtol=1e-12)
    with pytest.raises(TypeError, match="needs a skrnn recurrent regressor"):
        plot_lag_importance(StandardScaler().fit(X3.reshape(5, 8)), X3.reshape(5, 8))
    matplotlib.pyplot.close("all")
