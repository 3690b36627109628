"""The epoch-callback base (skrnn._callbacks) and the public training curves it reads."""

import numpy as np
import pytest
from sklearn.callback import ProgressBar
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrnn import GRURegressor, LSTMRegressor
from skrnn._callbacks import EpochCallback, add_callbacks, callbacks_of

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X = np.sin(np.arange(480, dtype=float) / 5).reshape(80, 6)
Y = X[:, -1] * 0.9 + 0.1


class Recorder(EpochCallback):
    """Records what the base class dispatches; stops after ``stop_at`` epochs."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.calls = []

    def setup(self, estimator, context):
        self.calls.append("setup")

    def teardown(self, estimator, context):
        self.calls.append("teardown")

    def on_epoch_end(self, estimator):
        self.calls.append(("epoch", estimator.n_iter_, estimator.loss_curve_[-1]))
        return estimator.n_iter_ == self.stop_at

    def on_fit_end(self, estimator):
        self.calls.append(("fit_end", estimator.n_iter_))


def test_hooks_are_dispatched_once_per_epoch_and_fit():
    cb = Recorder()
    model = LSTMRegressor(units=3, max_iter=4, random_state=0).set_callbacks(cb)
    model.fit(X, Y)
    epochs = [c for c in cb.calls if c[0] == "epoch"]
    assert [c[1] for c in epochs] == [1, 2, 3, 4]
    assert [c[2] for c in epochs] == model.loss_curve_
    assert cb.calls[0] == "setup" and cb.calls[-2:] == [("fit_end", 4), "teardown"]


def test_a_true_epoch_hook_stops_training():
    model = GRURegressor(units=3, max_iter=10, random_state=0).set_callbacks(
        Recorder(stop_at=3))
    model.fit(X, Y)
    assert model.n_iter_ == 3


def test_dispatch_inside_a_pipeline_with_propagated_callbacks():
    # a ProgressBar on the Pipeline merges the regressor's task tree into the
    # Pipeline's; the regressor's own fit must still be recognised as its fit
    cb = Recorder()
    pipe = make_pipeline(StandardScaler(),
                         LSTMRegressor(units=3, max_iter=3, random_state=0).set_callbacks(cb))
    pipe.set_callbacks(ProgressBar())
    pipe.fit(X, Y)
    assert [c for c in cb.calls if c[0] != "epoch"] == ["setup", ("fit_end", 3), "teardown"]
    assert sum(c[0] == "epoch" for c in cb.calls) == 3


def test_add_callbacks_keeps_the_others_and_each_once():
    a, b = Recorder(), Recorder()
    model = LSTMRegressor().set_callbacks(a)
    add_callbacks(model, b)
    add_callbacks(model, a)
    assert callbacks_of(model) == [b, a]
    assert callbacks_of(object()) == []


def test_learning_rate_curve_is_the_rate_of_each_epoch():
    const = LSTMRegressor(units=3, max_iter=3, learning_rate_init=0.01, random_state=0)
    assert const.fit(X, Y).learning_rate_curve_ == [0.01] * 3
    # sgd with invscaling: epoch k+1 steps with init / (t_ after epoch k + 1) ** power_t
    inv = LSTMRegressor(units=3, max_iter=4, solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.05, power_t=0.5, random_state=0).fit(X, Y)
    n = len(X)
    expected = [0.05] + [0.05 / (k * n + 1) ** 0.5 for k in (1, 2, 3)]
    np.testing.assert_allclose(inv.learning_rate_curve_, expected, rtol=1e-12)
    # adaptive: divided by 5 once the loss stops improving for n_iter_no_change epochs
    ada = LSTMRegressor(units=3, max_iter=12, solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.5, n_iter_no_change=1, tol=10.0,
                        random_state=0).fit(X, Y)
    rates = ada.learning_rate_curve_
    assert len(rates) == ada.n_iter_ and rates[0] == 0.5
    assert {round(r / 0.5, 12) for r in rates} <= {1.0, 0.2, 0.04, 0.008, 0.0016, 0.00032,
                                                   6.4e-05, 1.28e-05, 2.56e-06}
    assert rates[-1] < rates[0]
    # warm start continues the curve
    const.set_params(warm_start=True, max_iter=2).fit(X, Y)
    assert const.learning_rate_curve_ == [0.01] * 5
