"""Quantile-head intervals of RecurrentForecaster: coverage, contract, bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sktime")

from sktime.datatypes import check_is_mtype

from skrnn import GRURegressor
from skrnn.forecasting import QuantileIntervals, RecurrentForecaster


def _ar1(n=500, seed=0, drift=0.0):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.7 * y[t - 1] + e[t]
    return pd.Series(10 + y + drift * np.arange(n), index=pd.RangeIndex(n))


def _forecaster(**kw):
    params = {"window_length": 8, "differences": 0, "fallback": None, "random_state": 0}
    params.update(kw)
    reg = GRURegressor(units=8, max_iter=30, learning_rate_init=0.01)
    return RecurrentForecaster(reg, **params)


def _fit(f, y, fh, X=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f.fit(y, X=X, fh=fh)


def _rolling_coverage(f, y, start, coverages=(0.8, 0.95)):
    """Coverage of the intervals from every origin ``start..len(y)-2`` (no refit)."""
    hits = {c: [] for c in coverages}
    for t in range(start, len(y) - 1):
        if t > start:
            f.update(y[t - 1 : t], update_params=False)
        pi = f.predict_interval(coverage=list(coverages))
        truth = y.reindex(pi.index).to_numpy()
        ok = np.isfinite(truth)
        for c in coverages:
            lo = pi.xs(c, level=1, axis=1).xs("lower", level=1, axis=1).iloc[:, 0]
            up = pi.xs(c, level=1, axis=1).xs("upper", level=1, axis=1).iloc[:, 0]
            lo, up = lo.to_numpy()[ok], up.to_numpy()[ok]
            hits[c].append((truth[ok] >= lo) & (truth[ok] <= up))
    return {c: np.concatenate(h).mean() for c, h in hits.items()}


@pytest.mark.parametrize(
    "kind, strategy, differences, drift",
    [
        ("quantile", "multioutput", 0, 0.0),
        ("conformalized_quantile", "multioutput", 0, 0.0),
        # a trend, differencing and window-relative scaling all inverted on the band
        ("quantile", "direct", 1, 0.05),
    ],
)
def test_coverage_on_generated_series(kind, strategy, differences, drift):
    # AR(1) with unit Gaussian noise: 80% / 95% intervals from 96 held-out origins
    # (3 steps each) cover within a few points of nominal for a correct method
    y = _ar1(drift=drift)
    f = _fit(_forecaster(intervals=kind, strategy=strategy, differences=differences),
             y[:400], fh=[1, 2, 3])
    cov = _rolling_coverage(f, y, 400)
    assert 0.7 <= cov[0.8] <= 0.9, cov
    assert 0.88 <= cov[0.95] <= 1.0, cov


def test_recursive_quantile_is_step_one_only():
    y = _ar1(300)
    f = _fit(_forecaster(intervals="quantile", calibration_fraction=None), y, fh=[1])
    pi = f.predict_interval(coverage=0.8)
    assert (pi.iloc[:, 0] < pi.iloc[:, 1]).all()
    with pytest.raises(ValueError, match="step 1 only"):
        f.predict_interval(fh=[1, 2], coverage=0.8)
    # conformalized: calibrated per step, so longer horizons are allowed
    g = _fit(_forecaster(intervals="conformalized_quantile"), y, fh=[1, 2])
    pi = g.predict_interval(coverage=[0.8, 0.95])
    assert pi.shape == (2, 4) and np.isfinite(pi.to_numpy()).all()


def test_quantile_kind_meets_sktime_interval_contract():
    y = _ar1(300)
    f = _fit(_forecaster(intervals="quantile", strategy="multioutput"), y, fh=[1, 2, 3])
    assert isinstance(f.intervals_, QuantileIntervals)
    assert f.get_tag("capability:pred_int")
    pi = f.predict_interval(coverage=[0.8, 0.95])
    assert check_is_mtype(pi, "pred_interval", scitype="Proba")
    assert list(pi.columns) == [(y.name or 0, c, b) for c in (0.8, 0.95)
                                for b in ("lower", "upper")]
    assert pi.index.equals(f.fh.to_absolute_index(f.cutoff))
    lo80, up80, lo95, up95 = (pi.iloc[:, j].to_numpy() for j in range(4))
    assert (lo95 <= lo80).all() and (lo80 < up80).all() and (up80 <= up95).all()
    q = f.predict_quantiles(alpha=[0.025, 0.1, 0.5, 0.9, 0.975])
    assert check_is_mtype(q, "pred_quantiles", scitype="Proba")
    assert (np.diff(q.to_numpy(), axis=1) >= 0).all()
    # the head's median is the point forecast
    np.testing.assert_allclose(q.iloc[:, 2].to_numpy(), f.predict().to_numpy())


def test_unknown_coverage_is_a_clear_error():
    y = _ar1(300)
    f = _fit(_forecaster(intervals="quantile", strategy="multioutput"), y, fh=[1, 2])
    with pytest.raises(ValueError, match=r"quantile_levels=\[0.025, 0.1, 0.5, 0.9, 0.975\]"):
        f.predict_interval(coverage=0.5)
    with pytest.raises(ValueError, match="asked for"):
        f.predict_quantiles(alpha=[0.3])
    g = _fit(_forecaster(intervals="quantile", strategy="multioutput",
                         quantile_levels=[0.25, 0.5, 0.75]), y, fh=[1, 2])
    assert g.predict_interval(coverage=0.5).shape == (2, 2)


@pytest.mark.parametrize(
    "reg_kw, kw, match",
    [
        ({"loss": "huber"}, {"intervals": "quantile"}, "loss='huber'"),
        ({"loss": "quantile", "quantiles": [0.1, 0.9]}, {"intervals": "quantile"},
         "quantiles=quantile_levels"),
        ({}, {"intervals": "conformal", "quantile_levels": [0.1, 0.9]}, "does not use"),
        ({}, {"intervals": "conformalized_quantile", "calibration_fraction": None},
         "calibration_fraction"),
        ({}, {"intervals": "quantile", "quantile_levels": [0.9, 0.1]}, "sorted"),
        ({}, {"intervals": "bands"}, "intervals must be one of"),
    ],
)
def test_bad_interval_configuration(reg_kw, kw, match):
    y = _ar1(120)
    reg = GRURegressor(units=2, max_iter=1, **reg_kw)
    f = RecurrentForecaster(reg, window_length=4, strategy="direct", **kw)
    with pytest.raises(ValueError, match=match):
        _fit(f, y, fh=[1])


def test_head_intervals_on_a_panel_with_past_exog():
    from sktime.utils._testing.hierarchical import _make_hierarchical

    y = _make_hierarchical(hierarchy_levels=(3,), min_timepoints=60, max_timepoints=60,
                           random_state=0)
    X = pd.DataFrame({"a": np.arange(len(y)) % 7 * 1.0}, index=y.index)
    for kind in ("quantile", "conformalized_quantile"):
        f = RecurrentForecaster(GRURegressor(units=4, max_iter=5), window_length=6,
                                strategy="seq2seq", exog="past", intervals=kind,
                                fallback=None, random_state=0)
        pi = _fit(f, y, fh=[1, 2], X=X).predict_interval(coverage=0.8)
        assert pi.shape == (6, 2) and np.isfinite(pi.to_numpy()).all()
        assert (pi.iloc[:, 0] < pi.iloc[:, 1]).all()
        assert pi.index.get_level_values(0).nunique() == 3
