"""``make_supervised`` and ``LagFeatures`` options against values written out by hand
(mutation testing found them unchecked; the brute-force reference is in
``tests/estimators/test_lags.py``)."""

import numpy as np
import pandas as pd
import pytest

from skrnn import LagFeatures, make_supervised


def _panel():
    return pd.DataFrame({
        "t": list(range(6)) * 2,
        "g": ["a"] * 6 + ["b"] * 6,
        "v": np.arange(12.0),
        "w": np.arange(12.0) * 10,
    })


def test_make_supervised_from_a_series_with_groups_array():
    s = pd.Series(np.arange(10.0), name="load")
    groups = np.repeat(["x", "y"], 5)
    X, y = make_supervised(s, "load", lags=2, groups=groups)
    assert list(X.columns) == ["load_lag2", "load_lag1"]
    np.testing.assert_array_equal(X.to_numpy(), [[0, 1], [1, 2], [2, 3], [5, 6], [6, 7], [7, 8]])
    assert y.name == "load" and y.tolist() == [2, 3, 4, 7, 8, 9]
    unnamed = pd.Series(np.arange(5.0))
    X, y = make_supervised(unnamed, "z", lags=1)
    assert list(X.columns) == ["z_lag1"] and y.tolist() == [1, 2, 3, 4]


def test_make_supervised_columns_and_single_horizon_target():
    X, _ = make_supervised(_panel(), "v", lags=[2, 1], columns=["v", "w"], group="g", date="t")
    assert list(X.columns) == ["v_lag2", "w_lag2", "v_lag1", "w_lag1"]  # step-major
    np.testing.assert_array_equal(X.iloc[0], [0, 0, 1, 10])
    X1, _ = make_supervised(_panel(), "v", lags=1, columns="w", group="g", date="t")
    assert list(X1.columns) == ["w_lag1"]
    X2, y2 = make_supervised(_panel(), "v", lags=1, horizon=2, multi_output=False,
                             group="g", date="t")
    assert y2.name == "v_h2" and y2.tolist() == [2, 3, 4, 5, 8, 9, 10, 11][:len(y2)]
    np.testing.assert_array_equal(X2["v_lag1"].to_numpy(), y2.to_numpy() - 2)


def test_make_supervised_keeps_integer_targets_as_float_and_refuses_an_unknown_target():
    data = _panel().assign(v=np.arange(12))  # integers
    _, y = make_supervised(data, "v", lags=1, group="g", date="t")
    assert y.dtype == np.float64
    with pytest.raises(ValueError, match=r"^target='nope' is not a column of data; columns: "
                                         r"\['t', 'g', 'v', 'w'\]\.$"):
        make_supervised(data, "nope", lags=1)


def test_too_short_series_are_named_at_most_five():
    data = pd.DataFrame({"g": np.repeat(list("abcdefg"), 2), "v": np.arange(14.0)})
    with pytest.raises(ValueError) as info:
        make_supervised(data, "v", lags=3, group="g")
    msg = str(info.value)
    assert "7 series are too short" in msg
    assert "{'a': 2, 'b': 2, 'c': 2, 'd': 2, 'e': 2}" in msg and "'f'" not in msg
    with pytest.raises(ValueError, match=r"series: length \{'all rows': 2\}"):
        make_supervised(pd.DataFrame({"v": [1.0, 2.0]}), "v", lags=3)


def test_lag_features_positional_columns_and_groups_in_fit_transform():
    X = np.column_stack([np.arange(6.0), np.arange(6.0) * 10, np.arange(6.0) * 100])
    out = LagFeatures(lags=1, columns=[0, 2]).fit_transform(X)
    np.testing.assert_array_equal(out[1:], np.column_stack([X[:-1, 0], X[:-1, 2]]))
    with pytest.raises(ValueError, match=r"columns must be column positions in \[0, 2\]"):
        LagFeatures(lags=1, columns=[3]).fit(X)
    groups = np.array([0, 0, 0, 1, 1, 1])
    out = LagFeatures(lags=1, columns=[0]).fit_transform(X, groups=groups)
    assert np.isnan(out[3, 0]) and out[4, 0] == 3.0  # the second series starts afresh
    lf = LagFeatures(lags=1, columns=[0]).fit(X, groups=groups)
    np.testing.assert_array_equal(lf.transform(X, groups=groups), out)


def test_make_supervised_without_dropna_keeps_every_row():
    X, y = make_supervised(_panel(), "v", lags=2, group="g", date="t", dropna=False)
    assert X.shape == (12, 2) and y.shape == (12,)
    assert X.index.equals(_panel().index)
    assert np.isnan(X.iloc[[0, 1, 6, 7], 0]).all() and X.iloc[2].tolist() == [0.0, 1.0]
