"""The runner's steps on lag windows as views equal them on the dense window DataFrame.

``make_supervised(..., as_windows=True)`` gives labelled :class:`PanelWindows` (the
rows' index, the column names); GroupScaler, LastSteps, the naive baselines, the
target regressors, the runner's pipelines and the tuning split must give on them what
they give on ``make_supervised``'s DataFrame -- bit for bit where the arithmetic is the
same -- and keep them windows (no window matrix).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skrnn._experiment.config import ModelConfig
from skrnn._experiment.models import _build
from skrnn.baselines import (
    DriftRegressor,
    LastValueRegressor,
    SeasonalNaiveRegressor,
    WindowMeanRegressor,
)
from skrnn.datasets import make_count_panel
from skrnn.lags import LastSteps, make_supervised
from skrnn.scaling import GroupScaler, GroupTargetRegressor
from skrnn.tuning import TimeHoldout
from skrnn.windows import PanelWindows

KW = {"lags": 14, "date": "date", "group": "district", "calendar": ["dayofweek"]}


@pytest.fixture(scope="module")
def both():
    frame = make_count_panel(n_groups=5, periods=200, zero_group=True, random_state=0)
    frame = frame.sort_values(["district", "date"]).set_index(["date", "district"])
    X, y = make_supervised(frame, "crimes", **KW)
    W, yw = make_supervised(frame, "crimes", as_windows=True, **KW)
    train = np.asarray(X.index.get_level_values("date") < "2020-06-01")
    return X, y, W, yw, train


def test_windows_carry_the_rows_index_and_column_names(both):
    X, y, W, yw, train = both
    assert isinstance(W, PanelWindows)
    assert W.index.equals(X.index) and list(W.columns) == list(X.columns)
    assert np.array_equal(np.asarray(W), X.to_numpy()) and yw.equals(y)
    part = W.subset(train)
    assert part.index.equals(X.index[train]) and list(part.columns) == list(X.columns)
    assert part[train.sum() - 1 :, ...].index.equals(X.index[train][-1:])
    pd.testing.assert_frame_equal(part.frame(slice(0, 5)), X[train].iloc[:5])
    with pytest.raises(ValueError, match="labels for"):
        W.labelled(index=X.index[:3])


@pytest.mark.parametrize("method", ["standard", "minmax"])
@pytest.mark.parametrize("group", ["district", None])
@pytest.mark.parametrize("rule", [None, "pooled_features", "passthrough_features"])
def test_group_scaler_on_windows_equals_the_dense_path(both, method, group, rule):
    X, _, W, _, train = both
    F = W.n_step_features
    rules = {} if rule is None else {rule: (F - 1,)}  # the last step feature
    dense = GroupScaler(method, group=group, n_step_features=F, **rules
                        ).set_output(transform="pandas")
    lazy = clone(dense)
    out_dense = dense.fit(X[train]).transform(X)
    out_lazy = lazy.fit_transform(W.subset(train))
    assert isinstance(out_lazy, PanelWindows)  # set_output does not densify windows
    for name in ("center_", "scale_", "global_center_", "global_scale_"):
        assert np.array_equal(getattr(dense, name), getattr(lazy, name)), name
    out_lazy = lazy.transform(W)
    assert isinstance(out_lazy, PanelWindows) and out_lazy.values is not W.values
    assert np.array_equal(np.asarray(out_lazy), out_dense.to_numpy())
    assert list(lazy.feature_names_in_) == list(X.columns)
    # fitted on windows, it scales the DataFrame of the same windows alike, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(lazy.transform(X).to_numpy(), out_dense.to_numpy())


def test_group_scaler_pooled_statistics_from_chunks_agree_closely(both, monkeypatch):
    """Beyond one chunk the pooled statistics are combined from chunks: equal to the
    dense ones to rounding, while each series' statistics stay bit for bit equal."""
    import skrnn.scaling

    X, _, W, _, train = both
    dense = GroupScaler(group="district", n_step_features=W.n_step_features).fit(X[train])
    monkeypatch.setattr(skrnn.scaling, "_WINDOW_CELLS", 3 * W.shape[1] * 7)
    lazy = clone(dense).fit(W.subset(train))
    assert np.array_equal(dense.center_, lazy.center_)
    assert np.array_equal(dense.scale_, lazy.scale_)
    np.testing.assert_allclose(lazy.global_center_, dense.global_center_, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(lazy.global_scale_, dense.global_scale_, rtol=1e-12)


def test_group_scaler_refuses_windows_it_cannot_scale_as_views(both):
    _, _, W, _, _ = both
    with pytest.raises(ValueError, match="n_step_features="):
        GroupScaler(group="district").fit(W)
    unlabelled = PanelWindows(np.arange(20.0), [10, 10], window=3)
    with pytest.raises(ValueError, match="carry no index"):
        GroupScaler(group="district", n_step_features=1).fit(unlabelled)
    scaler = GroupScaler(n_step_features=1).fit(unlabelled, groups=unlabelled.series)
    out = scaler.transform(unlabelled, groups=unlabelled.series)
    expected = GroupScaler(n_step_features=1).fit(
        np.asarray(unlabelled), groups=unlabelled.series).transform(
        np.asarray(unlabelled), groups=unlabelled.series)
    assert np.array_equal(np.asarray(out), expected)


def test_last_steps_cuts_windows_without_gathering_them(both):
    X, _, W, _, _ = both
    F = W.n_step_features
    dense = LastSteps(5, n_step_features=F).fit(X)
    lazy = LastSteps(5, n_step_features=F).fit(W)
    out = lazy.transform(W)
    assert isinstance(out, PanelWindows) and out.values is W.values
    assert np.array_equal(np.asarray(out), dense.transform(X))
    assert out.columns is None  # like the array the dense path returns
    assert list(lazy.get_feature_names_out()) == list(dense.get_feature_names_out())
    with pytest.raises(ValueError, match="features per step"):
        LastSteps(2, n_step_features=1).fit(W)


@pytest.mark.parametrize("model", [
    LastValueRegressor, lambda **kw: SeasonalNaiveRegressor(sp=7, **kw),
    lambda **kw: WindowMeanRegressor(window=3, **kw), DriftRegressor])
def test_baselines_on_windows_equal_the_dense_path(both, model, monkeypatch):
    X, y, W, _, train = both
    F = W.n_step_features
    dense = model(n_step_features=F).fit(X[train], y[train])
    lazy = model(n_step_features=F).fit(W.subset(train), y[train])
    # only the steps the forecast reads are gathered, never the window matrix (the
    # first row is, to check the layout)
    gathered, sequences = [], PanelWindows.sequences
    monkeypatch.setattr(PanelWindows, "sequences", lambda self, rows=slice(None), dtype=None: (
        gathered.append(len(self.starts[rows])) or sequences(self, rows, dtype)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(lazy.predict(W.subset(~train)), dense.predict(X[~train]))
        assert np.array_equal(lazy.predict(X[~train]), dense.predict(X[~train]))
    assert gathered == [1]


def test_group_target_regressor_reads_the_groups_of_windows(both):
    X, y, W, _, train = both
    reg = GroupTargetRegressor(LastValueRegressor(n_step_features=W.n_step_features),
                               group="district")
    dense = clone(reg).fit(X[train], y[train]).predict(X[~train])
    assert np.array_equal(clone(reg).fit(W.subset(train), y[train]).predict(
        W.subset(~train)), dense)


class _Features:
    lags, max_lags = 7, 14

    def __init__(self, scaling, F):
        self.scaling, self.F = scaling, F

    static = ()

    def n_step_features(self):
        return self.F

    def n_static_features(self):
        return 0


@pytest.mark.parametrize("kind,params,scaling", [
    (kind, params, scaling) for kind, params in [
        ("gru", {"max_iter": 2, "units": 4}), ("seasonal_naive", {"sp": 7}), ("ridge", {})]
    for scaling in ["per_series", "global", "none"]] + [
    ("hgb", {"max_iter": 5}, "per_series"), ("mlp", {"max_iter": 5}, "per_series")])
def test_runner_pipelines_on_windows_equal_the_dense_path(both, kind, params, scaling):
    """The runner's estimators (scaler, LastSteps, model, target scaling) fit on
    windows predict what they predict fitted on the DataFrame, on windows and on the
    DataFrame ``skrnn predict`` builds, without a feature-name warning. Ridge reads a
    differently laid out copy (C- vs F-ordered), so its sums may differ in the last
    bits: equal to 1e-12 of the forecasts' size there, bit for bit elsewhere."""
    X, y, W, _, train = both
    est, _ = _build(ModelConfig(name=kind, kind=kind, params=params),
                    _Features(scaling, W.n_step_features), 0, "district")
    from threadpoolctl import threadpool_limits

    # one thread: HGB's OpenMP threads crawl on a busy machine
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence of the tiny fits
        dense = clone(est).fit(X[train], y[train])
        lazy = clone(est).fit(W.subset(train), y[train])
    expected = dense.predict(X[~train])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [lazy.predict(W.subset(~train)), lazy.predict(X[~train])]
    for pred in got:
        if kind == "ridge":
            np.testing.assert_allclose(pred, expected, rtol=0,
                                       atol=1e-12 * np.abs(expected).max())
        else:
            assert np.array_equal(pred, expected)


def test_tuning_split_reads_the_dates_of_windows(both):
    from skrnn.tuning import tune

    X, y, W, _, train = both
    cv = TimeHoldout(start="2020-05-01", date="date")
    (tr_d, te_d), = cv.split(X[train])
    (tr_w, te_w), = cv.split(W.subset(train))
    assert np.array_equal(tr_d, tr_w) and np.array_equal(te_d, te_w)
    est, _ = _build(ModelConfig(name="r", kind="ridge"), _Features("per_series", W.n_step_features),
                    0, "district")
    from optuna.distributions import FloatDistribution

    space = {"regressor__model__alpha": FloatDistribution(0.1, 10.0, log=True)}
    kwargs = dict(search_space=space, cv=cv, scoring="neg_mean_absolute_error", n_trials=2,
                  seed=0, refit=False, progress=False)
    dense = tune(clone(est), X[train], y[train], **kwargs)
    lazy = tune(clone(est), W.subset(train), y[train], **kwargs)
    assert dense.best_params == lazy.best_params
    assert lazy.study.best_value == pytest.approx(dense.study.best_value, rel=1e-12)


def test_time_holdout_on_unlabelled_windows_says_what_it_needs():
    W = PanelWindows(np.arange(20.0), [10, 10], window=3)
    with pytest.raises(ValueError, match="dates in a column or in the index"):
        next(TimeHoldout(start="2020-01-01", date="date").split(W))


def test_window_helpers_check_their_arguments(both):
    X, _, W, _, _ = both
    with pytest.raises(ValueError, match="exceeds the window"):
        W.last_steps(W.window + 1)
    with pytest.raises(ValueError, match="values must have shape"):
        W.with_values(W.values[:-1])
    with pytest.raises(ValueError, match="names for windows"):
        W.labelled(columns=["a"])
    cols = [0, 5, X.shape[1] - 1]
    assert np.array_equal(W.take(cols), X.to_numpy()[:, cols])
    # window-relative levels need the whole window: gathered, same numbers
    rel = PanelWindows(np.arange(12.0), [6, 6], window=3, level="last")
    assert np.array_equal(rel.take([0, 2]), np.asarray(rel)[:, [0, 2]])
