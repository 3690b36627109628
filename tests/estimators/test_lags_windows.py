"""make_supervised(as_windows=True): the dense rows, bit for bit, at O(panel) memory."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from skrnn import GRURegressor, LSTMRegressor
from skrnn.lags import make_supervised
from skrnn.windows import PanelWindows, pad_series


def _frame(n_series=6, seed=0, lengths=(40, 70)):
    rng = np.random.default_rng(seed)
    parts = []
    for g in range(n_series):
        n = int(rng.integers(*lengths))
        parts.append(pd.DataFrame({
            "store": f"s{g}", "day": pd.date_range("2022-01-03", periods=n),
            "sales": rng.poisson(5.0 + g, size=n).astype(float),
            "price": rng.normal(size=n), "promo": rng.integers(0, 2, size=n).astype(float)}))
    # rows shuffled: the windows follow the input's row order, as the frame does
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_pad_series_edges_and_shift():
    v = np.arange(5.0)[:, None]
    np.testing.assert_array_equal(pad_series(v, [2, 3], 1, 2)[:, 0],
                                  [np.nan, 0, 1, np.nan, np.nan,
                                   np.nan, 2, 3, 4, np.nan, np.nan])
    np.testing.assert_array_equal(pad_series(v, [2, 3], 2, 0, "edge")[:, 0],
                                  [0, 0, 0, 1, 2, 2, 2, 3, 4])
    # before=0, after=1: one step ahead; the padding sits behind each series
    np.testing.assert_array_equal(pad_series(v, [2, 3], 0, 1, 0.0)[:, 0],
                                  [0, 1, 0, 2, 3, 4, 0])
    with pytest.raises(ValueError, match="cannot pad"):
        pad_series(v, [2, 3], 0, -3)


def test_windows_at_explicit_steps_and_bounds():
    v = np.arange(10.0)
    W = PanelWindows.at(v, [3, 9], [-3, -1, 0])
    np.testing.assert_array_equal(W[:], [[0, 2, 3], [6, 8, 9]])
    assert W.shape == (2, 3) and len(W) == 2
    with pytest.raises(ValueError, match="reach outside the 10 values"):
        PanelWindows.at(v, [2], [-3, 0])
    with pytest.raises(AttributeError, match="no targets"):
        _ = W.y


@pytest.mark.parametrize("lags", [7, [7, 3, 1]])
def test_windows_are_the_dense_rows_with_step_features(lags):
    df = _frame()
    df.loc[df.index[:3], "sales"] = np.nan  # dropped rows: their windows reach a NaN
    kw = {"lags": lags, "group": "store", "date": "day", "past_covariates": "price",
          "future_covariates": ["promo"], "calendar": ["dayofweek"]}
    for horizon, multi in ((1, True), (3, True), (3, False)):
        X, y = make_supervised(df, "sales", horizon=horizon, multi_output=multi, **kw)
        W, yw = make_supervised(df, "sales", horizon=horizon, multi_output=multi,
                                as_windows=True, **kw)
        assert isinstance(W, PanelWindows) and W.shape == X.shape
        assert W.n_step_features == 2 + 1 + 7  # sales, price; promo; 7 weekdays
        assert np.asarray(W).tobytes() == X.to_numpy().tobytes()
        assert yw.index.equals(X.index) and yw.equals(y)
        # every window stays inside its own series
        assert (df.loc[X.index, "store"].to_numpy() == np.array(
            [f"s{g}" for g in W.series])).all()


@pytest.mark.parametrize("Est,dtype", [(GRURegressor, "float32"), (LSTMRegressor, "float64")])
def test_windows_fit_equals_dense_fit_bit_for_bit(Est, dtype):
    df = _frame(seed=1)
    kw = {"lags": 10, "group": "store", "date": "day", "future_covariates": "promo",
          "calendar": "dayofweek"}
    X, y = make_supervised(df, "sales", **kw)
    W, yw = make_supervised(df, "sales", as_windows=True, **kw)
    F = W.n_step_features
    params = {"units": 5, "max_iter": 3, "batch_size": 32, "random_state": 0, "dtype": dtype,
              "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 10,
              "n_step_features": F}
    dense = Est(**params).fit(X.to_numpy(), y)
    lazy = Est(**params).fit(W, yw)
    np.testing.assert_array_equal(dense._net.theta, lazy._net.theta)
    assert dense.loss_curve_ == lazy.loss_curve_
    assert dense.validation_loss_curve_ == lazy.validation_loss_curve_
    np.testing.assert_array_equal(dense.predict(X.to_numpy()), lazy.predict(W))


def test_windows_without_dropna_keep_every_row_and_fit_refuses_nan():
    df = _frame(3)
    W, y = make_supervised(df, "sales", lags=4, group="store", date="day", dropna=False,
                           as_windows=True)
    assert len(W) == len(df) and y.index.equals(df.index)
    with pytest.raises(ValueError, match="NaN or infinity"):
        GRURegressor(units=2, max_iter=1).fit(W, y.fillna(0.0))


def _peak(df, lags, fit):
    tracemalloc.start()
    try:
        W, y = make_supervised(df, "sales", lags=lags, group="store", date="day",
                               as_windows=True)
        if fit:
            GRURegressor(units=4, max_iter=1, batch_size=256, random_state=0,
                         dtype="float32").fit(W, y)
        return tracemalloc.get_traced_memory()[1], len(W)
    finally:
        tracemalloc.stop()


def test_make_supervised_windows_memory_stays_of_the_order_of_the_panel():
    rng = np.random.default_rng(0)
    n_series, n_days = 100, 500
    df = pd.DataFrame({
        "store": np.repeat([f"s{g}" for g in range(n_series)], n_days),
        "day": np.tile(pd.date_range("2020-01-01", periods=n_days), n_series),
        "sales": rng.poisson(3.0, size=n_series * n_days).astype(float)})
    short, _ = _peak(df, 7, fit=False)
    peak, n_rows = _peak(df, 56, fit=True)
    assert n_rows == n_series * (n_days - 56)
    dense_bytes = n_rows * 56 * 8  # the float64 frame of the dense path
    # a few panel-sized copies (values, grid and index arrays) whatever the window, and
    # the fit adds one batch: 8 times the window costs (almost) nothing more
    assert peak < 1.25 * short, (peak, short)
    assert peak < dense_bytes / 2, (peak, dense_bytes)
