"""LastSteps: tuning the window length on one fixed lag matrix."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import LastSteps, make_supervised


@parametrize_with_checks([LastSteps(), LastSteps(n_steps=1)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_keeps_the_most_recent_steps_with_their_names():
    df = pd.DataFrame({"y": np.arange(10.0)})
    X, _ = make_supervised(df, "y", lags=5)
    out = LastSteps(n_steps=2).set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == ["y_lag2", "y_lag1"]
    np.testing.assert_array_equal(out.to_numpy(), X[["y_lag2", "y_lag1"]].to_numpy())
    assert out.index.equals(X.index)


def test_several_features_per_step_and_clear_errors():
    X = np.arange(12.0).reshape(2, 6)  # 3 steps of 2 features
    np.testing.assert_array_equal(
        LastSteps(n_steps=1, n_step_features=2).fit_transform(X), X[:, -2:])
    with pytest.raises(ValueError, match="needs 8 columns"):
        LastSteps(n_steps=4, n_step_features=2).fit(X)
    with pytest.raises(ValueError, match="do not divide"):
        LastSteps(n_step_features=4).fit(X)
