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
    GroupScaler,
    GRURegressor,
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
    ("NaN in X", fit(GRURegressor(), with_nan(X)), ValueError,
     ("Input X contains NaN.", "does not accept missing values encoded as NaN")),
    ("inf in X", fit(GRURegressor(), np.where(X > 2, np.inf, X)), ValueError,
     "Input X contains infinity or a value too large for dtype('float64')."),
    ("NaN in y", fit(GRURegressor(), X, with_nan(y, 4)), ValueError, "Input y contains NaN."),
    ("strings in X", fit(LSTMRegressor(), np.array([["a"] * 6] * 30)), ValueError,
     ("X must be numeric: it holds 'a' (of type str), which is not a number.",
      ("Pass numbers of shape (n_samples, timesteps * n_step_features) or (n_samples, "
      "timesteps, n_step_features); encode categorical values"))),
    ("strings in y", fit(LSTMRegressor(), X, np.array(["x"] * 30)), ValueError,
     ("y must be numeric: it holds 'x' (of type str), which is not a number. Pass numbers "
     "of shape (n_samples,) or (n_samples, n_outputs)")),
    ("objects in y", fit(LSTMRegressor(), X, np.array([object()] * 30)), ValueError,
     ("y must be numeric: it holds '<object object at", "(of type object), which is not "
      "a number (float() argument must be a string or a real number, not 'object'). Pass "
      "numbers of shape (n_samples,) or (n_samples, n_outputs)")),
    ("empty X", fit(GRURegressor(), np.empty((0, 6)), np.empty(0)), ValueError,
     ("Found array with 0 sample(s) (shape=(0, 6)) while a minimum of 1 is required by "
     "GRURegressor.")),
    ("one sample with early stopping", fit(GRURegressor(early_stopping=True), X[:1], y[:1]),
     ValueError, ("early_stopping holds out the last 10% of the samples for validation, which "
     "leaves no training sample out of 1. Provide more samples or set early_stopping=False.")),
    ("2D X not dividing into steps", fit(GRURegressor(n_step_features=4)), ValueError,
     ("X has 6 columns, which do not divide into time steps of 4 features "
     "(n_step_features=4). A 2D X must hold timesteps * n_step_features columns")),
    ("4D X", fit(GRURegressor(), X.reshape(30, 3, 2, 1)), ValueError,
     ("X must be 2D (n_samples, timesteps * n_step_features) or 3D (n_samples, timesteps, "
     "n_step_features); got a 4D array with shape (30, 3, 2, 1).")),
    ("3D X with another n_step_features", fit(GRURegressor(n_step_features=3),
                                              X.reshape(30, 3, 2)),
     ValueError, ("X is 3D with 2 features per step, but n_step_features=3. Leave "
     "n_step_features=None for 3D input, or pass X with 3 features per step.")),
    ("wrong number of columns at predict", lambda: fitted().predict(X[:, :4]), ValueError,
     "X has 4 features, but GRURegressor is expecting 6 features as input."),
    ("wrong steps at predict", lambda: fitted().predict(X.reshape(30, 3, 2)), ValueError,
     ("X has 3 time steps of 2 features, but this GRURegressor was fitted with 6 time steps "
     "of 1 features.")),
    ("y with other length", fit(GRURegressor(), X, y[:20]), ValueError,
     "Found input variables with inconsistent numbers of samples: [30, 20]"),
    ("negative y with Poisson", fit(GRURegressor(loss="poisson"), X, y), ValueError,
     ("loss='poisson' needs a non-negative target y; got a minimum of -",
      "Use another loss or shift the target.")),
    ("negative sample_weight", fit(GRURegressor(), X, y, sample_weight=-np.ones(30)),
     ValueError, "Negative values in data passed to `sample_weight`."),
    ("all-zero sample_weight", fit(GRURegressor(), X, y, sample_weight=np.zeros(30)),
     ValueError, "Sample weights must contain at least one non-zero number."),
    ("predict before fit", lambda: GRURegressor().predict(X), NotFittedError,
     "This GRURegressor instance is not fitted yet. Call 'fit' with appropriate arguments"),
    ("diverging training", fit(SimpleRNNRegressor(solver="sgd", learning_rate_init=1e6,
                                                  max_iter=100), X, y * 1e3),
     DivergenceError, (("Training diverged: the loss exploded (non-finite, or a million times "
                       "its best) at epoch"), ("Lower learning_rate_init (now 1000000.0), set "
                       "clipnorm, or scale X and y. The estimator was left as it was before"))),
    ("weights of another shape", lambda: GRURegressor(units=5).set_weights(
        fitted().get_weights()), ValueError, "units=5 does not match the weights' (3,)"),
    ("weights with a missing key", lambda: GRURegressor(units=3).set_weights(
        {k: v for k, v in fitted().get_weights().items() if k != "head.bias"}), ValueError,
     "state_dict lacks ['head.bias']. This GRURegressor with 1 layer(s) takes exactly"),
    ("weights with NaN", lambda: GRURegressor(units=3).set_weights(
        {k: v * np.nan for k, v in fitted().get_weights().items()}), ValueError,
     "state_dict holds NaN or infinite values (bias_hh_l0: 9, bias_ih_l0: 9, head.bias: 1, "),
    ("warm start with other units", lambda: fitted(warm_start=True).set_params(units=4)
     .fit(X, y), ValueError, ("units=(4,) (fitted: (3,)): warm_start=True and partial_fit "
     "continue training the fitted network, whose architecture cannot change.")),
    # -- regressors: hyperparameters -------------------------------------------------------
    ("units = 0", fit(GRURegressor(units=0)), InvalidParameterError,
     ("The 'units' parameter of GRURegressor must be an int in the range [1, inf), an "
     "instance of 'tuple' or an instance of 'list'. Got 0 instead.")),
    ("unknown solver", fit(LSTMRegressor(solver="lbfgs")), InvalidParameterError,
     "The 'solver' parameter of LSTMRegressor must be a str among"),
    ("dropout = 1.5", fit(LSTMRegressor(dropout=1.5)), InvalidParameterError,
     ("The 'dropout' parameter of LSTMRegressor must be a float in the range [0.0, 1.0). "
     "Got 1.5 instead.")),
    ("negative learning rate", fit(GRURegressor(learning_rate_init=-0.1)),
     InvalidParameterError, ("The 'learning_rate_init' parameter of GRURegressor must be a "
     "float in the range (0.0, inf). Got -0.1 instead.")),
    ("units tuple with a zero", fit(GRURegressor(units=(4, 0))), ValueError,
     ("units must be a positive int or a non-empty sequence of positive ints (one per "
     "stacked layer); got (4, 0).")),
    # -- lag tools ---------------------------------------------------------------------------
    ("lags >= series length", lambda: make_supervised(panel(5), "crimes", lags=5,
                                                      group="district", date="date"),
     ValueError, ("2 series are too short for lags up to 5 and horizon=1 (need at least 6 "
     "steps; series: length {'a': 5, 'b': 5}). Use fewer lags or drop those series first.")),
    ("a group shorter than its window",
     lambda: make_supervised(pd.concat([panel(12, ("a",)), panel(3, ("b",))]), "crimes",
                             lags=4, group="district", date="date"),
     ValueError, ("1 series are too short for lags up to 4 and horizon=1 (need at least 5 "
     "steps; series: length {'b': 3}).")),
    ("duplicated (date, group)", lambda: LagFeatures(lags=2, group="district", date="date")
     .fit_transform(pd.concat([panel(), panel().iloc[:1]])), ValueError,
     ("1 duplicated (group, date='date') key(s), e.g. [\"2021-01-01 00:00:00 of group 'a'\"]",
      "each series may have one row per time stamp. Aggregate duplicates first")),
    ("gappy dates", lambda: LagFeatures(lags=2, group="district", date="date")
     .fit_transform(panel().drop(index=4)), ValueError,
     (("date='date' has gaps inside 1 series (grid: 'D'): e.g. the series of group 'a' misses "
      "1 step(s), the first right after 2021-01-04"), ("Pass fill_gaps=<number>, 'ffill' or "
      "'interpolate' to fill them, or fix the data."))),
    ("lags = 0", lambda: LagFeatures(lags=0).fit(X), InvalidParameterError,
     ("The 'lags' parameter of LagFeatures must be an int in the range [1, inf) or an "
     "array-like. Got 0 instead.")),
    ("horizon larger than the series",
     lambda: make_supervised(panel(6), "crimes", lags=2, horizon=6, group="district",
                             date="date"), ValueError,
     "2 series are too short for lags up to 2 and horizon=6 (need at least 8 steps"),
    # -- baselines and scaling ---------------------------------------------------------------
    ("seasonal period longer than the window", lambda: SeasonalNaiveRegressor(sp=7).fit(X, y),
     ValueError, ("SeasonalNaiveRegressor needs a window of at least 7 steps, but X has "
     "n_features=6 column(s) giving 6 step(s) (n_step_features=1). Use more lags.")),
    ("baseline column that does not exist",
     lambda: LastValueRegressor(columns=["nope"]).fit(pd.DataFrame(X).add_prefix("c"), y),
     ValueError, ("nope", "are not in X; X has ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'].")),
    ("scaler sees an unknown group",
     lambda: GroupScaler(group="district").fit(panel().set_index("district")[["crimes"]])
     .transform(panel(groups=("z",)).set_index("district")[["crimes"]]), ValueError,
     ("10 row(s) belong to group(s) not seen in fit, e.g. ['z']. Fit on data covering them "
     "or set handle_unknown='global'.")),
    # -- experiments, tuning -----------------------------------------------------------------
    ("experiment with an unknown key", experiment(**{"data.colour": "red"}), ValueError,
     ("is not a valid experiment", "data.colour: unknown key")),
    ("experiment with a wrong type", experiment(**{"split.test_periods": "ten"}), ValueError,
     ("is not a valid experiment", "split.test_periods: Input should be a valid integer")),
    ("experiment without models", experiment(models=[]), ValueError,
     ("is not a valid experiment", "models: List should have at least 1 item")),
    ("experiment with a missing data file",
     lambda: __import__("skrnn.experiment", fromlist=["load_data"]).load_data(
         experiment(**{"data.source": "csv", "data.path": "/nonexistent.csv"})().data),
     ValueError, "data file not found: /nonexistent.csv"),
    ("holdout longer than the data", run_experiment_with(test_periods=500), ValueError,
     "split.test_periods=500 leaves no training dates"),
    ("unreachable storage URL",
     lambda: __import__("skrnn.tuning", fromlist=["make_storage"]).make_storage(
         "postgresql://user:pw@127.0.0.1:9/db"), ValueError,
     "Could not open the Optuna storage 'postgresql://user:***@127.0.0.1:9/db'"),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("call, exc, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for phrase in (words,) if isinstance(words, str) else words:
        assert phrase in str(info.value), f"message was: {info.value}"
    # whole phrases, not fragments: each names the problem in words
    assert all(len(p) >= 20 for p in ((words,) if isinstance(words, str) else words)
               if p != "nope")


def test_the_table_has_at_least_thirty_cases():
    assert len(CASES) >= 30
