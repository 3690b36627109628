"""Bad input, table-driven: each case names the exception type and the words of its message.

The same table is documented in the README ("When input is wrong"). Every case must
fail loudly with a message that tells the user what is wrong, never a NaN result or a
traceback from deep inside NumPy.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skrnn import (
    GRURegressor,
    GroupScaler,
    LagFeatures,
    LastValueRegressor,
    LSTMRegressor,
    SeasonalNaiveRegressor,
    SimpleRNNRegressor,
    make_supervised,
)
from skrnn.exceptions import DivergenceError

rng = np.random.RandomState(0)
X = rng.normal(size=(30, 6))
y = rng.normal(size=30)


def fitted(cls=GRURegressor, **kw):
    return cls(units=3, max_iter=2, random_state=0, **kw).fit(X, y)


def panel(n=10, groups=("a", "b")):
    dates = pd.date_range("2021-01-01", periods=n)
    return pd.DataFrame({
        "date": np.tile(dates, len(groups)),
        "district": np.repeat(groups, n),
        "crimes": np.arange(n * len(groups), dtype=float),
    })


def with_nan(a, where=(3, 2)):
    a = a.copy()
    a[where] = np.nan
    return a


def fit(est, Xv=X, yv=y, **kw):
    return lambda: est.fit(Xv, yv, **kw)


def experiment(**edits):
    from skrnn.experiment import parse_experiment

    raw = {
        "name": "t",
        "data": {"source": "generated", "params": {"n_groups": 1, "periods": 60},
                 "group": "district", "value": "crimes"},
        "split": {"test_periods": 10},
        "models": [{"name": "naive", "kind": "last_value"}],
    }
    for dotted, value in edits.items():
        *path, key = dotted.split(".")
        node = raw
        for p in path:
            node = node[p]
        node[key] = value
    return lambda: parse_experiment(raw)


def run_experiment_with(**split):
    from skrnn.experiment import parse_experiment, run_experiment

    def go():
        exp = parse_experiment({
            "name": "t", "data": {"source": "generated", "group": "district", "value": "crimes",
                                  "params": {"n_groups": 1, "periods": 40}},
            "split": split, "features": {"max_lags": 3, "lags": 2},
            "models": [{"name": "naive", "kind": "last_value"}],
            "tracking": {"enabled": False},
        })
        run_experiment(exp, output="/tmp/skrnn-bad-input", progress=False)
    return go


CASES = [
    # -- regressors: data -------------------------------------------------------------------
    ("NaN in X", fit(GRURegressor(), with_nan(X)), ValueError, "Input X contains NaN"),
    ("inf in X", fit(GRURegressor(), np.where(X > 2, np.inf, X)), ValueError, "infinity"),
    ("NaN in y", fit(GRURegressor(), X, with_nan(y, 4)), ValueError, "Input y contains NaN"),
    ("strings in X", fit(LSTMRegressor(), np.array([["a"] * 6] * 30)), ValueError,
     "could not convert string"),
    ("objects in y", fit(LSTMRegressor(), X, np.array([object()] * 30)), ValueError,
     "y must be numeric"),
    ("empty X", fit(GRURegressor(), np.empty((0, 6)), np.empty(0)), ValueError,
     "0 sample"),
    ("one sample with early stopping", fit(GRURegressor(early_stopping=True), X[:1], y[:1]),
     ValueError, "leaves no training sample"),
    ("2D X not dividing into steps", fit(GRURegressor(n_step_features=4)), ValueError,
     "6 columns, which do not divide into time steps of 4 features"),
    ("4D X", fit(GRURegressor(), X.reshape(30, 3, 2, 1)), ValueError, "got a 4D array"),
    ("3D X with another n_step_features", fit(GRURegressor(n_step_features=3),
                                              X.reshape(30, 3, 2)),
     ValueError, "features per step, but n_step_features=3"),
    ("wrong number of columns at predict", lambda: fitted().predict(X[:, :4]), ValueError,
     "X has 4 features, but GRURegressor is expecting 6"),
    ("wrong steps at predict", lambda: fitted().predict(X.reshape(30, 3, 2)), ValueError,
     "3 time steps of 2 features, but this GRURegressor was fitted with 6 time steps of 1"),
    ("y with other length", fit(GRURegressor(), X, y[:20]), ValueError,
     "inconsistent numbers of samples"),
    ("negative y with Poisson", fit(GRURegressor(loss="poisson"), X, y), ValueError,
     "loss='poisson' needs a non-negative target"),
    ("negative sample_weight", fit(GRURegressor(), X, y, sample_weight=-np.ones(30)),
     ValueError, "Negative values in data passed to"),
    ("all-zero sample_weight", fit(GRURegressor(), X, y, sample_weight=np.zeros(30)),
     ValueError, "Sample weights must contain at least one non-zero number"),
    ("predict before fit", lambda: GRURegressor().predict(X), NotFittedError, "not fitted"),
    ("diverging training", fit(SimpleRNNRegressor(solver="sgd", learning_rate_init=1e6,
                                                  max_iter=100), X, y * 1e3),
     DivergenceError, "Lower learning_rate_init"),
    ("weights of another shape", lambda: GRURegressor(units=5).set_weights(
        fitted().get_weights()), ValueError, "does not match the weights"),
    # -- regressors: hyperparameters -------------------------------------------------------
    ("units = 0", fit(GRURegressor(units=0)), InvalidParameterError, "'units' parameter"),
    ("unknown solver", fit(LSTMRegressor(solver="lbfgs")), InvalidParameterError,
     "'solver' parameter"),
    ("dropout = 1.5", fit(LSTMRegressor(dropout=1.5)), InvalidParameterError,
     "'dropout' parameter"),
    ("negative learning rate", fit(GRURegressor(learning_rate_init=-0.1)),
     InvalidParameterError, "'learning_rate_init' parameter"),
    ("units tuple with a zero", fit(GRURegressor(units=(4, 0))), ValueError,
     "units must be a positive int"),
    # -- lag tools ---------------------------------------------------------------------------
    ("lags >= series length", lambda: make_supervised(panel(5), "crimes", lags=5,
                                                      group="district", date="date"),
     ValueError, "too short"),
    ("a group shorter than its window",
     lambda: make_supervised(pd.concat([panel(12, ("a",)), panel(3, ("b",))]), "crimes",
                             lags=4, group="district", date="date"),
     ValueError, "'b'"),
    ("duplicated (date, group)", lambda: LagFeatures(lags=2, group="district", date="date")
     .fit_transform(pd.concat([panel(), panel().iloc[:1]])), ValueError, "uplicate"),
    ("gappy dates", lambda: LagFeatures(lags=2, group="district", date="date")
     .fit_transform(panel().drop(index=4)), ValueError, "has gaps inside 1 series"),
    ("lags = 0", lambda: LagFeatures(lags=0).fit(X), InvalidParameterError, "'lags' parameter"),
    ("horizon larger than the series",
     lambda: make_supervised(panel(6), "crimes", lags=2, horizon=6, group="district",
                             date="date"), ValueError, "too short"),
    # -- baselines and scaling ---------------------------------------------------------------
    ("seasonal period longer than the window", lambda: SeasonalNaiveRegressor(sp=7).fit(X, y),
     ValueError, "needs a window of at least 7 steps"),
    ("baseline column that does not exist",
     lambda: LastValueRegressor(columns=["nope"]).fit(pd.DataFrame(X).add_prefix("c"), y),
     ValueError, "nope"),
    ("scaler sees an unknown group",
     lambda: GroupScaler(group="district").fit(panel().set_index("district")[["crimes"]])
     .transform(panel(groups=("z",)).set_index("district")[["crimes"]]), ValueError, "'z'"),
    # -- experiments, tuning -----------------------------------------------------------------
    ("experiment with an unknown key", experiment(**{"data.colour": "red"}), ValueError,
     "data.colour: unknown key"),
    ("experiment with a wrong type", experiment(**{"split.test_periods": "ten"}), ValueError,
     "split.test_periods"),
    ("experiment without models", experiment(models=[]), ValueError, "models"),
    ("experiment with a missing data file",
     lambda: __import__("skrnn.experiment", fromlist=["load_data"]).load_data(
         experiment(**{"data.source": "csv", "data.path": "/nonexistent.csv"})().data),
     ValueError, "data file not found"),
    ("holdout longer than the data", run_experiment_with(test_periods=500), ValueError,
     "leaves no training dates"),
    ("unreachable storage URL",
     lambda: __import__("skrnn.tuning", fromlist=["make_storage"]).make_storage(
         "postgresql://user:pw@127.0.0.1:9/db"), ValueError,
     "Could not open the Optuna storage"),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("call, exc, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), f"message was: {info.value}"


def test_the_table_has_at_least_thirty_cases():
    assert len(CASES) >= 30
