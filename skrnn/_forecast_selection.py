"""The rolling-origin backtest of :class:`~skrnn.forecasting.RecurrentForecaster`.

It chooses the ``"auto"`` parameters (window length, differencing), measures the model
against the naive, drift and seasonal-naive forecasts on the same origins (the skill
guard, ``fallback``), and gives the residuals that calibrate the prediction intervals.
Also :func:`backtest_coverage`, the empirical coverage of a forecaster's intervals.
:class:`_SelectionMixin` is part of the forecaster (it inherits it) and uses its
windowing, scaling and training helpers.
"""

import warnings

import numpy as np
import pandas as pd

from skrnn._panel import infer_frequency

# the share of each series that the rolling-origin backtest covers when calibration is off
# but the backtest is still needed (auto parameters, fallback)
_VALIDATION_FRACTION = 0.5
# fallback="auto" keeps the model only when its validation MAE is this much (relative)
# below the best baseline's
_SKILL_MARGIN = 0.2
# fallback="auto" otherwise averages the model with the best baseline when the average's
# validation MAE is this much (relative) below the baseline's
_COMBINATION_MARGIN = 0.15
# seasonal period of a time index by its frequency's base unit
_SEASONAL_PERIODS = {"M": 12, "Q": 4, "W": 52, "D": 7, "B": 5, "H": 24, "h": 24}


class SkillWarning(UserWarning):
    """The fitted forecaster loses to the naive (last value) forecast on its validation."""


_BASELINES = ("naive", "seasonal_naive", "drift")


def _baseline_forecast(kind, z, origins, max_step, sp):
    """Forecasts ``(B, max_step)`` of a naive baseline made at ``origins`` of series ``z``.

    ``"naive"`` repeats the value at the origin, ``"seasonal_naive"`` the last season
    (NaN where the history is shorter than ``sp``), ``"drift"`` extends the line through
    the first value and the origin's (sktime's ``NaiveForecaster`` strategies).
    """
    origins = np.asarray(origins, dtype=np.intp)
    k = np.arange(1, max_step + 1)
    last = z[origins][:, None]
    if kind == "naive":
        return np.repeat(last, max_step, axis=1)
    if kind == "drift":
        slope = np.where(origins > 0, (z[origins] - z[0]) / np.maximum(origins, 1), 0.0)
        return last + slope[:, None] * k
    src = origins[:, None] - sp + 1 + (k - 1) % sp
    out = z[np.maximum(src, 0)]
    return np.where(src >= 0, out, np.nan)


class _Backtest:
    """Scaled errors per step ahead of the model and of the naive baselines."""

    def __init__(self, max_step, sp):
        self.sp = sp
        self.kinds = ("model", "naive", "drift") + (("seasonal_naive",) if sp > 1 else ())
        self.errors = {kind: {k: [] for k in range(1, max_step + 1)} for kind in self.kinds}
        self.q_errors = {k: [] for k in range(1, max_step + 1)}
        # the origin (position in its series) of every error, as in ``errors``
        self.origins = {k: [] for k in range(1, max_step + 1)}
        self.n = 0

    def add_scores(self, z, origins, fc, fq):
        """Scores ``y - q_p`` ``(n, n_levels)`` of the head's quantile forecasts ``fq``
        ``(B, max_step, n_levels)``, on the points where ``add`` scored ``fc``."""
        n = len(z)
        for k in range(1, fq.shape[1] + 1):
            ok = origins + k <= n - 1
            if not ok.any():
                continue
            truth = z[origins[ok] + k]
            fine = np.isfinite(truth - fc[ok, k - 1])
            self.q_errors[k].append((truth[:, None] - fq[ok, k - 1])[fine])

    def scores(self):
        """Scores ``{step: (n, n_levels)}`` of the quantile head (steps that have any)."""
        return {k: np.concatenate(v) for k, v in self.q_errors.items()
                if v and sum(len(a) for a in v)}

    def add(self, z, origins, fc):
        """Errors of forecasts ``fc`` (B, max_step) made at ``origins`` of scaled series ``z``."""
        n, max_step = len(z), fc.shape[1]
        fcs = {kind: _baseline_forecast(kind, z, origins, max_step, self.sp)
               for kind in self.kinds if kind != "model"}
        fcs["model"] = fc
        for k in range(1, max_step + 1):
            ok = origins + k <= n - 1
            if not ok.any():
                continue
            truth = z[origins[ok] + k]
            # future-X rows beyond the data give NaN; every kind is scored on the same points
            fine = np.isfinite(truth - fc[ok, k - 1])
            for kind, f in fcs.items():
                self.errors[kind][k].append((truth - f[ok, k - 1])[fine])
            self.origins[k].append(origins[ok][fine])
            self.n += int(fine.sum())

    def _step_errors(self, kind, k):
        """Errors of step ``k`` of ``kind``: a name, or a combination ``{name: weight}``
        whose forecast is the weighted sum (and its error the weighted sum of errors)."""
        weights = _weights(kind)
        return sum(w * np.concatenate(self.errors[c][k]) for c, w in weights.items())

    def residuals(self, kind="model"):
        """Sorted scaled residuals ``{step: array}`` of ``kind`` (a name or a combination
        ``{name: weight}``; steps that have any)."""
        return {k: np.sort(self._step_errors(kind, k)) for k, v in self.errors["model"].items()
                if v and sum(len(a) for a in v)}

    def pooled_residuals(self, kind="model"):
        """Normalised residuals ``{step: array}`` for the intervals (sorted).

        Every step's errors are divided by that step's MAE and pooled over the steps;
        step ``k`` gets the pool times its own MAE. The quantiles' shape then rests on
        all the backtest's forecasts (a 95% bound from the 20-odd residuals of one step
        would be its largest), their width on the step's own errors (normalised
        conformal prediction, Papadopoulos et al. 2008, with the step as the difficulty).
        """
        own = {k: np.sort(self._step_errors(kind, k))
               for k, v in self.errors["model"].items() if v and sum(len(a) for a in v)}
        mae = {k: float(np.mean(np.abs(e))) for k, e in own.items()}
        ok = [k for k in own if np.isfinite(mae[k]) and mae[k] > 0]
        if not ok:
            return own
        pool = np.sort(np.concatenate([own[k] / mae[k] for k in ok]))
        return {k: pool * mae[k] if k in ok else e for k, e in own.items()}

    def mae(self, kind="model"):
        """MAE of ``kind`` (a name or a combination ``{name: weight}``)."""
        e = np.concatenate([self._step_errors(kind, k) for k, v in self.errors["model"].items()
                            if v])
        return float(np.mean(np.abs(e))) if np.isfinite(e).all() else np.nan

    def skill(self):
        """MAE of the model and of each baseline, and the model's skill against them."""
        out = {"mae": self.mae()}
        for kind in self.kinds[1:]:
            out[f"{kind}_mae"] = self.mae(kind)
        for kind in self.kinds[1:]:
            base = out[f"{kind}_mae"]
            out[f"skill_vs_{kind}"] = (1.0 - out["mae"] / base if base > 0 else np.nan)
        out["n_forecasts"] = self.n
        return out


def _weights(kind):
    """``{name: weight}`` of a forecast given by name or as a combination."""
    return {kind: 1.0} if isinstance(kind, str) else dict(kind)


def _describe(combination):
    names = [k.replace("_", " ") for k in combination if k != "model"]
    base = " and ".join(names) + (" baselines" if len(names) > 1 else " baseline")
    if "model" in combination:
        return f"the average of the model and the {base}"
    return (f"the average of the {base}" if len(names) > 1 else f"the {base}")


def _warn_unskilled(skill, combination):
    if combination != {"model": 1.0}:
        action = (f"It forecasts with {_describe(combination)} instead "
                  f"(MAE {skill['combination_mae']:.4g}).")
    else:
        action = ("Its forecasts are likely worse than repeating the last value: set "
                  "fallback='naive' (or 'auto') to forecast with a baseline instead, or "
                  "tune window_length, differences, scaling or the regressor.")
    if skill["mae"] > skill["naive_mae"]:
        what = (f"loses to the naive forecast (the last value) on its time-ordered "
                f"validation: MAE {skill['mae']:.4g} against {skill['naive_mae']:.4g}")
    else:
        base = {k: skill[f"{k}_mae"] for k in _BASELINES
                if np.isfinite(skill.get(f"{k}_mae", np.nan))}
        b = min(base, key=base.get)
        what = (f"does not clearly beat the {b.replace('_', ' ')} forecast on its "
                f"time-ordered validation: MAE {skill['mae']:.4g} against "
                f"{base[b]:.4g}")
    warnings.warn(
        f"RecurrentForecaster {what} (scaled units, {skill['n_forecasts']} forecasts "
        f"from rolling origins). {action}",
        SkillWarning, stacklevel=7,
    )


def _seasonal_period(times):
    """The seasonal period implied by a time index's frequency (1 if none is known)."""
    freq = None
    if isinstance(times, pd.PeriodIndex):
        freq = times.freqstr
    elif isinstance(times, pd.DatetimeIndex):
        offset = infer_frequency(times)
        freq = None if offset is None else offset.freqstr
    if not freq or freq[0].isdigit():  # none, or a multiple such as "2M"
        return 1
    base = freq.split("-")[0]
    if base != "B" and base.startswith("B"):
        base = base[1:]
    if len(base) > 1 and base[-1] in "SE":  # "MS", "ME", "QS", "QE"
        base = base[:-1]
    return _SEASONAL_PERIODS.get(base, 1)


def _auto_windows(series):
    """Candidate window lengths from the seasonal period and the shortest series."""
    sp = _seasonal_period(series[0].times)
    cap = max(2, min(len(s) for s in series) // 3)
    # one season, and two when a season is short (quarterly data); without a season a
    # short and a longer window
    wanted = ((sp, 2 * sp) if 2 * sp <= 12 else (sp,)) if sp > 1 else (4, 10)
    return sorted({min(w, cap) for w in wanted})


def _auto_combination(bt):
    """The forecast that ``fallback="auto"`` chooses from a backtest, ``{name: weight}``.

    The model alone when its MAE is ``_SKILL_MARGIN`` below the best baseline's; else
    the average of the model and that baseline when the average's MAE is
    ``_COMBINATION_MARGIN`` below the baseline's; else the baseline.
    """
    bases = {k: bt.mae(k) for k in bt.kinds[1:]}
    bases = {k: v for k, v in bases.items() if np.isfinite(v)}
    best = min(bases, key=bases.get)
    # the model's score is the best of several candidates (window, differencing), so it
    # is biased low: alone it must win clearly. Otherwise their average is the robust
    # middle (forecast combination): its absolute error is at most the mean of the two,
    # and less where their errors have opposite signs
    if bt.mae("model") < (1.0 - _SKILL_MARGIN) * bases[best]:
        return {"model": 1.0}
    mixed = {"model": 0.5, best: 0.5}
    if bt.mae(mixed) < (1.0 - _COMBINATION_MARGIN) * bases[best]:
        return mixed
    return {best: 1.0}


def backtest_coverage(forecaster, y, cv, coverage=(0.8, 0.95), X=None):
    """Empirical coverage of a forecaster's prediction intervals over a backtest.

    For every split of ``cv`` a clone of ``forecaster`` is fitted on the training part
    and its intervals at ``cv.fh`` are compared with the held-out values.

    Parameters
    ----------
    forecaster : sktime forecaster with ``predict_interval``
    y : pd.Series
        The series.
    cv : sktime splitter
        E.g. ``ExpandingWindowSplitter(initial_window=..., step_length=..., fh=...)``.
    coverage : sequence of float, default=(0.8, 0.95)
        Nominal coverages.
    X : pd.DataFrame or None, default=None
        Exogenous data over the whole of ``y`` (and the horizon of the last split).

    Returns
    -------
    pd.DataFrame
        One row per nominal coverage: ``coverage`` (nominal), ``empirical`` (share of
        held-out values inside the interval), ``mean_width`` and ``n`` (values checked).
    """
    from sklearn.base import clone as _clone

    coverage = list(coverage)
    hits = {c: [] for c in coverage}
    widths = {c: [] for c in coverage}
    for train, test in cv.split(y):
        f = _clone(forecaster)
        y_train, y_test = y.iloc[train], y.iloc[test]
        X_train = X.iloc[train] if X is not None else None
        f.fit(y_train, X=X_train, fh=cv.fh)
        pi = f.predict_interval(X=X, coverage=coverage)
        truth = y_test.reindex(pi.index).to_numpy()
        for c in coverage:
            lower = pi.xs(("lower"), level=-1, axis=1).xs(c, level=-1, axis=1).iloc[:, 0]
            upper = pi.xs(("upper"), level=-1, axis=1).xs(c, level=-1, axis=1).iloc[:, 0]
            ok = np.isfinite(truth)
            lo, up = lower.to_numpy()[ok], upper.to_numpy()[ok]
            hits[c].append((truth[ok] >= lo) & (truth[ok] <= up))
            widths[c].append(up - lo)
    rows = []
    for c in coverage:
        h = np.concatenate(hits[c]) if hits[c] else np.array([])
        wd = np.concatenate(widths[c]) if widths[c] else np.array([])
        rows.append({"coverage": c, "empirical": float(h.mean()) if h.size else np.nan,
                     "mean_width": float(wd.mean()) if wd.size else np.nan, "n": h.size})
    return pd.DataFrame(rows)


class _SelectionMixin:
    """What :class:`~skrnn.forecasting.RecurrentForecaster` chooses on its rolling-origin
    backtest: the auto window and differences, the skill guard's combination, the
    residuals its intervals are calibrated on (a mixin: it reads the forecaster's own
    fitted series and calls its own training and forecasting)."""

    def _candidates(self):
        """The ``(window_length, differences)`` pairs the backtest compares."""
        if self.window_length == "auto":
            windows = _auto_windows(self._series)
        else:
            windows = [self.window_length]
        if self.differences == "auto":
            diffs = [0] if self._counts else [1, 0]
        else:
            diffs = [self.differences]
        return [(w, d) for d in diffs for w in windows]

    def _select(self, reg, Xd, steps_pos):
        """Run the backtest of every candidate, choose the parameters and the fallback.

        Sets ``window_length_``, ``differences_``, ``validation_scores_``, ``skill_``,
        ``combination_`` and ``fallback_`` on ``self``; returns the chosen candidate's
        :class:`_Backtest` (None if there is none).
        """
        candidates = self._candidates()
        auto = "auto" in (self.window_length, self.differences)
        run = auto or self.calibration_fraction is not None or self.fallback is not None
        results = {}
        if run:
            for w, d in candidates:
                self._w, self._d = w, d
                results[(w, d)] = self._backtest(reg, Xd, steps_pos)
        scored = {c: r for c, r in results.items() if r is not None}
        best = candidates[0]
        if auto and scored:
            # the lowest validation MAE; ties go to the earlier (simpler) candidate
            best = min(scored, key=lambda c: (scored[c].mae(), candidates.index(c)))
        self.window_length_, self.differences_ = best
        self.validation_scores_ = (
            {c: r.mae() for c, r in scored.items()} if auto else None
        )
        bt = scored.get(best)
        self.skill_ = bt.skill() if bt is not None else None
        self.combination_ = {"model": 1.0}
        if bt is not None:
            sk = self.skill_
            if self.fallback == "naive" and sk["naive_mae"] < sk["mae"]:
                self.combination_ = {"naive": 1.0}
            elif self.fallback == "auto":
                self.combination_ = _auto_combination(bt)
            sk["combination_mae"] = bt.mae(self.combination_)
            if sk["mae"] > sk["naive_mae"] or self.combination_ != {"model": 1.0}:
                _warn_unskilled(sk, self.combination_)
        self.fallback_ = (None if "model" in self.combination_
                         else "+".join(self.combination_))
        return bt

    def _interval_residuals(self, bt):
        """The residuals ``{step: array}`` that calibrate the conformal intervals.

        With several backtest folds, :meth:`_Backtest.pooled_residuals` of the forecast
        used (``combination_``); with one (the single holdout of earlier versions), each
        step's own residuals, as before.
        """
        if bt is None:
            return {}
        if self.calibration_folds > 1:
            return bt.pooled_residuals(self.combination_)
        return bt.residuals(self.combination_)

    def _combined_forecast(self, models, z, origins, hist, xw, max_step):
        """Scaled forecasts ``(B, max_step)`` of the fitted forecaster's ``combination_``."""
        out = 0.0
        for kind, weight in self.combination_.items():
            if kind == "model":
                f = self._forecast_scaled(models, hist, xw, max_step)
            else:
                f = _baseline_forecast(kind, z, origins, max_step, self._sp)
            out = out + weight * f
        return out

    def _backtest(self, reg, Xd, steps_pos):
        """Scaled forecast errors of the model, naive and drift from rolling origins.

        The last ``calibration_fraction`` of every series (less where the series is too
        short to train on the rest) is split into ``calibration_folds`` consecutive
        blocks; for each block a copy of the model is
        fitted (with its own scaling) on the data before the block and forecasts from
        every origin in the block, up to the series' end. None if no block can be
        fitted.
        """
        frac = self.calibration_fraction or _VALIDATION_FRACTION
        folds = self.calibration_folds
        w, d = self._w, self._d
        if self.strategy != "recursive":
            max_step = max(self.steps_)
        elif steps_pos:
            max_step = max(steps_pos)
        else:  # recursive without fh: as many steps as the calibration region spans
            max_step = max(int(np.ceil(frac * len(s))) for s in self._series)
        need = w + d + max(self.steps_)  # the shortest head with one training window
        cuts = []
        for s in self._series:
            n = len(s)
            # the region spans at least max_step points, so that every step gets residuals,
            # and starts where a model can be trained (short series: a shorter region)
            start = max(n - max(int(np.ceil(frac * n)), max_step), need)
            m = max(n - start, 0)
            cuts.append([start + (f * m) // folds for f in range(folds)] + [n])
        out = _Backtest(max_step, self._sp)
        hx = self._x_horizon(max_step)
        for f in range(folds):
            keep = [i for i, c in enumerate(cuts) if need <= c[f] < c[f + 1]]
            if not keep:
                continue
            heads = [
                type(s)(s.key, s.times[: cuts[i][f]], s.values[: cuts[i][f]])
                for i, s in ((i, self._series[i]) for i in keep)
            ]
            stats = self._scale_stats(heads, Xd)
            models, _ = self._train(reg, heads, Xd, stats)
            loc, scale, xloc, xscale = stats
            for j, i in enumerate(keep):
                s = self._series[i]
                origins = np.arange(max(cuts[i][f] - 1, w - 1 + d), cuts[i][f + 1] - 1)
                if origins.size == 0:
                    continue
                z = (s.values - loc[j]) / scale[j]
                xs = self._known_X_rows(Xd, s, xloc, xscale, hx)
                hist, xw = self._gather(z, xs, origins, hx)
                fc = self._forecast_scaled(models, hist, xw, max_step)
                out.add(z, origins, fc)
                if self.intervals == "conformalized_quantile":
                    out.add_scores(z, origins, fc,
                                   self._forecast_scaled_q(models, hist, xw, max_step))
        return out if out.n else None
