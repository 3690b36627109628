"""skrnn inside sktime: the native RecurrentForecaster and make_reduction (issue 5)."""

import warnings
from copy import deepcopy

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sktime")

from sktime.datasets import load_airline  # noqa: E402
from sktime.forecasting.compose import make_reduction  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.forecasting.model_selection import ForecastingGridSearchCV  # noqa: E402
from sktime.forecasting.naive import NaiveForecaster  # noqa: E402
from sktime.performance_metrics.forecasting import MeanAbsoluteError  # noqa: E402
from sktime.split import ExpandingWindowSplitter  # noqa: E402

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor  # noqa: E402
from skrnn.datasets import make_count_panel  # noqa: E402
from skrnn.forecasting import RecurrentForecaster  # noqa: E402

# sktime's own forecasters (baselines, reducers) still emit a FutureWarning about
# remember_data; sktime re-enables FutureWarnings globally after its pandas-warning
# suppressions, so a filter here would not hold. The RecurrentForecaster does not warn.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _tiny(cls=LSTMRegressor, **kw):
    return cls(**{"units": 4, "max_iter": 5, "random_state": 0, **kw})


def _panel(n_series=3, n=30, offset=1000.0):
    """Series ``i`` is ``offset * i + t``: a window's values tell which series it came from."""
    idx = pd.MultiIndex.from_product(
        [[f"s{i}" for i in range(n_series)], pd.RangeIndex(n)], names=["unit", "time"]
    )
    values = np.concatenate([offset * i + np.arange(n) for i in range(n_series)])
    return pd.DataFrame({"y": values.astype(float)}, index=idx)


def _mae(forecaster, cv, y):
    res = evaluate(forecaster, cv, y, scoring=MeanAbsoluteError(), error_score="raise")
    return float(res.iloc[:, 0].mean())


class _SpyLSTM(LSTMRegressor):
    """LSTMRegressor that records the (X, y) of each fit."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        # the forecaster hands its windows over as a PanelWindows (rows gathered
        # per batch); sequences() is them as (n, steps, features)
        X3 = X.sequences() if hasattr(X, "sequences") else np.asarray(X)
        _SpyLSTM.seen.append((X3.copy(), np.asarray(y).copy()))
        return super().fit(X, y, sample_weight)


# -- sktime's conformance suite ----------------------------------------------------------


def test_sktime_check_estimator_passes_everything():
    from sktime.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(RecurrentForecaster, raise_exceptions=False, verbose=False)
    failures = {k: v for k, v in results.items() if v != "PASSED"}
    assert len(results) > 1000
    assert not failures, "\n".join(f"{k}: {str(v)[:300]}" for k, v in failures.items())


def test_remember_data_is_off_and_nothing_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = RecurrentForecaster(_tiny(), window_length=3)
    assert f.get_config()["remember_data"] is False
    assert f._y is None and f._X is None
    y = load_airline()[:40]
    f.fit(y, fh=[1, 2])
    assert f._y is None  # not pooled by the base class ...
    assert f._cur_y is y  # ... the forecaster keeps its own snapshot
    f.update(load_airline()[40:44], update_params=False)
    assert len(f._cur_y) == 44 and f.cutoff[0] == load_airline().index[43]


def test_tags_follow_strategy_pooling_and_calibration():
    assert RecurrentForecaster(strategy="recursive").get_tag("requires-fh-in-fit") is False
    for strategy in ("direct", "multioutput", "seq2seq"):
        assert RecurrentForecaster(strategy=strategy).get_tag("requires-fh-in-fit") is True
    assert RecurrentForecaster(pooling="local").get_tag("y_inner_mtype") == "pd.Series"
    assert "pd-multiindex" in RecurrentForecaster().get_tag("y_inner_mtype")
    assert RecurrentForecaster(calibration_fraction=None).get_tag("capability:pred_int") is False
    f = RecurrentForecaster()
    assert f.get_tag("capability:exogenous") and f.get_tag("capability:insample")
    assert not f.get_tag("capability:multivariate")
    assert not f.get_tag("capability:missing_values")


# -- accuracy against sktime's naive baselines -------------------------------------------


def test_airline_beats_naive_and_seasonal_naive():
    y = np.log(load_airline())
    cv = ExpandingWindowSplitter(initial_window=96, step_length=12, fh=list(range(1, 13)))
    forecaster = RecurrentForecaster(
        GRURegressor(units=16, max_iter=200, learning_rate_init=0.01, random_state=0),
        window_length=24, strategy="seq2seq", differences=1, calibration_fraction=None,
    )
    rnn = _mae(forecaster, cv, y)
    naive = _mae(NaiveForecaster(strategy="last"), cv, y)
    seasonal = _mae(NaiveForecaster(strategy="last", sp=12), cv, y)
    print(f"airline (log) 12-step MAE: rnn {rnn:.4f}, naive {naive:.4f}, "
          f"seasonal naive {seasonal:.4f}")
    assert rnn < seasonal < naive
    assert rnn < 0.8 * seasonal


def test_count_panel_global_poisson_beats_naive_and_seasonal_naive():
    df = make_count_panel(n_groups=5, periods=336, zero_group=True, random_state=0)
    y = df.set_index(["district", "date"])[["crimes"]].sort_index().astype(float)
    cv = ExpandingWindowSplitter(initial_window=280, step_length=28, fh=list(range(1, 29)))
    # one global Poisson model; early stopping validates on the latest windows of all
    # series (stable across seeds: MAE 4.76-4.89 for random_state 0-3)
    forecaster = RecurrentForecaster(
        GRURegressor(units=16, max_iter=300, learning_rate_init=0.005, loss="poisson",
                     early_stopping=True, validation_fraction=0.2, n_iter_no_change=15,
                     random_state=0),
        window_length=42, strategy="multioutput", pooling="global", calibration_fraction=None,
        fallback=None,  # the model itself, never a baseline
    )
    rnn = _mae(forecaster, cv, y)
    naive = _mae(NaiveForecaster(strategy="last"), cv, y)
    seasonal = _mae(NaiveForecaster(strategy="last", sp=7), cv, y)
    print(f"count panel 28-step MAE: rnn {rnn:.3f}, naive {naive:.3f}, "
          f"seasonal naive {seasonal:.3f}")
    assert rnn < seasonal < naive
    assert rnn < 0.95 * seasonal


# -- prediction intervals -------------------------------------------------------------------


def test_conformal_intervals_cover_on_a_generated_series():
    rng = np.random.RandomState(0)
    n = 450
    t = np.arange(n)
    y = pd.Series(2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n),
                  index=pd.period_range("2000-01", periods=n, freq="M"))
    forecaster = RecurrentForecaster(
        GRURegressor(units=8, max_iter=60, learning_rate_init=0.02, random_state=0),
        window_length=12, strategy="recursive", calibration_fraction=0.3,
        scaling="standard", differences=0, fallback=None,  # the model's own intervals
    ).fit(y[:300], fh=[1, 2, 3])
    assert {k: len(v) for k, v in forecaster.calibration_residuals_.items()} == {
        1: 90, 2: 89, 3: 88}
    hits, widths = [], []
    for i in range(300, n - 3):  # roll the cutoff through unseen data, model fixed
        if i > 300:
            forecaster.update(y.iloc[i - 1 : i], update_params=False)
        pi = forecaster.predict_interval(coverage=0.8)
        truth = y.loc[pi.index].to_numpy()
        lower, upper = pi.iloc[:, 0].to_numpy(), pi.iloc[:, 1].to_numpy()
        hits.append((truth >= lower) & (truth <= upper))
        widths.append(upper - lower)
    coverage = np.mean(hits)
    print(f"empirical coverage of 80% intervals: {coverage:.3f} over {np.size(hits)}")
    assert 0.72 <= coverage <= 0.92
    # noise sd 0.5: an exact 80% interval is 2 * 1.2816 * 0.5 = 1.28 wide
    assert 1.0 < np.mean(widths) < 2.0
    q = forecaster.predict_quantiles(alpha=[0.1, 0.5, 0.9])
    assert (q.iloc[:, 0] <= q.iloc[:, 1]).all() and (q.iloc[:, 1] <= q.iloc[:, 2]).all()


def test_intervals_need_calibration_and_are_out_of_sample_only():
    y = load_airline()[:60]
    f = RecurrentForecaster(_tiny(), window_length=6, calibration_fraction=None).fit(y, fh=[1])
    with pytest.raises(NotImplementedError, match="prediction intervals"):
        f.predict_interval()
    f = RecurrentForecaster(_tiny(), window_length=6, strategy="direct").fit(y, fh=[-2, 1])
    with pytest.raises(NotImplementedError, match="in-sample"):
        f.predict_interval()


# -- panels, scaling, windows -----------------------------------------------------------------


def test_training_windows_stay_inside_each_series_in_time_order():
    y = _panel()
    _SpyLSTM.seen.clear()
    f = RecurrentForecaster(_SpyLSTM(units=2, max_iter=1, random_state=0), window_length=4,
                            strategy="multioutput", scaling="none", differences=0,
                            calibration_fraction=None, fallback=None).fit(y, fh=[1, 2])
    (X, Y), = _SpyLSTM.seen
    assert X.shape == (3 * (30 - 4 - 2 + 1), 4, 1) and Y.shape == (X.shape[0], 2)
    series = X[:, 0, 0] // 1000
    np.testing.assert_array_equal(X[:, :, 0] // 1000, np.repeat(series[:, None], 4, 1))
    np.testing.assert_array_equal(np.diff(X[:, :, 0], axis=1), 1.0)  # consecutive steps
    np.testing.assert_array_equal(Y, X[:, -1:, 0] + [1.0, 2.0])  # the values that follow
    # time order across series: early stopping holds out the latest windows of all series
    ends = X[:, -1, 0] % 1000
    assert np.all(np.diff(ends) >= 0)
    assert sorted(series[-3:]) == [0, 1, 2]
    pred = f.predict()
    assert isinstance(pred, pd.DataFrame) and pred.index.equals(pd.MultiIndex.from_product(
        [["s0", "s1", "s2"], [30, 31]], names=["unit", "time"]))


def test_per_series_scaling_and_constant_series():
    y = _panel(offset=1000.0)
    y.loc["s1", "y"] = 7.0  # a constant series: scale 1, no division by zero
    f = RecurrentForecaster(_tiny(GRURegressor, max_iter=40, learning_rate_init=0.02),
                            window_length=4, strategy="direct",
                            calibration_fraction=None).fit(y, fh=[1, 3])
    scales = f.series_scales_
    assert scales.loc[("s1",), "scale"] == 1.0 and scales.loc[("s1",), "loc"] == 7.0
    np.testing.assert_allclose(scales.loc[("s0",), "scale"], np.arange(30).std())
    pred = f.predict()["y"]
    assert np.all(np.isfinite(pred))
    # each forecast lands on its own series' level (inverted scaling)
    assert abs(pred.loc["s1"] - 7.0).max() < 5
    assert abs(pred.loc["s2"] - 2030).max() < 30
    # mean scaling keeps counts non-negative for the Poisson loss, zero series included
    counts = y.copy()
    counts["y"] = np.r_[np.zeros(30), np.arange(30) % 7, np.full(30, 3.0)]
    f = RecurrentForecaster(_tiny(loss="poisson"), window_length=7,
                            calibration_fraction=None).fit(counts, fh=[1, 2])
    assert f.series_scales_["loc"].eq(0).all()
    assert f.series_scales_.loc[("s0",), "scale"] == 1.0
    assert np.all(f.predict().to_numpy() >= 0)


def test_global_local_and_hierarchical_panels():
    from sktime.utils._testing.hierarchical import _make_hierarchical

    y = _make_hierarchical(hierarchy_levels=(2, 3), min_timepoints=15, max_timepoints=25,
                           same_cutoff=False, index_type="period", random_state=1)
    glob = RecurrentForecaster(_tiny(), window_length=4).fit(y, fh=[1, 2])
    pred = glob.predict()
    assert hasattr(glob, "regressor_") and pred.shape == (12, 1)
    # every series is forecast from its own end, as sktime's per-series loop would
    for key, part in y.groupby(level=[0, 1]):
        last = part.index.get_level_values(-1)[-1]
        assert list(pred.loc[key].index) == [last + 1, last + 2]
    local = RecurrentForecaster(_tiny(), window_length=4, pooling="local").fit(y, fh=[1, 2])
    assert local.forecasters_.shape == (6, 1)
    assert local.predict().index.equals(pred.index)
    q = glob.predict_interval(coverage=0.5)
    assert q.index.equals(pred.index) and (q.iloc[:, 0] <= q.iloc[:, 1]).all()


# -- exogenous data, in-sample, update -----------------------------------------------------------


def test_known_future_X_is_used():
    rng = np.random.RandomState(0)
    n = 230
    idx = pd.period_range("2000-01-01", periods=n, freq="D")
    X = pd.DataFrame({"promo": rng.binomial(1, 0.3, n).astype(float)}, index=idx)
    y = pd.Series(10 + 5 * X["promo"].to_numpy() + rng.normal(0, 0.3, n), index=idx)
    fh = list(range(1, 8))
    truth = y.iloc[200:207].to_numpy()

    def mae(**kw):
        f = RecurrentForecaster(
            GRURegressor(units=8, max_iter=80, learning_rate_init=0.02, random_state=0),
            window_length=7, strategy="multioutput", calibration_fraction=None, **kw)
        if "exog" in kw:
            f.fit(y[:200], X=X[:200], fh=fh)
            return np.abs(f.predict(X=X[200:207]).to_numpy() - truth).mean()
        return np.abs(f.fit(y[:200], fh=fh).predict().to_numpy() - truth).mean()

    future, past, none = mae(exog="future"), mae(exog="past"), mae()
    assert future < 0.6 < 1.0 < none  # the promo days are known in advance ...
    assert past > 2 * future  # ... but not to a model that only sees past X

    f = RecurrentForecaster(_tiny(), window_length=7).fit(y[:200], X=X[:200], fh=[1, 2])
    with pytest.raises(ValueError, match="needs X"):
        f.predict()


def test_in_sample_predictions_are_one_step_fitted_values():
    y = np.log(load_airline())
    f = RecurrentForecaster(_tiny(GRURegressor), window_length=12,
                            calibration_fraction=None).fit(y[:-1])
    ahead = f.predict(fh=[1])
    moved = deepcopy(f).update(y[-1:], update_params=False)
    inside = moved.predict(fh=[0])
    np.testing.assert_allclose(inside.to_numpy(), ahead.to_numpy(), rtol=1e-12)
    # the first window_length points have no full window: NaN, the rest are finite
    full = f.predict(fh=-np.arange(len(y) - 1))
    assert full.isna().sum() == 12 and full.iloc[12:].notna().all()


def test_update_refits_on_all_data_with_the_same_seed():
    y = np.log(load_airline())
    kw = {"window_length": 12, "strategy": "direct", "differences": 0, "fallback": None}
    f = RecurrentForecaster(_tiny(), **kw).fit(y[:100], fh=[1, 2])
    residuals = f.calibration_residuals_
    f.update(y[100:], update_params=True)
    g = RecurrentForecaster(_tiny(), **kw).fit(y, fh=[1, 2])
    np.testing.assert_allclose(f.predict(), g.predict(), rtol=1e-12)
    assert f.calibration_residuals_ is residuals  # calibration of fit is kept


def test_regressor_can_be_given_by_name_and_params_and_seed_override():
    y = load_airline()[:60]
    a = RecurrentForecaster("gru", {"units": 4, "max_iter": 5}, window_length=6,
                            random_state=3, calibration_fraction=None).fit(y, fh=[1, 2])
    b = RecurrentForecaster(GRURegressor(units=4, max_iter=5, random_state=3),
                            window_length=6, calibration_fraction=None).fit(y, fh=[1, 2])
    np.testing.assert_array_equal(a.predict(), b.predict())
    assert isinstance(a.regressor_, GRURegressor) and a.regressor_.units == 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"strategy": "dirrect"}, "strategy"),
        ({"window_length": 0}, "window_length"),
        ({"differences": 2}, "differences"),
        ({"calibration_fraction": 0.9}, "calibration_fraction"),
        ({"regressor": "transformer"}, "regressor"),
        ({"regressor": _tiny(loss="poisson"), "scaling": "standard"}, "poisson"),
        ({"regressor": _tiny(loss="poisson"), "differences": 1}, "poisson"),
        ({"window_length": 50}, "No training window"),
    ],
)
def test_invalid_settings_raise_clear_errors(kwargs, match):
    kwargs = {"regressor": _tiny(), **kwargs}
    with pytest.raises(ValueError, match=match):
        RecurrentForecaster(**kwargs).fit(load_airline()[:50], fh=[1])


def test_non_skrnn_regressor_is_refused():
    from sklearn.linear_model import Ridge

    with pytest.raises(TypeError, match="make_reduction"):
        RecurrentForecaster(Ridge()).fit(load_airline()[:50], fh=[1])


# -- sktime tooling --------------------------------------------------------------------------------


def test_forecasting_grid_search_cv():
    y = np.log(load_airline())[:96]
    forecaster = RecurrentForecaster(
        SimpleRNNRegressor(units=4, max_iter=20, learning_rate_init=0.02, random_state=0),
        strategy="multioutput", differences=1, calibration_fraction=None)
    gscv = ForecastingGridSearchCV(
        forecaster,
        cv=ExpandingWindowSplitter(initial_window=60, step_length=12, fh=[1, 2, 3]),
        param_grid={"window_length": [6, 12], "regressor__units": [2, 4]},
        scoring=MeanAbsoluteError(), error_score="raise",
        backend=None,  # sequential: worker processes would cost more than the fits here
    )
    gscv.fit(y, fh=[1, 2, 3])
    assert len(gscv.cv_results_) == 4
    assert set(gscv.best_params_) == {"window_length", "regressor__units"}
    assert gscv.best_forecaster_.regressor_.units == gscv.best_params_["regressor__units"]
    assert gscv.predict().shape == (3,)


def test_mlflow_sktime_log_and_load(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from sktime.utils import mlflow_sktime

    y = np.log(load_airline())
    f = RecurrentForecaster(_tiny(GRURegressor), window_length=12,
                            strategy="seq2seq").fit(y, fh=[1, 2, 3])
    monkeypatch.chdir(tmp_path)  # artifacts of a sqlite-tracked run go under ./mlruns
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow 3 deprecates sktime's artifact_path
            with mlflow.start_run():
                info = mlflow_sktime.log_model(f, artifact_path="model")
            loaded = mlflow_sktime.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    pd.testing.assert_series_equal(loaded.predict(), f.predict())
    pd.testing.assert_frame_equal(loaded.predict_interval(), f.predict_interval())


# -- skrnn regressors inside sktime's reduction --------------------------------------------------


@pytest.mark.parametrize("strategy", ["recursive", "direct", "multioutput"])
def test_make_reduction_strategies(strategy):
    t = np.arange(120)
    y = pd.Series(np.sin(2 * np.pi * t / 12) + 0.05 * np.random.RandomState(0).randn(120))
    _SpyLSTM.seen.clear()
    f = make_reduction(
        _SpyLSTM(units=8, max_iter=60, learning_rate_init=0.02, random_state=0),
        window_length=12, strategy=strategy,
    )
    f.fit(y[:108], fh=[1, 2, 3])
    X, Y = _SpyLSTM.seen[0]
    # windows reach the regressor step-major, oldest value first (docs/architecture.md,
    # contract 1)
    np.testing.assert_array_equal(X[0], y[:12].to_numpy())
    if strategy == "multioutput":  # one regressor with a native 2D y
        assert len(_SpyLSTM.seen) == 1 and Y.shape[1] == 3
        assert f.estimator_.n_outputs_ == 3
    elif strategy == "direct":
        assert len(_SpyLSTM.seen) == 3
    pred = f.predict()
    truth = y[108:111].to_numpy()
    assert np.abs(pred.to_numpy() - truth).mean() < np.abs(y.iloc[107] - truth).mean()


@pytest.mark.parametrize("strategy", ["recursive", "direct", "multioutput"])
def test_make_reduction_global_pooling_on_a_panel(strategy):
    y = _panel(n_series=3, n=25)
    _SpyLSTM.seen.clear()
    f = make_reduction(_SpyLSTM(units=2, max_iter=1, random_state=0), window_length=4,
                       strategy=strategy, pooling="global")
    f.fit(y, fh=[1, 2])
    origin = []
    for X, _ in _SpyLSTM.seen:  # no window mixes two series
        X = X.reshape(len(X), -1)
        assert np.all(X // 1000 == X[:, :1] // 1000)
        origin.append(set((X[:, 0] // 1000).astype(int)))
    if strategy == "multioutput":
        # sktime 1.2's MultioutputTabularRegressionForecaster has no pooling parameter
        # (make_reduction drops it): it fits one model per series. A global multi-output
        # model is RecurrentForecaster(strategy="multioutput", pooling="global").
        assert origin == [{0}, {1}, {2}] and f.forecasters_.shape == (3, 1)
    else:  # one model (per step) on the windows of all series
        assert all(o == {0, 1, 2} for o in origin)
    pred = f.predict()
    assert pred.shape == (6, 1) and pred.index.get_level_values(0).nunique() == 3
