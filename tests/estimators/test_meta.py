"""The one walker (skrnn._meta): every skrnn regressor inside any meta-estimator."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import VotingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor
from skrnn._meta import find_recurrent_regressors, fitted_recurrent_regressor

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:OptunaSearchCV is experimental"),
]


def _tiny(cls=LSTMRegressor):
    return cls(units=2, max_iter=2, batch_size=16, random_state=0)


def _paths(est, **kw):
    return [path for path, _ in find_recurrent_regressors(est, **kw)]


def _ttr():
    return TransformedTargetRegressor(
        regressor=Pipeline([("scale", StandardScaler()), ("model", _tiny())]),
        transformer=StandardScaler())


# (estimator factory, paths of the regressors in its parameters)
UNFITTED = [
    (lambda: _tiny(), [""]),
    (lambda: make_pipeline(StandardScaler(), _tiny(GRURegressor)), ["gruregressor"]),
    (_ttr, ["regressor__model"]),
    (lambda: ColumnTransformer([("rnn", _tiny(SimpleRNNRegressor), [0, 1]),
                                ("ridge", Ridge(), [2])]), ["rnn"]),
    (lambda: FeatureUnion([("a", StandardScaler()), ("b", _tiny())]), ["b"]),
    (lambda: VotingRegressor([("lstm", _tiny()), ("gru", _tiny(GRURegressor))]),
     ["lstm", "gru"]),
    (lambda: GridSearchCV(_ttr(), {"regressor__model__units": [2, 3]}),
     ["estimator__regressor__model"]),
    (lambda: RandomizedSearchCV(make_pipeline(_tiny()), {"lstmregressor__units": [2, 3]}),
     ["estimator__lstmregressor"]),
    (lambda: Ridge(), []),
    (lambda: object(), []),
]


@pytest.mark.parametrize("make, expected", UNFITTED)
def test_parameters_paths_are_set_params_prefixes(make, expected):
    est = make()
    found = list(find_recurrent_regressors(est))
    assert [p for p, _ in found] == expected
    for path, reg in found:
        if path:  # the path reaches the very object through set_params
            est.set_params(**{f"{path}__units": 5})
        else:
            est.set_params(units=5)
        assert reg.units == 5


def test_optuna_search_cv_estimator():
    optuna_integration = pytest.importorskip("optuna_integration")
    from optuna.distributions import IntDistribution

    search = optuna_integration.OptunaSearchCV(
        _ttr(), {"regressor__model__units": IntDistribution(2, 4)})
    assert _paths(search) == ["estimator__regressor__model"]


def _Xy(n=64):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 4))
    return X, X.sum(axis=1) + 0.1 * rng.normal(size=n)


def test_fitted_copies_are_found_and_the_fitted_one_is_returned():
    X, y = _Xy()
    ttr = _ttr().fit(X, y)
    assert _paths(ttr) == ["regressor__model", "regressor___model"]
    assert _paths(ttr, fitted=False) == ["regressor__model"]
    # the regressor that predicts is the fitted clone, not the parameter
    assert fitted_recurrent_regressor(ttr) is ttr.regressor_.named_steps["model"]
    assert not hasattr(ttr.regressor.named_steps["model"], "n_iter_")

    search = GridSearchCV(_ttr(), {"regressor__model__units": [2, 3]}, cv=2).fit(X, y)
    assert _paths(search) == ["estimator__regressor__model",
                              "best_estimator___regressor__model",
                              "best_estimator___regressor___model"]
    best = fitted_recurrent_regressor(search)
    assert best is search.best_estimator_.regressor_.named_steps["model"]
    assert best.units == search.best_params_["regressor__model__units"]


def test_nothing_fitted_gives_none():
    assert fitted_recurrent_regressor(_ttr()) is None
    assert fitted_recurrent_regressor(Ridge().fit(*_Xy())) is None


def test_sktime_forecasters():
    pytest.importorskip("sktime")
    from sktime.forecasting.compose import make_reduction

    from skrnn.forecasting import RecurrentForecaster

    y = pd.Series(np.sin(np.arange(60) / 3.0))
    recursive = make_reduction(_tiny(), window_length=5, strategy="recursive")
    assert _paths(recursive) == ["estimator"]
    recursive.fit(y, fh=[1, 2])
    assert _paths(recursive) == ["estimator", "estimator_"]
    assert fitted_recurrent_regressor(recursive) is recursive.estimator_

    direct = make_reduction(_tiny(), window_length=5, strategy="direct").fit(y, fh=[1, 2])
    assert _paths(direct) == ["estimator", "estimators_[0]", "estimators_[1]"]

    forecaster = RecurrentForecaster(_tiny(GRURegressor), window_length=5, strategy="direct")
    forecaster.fit(y, fh=[1, 2])
    assert _paths(forecaster) == ["regressor", "regressors_[1]", "regressors_[2]"]
    assert fitted_recurrent_regressor(forecaster) is forecaster.regressors_[2]

    # pooling="local": sktime keeps one fitted forecaster per series in forecasters_
    panel = pd.DataFrame({"y": np.sin(np.arange(120) / 3.0)},
                         index=pd.MultiIndex.from_product([["a", "b"], range(60)]))
    local = RecurrentForecaster(_tiny(), window_length=5, pooling="local").fit(panel, fh=[1])
    assert _paths(local, fitted=False) == ["regressor"]
    fitted = [p for p in _paths(local) if p.endswith("regressor_")]
    assert fitted == ["forecasters_[0]__regressor_", "forecasters_[1]__regressor_"]


def test_each_object_once():
    reg = _tiny()
    voting = VotingRegressor([("a", reg), ("b", reg)])  # the same object twice
    assert _paths(voting) == ["a"]


def test_tune_prunes_a_regressor_inside_a_target_transformer():
    # `skrnn run` tunes TransformedTargetRegressor(Pipeline(...)): the pruning callback
    # must reach the regressor in there (it did not before the one walker)
    optuna = pytest.importorskip("optuna")
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState

    from skrnn.tuning import TimeHoldout, tune

    X, y = _Xy(80)
    ttr = _ttr().set_params(regressor__model__max_iter=3)
    storage = optuna.storages.InMemoryStorage()
    # every reported value (a negated loss) is below 0: each trial is pruned at epoch 1
    with pytest.raises(RuntimeError, match="No trial of study 'ttr' completed"):
        tune(ttr, X, y, search_space={"regressor__model__units": IntDistribution(2, 3)},
             cv=TimeHoldout(test_size=0.25), n_trials=2, seed=0, study_name="ttr",
             storage=storage, pruner=optuna.pruners.ThresholdPruner(lower=0.0))
    trials = optuna.load_study(study_name="ttr", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert [t.user_attrs["pruned_step"] for t in trials] == [1, 1]
