"""The series side of :class:`skrnn.forecasting.RecurrentForecaster`.

sktime hands the forecaster a ``pd.Series`` or a (hierarchical) multi-index frame; this
module splits it into its series (:class:`_Series`), works out each series' steps and
times of a forecasting horizon (every series of a panel forecasts from its own end, as
sktime's per-series loops do), gives the scaled exogenous rows of a series at its times
and at future times, and assembles the forecasts back into sktime's frames.

Frequencies come from :func:`skrnn._panel.infer_frequency`, the scaling statistics from
:mod:`skrnn.scaling`. It is imported only by ``skrnn.forecasting`` (sktime is there).
"""

import numpy as np
import pandas as pd

from skrnn._optional import require
from skrnn._panel import infer_frequency
from skrnn.scaling import pooled_scales

require("sktime", by="skrnn.forecasting")

from sktime.forecasting.base import ForecastingHorizon  # noqa: E402


class _Series:
    """One univariate series: its key in the panel (None for a lone series), times, values."""

    __slots__ = ("key", "times", "values")

    def __init__(self, key, times, values):
        self.key, self.times, self.values = key, times, values

    def __len__(self):
        return len(self.values)


def split_y(y):
    """The series of a ``pd.Series`` or of a univariate (hierarchical) multi-index frame."""
    s = y.iloc[:, 0] if isinstance(y, pd.DataFrame) else y
    if not isinstance(s.index, pd.MultiIndex):
        return [_Series(None, s.index, s.to_numpy(dtype=np.float64))]
    out = []
    levels = list(range(s.index.nlevels - 1))
    for key, part in s.groupby(level=levels, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        times = part.index.get_level_values(-1)
        values = part.to_numpy(dtype=np.float64)
        if not times.is_monotonic_increasing:
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        out.append(_Series(key, times, values))
    return out


def split_X(X):
    """Exogenous frame per series key (``None`` key for a lone series)."""
    if X is None:
        return None
    X = X.astype(np.float64)
    if not isinstance(X.index, pd.MultiIndex):
        return {None: X}
    levels = list(range(X.index.nlevels - 1))
    out = {}
    for key, part in X.groupby(level=levels, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out[key] = part.droplevel(levels)
    return out


def pool_X(X, seen):
    """``X`` passed to predict completed by the ``X`` seen in fit/update."""
    if X is None:
        return seen
    if seen is None:
        return X
    return X.combine_first(seen)


# -- horizons ------------------------------------------------------------------------


def cutoff_index(times):
    """The last time of a series as a length-1 index (what sktime's fh arithmetic takes)."""
    return times[-1:]


def with_freq(fh, times):
    """``fh`` with a frequency for datetime arithmetic, inferred from ``times`` if missing.

    Time levels of a multi-index carry no ``freq``, so sktime's horizon may have none.
    """
    if fh.freq is not None or not isinstance(times, pd.DatetimeIndex):
        return fh
    freq = infer_frequency(times)
    if freq is None:
        raise ValueError(
            "Cannot infer the frequency of a series with a DatetimeIndex (irregular or "
            "fewer than 3 time points); forecasting needs regular time steps. Resample "
            "the series or use a PeriodIndex."
        )
    return ForecastingHorizon(fh.to_pandas(), is_relative=fh.is_relative, freq=freq)


def series_steps(fh, series, cutoff):
    """Relative steps (ints) and absolute times of ``fh`` for one series.

    ``cutoff`` is the forecaster's, used for a lone series; each series of a panel
    forecasts from its own end.
    """
    if series.key is None:
        cut = cutoff
    else:
        cut = cutoff_index(series.times)
        fh = with_freq(fh, series.times)
    steps = np.asarray(fh.to_relative(cut).to_pandas(), dtype=np.int64)
    if fh.is_relative:
        times = fh.to_absolute_index(cut)
    else:
        times = fh.to_pandas()
    return steps, times


def fh_steps(fh, series, cutoff):
    """Positive steps over all series (sorted) and whether any step is in-sample."""
    if fh is None:
        return [], False
    steps = set()
    for s in series:
        steps.update(int(k) for k in series_steps(fh, s, cutoff)[0])
    pos = sorted(k for k in steps if k > 0)
    return pos, any(k <= 0 for k in steps)


def future_times(series, hx, freq, cutoff):
    """The times of series ``series`` followed by its ``hx`` next times."""
    times = series.times
    if hx > 0:
        future = ForecastingHorizon(list(range(1, hx + 1)), is_relative=True, freq=freq)
        if series.key is None:
            future = future.to_absolute_index(cutoff)
        else:
            future = with_freq(future, times).to_absolute_index(cutoff_index(times))
        times = times.append(pd.Index(future))
    return times


# -- exogenous rows -------------------------------------------------------------------


def x_scales(series, Xd, columns):
    """Location and scale of each exogenous column, pooled over the series' times."""
    rows = []
    for s in series:
        if s.key in Xd:
            rows.append(Xd[s.key].reindex(columns=columns).reindex(s.times).to_numpy())
    return pooled_scales(np.concatenate(rows))


def scaled_X(Xd, series, times, columns, xloc, xscale):
    """Scaled exogenous values of ``series`` at ``times`` (NaN where missing)."""
    if Xd is None:
        return np.zeros((len(times), 0))
    frame = Xd.get(series.key)
    if frame is None:
        return np.full((len(times), len(columns)), np.nan)
    xs = frame.reindex(columns=columns).reindex(times).to_numpy(np.float64)
    if xloc is not None:
        xs = (xs - xloc) / xscale
    return xs


def known_X_rows(Xd, series, columns, xloc, xscale, hx):
    """Scaled X of ``series`` at its own times, then ``hx`` rows of NaN.

    Beyond the data no X is known: a forecast that needs those rows comes out NaN
    (training windows stop short of them; calibration drops such residuals).
    """
    xs = scaled_X(Xd, series, series.times, columns, xloc, xscale)
    return np.concatenate([xs, np.full((hx, xs.shape[1]), np.nan)])


# -- output frames --------------------------------------------------------------------


def series_index(series, times, index_names):
    """The index of a series' forecasts at ``times`` (with its key in a panel)."""
    if series.key is None:
        return pd.Index(times)
    return pd.MultiIndex.from_tuples([(*series.key, t) for t in times], names=index_names)


def join_frames(series, frames, qframes):
    """Point forecasts and quantiles of all series as sktime returns them."""
    point = pd.concat(frames) if len(frames) > 1 else frames[0]
    if series[0].key is not None:
        point = point.to_frame()
    quantiles = None
    if qframes:
        quantiles = pd.concat(qframes) if len(qframes) > 1 else qframes[0]
    return point, quantiles
