"""Step features: known-future covariates and calendar features in the lag windows."""

import sys

import numpy as np
import pandas as pd
import pytest

from skrnn import LagFeatures, make_supervised
from skrnn.calendar import calendar_feature_names, calendar_features


def _panel(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for g, (start, n) in {"a": ("2023-12-20", 30), "b": ("2023-12-28", 20)}.items():
        for i, d in enumerate(pd.date_range(start, periods=n, freq="D")):
            if g == "a" and i == 11:  # a missing date, filled below
                continue
            rows.append({"g": g, "date": d, "y": float(rng.integers(0, 100)),
                         "p": rng.normal(), "temp": rng.normal(),
                         "work": float(rng.integers(0, 2))})
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows unsorted


def _reference(df, lags, past, future, calendar, fill):
    """Brute force: every value looked up by (group, date) in a dict."""
    look = {(r.g, r.date): r for r in df.itertuples()}

    def value(g, d, col):
        r = look.get((g, d))
        if r is None:  # a filled gap (fill_gaps=<number>), or outside the series
            first = min(k[1] for k in look if k[0] == g)
            last = max(k[1] for k in look if k[0] == g)
            return fill if first <= d <= last else np.nan
        return getattr(r, col)

    X, Y = [], []
    one_day = pd.Timedelta(days=1)
    for r in df.itertuples():
        row = []
        for L in sorted(lags, reverse=True):
            row += [value(r.g, r.date - L * one_day, c) for c in past]
            known_date = r.date - (L - 1) * one_day
            row += [value(r.g, known_date, c) for c in future]
            inside = not np.isnan(value(r.g, known_date, past[0]))
            cal = calendar_features(pd.DatetimeIndex([known_date]), calendar, country="US")[0]
            row += list(cal if inside else np.full(cal.shape, np.nan))
        X.append(row)
        Y.append(r.y)
    return np.asarray(X), np.asarray(Y)


def test_make_supervised_step_features_match_brute_force():
    df = _panel()
    calendar = ["dayofweek", "month", "dayofyear", "weekofyear", "holiday"]
    X, y = make_supervised(df, "y", lags=[1, 2, 7], group="g", date="date", fill_gaps=0.0,
                           past_covariates="p", future_covariates=["temp", "work"],
                           calendar=calendar, country="US")
    ref_X, ref_y = _reference(df, [1, 2, 7], ["y", "p"], ["temp", "work"], calendar, 0.0)
    keep = ~(np.isnan(ref_X).any(axis=1))
    np.testing.assert_array_equal(X.index, df.index[keep])
    np.testing.assert_allclose(X.to_numpy(), ref_X[keep], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y.to_numpy(), ref_y[keep])
    n_cal = len(calendar_feature_names(calendar, "US"))
    assert X.shape[1] == 3 * (2 + 2 + n_cal)
    # the last step carries the known-future values of the target date, named lag0
    assert list(X.columns[-(2 + 2 + n_cal):][:4]) == ["y_lag1", "p_lag1", "temp_lag0", "work_lag0"]
    t = X.index[5]
    assert X.loc[t, "temp_lag0"] == df.loc[t, "temp"]


def test_no_future_value_of_target_enters_the_window():
    # y equals the day number: any column that equals the target of its row would leak it
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=40), "y": np.arange(40.0),
                       "temp": np.arange(40.0) + 0.5})
    X, y = make_supervised(df, "y", lags=5, date="date", future_covariates="temp",
                           calendar="dayofweek")
    for c in X.columns:
        assert not np.array_equal(X[c].to_numpy(), y.to_numpy()), c
    lagged = [c for c in X.columns if c.startswith("y_lag")]
    assert (X[lagged].to_numpy() < y.to_numpy()[:, None]).all()
    # the known-future value of the target date, and nothing later
    np.testing.assert_array_equal(X["temp_lag0"], y + 0.5)
    assert X.filter(like="temp").to_numpy().max(axis=1).tolist() == (y + 0.5).tolist()


def test_lag_features_transformer_layout_and_width():
    df = _panel(1)
    lf = LagFeatures(lags=3, columns=["y"], group="g", date="date", fill_gaps=0.0,
                     future_covariates="work", calendar=["dayofweek", "dayofyear"])
    out = lf.set_output(transform="pandas").fit_transform(df)
    assert lf.n_step_features_ == 1 + 1 + 7 + 2
    names = list(lf.get_feature_names_out())
    assert names[:2] == ["y_lag3", "work_lag2"] and names[11:13] == ["y_lag2", "work_lag1"]
    assert names[-11:-9] == ["y_lag1", "work_lag0"]
    # dates of the known-future block of the last step are the rows' own dates
    dow = out[[f"dayofweek_{d}_lag0" for d in range(7)]].to_numpy().argmax(axis=1)
    np.testing.assert_array_equal(dow, df["date"].dt.dayofweek)
    # a filled gap gets its own calendar date, not a copy of its neighbour
    day = pd.Timestamp("2023-12-31")  # the missing date of series "a"
    nxt = df[(df.g == "a") & (df.date == day + pd.Timedelta(days=1))].index[0]
    angle = 2 * np.pi * (day.dayofyear - 1) / 365
    np.testing.assert_allclose(out.loc[nxt, ["dayofyear_sin_lag1", "dayofyear_cos_lag1"]],
                               [np.sin(angle), np.cos(angle)])


def test_calendar_values():
    d = pd.to_datetime(["2024-07-04", "2024-07-05", "2024-12-25", "2023-01-01"])
    hol = calendar_features(d, "holiday", country="US")[:, 0]
    np.testing.assert_array_equal(hol, [1, 0, 1, 1])
    month = calendar_features(d, "month")
    np.testing.assert_array_equal(month.argmax(axis=1) + 1, [7, 7, 12, 1])
    doy = calendar_features(pd.to_datetime(["2023-01-01"]), "dayofyear")
    np.testing.assert_allclose(doy, [[0.0, 1.0]], atol=1e-15)
    periods = pd.period_range("2020-01", periods=3, freq="M")
    np.testing.assert_array_equal(calendar_features(periods, "month").argmax(axis=1), [0, 1, 2])


def test_monthly_periods_known_future_month():
    df = pd.DataFrame({"m": pd.period_range("2020-01", periods=30, freq="M"),
                       "y": np.arange(30.0)})
    X, _ = make_supervised(df, "y", lags=2, date="m", calendar="month")
    months = X[[f"month_{k}_lag0" for k in range(1, 13)]].to_numpy().argmax(axis=1) + 1
    np.testing.assert_array_equal(months, df.loc[X.index, "m"].dt.month)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"calendar": "dayofweek", "date": None}, ValueError, "needs the dates"),
        ({"calendar": "weekday"}, ValueError, "calendar must list features"),
        ({"calendar": "holiday"}, ValueError, "needs country"),
        ({"calendar": "dayofweek", "country": "US"}, ValueError, "only used by calendar='holiday'"),
        ({"calendar": "dayofweek", "lags": [0, 1]}, ValueError, "lags must all be >= 1"),
        ({"future_covariates": "y"}, ValueError, "cannot be a future covariate"),
        ({"future_covariates": "nope"}, ValueError, "not in X"),
        ({"future_covariates": "name"}, TypeError, "not numeric"),
        ({"past_covariates": "temp", "future_covariates": "temp"}, ValueError, "both lagged"),
        ({"calendar": "holiday", "country": "Atlantis"}, ValueError, "not known to the holidays"),
    ],
)
def test_bad_step_feature_settings(kwargs, error, match):
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=20), "y": np.arange(20.0),
                       "temp": np.ones(20), "name": ["x"] * 20})
    kwargs = {"date": "date", "lags": 3, **kwargs}
    with pytest.raises(error, match=match):
        make_supervised(df, "y", **kwargs)


def test_calendar_with_gaps_on_a_monthly_grid_is_refused():
    dates = pd.date_range("2020-01-01", periods=12, freq="MS").delete(5)
    df = pd.DataFrame({"date": dates, "y": np.arange(11.0)})
    with pytest.raises(ValueError, match="fixed step"):
        make_supervised(df, "y", lags=2, date="date", freq="MS", fill_gaps=0.0,
                        calendar="month")


def test_step_features_need_a_frame():
    with pytest.raises(ValueError, match="needs X as a pandas DataFrame"):
        LagFeatures(lags=2, calendar="dayofweek").fit(np.ones((10, 1)))


def test_missing_holidays_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "holidays", None)
    with pytest.raises(ImportError, match=r"skrnn\[calendar\]"):
        calendar_features(pd.to_datetime(["2024-01-01"]), "holiday", country="US")


def test_day_of_month_and_month_start_match_a_brute_force_date_walk():
    import calendar as stdcal
    import datetime as dt

    days = pd.date_range("2023-12-25", "2025-03-05", freq="D")  # leap February 2024 inside
    out = calendar_features(days, ["monthstart", "dayofmonth"])
    ref = []
    for day in (dt.date(2023, 12, 25) + dt.timedelta(days=i) for i in range(len(days))):
        length = stdcal.monthrange(day.year, day.month)[1]
        angle = 2 * np.pi * (day.day - 1) / length
        ref.append([float(day.day == 1), np.sin(angle), np.cos(angle)])
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    assert out[:, 0].sum() == 15  # Jan 2024 .. Mar 2025
    assert calendar_feature_names(["monthstart", "dayofmonth"]) == [
        "monthstart", "dayofmonth_sin", "dayofmonth_cos"]
    # the last day of a month sits one step before the next month's first, on the circle
    feb29 = calendar_features(pd.to_datetime(["2024-02-29"]), "dayofmonth")[0]
    np.testing.assert_allclose(np.arctan2(*feb29), -2 * np.pi / 29, atol=1e-12)


def test_month_start_of_the_target_date_is_in_the_last_step():
    df = pd.DataFrame({"date": pd.date_range("2024-01-20", periods=50), "y": np.arange(50.0)})
    X, _ = make_supervised(df, "y", lags=3, date="date", calendar=["monthstart", "dayofweek"])
    dates = df.loc[X.index, "date"]
    np.testing.assert_array_equal(X["monthstart_lag0"], (dates.dt.day == 1).astype(float))
    np.testing.assert_array_equal(X["monthstart_lag2"],
                                  ((dates - pd.Timedelta(days=2)).dt.day == 1).astype(float))


@pytest.mark.parametrize("features, match", [
    ("monthstart_flag", "unknown: \\['monthstart_flag'\\]"),
    (["dayofmonth", "dayofmonth"], "lists a feature twice"),
])
def test_bad_month_features(features, match):
    with pytest.raises(ValueError, match=match):
        calendar_features(pd.to_datetime(["2024-01-01"]), features)


def test_experiment_config_accepts_the_month_features():
    from skrnn._experiment.config import FeaturesConfig

    assert FeaturesConfig(calendar=["dayofmonth", "monthstart"]).calendar == [
        "dayofmonth", "monthstart"]
    with pytest.raises(ValueError, match="calendar must list features"):
        FeaturesConfig(calendar=["day_of_month"])
