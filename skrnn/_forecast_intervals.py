"""Prediction intervals of :class:`skrnn.forecasting.RecurrentForecaster`.

The forecaster's interval component (``intervals_``) is one of two objects with the
same face: ``fit`` on the rolling-origin backtest, ``offsets(step, alpha)`` the
correction at a step ahead and levels, and ``quantiles(...)`` the forecast quantiles of
one series.

- :class:`ConformalIntervals`: split-conformal quantiles of the backtest residuals of
  each step ahead, added to the point forecast.
- :class:`QuantileIntervals`: the regressor's quantile head, as it is or conformalized
  per step and level on the backtest's scores (CQR, Romano et al., 2019).

Nothing here imports sktime.
"""

import warnings

import numpy as np

__all__ = ["CalibrationWarning", "ConformalIntervals", "QuantileIntervals"]


class CalibrationWarning(UserWarning):
    """Too few calibration residuals for reliable prediction intervals."""


def _conformal_quantiles(residuals, alpha):
    """Split-conformal quantiles of sorted ``residuals`` at probabilities ``alpha``.

    Level ``p >= 0.5`` takes the ``ceil((n + 1) p)``-th smallest residual, ``p < 0.5``
    the ``floor((n + 1) p)``-th, clipped to the sample: each one-sided bound then holds
    with probability at least ``p`` (resp. ``1 - p``) for exchangeable residuals, when
    ``n`` is large enough for the rank to exist.
    """
    n = len(residuals)
    out = np.empty(len(alpha))
    for j, p in enumerate(alpha):
        if p >= 0.5:
            rank = int(np.ceil((n + 1) * p))
        else:
            rank = int(np.floor((n + 1) * p))
        out[j] = residuals[min(max(rank, 1), n) - 1]
    return out


def _calibration_sample(samples, step, alpha, noun, calibration_fraction):
    """The calibration sample of ``step`` ahead (a clear error when there is none),
    with a :class:`CalibrationWarning` when it is too small for the levels ``alpha``."""
    e = samples.get(int(step))
    if e is None or len(e) == 0:
        raise ValueError(
            f"No calibration {noun} for step {step}: the calibration region "
            f"(calibration_fraction={calibration_fraction}) is too short for that "
            "step ahead. Raise calibration_fraction or use longer series."
        )
    n = len(e)
    # the conformal rank of a level p exists only for n >= p / (1 - p)
    short = [p for p in alpha if max(p, 1 - p) > n / (n + 1)]
    if short:
        need = int(np.ceil(max(max(p, 1 - p) / (1 - max(p, 1 - p)) for p in short)))
        warnings.warn(
            f"Only {n} calibration {noun} for step {step}: the levels {sorted(short)} "
            f"need at least {need}; they are clipped to the extreme value and may not "
            "hold their coverage.",
            CalibrationWarning, stacklevel=8,
        )
    return e


class ConformalIntervals:
    """Split-conformal prediction intervals from forecast residuals per step ahead.

    The interval component of :class:`RecurrentForecaster` (``intervals_``): ``fit``
    takes the scaled residuals ``y - y_pred`` of each step ahead, ``offsets`` gives the
    quantiles of the forecast error to add to a point forecast (in the same scaled
    units), ``quantiles`` the forecast quantiles of one series. Another kind of
    interval (:class:`QuantileIntervals`) takes this one's place by offering the same
    methods.
    """

    #: whether the quantiles come from the regressor's quantile head
    uses_head = False

    def fit(self, residuals):
        """Keep sorted residuals ``{step: array}``; returns self."""
        self.residuals_ = {int(k): np.sort(np.asarray(v, dtype=np.float64))
                           for k, v in residuals.items()}
        return self

    def offsets(self, step, alpha, calibration_fraction=None):
        """Quantiles at probabilities ``alpha`` of the residuals of ``step`` ahead."""
        e = _calibration_sample(self.residuals_, step, alpha, "residuals",
                                calibration_fraction)
        return _conformal_quantiles(e, alpha)

    def quantiles(self, steps, alpha, point, loc, scale, calibration_fraction=None,
                  head=None):
        """Forecast quantiles ``(len(steps), len(alpha))`` of one series.

        ``point`` holds its point forecasts at ``steps`` (original units), ``loc`` and
        ``scale`` its scaling; in-sample steps (``<= 0``) are NaN.
        """
        out = np.full((len(steps), len(alpha)), np.nan)
        for r, k in enumerate(steps):
            if int(k) > 0:
                out[r] = point[r] + scale * self.offsets(int(k), alpha, calibration_fraction)
        return out


class QuantileIntervals:
    """Quantile-head intervals, conformalized per step ahead and level (CQR).

    The component of :class:`RecurrentForecaster` for ``intervals="quantile"`` and
    ``"conformalized_quantile"``: the band is the head's quantile forecasts and
    ``offsets(step, alpha)`` the correction to add to them (scaled units). Without
    scores (``fit`` not called) the correction is 0: the head's
    quantiles as they are. With the backtest's scores ``y - q_p`` per step, level
    ``p``'s correction is their split-conformal ``p``-quantile, so ``y <= q_p +
    correction`` holds with probability at least ``p`` (``y >= ...`` at least
    ``1 - p`` for ``p < 0.5``) for exchangeable scores.

    Parameters
    ----------
    levels : array-like of float
        The head's levels, sorted.
    """

    uses_head = True

    def __init__(self, levels):
        self.levels = np.asarray(levels, dtype=np.float64)
        self.scores_ = None

    def fit(self, scores):
        """Keep the scores ``{step: (n, n_levels) array}``; returns self."""
        self.scores_ = {int(k): np.sort(np.asarray(v, dtype=np.float64), axis=0)
                        for k, v in scores.items()}
        return self

    def columns(self, alpha, kind="quantile"):
        """Columns of the head's levels for the probabilities ``alpha`` (or a clear error)."""
        levels = self.levels
        alpha = np.asarray(alpha, dtype=float)
        cols = np.abs(alpha[:, None] - levels[None, :]).argmin(axis=1)
        unknown = alpha[~np.isclose(levels[cols], alpha, rtol=0, atol=1e-9)]
        if unknown.size:
            raise ValueError(
                f"intervals={kind!r} gives only the quantile head's levels "
                f"quantile_levels={levels.tolist()}; asked for {unknown.tolist()} "
                "(predict_interval(coverage=c) needs the levels (1 - c) / 2 and "
                "(1 + c) / 2). Add them to quantile_levels and refit, or use "
                "intervals='conformal', which gives any level."
            )
        return cols

    def offsets(self, step, alpha, calibration_fraction=None):
        """Corrections of the head's quantiles at ``alpha`` (each one of ``levels``)."""
        alpha = np.asarray(alpha, dtype=float)
        if self.scores_ is None:
            return np.zeros(len(alpha))
        e = _calibration_sample(self.scores_, step, alpha, "scores", calibration_fraction)
        cols = np.abs(alpha[:, None] - self.levels[None, :]).argmin(axis=1)
        return np.array([_conformal_quantiles(e[:, c], [p])[0]
                         for c, p in zip(cols, alpha)])

    def quantiles(self, steps, alpha, point, loc, scale, calibration_fraction=None,
                  head=None, cols=None):
        """Forecast quantiles ``(len(steps), len(alpha))`` of one series.

        ``head`` holds the head's scaled quantile forecasts at ``steps``
        ``(len(steps), n_levels)``, ``cols`` the columns of ``alpha``
        (:meth:`columns`); in-sample steps (``<= 0``) are NaN.
        """
        out = np.full((len(steps), len(alpha)), np.nan)
        if cols is None:
            cols = self.columns(alpha)
        order = np.argsort(alpha, kind="stable")
        for r, k in enumerate(steps):
            if int(k) <= 0:
                continue
            q = head[r, cols] + self.offsets(int(k), alpha, calibration_fraction)
            # corrections of neighbouring levels may cross: sorting restores the
            # order and never moves a band away from the truth (rearrangement)
            q[order] = np.sort(q[order])
            out[r] = q * scale + loc
        return out
