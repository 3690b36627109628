"""Naive baselines on the lag matrix, the skill score, and a GRU that beats them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from skrnn import (
    DriftRegressor,
    LagFeatures,
    LastValueRegressor,
    SeasonalNaiveRegressor,
    WindowMeanRegressor,
    make_supervised,
    skill_score,
)
from skrnn.datasets import make_count_panel


@pytest.fixture(scope="module")
def panel():
    return make_count_panel(n_groups=4, periods=120, random_state=1)


def test_last_value_equals_groupby_shift(panel):
    X, y = make_supervised(panel, "crimes", lags=7, group="district", date="date")
    pred = LastValueRegressor().fit(X, y).predict(X)
    # The panel is sorted by date, so a shift inside each district is the previous day.
    expected = panel.groupby("district")["crimes"].shift(1).loc[X.index]
    np.testing.assert_array_equal(pred, expected.to_numpy(dtype=float))
    assert len(X) == 4 * (120 - 7)


def test_multi_step_forecasts_follow_their_definitions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 8))  # 8 steps, oldest first
    h = 10
    Y = np.zeros((6, h))
    last = LastValueRegressor().fit(X, Y).predict(X)
    np.testing.assert_array_equal(last, np.repeat(X[:, [-1]], h, axis=1))

    sp = 3
    seasonal = SeasonalNaiveRegressor(sp=sp).fit(X, Y).predict(X)
    for k in range(1, h + 1):
        lag = sp - (k - 1) % sp  # y_lag<lag>, column 8 - lag
        np.testing.assert_array_equal(seasonal[:, k - 1], X[:, 8 - lag])

    mean3 = WindowMeanRegressor(window=3).fit(X, Y).predict(X)
    np.testing.assert_allclose(mean3, np.repeat(X[:, -3:].mean(1, keepdims=True), h, axis=1))

    drift = DriftRegressor(window=4).fit(X, Y).predict(X)
    slope = (X[:, -1] - X[:, -4]) / 3
    np.testing.assert_allclose(drift, X[:, [-1]] + slope[:, None] * np.arange(1, h + 1))


def test_exact_on_the_series_they_are_made_for():
    t = np.arange(60.0)
    weekly = np.tile([3.0, 1, 4, 1, 5, 9, 2], 9)[:60]
    line = 2.5 * t - 7
    for series, est in ((weekly, SeasonalNaiveRegressor(sp=7)), (line, DriftRegressor())):
        df = pd.DataFrame({"v": series})
        X, y = make_supervised(df, "v", lags=14, horizon=10)
        np.testing.assert_allclose(est.fit(X, y).predict(X), y.to_numpy(), atol=1e-9)
        # ...and not exact with the wrong assumptions.
        assert np.abs(LastValueRegressor().fit(X, y).predict(X) - y.to_numpy()).max() > 1


def test_feature_index_and_columns_pick_the_target(panel):
    df = panel.assign(temp=np.sin(np.arange(len(panel))))
    X, y = make_supervised(df, "crimes", lags=3, columns=["temp", "crimes"],
                           group="district", date="date")
    by_position = LastValueRegressor(n_step_features=2, feature_index=1).fit(X, y)
    by_name = LastValueRegressor(columns=["crimes_lag3", "crimes_lag2", "crimes_lag1"]).fit(X, y)
    np.testing.assert_array_equal(by_position.predict(X), X["crimes_lag1"].to_numpy())
    np.testing.assert_array_equal(by_name.predict(X), X["crimes_lag1"].to_numpy())
    np.testing.assert_array_equal(by_name.window_indices_, [1, 3, 5])
    drift = DriftRegressor(n_step_features=2, feature_index=0).fit(X, y)
    np.testing.assert_allclose(
        drift.predict(X), X["temp_lag1"] + (X["temp_lag1"] - X["temp_lag3"]) / 2)


def test_layout_errors_name_the_problem():
    X, y = np.ones((5, 3)), np.ones(5)
    with pytest.raises(ValueError, match=r"at least 7 steps.*n_features=3.*3 step"):
        SeasonalNaiveRegressor(sp=7).fit(X, y)
    with pytest.raises(ValueError, match=r"n_features=3 .*not a multiple of n_step_features=2"):
        LastValueRegressor(n_step_features=2).fit(X, y)
    with pytest.raises(ValueError, match="feature_index=2 must be < n_step_features=1"):
        LastValueRegressor(feature_index=2).fit(X, y)
    with pytest.raises(ValueError, match=r"columns=\['a'\] are names, so X must be a DataFrame"):
        LastValueRegressor(columns=["a"]).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 steps"):
        DriftRegressor().fit(X[:, :1], y)


def test_pipeline_and_grid_search_pick_the_season():
    rng = np.random.default_rng(0)
    # Weekly pattern on a slow trend: sp=14 repeats two-week-old (lower) values.
    series = np.tile([10.0, 12, 11, 13, 20, 25, 9], 30) + 0.1 * np.arange(210)
    series += rng.normal(0, 0.2, 210)
    df = pd.DataFrame({"v": series})
    X, y = make_supervised(df, "v", lags=14)
    search = GridSearchCV(
        make_pipeline(SeasonalNaiveRegressor()),
        {"seasonalnaiveregressor__sp": [1, 2, 7, 14]},
        cv=TimeSeriesSplit(n_splits=3),
        scoring="neg_mean_absolute_error",
    ).fit(X, y)
    assert search.best_params_ == {"seasonalnaiveregressor__sp": 7}
    # The same window built inside the pipeline from the raw column.
    pipe = make_pipeline(LagFeatures(lags=14, fill_value="edge"),
                         SeasonalNaiveRegressor(sp=7)).fit(df[["v"]], df["v"])
    np.testing.assert_array_equal(pipe.predict(df[["v"]])[X.index], search.predict(X))


def test_skill_score():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    naive = np.array([0.0, 1.0, 2.0, 3.0])  # MAE 1, MSE 1
    model = np.array([1.0, 2.0, 3.0, 2.0])  # MAE 0.5, MSE 1
    assert skill_score(y, model, naive) == pytest.approx(0.5)
    assert skill_score(y, model, naive, metric="mse") == pytest.approx(0.0)
    assert skill_score(y, naive, naive) == 0.0
    assert skill_score(y, naive - 1, naive) == pytest.approx(-1.0)  # twice the error
    Y = np.column_stack([y, y])
    per_step = skill_score(Y, np.column_stack([model, y]), np.column_stack([naive, naive]),
                           multioutput="raw_values")
    np.testing.assert_allclose(per_step, [0.5, 1.0])
    maxerr = skill_score(y, model, naive, metric=lambda a, b: np.abs(a - b).max())
    assert maxerr == pytest.approx(1 - 2 / 1)
    with pytest.raises(ValueError, match="same shape"):
        skill_score(y, model[:3], naive)
    with pytest.raises(ValueError, match="zero error"):
        skill_score(y, model, y)
    with pytest.raises(ValueError, match="metric must be one of"):
        skill_score(y, model, naive, metric="r2")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gru_pipeline_beats_last_value_on_later_dates():
    from sklearn.compose import TransformedTargetRegressor

    from skrnn import GroupScaler, GRURegressor

    df = make_count_panel(n_groups=4, periods=400, random_state=0).set_index(
        ["date", "district"])
    dates = df.index.get_level_values("date")
    cut = pd.Timestamp("2020-12-01")  # train on the first 335 days, test on the last 65
    train, test = df[dates < cut], dates >= cut
    model = make_pipeline(
        LagFeatures(lags=14, columns=["crimes"], group="district", date="date",
                    fill_value="edge"),
        GroupScaler(n_step_features=1),
        TransformedTargetRegressor(
            GRURegressor(units=16, n_step_features=1, max_iter=40, random_state=0),
            transformer=GroupScaler(),
        ),
    )
    # Small matrices: BLAS threads only fight over the cores (3-8x slower on a busy box).
    with threadpool_limits(1):
        model.fit(train, train["crimes"].astype(float))
        # Predict over the whole frame so the first test days see their history.
        pred = model.predict(df)[test]
    truth = df["crimes"].to_numpy(dtype=float)[test]
    naive = df["crimes"].groupby(level="district").shift(1).to_numpy(dtype=float)[test]
    mae_gru, mae_naive = np.abs(truth - pred).mean(), np.abs(truth - naive).mean()
    assert mae_gru < 0.85 * mae_naive, (mae_gru, mae_naive)
    assert skill_score(truth, pred, naive) > 0.15


@parametrize_with_checks([
    LastValueRegressor(),
    SeasonalNaiveRegressor(),
    SeasonalNaiveRegressor(sp=2),
    WindowMeanRegressor(),
    WindowMeanRegressor(window=2),
    DriftRegressor(),
    DriftRegressor(window=2),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)
