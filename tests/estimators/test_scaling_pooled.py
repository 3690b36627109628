"""GroupScaler's ``pooled_features`` and ``passthrough_features``: static step features
(constant within a series) are scaled with statistics pooled over all series, or left as
they are (a one-hot), so they keep telling series apart."""

import numpy as np
import pandas as pd
import pytest

from skrnn import GroupScaler
from skrnn.datasets import make_count_panel
from skrnn.lags import make_supervised


@pytest.fixture
def windows():
    frame = make_count_panel(n_groups=3, periods=40, start="2020-01-01", random_state=2)
    codes = frame["district"].astype("category").cat.codes.to_numpy()
    frame["area"] = np.array([12.5, 30.0, 7.25])[codes]
    X, _ = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=4,
                           date="date", group="district", static=["area"],
                           group_one_hot=True)
    return X  # 1 + 1 + 3 features per step: crimes, area, one-hot


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_static_features_keep_their_differences_and_invert_exactly(windows, method):
    train = windows.index.get_level_values("date") < pd.Timestamp("2020-02-01")
    pooled = GroupScaler(method, group="district", n_step_features=5,
                         pooled_features=[1, 2, 3, 4]).fit(windows[train])
    plain = GroupScaler(method, group="district", n_step_features=5).fit(windows[train])
    out, before = pooled.transform(windows), plain.transform(windows)
    steps = np.arange(windows.shape[1]) % 5
    static = steps >= 1
    # per-series statistics turn each series' constant into one value for all series
    assert np.ptp(before[:, static], axis=0).max() == 0
    # pooled: one affine map per feature, fitted on all training rows together
    raw = windows.to_numpy()[train][:, steps == 1]
    if method == "standard":
        want = (windows.to_numpy()[:, steps == 1] - raw.mean()) / raw.std()
    else:
        want = (windows.to_numpy()[:, steps == 1] - raw.min()) / np.ptp(raw)
    np.testing.assert_allclose(out[:, steps == 1], want, rtol=1e-12)
    groups = windows.index.get_level_values("district")
    area = pd.Series(out[:, 1], index=groups).groupby(level=0).agg(["min", "max"])
    assert (area["min"] == area["max"]).all() and area["min"].nunique() == 3
    # the one-hot stays one distinct pattern per series
    hot = pd.DataFrame(out[:, 2:5], index=groups).drop_duplicates()
    assert len(hot) == 3
    # the series' own features are scaled exactly as without the option
    np.testing.assert_array_equal(out[:, ~static], before[:, ~static])
    back = pooled.inverse_transform(pd.DataFrame(out, index=windows.index))
    np.testing.assert_allclose(back, windows.to_numpy(), rtol=1e-12, atol=1e-12)
    assert (pooled.center_[:, static] == pooled.center_[0, static]).all()


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_a_one_hot_passes_through(windows, method):
    train = windows.index.get_level_values("date") < pd.Timestamp("2020-02-01")
    scaler = GroupScaler(method, group="district", n_step_features=5, pooled_features=[1],
                         passthrough_features=[2, 3, 4], handle_unknown="global")
    out = scaler.fit(windows[train]).transform(windows)
    hot = np.arange(windows.shape[1]) % 5 >= 2
    np.testing.assert_array_equal(out[:, hot], windows.to_numpy()[:, hot])
    plain = GroupScaler(method, group="district", n_step_features=5).fit(windows[train])
    np.testing.assert_array_equal(out[:, ~hot & (np.arange(windows.shape[1]) % 5 == 0)],
                                  plain.transform(windows)[:, np.arange(20) % 5 == 0])
    back = scaler.inverse_transform(pd.DataFrame(out, index=windows.index))
    np.testing.assert_allclose(back, windows.to_numpy(), rtol=1e-12, atol=1e-12)
    # rows of an unseen series (handle_unknown="global") leave it as it is too
    new = windows.iloc[:3].rename(index=lambda g: "D09", level="district")
    np.testing.assert_array_equal(scaler.transform(new)[:, hot], new.to_numpy()[:, hot])


def test_pooled_and_passthrough_must_not_overlap(windows):
    with pytest.raises(ValueError, match="must not share a feature"):
        GroupScaler(group="district", n_step_features=5, pooled_features=[1, 2],
                    passthrough_features=[2]).fit(windows)


def test_pooled_columns_without_step_features():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 9.0], [30.0, 9.0]])
    groups = np.array(["a", "a", "b", "b"])
    out = GroupScaler(pooled_features=[1]).fit(X, groups=groups).transform(X, groups=groups)
    np.testing.assert_allclose(out, [[-1, -1], [1, -1], [-1, 1], [1, 1]])


@pytest.mark.parametrize("param", ["pooled_features", "passthrough_features"])
@pytest.mark.parametrize("bad", [[5], [-1], [0.5], [[1]]])
def test_bad_feature_lists_are_refused(windows, param, bad):
    with pytest.raises(ValueError, match=rf"{param} must list step features by "
                                         r"their index in \[0, 5\)"):
        GroupScaler(group="district", n_step_features=5, **{param: bad}).fit(windows)
