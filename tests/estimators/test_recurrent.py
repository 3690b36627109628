"""Behaviour of the recurrent regressors as scikit-learn estimators."""

import io
import pickle
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor
from skrnn.exceptions import DivergenceError, DivergenceWarning

ALL = [SimpleRNNRegressor, LSTMRegressor, GRURegressor]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def sine_windows(n, n_steps=50, seed=0):
    """The teaching notebook's generator: two sines plus uniform noise per series."""
    rng = np.random.RandomState(seed)
    f1, f2, o1, o2 = rng.rand(4, n, 1)
    t = np.linspace(0, 1, n_steps + 1)
    s = (
        0.5 * np.sin((t - o1) * (f1 * 10 + 10))
        + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
        + 0.1 * (rng.rand(n, n_steps + 1) - 0.5)
    )
    return s[:, :-1], s[:, -1]


@pytest.fixture(scope="module")
def small():
    X, y = sine_windows(120, n_steps=8, seed=3)
    return X, y


def _fast(cls, **kw):
    params = dict(units=6, max_iter=4, batch_size=16, random_state=0)
    params.update(kw)
    return cls(**params)


# -- learning -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_beats_last_value_on_noisy_sine(cls):
    X, y = sine_windows(1500, seed=0)
    Xt, yt = sine_windows(500, seed=1)
    naive = np.mean((Xt[:, -1] - yt) ** 2)
    assert 0.015 < naive < 0.025  # the notebook's ≈ 0.020
    model = cls(units=16, batch_size=32, max_iter=12, learning_rate_init=0.01,
                random_state=0, dtype="float32").fit(X, y)
    mse = np.mean((model.predict(Xt) - yt) ** 2)
    assert mse < 0.7 * naive


def _copy_task(n, steps, lag, seed):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, steps))
    return X, X[:, -1 - lag]


@pytest.mark.parametrize("cls", [LSTMRegressor, GRURegressor])
def test_gated_cells_remember_twenty_steps(cls):
    # output = input 20 steps back: needs memory across the whole window
    X, y = _copy_task(2000, 22, 20, seed=0)
    Xt, yt = _copy_task(500, 22, 20, seed=1)
    model = cls(units=24, batch_size=32, max_iter=30, learning_rate_init=0.01,
                random_state=0, dtype="float32").fit(X, y)
    assert np.mean((model.predict(Xt) - yt) ** 2) < 0.05


# -- sklearn integration ----------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_pipeline_gridsearch_crossval_clone_pickle(cls, small):
    X, y = small
    pipe = Pipeline([("scale", StandardScaler()), ("rnn", _fast(cls))])
    grid = GridSearchCV(pipe, {"rnn__units": [3, 5]}, cv=TimeSeriesSplit(n_splits=3),
                        n_jobs=2).fit(X, y)
    assert grid.best_params_["rnn__units"] in (3, 5)
    scores = cross_val_score(_fast(cls), X, y, cv=TimeSeriesSplit(n_splits=3), n_jobs=2)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    fitted = _fast(cls).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert clone(fitted).get_params() == fitted.get_params()
    assert not hasattr(clone(fitted), "n_iter_")


@pytest.mark.parametrize("cls", ALL)
def test_same_random_state_gives_bit_identical_fits(cls, small):
    X, y = small
    kw = dict(dropout=0.2, recurrent_dropout=0.2, shuffle=True, early_stopping=True,
              validation_fraction=0.2)
    a = _fast(cls, **kw).fit(X, y)
    b = _fast(cls, **kw).fit(X, y)
    np.testing.assert_array_equal(a._net.theta, b._net.theta)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = _fast(cls, **{**kw, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a._net.theta, c._net.theta)


def test_2d_and_3d_inputs_are_the_same_sequences():
    rng = np.random.RandomState(0)
    X3 = rng.normal(size=(40, 5, 2))
    y = X3[:, -1, 0] - X3[:, 0, 1]
    X2 = X3.reshape(40, 10)  # step-major: [x(t-4) f0, x(t-4) f1, ..., x(t) f0, x(t) f1]
    a = _fast(LSTMRegressor).fit(X3, y)
    b = _fast(LSTMRegressor, n_step_features=2).fit(X2, y)
    np.testing.assert_array_equal(a._net.theta, b._net.theta)
    np.testing.assert_array_equal(a.predict(X2), b.predict(X3))
    assert (b.n_timesteps_, b.n_step_features_, b.n_features_in_) == (5, 2, 10)


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.zeros((10, 7)), {"n_step_features": 2}, "7 columns, which do not divide"),
        (np.zeros((10, 3, 2, 2)), {}, "got a 4D array"),
        (np.zeros((10, 3, 2)), {"n_step_features": 3}, "n_step_features=3"),
    ],
)
def test_bad_sequence_layouts_are_refused(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRURegressor(**kwargs).fit(X, np.zeros(10))


def test_predict_checks_steps_and_features():
    rng = np.random.RandomState(0)
    model = _fast(GRURegressor).fit(rng.normal(size=(30, 4, 2)), rng.normal(size=30))
    with pytest.raises(ValueError, match="features"):
        model.predict(rng.normal(size=(5, 6)))
    with pytest.raises(ValueError, match="5 time steps of 2 features"):
        model.predict(rng.normal(size=(5, 5, 2)))
    with pytest.raises(ValueError, match="4 time steps of 1 features"):
        model.predict(rng.normal(size=(5, 4, 1)))


# each invalid hyperparameter, checked before any training: tests/estimators/test_lifecycle.py


def test_poisson_needs_non_negative_targets(small):
    X, y = small
    with pytest.raises(ValueError, match="non-negative"):
        GRURegressor(loss="poisson").fit(X, y - 10)
    model = _fast(GRURegressor, loss="poisson").fit(X, np.abs(y) * 3)
    assert np.all(model.predict(X) > 0)


# -- training state -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_partial_fit_is_one_epoch_and_keeps_optimizer_state(cls, small):
    X, y = small
    full = _fast(cls, max_iter=3).fit(X, y)
    inc = _fast(cls)
    for _ in range(3):
        inc.partial_fit(X, y)
    # same random stream, same optimizer moments: the same three epochs
    assert inc.n_iter_ == 3
    np.testing.assert_array_equal(inc._net.theta, full._net.theta)
    assert inc.loss_curve_ == full.loss_curve_
    assert inc.t_ == 3 * len(X)


def test_warm_start_continues_training(small):
    X, y = small
    model = _fast(GRURegressor, warm_start=True, max_iter=3).fit(X, y)
    first = model.loss_curve_[-1]
    model.fit(X, y)
    assert model.n_iter_ == 6 and len(model.loss_curve_) == 6
    assert model.loss_curve_[-1] < first


def test_multi_output_direct_forecast(small):
    X, _ = small
    Y = np.column_stack([X[:, -1], X[:, -2], X[:, 0]])
    model = _fast(LSTMRegressor, max_iter=30, learning_rate_init=0.02).fit(X, Y)
    pred = model.predict(X)
    assert pred.shape == (len(X), 3) and model.n_outputs_ == 3
    assert model.score(X, Y) > 0.5


def test_sample_weight_zero_equals_dropping_rows(small):
    X, y = small
    sw = np.ones(len(y))
    sw[::3] = 0
    kw = dict(batch_size=len(y), shuffle=False)
    a = _fast(GRURegressor, **kw).fit(X, y, sample_weight=sw)
    b = _fast(GRURegressor, **{**kw, "batch_size": int(sw.sum())}).fit(X[sw > 0], y[sw > 0])
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


def test_early_stopping_uses_the_last_rows_and_restores_best(small):
    X, y = small
    model = _fast(LSTMRegressor, early_stopping=True, validation_fraction=0.25,
                  max_iter=25, n_iter_no_change=3, learning_rate_init=0.05).fit(X, y)
    n_val = int(np.ceil(0.25 * len(X)))
    assert len(model.validation_loss_curve_) == model.n_iter_
    assert model.best_iteration_ == 1 + int(np.argmin(model.validation_loss_curve_))
    # the restored weights give exactly the best epoch's validation loss (squared error / 2)
    pred = model.predict(X[-n_val:])
    np.testing.assert_allclose(
        0.5 * np.mean((pred - y[-n_val:]) ** 2),
        model.validation_loss_curve_[model.best_iteration_ - 1], rtol=1e-10)
    assert model.best_validation_score_ == model.validation_scores_[model.best_iteration_ - 1]
    assert model.best_loss_ is None


def test_training_loss_plateau_stops_before_max_iter(small):
    X, y = small
    model = _fast(SimpleRNNRegressor, max_iter=500, tol=10.0, n_iter_no_change=2).fit(X, y)
    # epoch 1 sets the best loss; epochs 2-4 fail to beat it by tol, and the third
    # such epoch exceeds n_iter_no_change (MLPRegressor counts the same way)
    assert model.n_iter_ == 4


def test_divergence_raises_and_leaves_estimator_unfitted(small):
    X, y = small
    model = _fast(SimpleRNNRegressor, solver="sgd", learning_rate_init=1e6, max_iter=20)
    with pytest.raises(DivergenceError, match="learning_rate_init"):
        model.fit(X, y * 1e3)
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_divergence_with_early_stopping_restores_best(small):
    X, y = small

    class Blowup:
        """Callback that ruins the weights after epoch 3, as an exploding step would."""

        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context, **kw):
            pass

        def on_fit_task_end(self, estimator, context, **kw):
            if context.task_name == "epoch" and estimator.n_iter_ == 3:
                estimator._net.theta[:] = np.inf

    model = _fast(GRURegressor, early_stopping=True, max_iter=10).set_callbacks(Blowup())
    with pytest.warns(DivergenceWarning, match="restored"):
        model.fit(X, y)
    assert model.n_iter_ == 3
    assert np.all(np.isfinite(model.predict(X)))


# Ctrl-C, failed refits, warm starts with another architecture: tests/estimators/test_lifecycle.py


def test_verbose_prints_each_epoch(small):
    X, y = small
    out = io.StringIO()
    with redirect_stdout(out):
        _fast(GRURegressor, verbose=True, max_iter=3).fit(X, y)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3 and "loss = " in lines[0]


def test_convergence_warning_when_max_iter_reached(small):
    X, y = small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fast(GRURegressor, max_iter=2).fit(X, y)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_float32_computation_returns_float64_predictions(small):
    X, y = small
    model = _fast(LSTMRegressor, dtype="float32").fit(X, y)
    assert model._net.theta.dtype == np.float32
    assert model.predict(X).dtype == np.float64


def test_gradient_norm_curve_is_pre_clipping(small):
    X, y = small
    model = _fast(SimpleRNNRegressor, clipnorm=1e-3).fit(X, y)
    assert len(model.grad_norm_curve_) == model.n_iter_
    assert min(model.grad_norm_curve_) > 1e-3


# -- callbacks ------------------------------------------------------------------------------


def test_callback_protocol_one_task_per_epoch_and_stop(small):
    X, y = small

    class Recorder:
        def __init__(self):
            self.events = []

        def setup(self, estimator, context):
            self.events.append("setup")

        def teardown(self, estimator, context):
            self.events.append("teardown")

        def on_fit_task_begin(self, estimator, context, **kw):
            self.events.append(("begin", context.task_name))

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, **kw):
            self.events.append(("end", context.task_name))
            if context.task_name == "epoch":
                # a ready-to-predict snapshot of the epoch is handed to callbacks
                assert np.all(np.isfinite(fitted_estimator.predict(X[:3])))
                return estimator.n_iter_ == 2  # ask to stop after two epochs

    rec = Recorder()
    model = _fast(GRURegressor, max_iter=10).set_callbacks(rec).fit(X, y)
    assert model.n_iter_ == 2
    assert rec.events.count(("end", "epoch")) == 2
    assert rec.events[0] == "setup" and rec.events[-1] == "teardown"


def test_sklearn_progress_bar_and_scoring_monitor(small):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar, ScoringMonitor

    X, y = small
    monitor = ScoringMonitor(scoring="r2")
    _fast(LSTMRegressor, max_iter=3).set_callbacks(ProgressBar(), monitor).fit(X, y)
    log = monitor.get_logs(select="most_recent")
    log = next(iter(log.values())) if isinstance(log, dict) else log
    assert len(log.data) >= 3  # one score per epoch (plus the fit task's own)
    grid = GridSearchCV(_fast(GRURegressor), {"units": [2, 3]}, cv=TimeSeriesSplit(2))
    grid.set_callbacks(ProgressBar()).fit(X, y)
    assert grid.best_estimator_.n_iter_ == 4


# -- weights and states ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kw",
    [(SimpleRNNRegressor, {}), (LSTMRegressor, {}), (LSTMRegressor, {"peephole": True}),
     (GRURegressor, {}), (GRURegressor, {"reset_after": False})],
)
def test_weights_round_trip(cls, kw, small):
    X, y = small
    a = _fast(cls, units=(4, 3), **kw).fit(X, y)
    b = cls(units=(4, 3), **kw).set_weights(a.get_weights())
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-12)
    sd = a.get_weights()
    G = {SimpleRNNRegressor: 1, LSTMRegressor: 4, GRURegressor: 3}[cls]
    assert sd["weight_ih_l0"].shape == (G * 4, 1)
    assert sd["weight_hh_l1"].shape == (G * 3, 3)
    assert sd["head.weight"].shape == (1, 3)


def test_lstm_states_are_consistent():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 6))
    model = _fast(LSTMRegressor, units=(5, 3)).fit(X, X[:, -1])
    states = model.get_states(X[:4])
    assert len(states) == 2
    top = states[-1]
    assert top["h"].shape == (4, 6, 3)
    np.testing.assert_allclose(top["h"], top["output_gate"] * np.tanh(top["c"]), atol=1e-12)
    # the head reads the last step of the top layer
    sd = model.get_weights()
    pred = top["h"][:, -1] @ sd["head.weight"].T + sd["head.bias"]
    np.testing.assert_allclose(pred.ravel(), model.predict(X[:4]), rtol=1e-10)


# -- initialisation and schedules --------------------------------------------------------------


# initial weights, gates of get_states and the Huber loss against hand computations:
# tests/estimators/test_lifecycle.py


def test_adaptive_schedule_divides_the_learning_rate_by_five(small):
    X, y = small
    model = _fast(SimpleRNNRegressor, solver="sgd", learning_rate="adaptive",
                  learning_rate_init=0.01, tol=10.0, n_iter_no_change=1, max_iter=6)
    model.fit(X, y)
    # epoch 1 sets the best loss; no later epoch improves by tol=10, so the count of
    # bad epochs exceeds n_iter_no_change=1 at epochs 3 and 5: two divisions by 5,
    # and training goes on (MLPRegressor's rule) instead of stopping
    assert model._training.optimizer.learning_rate == pytest.approx(0.01 / 5**2)
    assert model.n_iter_ == 6
