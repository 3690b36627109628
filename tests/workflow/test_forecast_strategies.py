"""The forecaster's strategy objects (skrnn/_forecast_strategies.py) and its intervals
component (skrnn/_forecast_intervals.py), on their own."""

import itertools

import numpy as np
import pytest

pytest.importorskip("sktime")

from skrnn import GRURegressor  # noqa: E402
from skrnn._forecast_intervals import ConformalIntervals, QuantileIntervals  # noqa: E402
from skrnn._forecast_strategies import (  # noqa: E402
    POINT,
    QUANTILES,
    STRATEGIES,
    make_strategy,
)
from skrnn.windows import PanelWindows  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_each_strategy_plans_its_steps_and_x_rows():
    plan = {name: cls.plan_steps([2, 5], False) for name, cls in STRATEGIES.items()}
    assert plan == {"recursive": [1], "direct": [2, 5], "multioutput": [1, 2, 3, 4, 5],
                    "seq2seq": [1, 2, 3, 4, 5]}
    assert STRATEGIES["direct"].plan_steps([3], True) == [1, 3]  # in-sample needs step 1
    assert [cls.requires_fh for cls in STRATEGIES.values()] == [False, True, True, True]
    assert [cls.per_step for cls in STRATEGIES.values()] == [False, True, False, False]
    kw = dict(window=4, differences=0, scaling="standard", has_X=True)
    rec = make_strategy("recursive", exog="future", steps=[1], **kw)
    assert rec.x_horizon(6) == 6
    assert make_strategy("recursive", exog="past", steps=[1], **kw).x_horizon(6) == 5
    multi = make_strategy("multioutput", exog="future", steps=[1, 2, 3], **kw)
    assert multi.x_horizon(2) == 3
    with pytest.raises(ValueError, match="predicts steps 1..3; step 4 was asked"):
        multi.check_steps(4)
    rec.check_steps(40)  # forecasts are fed back: any step


@pytest.mark.parametrize("name,scaling,differences,exog", list(itertools.product(
    ["recursive", "direct", "multioutput", "seq2seq"],
    ["standard", "window_last", "window_mean"], [0, 1], ["future", "past"])))
def test_training_windows_are_views_equal_to_the_dense_inputs(name, scaling, differences,
                                                              exog):
    rng = np.random.default_rng(0)
    zs = [np.cumsum(rng.normal(size=n)) for n in (30, 17, 24)]
    xs = [rng.normal(size=(len(z) + 3, 2)) for z in zs]
    xs[1][-3:] = np.nan  # rows beyond the data: never inside a training window
    steps = STRATEGIES[name].plan_steps([1, 3], False)
    strat = make_strategy(name, window=5, differences=differences, scaling=scaling,
                          exog=exog, has_X=True, steps=steps)
    K = steps if name != "direct" else [3]
    W, Y = strat.training_set(zs, lambda i, hx: xs[i][: len(zs[i]) + hx], K)
    assert isinstance(W, PanelWindows)
    # the regressor gets the per-step values of the rows read, not the window matrix
    assert W.values.shape[0] <= sum(len(z) for z in zs)
    dense, targets, order = [], [], []
    for z, x in zip(zs, xs):
        n, H = len(z), max(K)
        origins = np.arange(4 + differences, n - H)
        hx = H if exog == "future" else 0
        hist, xw = strat.gather(z, x[: n + hx], origins, hx)
        dense.append(strat.inputs(hist, xw, K))
        targets.append(strat.targets(z, origins, hist, K))
        order.append(origins - (n - 1))
    idx = np.argsort(np.concatenate(order), kind="stable")
    np.testing.assert_array_equal(W.sequences(), np.concatenate(dense)[idx])
    np.testing.assert_array_equal(Y, np.concatenate(targets)[idx])


def test_point_and_quantile_forecasts_share_one_path():
    rng = np.random.default_rng(1)
    z = np.cumsum(rng.normal(size=60))
    reg = GRURegressor(units=3, max_iter=3, random_state=0, loss="quantile",
                       quantiles=[0.1, 0.5, 0.9])
    for name in STRATEGIES:
        steps = STRATEGIES[name].plan_steps([1, 2, 3], False)
        strat = make_strategy(name, window=6, differences=0, scaling="window_last",
                              exog="future", has_X=False, steps=steps)
        models, n = strat.fit(reg, [z], lambda i, hx: np.zeros((len(z) + hx, 0)))
        assert n > 0 and (sorted(models) == steps if strat.per_step else list(models) == [None])
        hist, xw = strat.gather(z, np.zeros((60, 0)), [59, 40], 0)
        point = strat.forecast(models, hist, xw, 3, POINT)
        q = strat.forecast(models, hist, xw, 3, QUANTILES)
        assert point.shape == (2, 3) and q.shape == (2, 3, 3)
        if name == "recursive":  # the median path: step 1's median is the point forecast
            np.testing.assert_allclose(q[:, 0, 1], point[:, 0])
        else:  # the point forecast is the head's median, at every step
            np.testing.assert_allclose(q[:, :, 1], point)


def test_interval_components_give_quantiles_of_one_series():
    rng = np.random.default_rng(2)
    conf = ConformalIntervals().fit({1: rng.normal(size=99), 2: 2 * rng.normal(size=99)})
    out = conf.quantiles([0, 1, 2], [0.1, 0.9], np.array([10.0, 10.0, 10.0]), 5.0, 2.0)
    assert np.isnan(out[0]).all()  # in-sample: no interval
    np.testing.assert_allclose(out[1], 10.0 + 2.0 * conf.offsets(1, [0.1, 0.9]))
    assert out[2, 1] - out[2, 0] > out[1, 1] - out[1, 0]  # wider residuals, wider band
    head = QuantileIntervals([0.1, 0.5, 0.9])
    qpred = np.array([[np.nan] * 3, [-1.0, 0.0, 1.0]])
    out = head.quantiles([0, 2], [0.9, 0.1], None, 5.0, 2.0, head=qpred)
    np.testing.assert_allclose(out[1], [7.0, 3.0])  # uncalibrated: the head's own band
    with pytest.raises(ValueError, match="asked for \\[0.3\\]"):
        head.columns([0.3], "quantile")


class _SeenGRU(GRURegressor):
    seen = []

    def fit(self, X, y, sample_weight=None):
        _SeenGRU.seen.append(X)
        return super().fit(X, y, sample_weight)


def test_the_forecaster_fits_its_global_model_on_windows_as_views():
    import pandas as pd

    from skrnn.forecasting import RecurrentForecaster

    idx = pd.MultiIndex.from_product([["a", "b", "c"], pd.RangeIndex(40)],
                                     names=["unit", "time"])
    rng = np.random.default_rng(0)
    y = pd.DataFrame({"y": np.cumsum(rng.normal(size=120))}, index=idx)
    _SeenGRU.seen.clear()
    f = RecurrentForecaster(_SeenGRU(units=2, max_iter=1, random_state=0), window_length=6,
                            strategy="multioutput", differences=0, calibration_fraction=None,
                            fallback=None).fit(y, fh=[1, 2])
    (X,) = _SeenGRU.seen
    assert isinstance(X, PanelWindows) and X.level == "last"  # scaling="auto"
    assert len(X) == f.n_training_windows_ == 3 * (40 - 6 - 2 + 1)
    assert X.values.shape == (3 * (40 - 2), 1)  # the rows the windows read, not windows x 6
