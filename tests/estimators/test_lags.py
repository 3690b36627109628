"""LagFeatures and make_supervised against a brute-force reference on random panels."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import LagFeatures, make_supervised

DAY = pd.Timedelta(days=1)


def random_panel(seed=0, n_groups=4):
    """Groups of unequal length and different start dates, two value columns, rows shuffled.

    Group k's values are offset by 1000 * k, so a value that leaked from another series is
    recognisable.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_groups):
        n = int(rng.integers(3, 14))
        start = pd.Timestamp("2021-03-01") + int(rng.integers(0, 6)) * DAY
        parts.append(pd.DataFrame({
            "date": pd.date_range(start, periods=n, freq="D"),
            "district": f"d{k}",
            "a": 1000.0 * k + rng.normal(size=n).round(3),
            "b": 1000.0 * k + 500 + rng.normal(size=n).round(3),
        }))
    df = pd.concat(parts, ignore_index=True)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def reference(df, columns, lags, leads=(), rolling=(), stats=()):
    """Pure-Python lags: look (group, date - L) up in a dict, one row at a time."""
    table = {}
    for _, row in df.iterrows():
        table[(row["district"], row["date"])] = {c: row[c] for c in columns}
    out = []
    for _, row in df.iterrows():
        g, t = row["district"], row["date"]

        def at(shift, col, g=g, t=t):
            hit = table.get((g, t + shift * DAY))
            return math.nan if hit is None else hit[col]

        values = []
        for L in sorted(lags, reverse=True):
            values += [at(-L, c) for c in columns]
        for w in rolling:
            for s in stats:
                for c in columns:
                    window = [at(-L, c) for L in range(1, w + 1)]
                    if any(math.isnan(v) for v in window):
                        values.append(math.nan)
                    elif s == "mean":
                        values.append(sum(window) / w)
                    elif s == "max":
                        values.append(max(window))
        for L in sorted(leads):
            values += [at(L, c) for c in columns]
        out.append(values)
    return np.array(out, dtype=float)


def as_layout(df, layout):
    """The same panel as columns, as a (date, district) or (district, date) MultiIndex."""
    if layout == "columns":
        return df, {"group": "district", "date": "date"}
    if layout == "index_date_group":
        return df.set_index(["date", "district"]), {"group": "district", "date": "date"}
    if layout == "index_group_date":
        return df.set_index(["district", "date"]), {"group": "district", "date": "date"}
    raise AssertionError(layout)


@pytest.mark.parametrize("layout", ["columns", "index_date_group", "index_group_date"])
@pytest.mark.parametrize("seed", [0, 1])
def test_lags_match_bruteforce_reference(layout, seed):
    df = random_panel(seed)
    data, keys = as_layout(df, layout)
    lf = LagFeatures(lags=[1, 2, 4], columns=["a", "b"], leads=2, rolling=3,
                     rolling_stats=("mean", "max"), **keys).set_output(transform="pandas")
    out = lf.fit_transform(data)
    expected = reference(df, ["a", "b"], [1, 2, 4], leads=[1, 2], rolling=[3],
                         stats=["mean", "max"])
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=0, atol=1e-9, equal_nan=True)
    # Same rows, same order, same index as the input.
    assert out.index.equals(data.index)
    assert list(out.columns[:6]) == ["a_lag4", "b_lag4", "a_lag2", "b_lag2", "a_lag1", "b_lag1"]
    assert lf.n_step_features_ == 2


def test_groups_argument_and_row_order_without_date():
    """groups= on a plain array; row order is the time order within each series."""
    df = random_panel(3).sort_values(["date"], kind="stable")  # interleaved series
    X = df[["a"]].to_numpy()
    out = LagFeatures(lags=3).fit_transform(X, groups=df["district"].to_numpy())
    expected = reference(df, ["a"], [1, 2, 3])
    np.testing.assert_allclose(out, expected, equal_nan=True)


def test_no_value_leaks_across_groups():
    df = random_panel(5, n_groups=5)
    out = LagFeatures(lags=6, columns="a", group="district", date="date",
                      leads=3).fit_transform(df)
    own_block = np.floor(df["a"].to_numpy() / 1000 + 0.01)  # series k has values near 1000 k
    for j in range(out.shape[1]):
        col = out[:, j]
        seen = ~np.isnan(col)
        np.testing.assert_array_equal(np.floor(col[seen] / 1000 + 0.01), own_block[seen])
    # First row of each series has no lag, last row no lead: nothing borrowed from a neighbour.
    first = df.groupby("district")["date"].transform("min") == df["date"]
    assert np.isnan(out[first.to_numpy(), :6]).all()


def test_sequence_layout_values_step_major():
    df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [10.0, 20, 30, 40]})
    lf = LagFeatures(lags=2).fit(df)
    assert list(lf.get_feature_names_out()) == ["a_lag2", "b_lag2", "a_lag1", "b_lag1"]
    out = lf.transform(df)
    np.testing.assert_array_equal(out[3], [2.0, 20.0, 3.0, 30.0])
    # Reshaped as (timesteps, n_step_features), the last step is the most recent one.
    np.testing.assert_array_equal(out[3].reshape(2, 2)[-1], [3.0, 30.0])


def test_fill_value_edge_and_constant():
    df = pd.DataFrame({"g": ["x", "x", "x", "y", "y"], "v": [1.0, 2, 3, 7, 8]})
    edge = LagFeatures(lags=2, group="g", fill_value="edge", leads=1).fit_transform(df)
    np.testing.assert_array_equal(edge, [[1, 1, 2], [1, 1, 3], [1, 2, 3], [7, 7, 8], [7, 7, 8]])
    zero = LagFeatures(lags=2, group="g", fill_value=0.0).fit_transform(df)
    np.testing.assert_array_equal(zero, [[0, 0], [0, 1], [1, 2], [0, 0], [0, 7]])


def test_gaps_refused_with_clear_error_then_filled():
    dates = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"])
    df = pd.DataFrame({"date": dates, "g": "a", "v": [1.0, 2.0, 5.0, 6.0]}).iloc[::-1]
    with pytest.raises(ValueError, match=r"gaps.*'a' misses 2 step.*fill_gaps"):
        LagFeatures(group="g", date="date").fit(df)
    with pytest.raises(ValueError, match="gaps"):
        make_supervised(df, "v", group="g", date="date")

    def lag1(fill):
        out = LagFeatures(lags=1, group="g", date="date", fill_gaps=fill).fit_transform(df)
        return out[::-1, 0]  # back to date order

    # 2024-01-05's previous day is a filled gap: 0, the last seen value, or interpolated.
    np.testing.assert_array_equal(lag1(0), [np.nan, 1, 0, 5])
    np.testing.assert_array_equal(lag1("ffill"), [np.nan, 1, 2, 5])
    np.testing.assert_array_equal(lag1("interpolate"), [np.nan, 1, 4, 5])
    # Filled steps feed the lags but add no rows to make_supervised.
    X, y = make_supervised(df, "v", lags=2, group="g", date="date", fill_gaps="interpolate")
    assert list(X.index) == [3, 2]  # input order kept (the frame was reversed)
    np.testing.assert_array_equal(X.to_numpy(), [[4.0, 5.0], [3.0, 4.0]])
    np.testing.assert_array_equal(y.to_numpy(), [6.0, 5.0])


def test_irregular_dates_and_duplicates_refused():
    df = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-03-15"]),
        "v": [1.0, 2.0, 3.0, 4.0],
    })
    with pytest.raises(ValueError, match=r"not on the .*grid.*freq="):
        LagFeatures(date="date").fit(df)
    # Month starts are fine with the right frequency.
    out = LagFeatures(date="date", freq="MS").fit_transform(df.iloc[:3])
    np.testing.assert_array_equal(out[:, 0], [np.nan, 1.0, 2.0])

    dup = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
                        "g": ["a", "a", "b"], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"1 duplicated .*2024-01-01.*'a'"):
        LagFeatures(group="g", date="date").fit(dup)
    # The same date in two different series is not a duplicate.
    LagFeatures(group="g", date="date").fit(dup.assign(g=["a", "b", "b"]))


def test_period_and_integer_time_axes():
    periods = pd.period_range("2020-01", periods=5, freq="M")
    df = pd.DataFrame({"t": periods[[4, 0, 2, 1, 3]], "v": [5.0, 1, 3, 2, 4]})
    np.testing.assert_array_equal(LagFeatures(date="t").fit_transform(df)[:, 0],
                                  [4, np.nan, 2, 1, 3])
    df_int = pd.DataFrame({"t": [10, 0, 20, 30], "v": [2.0, 1, 3, 4]})
    np.testing.assert_array_equal(LagFeatures(date="t").fit_transform(df_int)[:, 0],
                                  [1, np.nan, 2, 3])
    with pytest.raises(ValueError, match="gaps"):
        LagFeatures(date="t", freq=5).fit(df_int)


def test_input_errors_name_the_argument():
    X = np.arange(10.0).reshape(5, 2)
    with pytest.raises(ValueError, match=r"group='g'.*must be a pandas DataFrame.*groups="):
        LagFeatures(group="g").fit(X)
    df = pd.DataFrame({"g": list("aabbb"), "s": list("uvwxy"), "v": np.arange(5.0)})
    with pytest.raises(TypeError, match=r"columns: \['s'\] are not numeric"):
        LagFeatures(group="g").fit(df)
    with pytest.raises(ValueError, match=r"group='nope' is neither a column nor an index level"):
        LagFeatures(group="nope").fit(df)
    with pytest.raises(ValueError, match=r"lags reach back 3 .*n_samples=3"):
        LagFeatures(lags=3, columns="v", group="g").fit(df)
    with pytest.raises(ValueError, match=r"groups must have shape \(5,\)"):
        LagFeatures().fit(X, groups=[0, 1])


def test_make_supervised_matches_reference_and_joins_back():
    df = random_panel(7).set_index(["district", "date"])
    flat = df.reset_index()
    X, y = make_supervised(df, "a", lags=3, horizon=2, columns=["a", "b"], group="district",
                           date="date")
    assert list(X.columns) == ["a_lag3", "b_lag3", "a_lag2", "b_lag2", "a_lag1", "b_lag1"]
    assert list(y.columns) == ["a_h1", "a_h2"]
    lags = reference(flat, ["a", "b"], [1, 2, 3])
    targets = reference(flat, ["a"], [0], leads=[1])  # a at t, a at t+1
    keep = ~np.isnan(lags).any(axis=1) & ~np.isnan(targets).any(axis=1)
    assert keep.sum() == len(X) > 0
    np.testing.assert_array_equal(X.to_numpy(), lags[keep])
    np.testing.assert_array_equal(y.to_numpy(), targets[keep])
    # The index is the input's: rows join back to their date, district and truth.
    assert X.index.equals(df.index[keep]) and y.index.equals(X.index)
    np.testing.assert_array_equal(y["a_h1"].to_numpy(), df.loc[y.index, "a"].to_numpy())

    # A single h-step target.
    _, y3 = make_supervised(df, "a", lags=2, horizon=3, multi_output=False,
                            group="district", date="date")
    assert y3.name == "a_h3"
    later = df["a"].sort_index().groupby(level="district").shift(-2)  # value at t + 2
    np.testing.assert_array_equal(y3.to_numpy(), later.loc[y3.index].to_numpy())


def test_make_supervised_rejects_short_series():
    df = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 2, "v": np.arange(8.0)})
    with pytest.raises(ValueError, match=r"1 series are too short .*need at least 3.*'b': 2"):
        make_supervised(df, "v", lags=2, group="g")
    X, y = make_supervised(df, "v", lags=1, group="g")
    np.testing.assert_array_equal(X.index, [1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(y.to_numpy(), [1, 2, 3, 4, 5, 7])
    np.testing.assert_array_equal(X["v_lag1"].to_numpy(), [0, 1, 2, 3, 4, 6])


def test_set_output_and_pipeline_feature_names():
    df = random_panel(2).set_index(["date", "district"])
    lf = LagFeatures(lags=2, columns=["a"], group="district", date="date")
    out = lf.set_output(transform="pandas").fit_transform(df)
    assert list(out.columns) == ["a_lag2", "a_lag1"] and out.index.equals(df.index)
    with pytest.raises(ValueError, match="input_features must equal"):
        lf.get_feature_names_out(["x", "y"])


@parametrize_with_checks(
    [LagFeatures(), LagFeatures(lags=[0, 2], leads=1, rolling=2, fill_value="edge")],
    # A lag transformer depends on the row order and on the rows around each row by
    # definition: on a plain array, rows are the time axis. These two checks ask for the
    # opposite (with a date column, row order does not matter: see the reference tests).
    expected_failed_checks=lambda est: {
        "check_methods_sample_order_invariance": "lags follow the row (time) order",
        "check_methods_subset_invariance": "a lag needs the previous rows",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
