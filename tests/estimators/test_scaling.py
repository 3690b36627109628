"""GroupScaler: per-series statistics from the training rows only."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import GroupScaler, LagFeatures
from skrnn.datasets import make_count_panel


@pytest.fixture
def panel():
    df = make_count_panel(n_groups=3, periods=60, zero_group=True, random_state=0)
    df["other"] = np.arange(len(df), dtype=float) ** 0.5
    return df


def split(df, cut="2020-02-10"):
    return df[df["date"] < cut], df[df["date"] >= cut]


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_statistics_come_from_training_rows_per_group(panel, method):
    train, test = split(panel)
    scaler = GroupScaler(method, group="district").fit(train[["district", "crimes", "other"]])
    out = scaler.transform(test[["district", "crimes", "other"]])
    g = train.groupby("district")[["crimes", "other"]]
    if method == "standard":
        center, scale = g.mean(), g.std(ddof=0)
    else:
        center, scale = g.min(), g.max() - g.min()
    scale = scale.where(scale > 0, 1.0)  # the all-zero district divides by 1
    expected = ((test[["crimes", "other"]] - center.loc[test["district"]].to_numpy())
                / scale.loc[test["district"]].to_numpy())
    np.testing.assert_allclose(out, expected.to_numpy(), rtol=1e-12)
    assert list(scaler.get_feature_names_out()) == ["crimes", "other"]
    assert list(scaler.groups_) == ["D01", "D02", "D03"]
    # Test rows outside the training range are not clipped: statistics were not refitted.
    if method == "minmax":
        assert out.max() > 1.0 or out.min() < 0.0


def test_constant_series_do_not_divide_by_zero(panel):
    zeros = panel[panel["district"] == "D03"]
    assert (zeros["crimes"] == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        std = GroupScaler(group="district").fit_transform(panel[["district", "crimes"]])
        mm = GroupScaler("minmax", group="district", feature_range=(-1, 1)).fit_transform(
            panel[["district", "crimes"]])
    rows = (panel["district"] == "D03").to_numpy()
    np.testing.assert_array_equal(std[rows], 0.0)
    np.testing.assert_array_equal(mm[rows], -1.0)
    assert np.isfinite(std).all() and np.isfinite(mm).all()
    # Other districts are scaled to mean 0, std 1.
    d1 = (panel["district"] == "D01").to_numpy()
    np.testing.assert_allclose([std[d1].mean(), std[d1].std()], [0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("level, noise, constant", [
    (0.0, 0.0, True), (5.0, 0.0, True),
    (1e6, 1e-7, True),      # rounding noise of a large constant: 1e-13 of its level
    (0.0, 1e-13, True),     # a spread below 1e-12 of a level of at most 1
    (1e6, 1e-4, False), (0.0, 1e-9, False), (3.0, 0.5, False)])
def test_every_scaler_agrees_on_what_is_constant(level, noise, constant):
    """GroupScaler (the runner), series_scales (the forecaster) and pooled_scales (its
    covariates) divide a series by its spread exactly when spread_or_one says it is one."""
    from skrnn.scaling import pooled_scales, series_scales, spread_or_one

    v = level + noise * np.tile([1.0, -1.0], 20)
    # the same number, summed in each scaler's own order
    expected = 1.0 if constant else pytest.approx(v.std(), rel=1e-9)
    assert spread_or_one(v.std(), v.mean()) == expected
    gs = GroupScaler().fit(v[:, None])
    assert gs.scale_[0, 0] == expected
    assert series_scales([v], "standard")[1][0] == expected
    assert pooled_scales(v[:, None])[1][0] == expected
    assert np.isfinite(gs.transform(v[:, None])).all()


@pytest.mark.parametrize("level_order", [["date", "district"], ["district", "date"]])
def test_group_from_index_level_and_inverse(panel, level_order):
    series = panel.set_index(level_order)["crimes"].astype(float)
    scaler = GroupScaler("minmax", group="district").fit(series)
    scaled = scaler.transform(series)
    per_group = pd.Series(scaled[:, 0], index=series.index).groupby(level="district")
    np.testing.assert_allclose(per_group.max().loc[["D01", "D02"]], 1.0)
    np.testing.assert_allclose(per_group.min(), 0.0)
    back = scaler.inverse_transform(pd.Series(scaled[:, 0], index=series.index))
    np.testing.assert_allclose(back, series.to_numpy())
    # The same through groups= on plain arrays.
    labels = series.index.get_level_values("district")
    arr = GroupScaler("minmax").fit(series.to_numpy()[:, None], groups=labels)
    np.testing.assert_allclose(arr.transform(series.to_numpy()[:, None], groups=labels), scaled)


def test_unknown_groups(panel):
    train = panel[panel["district"] != "D02"][["district", "crimes"]]
    new = panel[panel["district"] == "D02"][["district", "crimes"]]
    with pytest.raises(ValueError, match=r"not seen in fit, e.g. \['D02'\].*handle_unknown"):
        GroupScaler(group="district").fit(train).transform(new)
    scaler = GroupScaler(group="district", handle_unknown="global").fit(train)
    expected = (new["crimes"] - train["crimes"].mean()) / train["crimes"].std(ddof=0)
    np.testing.assert_allclose(scaler.transform(new)[:, 0], expected)


def test_shared_statistics_keep_a_window_a_sequence(panel):
    data = panel.set_index(["date", "district"])
    pipe = make_pipeline(
        LagFeatures(lags=3, columns=["crimes"], group="district", date="date",
                    fill_value="edge"),
        GroupScaler(group="district", n_step_features=1),
    ).set_output(transform="pandas")
    out = pipe.fit_transform(data)
    assert list(out.columns) == ["crimes_lag3", "crimes_lag2", "crimes_lag1"]
    # One mean/std per district over all window cells: equal raw values map to equal
    # scaled values whatever their step.
    raw = pipe[0].transform(data).to_numpy()
    d1 = (data.index.get_level_values("district") == "D01")
    cells = raw[d1].ravel()
    np.testing.assert_allclose(out[d1].to_numpy().ravel(),
                               (cells - cells.mean()) / cells.std())


def test_target_scaling_in_transformed_target_regressor(panel):
    """Inside TransformedTargetRegressor y arrives as an array: global scaling, invertible."""
    X = panel[["other"]].to_numpy()
    y = panel["crimes"].to_numpy(dtype=float)
    ttr = TransformedTargetRegressor(LinearRegression(), transformer=GroupScaler("minmax"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check_inverse passes silently
        ttr.fit(X, y)
    np.testing.assert_allclose(ttr.transformer_.center_[0], [y.min()])
    np.testing.assert_allclose(ttr.transformer_.scale_[0], [y.max() - y.min()])
    np.testing.assert_allclose(ttr.predict(X), LinearRegression().fit(X, y).predict(X))


def test_errors():
    with pytest.raises(ValueError, match=r"group='g'.*DataFrame or Series.*groups="):
        GroupScaler(group="g").fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"feature_range must be \(min, max\)"):
        GroupScaler("minmax", feature_range=(1, 0)).fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match="n_step_features=2 must divide .* got 3 columns"):
        GroupScaler(n_step_features=2).fit(np.ones((3, 3)))


@parametrize_with_checks([GroupScaler(), GroupScaler("minmax", n_step_features=1)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
