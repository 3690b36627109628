"""Static covariates (a series' own constant columns, a one-hot of the series) as step
features of LagFeatures/make_supervised: aligned to the right series, refused when wrong."""

import numpy as np
import pandas as pd
import pytest

from skrnn import LagFeatures, make_supervised


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for g, (n, size) in enumerate([(9, 10.0), (6, 25.0), (12, 40.0)]):
        parts.append(pd.DataFrame({
            "shop": f"s{g}", "day": pd.date_range("2024-03-01", periods=n),
            "sales": rng.normal(size=n), "promo": rng.integers(0, 2, size=n).astype(float),
            "size": size, "region": float(g % 2)}))
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_static_columns_and_group_one_hot_repeat_on_every_step():
    df = _frame()
    X, y = make_supervised(df, "sales", lags=3, group="shop", date="day",
                           future_covariates="promo", static=["size", "region"],
                           group_one_hot=True)
    step = ["sales", "promo", "size", "region", "shop_s0", "shop_s1", "shop_s2"]
    assert list(X.columns[:7]) == ["sales_lag3", "promo_lag2", "size_lag3", "region_lag3",
                                   "shop_s0_lag3", "shop_s1_lag3", "shop_s2_lag3"]
    assert X.shape[1] == 3 * len(step)
    steps = X.to_numpy().reshape(len(X), 3, len(step))
    shop = df.loc[X.index, "shop"].to_numpy()
    for i, (row, s) in enumerate(zip(steps, shop)):
        own = df[df["shop"] == s].iloc[0]
        np.testing.assert_array_equal(row[:, 2], own["size"])  # every step, its own series
        np.testing.assert_array_equal(row[:, 3], own["region"])
        onehot = np.array([s == f"s{k}" for k in range(3)], dtype=float)
        np.testing.assert_array_equal(row[:, 4:], np.tile(onehot, (3, 1)))
        day = df.loc[X.index[i], "day"]
        mine = df[df["shop"] == s].set_index("day")
        # the lagged value and the known-future value keep their own dates
        assert row[2, 0] == mine.loc[day - pd.Timedelta(days=1), "sales"]
        assert row[2, 1] == mine.loc[day, "promo"]
    W, yw = make_supervised(df, "sales", lags=3, group="shop", date="day",
                            future_covariates="promo", static=["size", "region"],
                            group_one_hot=True, as_windows=True)
    assert np.asarray(W).tobytes() == X.to_numpy().tobytes() and yw.equals(y)


def test_lag_features_static_on_incomplete_windows_and_unseen_series():
    df = _frame(1)
    lf = LagFeatures(lags=2, columns="sales", group="shop", date="day", static="size",
                     group_one_hot=True).set_output(transform="pandas")
    out = lf.fit_transform(df)
    assert lf.n_step_features_ == 5 and list(lf.group_categories_) == ["s0", "s1", "s2"]
    first = df.groupby("shop")["day"].transform("min") == df["day"]
    # the first row of a series has no lagged value, but its static features are known
    assert out.loc[first, "sales_lag1"].isna().all()
    np.testing.assert_array_equal(out.loc[first, "size_lag2"], df.loc[first, "size"])
    np.testing.assert_array_equal(out.loc[first, "shop_s1_lag1"],
                                  (df.loc[first, "shop"] == "s1").astype(float))
    sub = out.loc[df["shop"] == "s2"]
    np.testing.assert_array_equal(lf.transform(df[df["shop"] == "s2"]), sub.to_numpy())
    other = df[df["shop"] == "s0"].assign(shop="s9")
    with pytest.raises(ValueError, match=r"group_one_hot: series \['s9'\] were not seen in fit"):
        lf.transform(other)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"static": "sales"}, ValueError, r"\['sales'\] are also lagged"),
    ({"static": "promo"}, ValueError, r"'promo' is not constant within the series of group "
                                      r"'s\d'"),
    ({"static": "floor"}, ValueError, r"static='floor': \['floor'\] not in X"),
    ({"static": "shop"}, ValueError, r"\['shop'\] are also lagged, known-future, group"),
    ({"static": "name"}, TypeError, r"static: \['name'\] are not numeric"),
])
def test_bad_static_settings_are_refused(kwargs, error, match):
    df = _frame().assign(name="x")
    with pytest.raises(error, match=match):
        make_supervised(df, "sales", lags=2, group="shop", date="day", **kwargs)


def test_group_one_hot_needs_series_and_static_needs_a_frame():
    df = _frame()
    with pytest.raises(ValueError, match="group_one_hot=True needs the series of each row"):
        make_supervised(df[df["shop"] == "s0"], "sales", lags=2, date="day",
                        group_one_hot=True)
    with pytest.raises(ValueError, match="static='size' needs X as a pandas DataFrame"):
        LagFeatures(lags=2, static="size").fit(np.ones((5, 2)))
    # with groups= for array input, the one-hot names the series "group"
    lf = LagFeatures(lags=1, group_one_hot=True).fit(np.arange(6.0)[:, None],
                                                     groups=list("aabbcc"))
    assert list(lf.get_feature_names_out()) == ["x0_lag1", "group_a_lag1", "group_b_lag1",
                                                "group_c_lag1"]
