"""Quantile regression: the pinball loss, multi-quantile heads, predict_quantiles."""

import numpy as np
import pytest
from cell_variants import CELLS
from cell_variants import relative_error as _relative_error
from sklearn.base import clone
from sklearn.metrics import make_scorer, mean_pinball_loss
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor, persistence
from skrnn.nn._losses import loss_and_grad
from skrnn.nn._network import RecurrentNetwork

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

T, B, F, N_TARGETS = 4, 3, 2, 2


def _noisy(n=400, seed=0):
    """Windows of a sine whose next value has skewed (exponential) noise."""
    rng = np.random.RandomState(seed)
    t = np.arange(n + 6, dtype=float)
    s = np.sin(t / 4)
    X = np.stack([s[i : i + 6] for i in range(n)])
    y = X[:, -1] + rng.exponential(0.5, size=n)
    return X, y


# -- the loss and its gradient -----------------------------------------------------------


@pytest.mark.parametrize("levels", [[0.3], [0.1, 0.5, 0.9]])
def test_pinball_loss_equals_sklearn_and_its_gradient(levels):
    rng = np.random.RandomState(0)
    y = rng.normal(size=(7, N_TARGETS))
    Z = rng.normal(size=(7, N_TARGETS * len(levels)))
    sw = rng.uniform(0.5, 2, size=7)
    value, grad = loss_and_grad(Z, y, sw, "quantile", "identity", quantiles=levels)
    P = Z.reshape(7, N_TARGETS, len(levels))
    expected = np.mean([mean_pinball_loss(y, P[..., k], alpha=q, sample_weight=sw)
                        for k, q in enumerate(levels)])
    assert value == pytest.approx(expected, rel=1e-12)
    eps = 1e-7
    numeric = np.empty_like(Z)
    for idx in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[idx] += eps
        Zm[idx] -= eps
        numeric[idx] = (loss_and_grad(Zp, y, sw, "quantile", "identity", quantiles=levels)[0]
                        - loss_and_grad(Zm, y, sw, "quantile", "identity",
                                        quantiles=levels)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("levels", [[0.7], [0.1, 0.5, 0.9]], ids=["single", "multi"])
@pytest.mark.parametrize("head", ["last", "sequence"])
def test_bptt_with_pinball_loss_matches_finite_differences(cell, kwargs, levels, head):
    rng = np.random.RandomState(1)
    net = RecurrentNetwork(cell, F, (3, 2), N_TARGETS * len(levels), head=head,
                           cell_kwargs=kwargs)
    net.initialize(rng)
    net.theta += rng.normal(scale=0.3, size=net.size)
    X = rng.normal(size=(T, B, F))
    y = rng.normal(size=(B, N_TARGETS) if head == "last" else (B, T, N_TARGETS))
    sw = rng.uniform(0.5, 2.0, size=B)
    activation = "softplus" if cell == "lstm" else "identity"
    err = _relative_error(net, X, y, sw, loss="quantile", output_activation=activation,
                          alpha=0.3, quantiles=levels)
    assert err < 1e-6
    assert np.abs(net.grad).max() > 1e-3  # the check is not vacuous


# -- scikit-learn compatibility ------------------------------------------------------------


# the pinball loss, like absolute_error, has gradients that do not shrink near the
# optimum: at the default learning rate 200 epochs reach R² ~0.45 on the checks' data
# (absolute_error gets the same), below check_regressors_train's 0.5
@parametrize_with_checks([
    GRURegressor(loss="quantile", quantile=0.5, learning_rate_init=0.01),
    LSTMRegressor(loss="quantile", quantiles=[0.1, 0.5, 0.9], learning_rate_init=0.01),
])
def test_quantile_models_pass_sklearn_checks(estimator, check):
    check(estimator)


def test_pinball_scorer_in_grid_search_prefers_the_quantile_model():
    X, y = _noisy(300)
    scorer = make_scorer(mean_pinball_loss, alpha=0.9, greater_is_better=False)
    base = GRURegressor(units=6, max_iter=60, learning_rate_init=0.02, random_state=0)
    search = GridSearchCV(
        base,
        [{"loss": ["quantile"], "quantile": [0.9]}, {"loss": ["squared_error"]}],
        scoring=scorer, cv=TimeSeriesSplit(3),
    ).fit(X, y)
    assert search.best_params_ == {"loss": "quantile", "quantile": 0.9}
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0) and scores[0] > scores[1]
    # the refit model's score is the negated pinball loss of its predictions
    best = search.best_estimator_
    assert scorer(best, X, y) == pytest.approx(-mean_pinball_loss(y, best.predict(X),
                                                                   alpha=0.9))


# -- what the models predict ------------------------------------------------------------------


def test_levels_cover_their_share_and_predict_is_the_median():
    X, y = _noisy(600)
    model = LSTMRegressor(units=8, max_iter=150, loss="quantile", quantiles=[0.1, 0.5, 0.9],
                          learning_rate_init=0.01, random_state=0).fit(X[:400], y[:400])
    Q = model.predict_quantiles(X[400:])
    assert Q.shape == (200, 3)
    assert np.all(np.diff(Q, axis=1) >= 0)
    coverage = (y[400:, None] <= Q).mean(axis=0)
    np.testing.assert_allclose(coverage, [0.1, 0.5, 0.9], atol=0.08)
    np.testing.assert_array_equal(model.predict(X[400:]), Q[:, 1])
    np.testing.assert_array_equal(model.predict_quantiles(X[400:], quantiles=[0.9]),
                                  Q[:, [2]])
    assert model.quantiles_.tolist() == [0.1, 0.5, 0.9]


def _with_head(model, rows):
    """Put a crossing head into a fitted model: output k is ``rows[k]`` times the state
    sum plus nothing, so the raw levels come out in any order we like."""
    sd = model.get_weights()
    H = sd["head.weight"].shape[1]
    sd["head.weight"] = np.repeat(np.asarray(rows, float)[:, None], H, axis=1)
    sd["head.bias"] = np.zeros(len(rows))
    return model.set_weights(sd)


def test_crossing_head_outputs_are_sorted():
    X, y = _noisy(60)
    model = SimpleRNNRegressor(units=3, max_iter=2, loss="quantile",
                               quantiles=[0.1, 0.5, 0.9], random_state=0).fit(X, y)
    _with_head(model, [3.0, -1.0, 0.5])  # levels 0.1 > 0.5 for a positive state sum
    raw = model._net.predict(np.ascontiguousarray(X.reshape(60, 6, 1).transpose(1, 0, 2)),
                             loss="quantile", output_activation="identity")
    assert np.any(raw[:, 0] > raw[:, 1]) and np.any(raw[:, 0] < raw[:, 1])  # they cross
    Q = model.predict_quantiles(X)
    np.testing.assert_array_equal(Q, np.sort(raw, axis=1))
    np.testing.assert_array_equal(model.predict(X), np.median(raw, axis=1))


@pytest.mark.parametrize("levels,weights", [
    ([0.1, 0.9], [0.5, 0.5]),      # no median: interpolated between the neighbours
    ([0.2, 0.3, 0.7], [0, 0.5, 0.5]),
    ([0.6, 0.8], [1, 0]),           # all above 0.5: the nearest level
    ([0.05, 0.25], [0, 1]),
])
def test_predict_without_a_median_level(levels, weights):
    X, y = _noisy(60)
    model = GRURegressor(units=3, max_iter=2, loss="quantile", quantiles=levels,
                         random_state=0).fit(X, y)
    np.testing.assert_allclose(model.predict(X), model.predict_quantiles(X) @ weights,
                               rtol=1e-12)


def test_single_quantile_predict_is_that_quantile():
    X, y = _noisy(300)
    model = GRURegressor(units=6, max_iter=80, learning_rate_init=0.02, loss="quantile",
                         quantile=0.8, random_state=0).fit(X, y)
    pred = model.predict(X)
    np.testing.assert_array_equal(model.predict_quantiles(X)[:, 0], pred)
    assert abs((y <= pred).mean() - 0.8) < 0.08


def test_multi_target_and_per_step_layouts():
    X, y = _noisy(80)
    Y2 = np.c_[y, -y]
    model = LSTMRegressor(units=4, max_iter=3, loss="quantile", quantiles=[0.25, 0.5, 0.75],
                          random_state=0).fit(X, Y2)
    assert model.n_outputs_ == 2 and model._net.n_outputs == 6
    Q = model.predict_quantiles(X)
    assert Q.shape == (80, 2, 3)
    np.testing.assert_array_equal(model.predict(X), Q[:, :, 1])
    # the head is target-major: outputs 0..2 are target 0's levels
    raw = model._net.predict(np.ascontiguousarray(X.reshape(80, 6, 1).transpose(1, 0, 2)),
                             loss="quantile", output_activation="identity")
    np.testing.assert_array_equal(Q, np.sort(raw.reshape(80, 2, 3), axis=-1))
    # per-step (3D) targets: quantiles of the last step
    Y3 = np.repeat(y[:, None, None], 6, axis=1)
    seq = GRURegressor(units=4, max_iter=3, loss="quantile", quantiles=[0.2, 0.8],
                       random_state=0).fit(X, Y3)
    assert seq.predict_quantiles(X).shape == (80, 1, 2)
    assert seq.predict(X).shape == (80, 1)


def test_early_stopping_and_sample_weight_with_quantiles():
    X, y = _noisy(200)
    sw = np.r_[np.ones(100), 2 * np.ones(100)]
    model = LSTMRegressor(units=4, max_iter=20, loss="quantile", quantiles=[0.1, 0.9],
                          early_stopping=True, random_state=0).fit(X, y, sample_weight=sw)
    assert len(model.validation_scores_) == model.n_iter_
    assert np.all(np.isfinite(model.validation_loss_curve_))


def test_initial_head_bias_is_each_levels_quantile():
    X, y = _noisy(200)
    model = GRURegressor(units=4, max_iter=1, loss="quantile", quantiles=[0.1, 0.9],
                         learning_rate_init=1e-12, random_state=0).fit(X, y)
    # the training rows (all of them here), weighted quantiles by the inverted CDF
    np.testing.assert_allclose(model._net.head_params["b"],
                               np.quantile(y, [0.1, 0.9], method="inverted_cdf"), atol=1e-9)


# -- persistence and weights -----------------------------------------------------------------


def test_save_load_and_weights_keep_the_quantile_head(tmp_path):
    X, y = _noisy(80)
    model = LSTMRegressor(units=4, max_iter=3, loss="quantile", quantiles=[0.1, 0.5, 0.9],
                          random_state=0).fit(X, np.c_[y, 2 * y])
    loaded = persistence.load(persistence.save(model, tmp_path / "q.skops"))
    np.testing.assert_array_equal(loaded.predict_quantiles(X), model.predict_quantiles(X))
    np.testing.assert_array_equal(loaded.quantiles_, model.quantiles_)
    fresh = clone(model).set_weights(model.get_weights())
    assert fresh.n_outputs_ == 2
    np.testing.assert_array_equal(fresh.predict_quantiles(X), model.predict_quantiles(X))
    np.testing.assert_array_equal(fresh.predict(X), model.predict(X))
    # a head whose size is not a multiple of the levels is refused
    wrong = LSTMRegressor(units=4, loss="quantile", quantiles=[0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError, match="not a multiple of the 4 quantile levels"):
        wrong.set_weights(model.get_weights())


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params,match", [
    ({"quantile": 0.5}, "only used with loss='quantile'"),
    ({"quantiles": [0.1, 0.9], "loss": "huber"}, "only used with loss='quantile'"),
    ({"loss": "quantile"}, "exactly one of quantile=q .* got neither"),
    ({"loss": "quantile", "quantile": 0.5, "quantiles": [0.5]}, "got both"),
    ({"loss": "quantile", "quantiles": [0.1, 1.0]}, r"strictly between 0 and 1; got \[1.0\]"),
    ({"loss": "quantile", "quantiles": [-0.1, 0.5]}, "strictly between 0 and 1"),
    ({"loss": "quantile", "quantiles": [0.9, 0.1]}, r"sorted in increasing order.*\[0.1, 0.9\]"),
    ({"loss": "quantile", "quantiles": [0.5, 0.5]}, "must not repeat"),
    ({"loss": "quantile", "quantiles": []}, "non-empty"),
    ({"loss": "quantile", "quantiles": [[0.1, 0.2]]}, "non-empty 1D"),
])
def test_bad_quantile_parameters(params, match):
    X, y = _noisy(30)
    with pytest.raises(ValueError, match=match):
        GRURegressor(units=2, max_iter=1, **params).fit(X, y)


@pytest.mark.parametrize("q", [0.0, 1.0, 1.5, "0.5"])
def test_quantile_out_of_range_is_an_invalid_parameter(q):
    X, y = _noisy(30)
    with pytest.raises(InvalidParameterError, match="quantile"):
        GRURegressor(units=2, max_iter=1, loss="quantile", quantile=q).fit(X, y)


def test_predict_quantiles_refuses_point_models_and_unknown_levels():
    X, y = _noisy(40)
    point = GRURegressor(units=2, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="fitted with loss='quantile'.*'squared_error'"):
        point.predict_quantiles(X)
    model = GRURegressor(units=2, max_iter=1, loss="quantile", quantiles=[0.1, 0.9]).fit(X, y)
    with pytest.raises(ValueError, match=r"fitted for, \[0.1, 0.9\].*unknown: \[0.5\]"):
        model.predict_quantiles(X, quantiles=[0.1, 0.5])


def test_warm_start_cannot_change_the_levels():
    X, y = _noisy(40)
    model = GRURegressor(units=2, max_iter=1, loss="quantile", quantiles=[0.1, 0.9],
                         warm_start=True).fit(X, y)
    model.set_params(quantiles=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="fitted with quantile levels"):
        model.fit(X, y)
    model.set_params(quantiles=None, loss="squared_error")
    with pytest.raises(ValueError, match="fitted with quantile levels"):
        model.partial_fit(X, y)
    model.set_params(quantiles=[0.1, 0.9], loss="quantile")
    model.partial_fit(X, y)  # the same levels go on training
    assert model.n_iter_ == 2


def test_pinball_scorer_in_an_optuna_study():
    optuna = pytest.importorskip("optuna")
    from skrnn.tuning import TimeHoldout, tune

    X, y = _noisy(200)
    scorer = make_scorer(mean_pinball_loss, alpha=0.9, greater_is_better=False)
    result = tune(
        GRURegressor(units=4, max_iter=15, loss="quantile", quantile=0.9, random_state=0),
        X, y, search_space={"learning_rate_init": optuna.distributions.FloatDistribution(
            1e-3, 5e-2, log=True)},
        cv=TimeHoldout(test_size=0.25), scoring=scorer, n_trials=3, seed=0,
    )
    assert result.best_score < 0  # negated pinball loss, maximised
    best = clone(result.best_estimator).fit(X[:150], y[:150])
    assert result.best_score == pytest.approx(
        -mean_pinball_loss(y[150:], best.predict(X[150:]), alpha=0.9))
