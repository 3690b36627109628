"""sktime forecasters built on skrnn's recurrent regressors.

:class:`RecurrentForecaster` is a native sktime ``BaseForecaster``: it cuts each series
into windows itself (never across series boundaries), scales each series on its training
data, trains one recurrent regressor (or one per step) with a recursive, direct,
multi-output or sequence-to-sequence strategy, and gives conformal prediction intervals
from forecast residuals at rolling origins over the end of the training series, or
intervals from the regressor's quantile head (conformalized on the same origins, CQR,
if asked). The same
rolling-origin backtest chooses ``window_length="auto"`` / ``differences="auto"`` and
measures the model against the naive, drift and seasonal-naive forecasts (the skill
guard), which can forecast instead of a model that loses to them (``fallback``).

This is the only skrnn module that imports sktime; ``import skrnn`` does not.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import clone

from skrnn import _forecast_selection as _selection
from skrnn._forecast_selection import (
    SkillWarning,
    _seasonal_period,
    backtest_coverage,
)
from skrnn._optional import require
from skrnn._panel import infer_frequency

require("sktime", by="skrnn.forecasting")

from sktime.datatypes import update_data
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from skrnn.recurrent import (
    BaseRecurrentRegressor,
    GRURegressor,
    LSTMRegressor,
    SimpleRNNRegressor,
    _check_levels,
)

__all__ = [
    "CalibrationWarning",
    "ConformalIntervals",
    "QuantileIntervals",
    "RecurrentForecaster",
    "SkillWarning",
    "backtest_coverage",
]

_CELLS = {"lstm": LSTMRegressor, "gru": GRURegressor, "rnn": SimpleRNNRegressor}
_STRATEGIES = ("recursive", "direct", "multioutput", "seq2seq")
_INTERVALS = ("conformal", "quantile", "conformalized_quantile")
# quantile_levels=None: the levels that predict_interval's 80% and 95% coverages need
_DEFAULT_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
_SCALINGS = ("auto", "standard", "mean", "none", "window_last", "window_mean")
_WINDOW_SCALINGS = ("window_last", "window_mean")
# what scaling="auto" means for losses other than Poisson
_AUTO_SCALING = "window_last"
# residuals per step ahead below which fit warns that the intervals rest on too few
MIN_CALIBRATION_SIZE = 20


class CalibrationWarning(UserWarning):
    """Too few calibration residuals for reliable prediction intervals."""


class _Series:
    """One univariate series: its key in the panel (None for a lone series), times, values."""

    __slots__ = ("key", "times", "values")

    def __init__(self, key, times, values):
        self.key, self.times, self.values = key, times, values

    def __len__(self):
        return len(self.values)


def _split_y(y):
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


def _split_X(X):
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


def _cutoff_index(times):
    """The last time of a series as a length-1 index (what sktime's fh arithmetic takes)."""
    return times[-1:]


def _with_freq(fh, times):
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


class RecurrentForecaster(BaseForecaster):
    """Forecast with a skrnn recurrent regressor (SimpleRNN, LSTM or GRU).

    Each series is scaled on its training data, cut into windows of ``window_length``
    steps (never across series boundaries), and the windows train the regressor with one
    of four multi-step strategies. Forecasts are mapped back to the original scale.

    Parameters
    ----------
    regressor : skrnn recurrent regressor, {"lstm", "gru", "rnn"} or None, default=None
        The model to train: an unfitted :class:`~skrnn.LSTMRegressor`,
        :class:`~skrnn.GRURegressor` or :class:`~skrnn.SimpleRNNRegressor` (cloned, never
        modified), a cell name, or None for ``LSTMRegressor()``. Its ``random_state``
        seeds every fit, so a fixed value gives identical forecasts; its
        ``early_stopping`` holds out the latest windows of every series.
    regressor_params : dict or None, default=None
        Parameters set on (a clone of) ``regressor``, e.g. ``{"units": 16}``.
    window_length : int or "auto", default="auto"
        Time steps in each input sequence. ``"auto"``: chosen by the rolling-origin
        backtest (see ``calibration_fraction``) among one season and, for seasons of up
        to 6 steps, two (the seasonal period comes from the index's frequency: 12 for
        monthly, 4 for quarterly, 7 for daily, ...), or 4 and 10 steps without a season;
        every candidate is capped at a third of the shortest series. The choice is
        ``window_length_``.
    strategy : {"recursive", "direct", "multioutput", "seq2seq"}, default="recursive"
        - ``"recursive"``: one model predicts the next value; longer horizons feed
          predictions back in. ``fh`` may be given in ``predict`` only.
        - ``"direct"``: one model per step of ``fh``.
        - ``"multioutput"``: one model with ``h = max(fh)`` outputs, steps ``1..h``.
        - ``"seq2seq"``: one model trained with per-step targets: every step of the
          window learns to predict the ``h`` values that follow it; forecasts come from
          the last step.
    pooling : {"global", "local"}, default="global"
        On panels and hierarchies: one model for all series (``"global"``, natively), or
        one model per series (``"local"``, sktime fits a clone per series).
    scaling : {"auto", "window_last", "window_mean", "standard", "mean", "none"}, \
default="auto"
        Per-series scaling, fitted on the series' training data and inverted on output:
        ``"standard"`` ``(y - mean) / std``, ``"mean"`` ``y / mean(|y|)`` (keeps counts
        non-negative), ``"none"``. ``"window_last"`` and ``"window_mean"`` are
        window-relative (reversible instance normalisation, as in darts and
        neuralforecast): the series is divided by the standard deviation of its changes,
        then every input window and its targets are taken relative to the window's last
        value or its mean, which forecasts add back; level shifts and trends then never
        leave the range seen in training. (For ``"seq2seq"`` each step of the window
        learns targets relative to its own level, the value at that step or the mean so
        far, with inputs relative to the window's first value, so that no step sees a
        later one.) ``"auto"`` is ``"mean"`` for ``loss="poisson"``, else
        ``"window_last"``. A constant series gets scale 1 (no division by zero).
        Exogenous columns are standardised on the pooled training data.
    differences : {0, 1, "auto"}, default="auto"
        1: the inputs are first differences of the scaled series and the targets the
        change from the window's last value (from each step's own value for
        ``"seq2seq"``; from the window's mean with ``scaling="window_mean"``); forecasts
        add that level back. Suits trending series. ``"auto"``: 1 or 0, whichever
        forecasts better in the rolling-origin backtest (0 for ``loss="poisson"``); the
        choice is ``differences_``.
    exog : {"future", "past"}, default="future"
        How exogenous ``X`` enters each time step ``s`` of a window:
        ``"future"`` (known-future covariates) gives step ``s`` the values of ``X`` at the
        times its targets refer to (``s + k``; all ``k`` of a multi-output model), so
        ``predict`` needs ``X`` over the forecast horizon. ``"past"`` gives step ``s``
        ``X`` at ``s``: direct, multi-output and seq2seq forecasts then need no future
        ``X``; recursive ones need it for steps ``1..h-1``.
    calibration_fraction : float in (0, 0.8] or None, default=0.5
        The rolling-origin backtest: the last ``calibration_fraction`` of every series
        (at least the longest step ahead) is cut into ``calibration_folds`` consecutive
        blocks; for each block a copy of the model is fitted (with its own scaling) on
        the data before it and forecasts from every origin in the block, up to the
        series' end. The residuals per step ahead (in units of each series' scale) give
        the prediction intervals (split-conformal: the ``ceil((n + 1) p) / n``
        empirical quantile of ``n`` residuals; clipped at 0 for ``loss="poisson"``).
        With several folds they are normalised: every step's residuals are divided by
        that step's MAE and pooled over the steps, and step ``k`` takes the pool's
        quantiles times its own MAE, so that a 95% bound rests on all the backtest's
        forecasts instead of the largest of a step's 20-odd residuals (one fold keeps
        each step's own residuals). The same forecasts choose the ``"auto"``
        parameters and score the model against the naive baselines (``skill_``).
        Fewer than
        ``MIN_CALIBRATION_SIZE`` (20) residuals for a step warn with a
        :class:`CalibrationWarning`. The final model is then fitted on all the data.
        None skips the calibration and disables ``predict_interval`` /
        ``predict_quantiles`` (the backtest still runs, over half of each series, when
        a parameter is ``"auto"`` or ``fallback`` is set).
    calibration_folds : int, default=3
        Refits of the backtest (1: one split, the holdout of earlier versions).
    intervals : {"conformal", "quantile", "conformalized_quantile"}, default="conformal"
        Where ``predict_interval`` / ``predict_quantiles`` come from.

        - ``"conformal"``: the point forecast plus split-conformal quantiles of the
          backtest residuals of each step ahead (see ``calibration_fraction``).
        - ``"quantile"``: the regressor's quantile head. The forecaster trains it with
          ``loss="quantile"`` and ``quantiles=quantile_levels`` (the point forecast is
          its median), and every step ahead's quantiles are mapped back through the
          window's level and the series' scale, which is exact: both are known and
          affine with a positive slope, and with ``differences=1`` the targets are
          changes from the window's last value (not step-wise differences), so no
          quantiles are summed. For ``strategy="recursive"`` the head only knows the
          next step: its quantiles hold for step 1, and ``predict_interval`` raises a
          ``ValueError`` for steps beyond it (quantiles of a sum are not sums of
          quantiles; use another strategy or ``"conformalized_quantile"``).
        - ``"conformalized_quantile"``: conformalized quantile regression (Romano et
          al., 2019) on the rolling-origin backtest: each level ``p`` of the head's
          band at step ``k`` is moved by the split-conformal ``p``-quantile of the
          backtest scores ``y - q_p`` of that step, so that ``y <= q_p`` holds with
          probability at least ``p`` (at most ``p`` below 0.5) whatever the head's
          calibration; an interval of coverage ``c`` from levels ``(1 -+ c) / 2``
          then covers at least ``c``. Recursive forecasts use the head's one-step band
          around the median path at each step; the calibration widens it to the
          ``k``-step spread. Needs ``calibration_fraction``.

        The regressor must have the default loss (``"squared_error"``, replaced) or
        ``loss="quantile"`` with levels equal to ``quantile_levels``; other losses
        raise a ``ValueError``. When the skill guard brings in a baseline (alone or in
        an average; a baseline has no quantile head), the intervals are
        residual-conformal whatever the kind.
    quantile_levels : array-like of float or None, default=None
        Levels of the quantile head (``intervals`` other than ``"conformal"``), sorted
        in (0, 1); None: ``[0.025, 0.1, 0.5, 0.9, 0.975]``, which serve the 80% and
        95% intervals. ``predict_interval(coverage=c)`` needs the levels
        ``(1 - c) / 2`` and ``(1 + c) / 2``, ``predict_quantiles(alpha=...)`` the levels
        ``alpha``; others raise a ``ValueError`` naming the levels there are.
    fallback : {"auto", "naive"} or None, default="auto"
        The skill guard. After the backtest the model's MAE is compared with that of
        the naive forecast (last value), drift and, with a seasonal period, seasonal
        naive, on the same origins (``skill_``); a :class:`SkillWarning` says so when
        the model loses to the naive forecast, or when a baseline enters the forecast.
        ``"naive"``: forecast the last value (and calibrate its intervals) when the
        model loses to it. ``"auto"``: the model alone only when its MAE is 20% below
        the best baseline's (the model's score is the best of several candidates, so
        it is biased low); else the average of the model's and the best baseline's
        forecasts when that average's backtest MAE is 15% below the baseline's (forecast
        combination: where neither clearly wins, the average is the robust choice);
        else the best baseline. The intervals are calibrated on the backtest errors of
        the forecast chosen. None: always the model (still warned about). The
        forecast used is ``combination_``.
    random_state : int, RandomState instance or None, default=None
        If not None, replaces the regressor's ``random_state``. Either one fixed gives
        identical fits and forecasts (every model of a fit, the calibration copy
        included, starts from the same seed).

    Attributes
    ----------
    regressor_ : fitted regressor
        The model (recursive, multioutput, seq2seq strategies).
    regressors_ : dict of int to fitted regressor
        One model per step ahead (direct strategy).
    steps_ : list of int
        The steps ahead the model(s) predict directly.
    window_length_ : int
        The window length used (chosen when ``window_length="auto"``).
    differences_ : int
        The differencing used (chosen when ``differences="auto"``).
    validation_scores_ : dict of (int, int) to float or None
        Backtest MAE (scaled units) of every ``(window_length, differences)`` candidate,
        when a parameter is ``"auto"``.
    skill_ : dict or None
        Backtest MAE (scaled units) of the model (``"mae"``) and of the baselines
        (``"naive_mae"``, ``"drift_mae"``, ``"seasonal_naive_mae"`` with a seasonal
        period), the skill ``1 - mae / baseline_mae`` against each
        (``"skill_vs_naive"``, ...), ``"n_forecasts"``, and ``"combination_mae"``,
        the MAE of the forecast used (``combination_``); None without a backtest.
    combination_ : dict of str to float
        The forecast used, as weights of the model (``"model"``) and the baselines
        (``"naive"``, ``"drift"``, ``"seasonal_naive"``) in an average:
        ``{"model": 1.0}`` for the model alone, ``{"model": 0.5, "drift": 0.5}`` for
        the average of the model and drift (see ``fallback``).
    fallback_ : {"naive", "seasonal_naive", "drift"} or None
        The baseline that forecasts instead of the model, if the guard took one (None
        when the model is in the forecast, alone or averaged).
    series_scales_ : pd.DataFrame
        Per series (rows) ``loc`` and ``scale`` used to scale ``y``.
    calibration_residuals_ : dict of int to ndarray or None
        Scaled backtest residuals ``(y - y_pred) / scale`` per step ahead of the
        forecast used (``combination_``), before the normalised pooling of the
        intervals (``intervals_.residuals_``).
    intervals_ : ConformalIntervals or QuantileIntervals
        The interval component: built on the residuals (``intervals="conformal"`` or a
        fallback), or on the quantile head (with the backtest's scores ``y - q_p`` per
        step and level for ``"conformalized_quantile"``).
    n_training_windows_ : int
        Windows the final model(s) were trained on (per model).

    Notes
    -----
    In-sample predictions (``fh <= 0``) are one-step-ahead forecasts from the actual
    history (fitted values); the first ``window_length (+ differences)`` points of a
    series have no full window and are NaN. Intervals are out-of-sample only.
    ``update(update_params=True)`` refits the model(s) on all data seen so far (the
    calibration residuals, the ``"auto"`` choices and the fallback of ``fit`` are
    kept); ``update_params=False`` forecasts from the new data with the fitted model
    and scaling.

    Examples
    --------
    >>> import numpy as np
    >>> from sktime.datasets import load_airline
    >>> from skrnn import GRURegressor
    >>> from skrnn.forecasting import RecurrentForecaster
    >>> y = np.log(load_airline())
    >>> forecaster = RecurrentForecaster(
    ...     GRURegressor(units=8, max_iter=30, learning_rate_init=0.01, random_state=0),
    ...     window_length=24, strategy="multioutput", differences=1,
    ... )
    >>> y_pred = forecaster.fit(y, fh=range(1, 13)).predict()
    >>> y_pred.shape
    (12,)
    >>> forecaster.predict_interval(coverage=0.9).shape
    (12, 2)
    """

    _tags = {
        "authors": ["skrnn developers"],
        "maintainers": ["skrnn developers"],
        "object_type": "forecaster",
        "capability:multivariate": False,  # univariate y; sktime loops over columns
        "capability:exogenous": True,
        "capability:insample": True,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        "capability:non_contiguous_X": False,
        "capability:categorical_in_X": False,
        "capability:update": True,
        "capability:unequal_length": True,
        "y_inner_mtype": ["pd.Series", "pd-multiindex", "pd_multiindex_hier"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "requires-fh-in-fit": True,
        "X-y-must-have-same-index": True,
        "fit_is_empty": False,
        "property:randomness": "derandomized",
        "capability:random_state": True,
    }

    _config = {"remember_data": False}

    def __init__(
        self,
        regressor=None,
        regressor_params=None,
        window_length="auto",
        strategy="recursive",
        pooling="global",
        scaling="auto",
        differences="auto",
        exog="future",
        calibration_fraction=0.5,
        calibration_folds=3,
        intervals="conformal",
        quantile_levels=None,
        fallback="auto",
        random_state=None,
    ):
        self.regressor = regressor
        self.regressor_params = regressor_params
        self.window_length = window_length
        self.strategy = strategy
        self.pooling = pooling
        self.scaling = scaling
        self.differences = differences
        self.exog = exog
        self.calibration_fraction = calibration_fraction
        self.calibration_folds = calibration_folds
        self.intervals = intervals
        self.quantile_levels = quantile_levels
        self.fallback = fallback
        self.random_state = random_state
        super().__init__()
        # sktime's suite may switch remember_data on after construction; the base class
        # then pools data into _y/_X, which must exist (empty) from the start
        self._y = None
        self._X = None

        tags = {}
        if strategy == "recursive":
            tags["requires-fh-in-fit"] = False
        if pooling == "local":
            tags["y_inner_mtype"] = "pd.Series"
            tags["X_inner_mtype"] = "pd.DataFrame"
        if calibration_fraction is None and intervals != "quantile":
            tags["capability:pred_int"] = False
        if tags:
            self.set_tags(**tags)

    # -- parameters ---------------------------------------------------------------

    def _check_params(self):
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}; got {self.strategy!r}.")
        if self.pooling not in ("global", "local"):
            raise ValueError(f"pooling must be 'global' or 'local'; got {self.pooling!r}.")
        if self.scaling not in _SCALINGS and self.scaling is not None:
            raise ValueError(f"scaling must be one of {_SCALINGS}; got {self.scaling!r}.")
        if self.exog not in ("future", "past"):
            raise ValueError(f"exog must be 'future' or 'past'; got {self.exog!r}.")
        w = self.window_length
        if w != "auto" and (not isinstance(w, Integral) or isinstance(w, bool) or w < 1):
            raise ValueError(f"window_length must be a positive int or 'auto'; got {w!r}.")
        d = self.differences
        if d != "auto" and (d not in (0, 1) or isinstance(d, bool)):
            raise ValueError(f"differences must be 0, 1 or 'auto'; got {d!r}.")
        c = self.calibration_fraction
        if c is not None and (not isinstance(c, Real) or isinstance(c, bool)
                              or not 0 < c <= 0.8):
            raise ValueError(
                f"calibration_fraction must be a float in (0, 0.8] or None; got {c!r}."
            )
        f = self.calibration_folds
        if not isinstance(f, Integral) or isinstance(f, bool) or f < 1:
            raise ValueError(f"calibration_folds must be a positive int; got {f!r}.")
        if self.fallback not in (None, "naive", "auto"):
            raise ValueError(
                f"fallback must be None, 'naive' or 'auto'; got {self.fallback!r}."
            )
        if self.intervals not in _INTERVALS:
            raise ValueError(
                f"intervals must be one of {_INTERVALS}; got {self.intervals!r}."
            )
        if self.intervals == "conformal":
            if self.quantile_levels is not None:
                raise ValueError(
                    "quantile_levels sets the levels of the quantile head, which "
                    "intervals='conformal' does not use; set intervals='quantile' or "
                    "'conformalized_quantile', or leave quantile_levels=None."
                )
        elif self.intervals == "conformalized_quantile" and c is None:
            raise ValueError(
                "intervals='conformalized_quantile' calibrates the quantile head on the "
                "rolling-origin backtest, which calibration_fraction=None switches off; "
                "set calibration_fraction or use intervals='quantile'."
            )

    def _head_levels(self):
        """The quantile head's levels (validated), or None for residual intervals."""
        if self.intervals == "conformal":
            return None
        levels = _DEFAULT_LEVELS if self.quantile_levels is None else self.quantile_levels
        return _check_levels(levels, "quantile_levels")

    def _make_regressor(self):
        reg = self.regressor
        if reg is None:
            reg = LSTMRegressor()
        elif isinstance(reg, str):
            if reg not in _CELLS:
                raise ValueError(
                    f"regressor must be a skrnn recurrent regressor or one of "
                    f"{sorted(_CELLS)}; got {reg!r}."
                )
            reg = _CELLS[reg]()
        elif not isinstance(reg, BaseRecurrentRegressor):
            raise TypeError(
                "regressor must be an skrnn recurrent regressor (LSTMRegressor, "
                f"GRURegressor, SimpleRNNRegressor) or a cell name; got "
                f"{type(reg).__name__}. For other sklearn regressors use "
                "sktime.forecasting.compose.make_reduction."
            )
        reg = clone(reg)
        if self.regressor_params:
            reg.set_params(**self.regressor_params)
        if self.random_state is not None:
            reg.set_params(random_state=self.random_state)
        # windows are handed over as 3D arrays, which carry their own layout
        reg.set_params(n_step_features=None)
        levels = self._head_levels()
        if levels is not None:
            own = reg.quantiles if reg.quantile is None else [reg.quantile]
            if reg.loss not in ("squared_error", "quantile") or (
                reg.loss == "quantile" and not (
                    own is not None and len(own) == len(levels)
                    and np.allclose(np.asarray(own, dtype=float), levels))
            ):
                raise ValueError(
                    f"intervals={self.intervals!r} trains the regressor with "
                    f"loss='quantile' and quantiles=quantile_levels "
                    f"({levels.tolist()}); the regressor has loss={reg.loss!r}"
                    + (f", quantile={reg.quantile!r}, quantiles={reg.quantiles!r}"
                       if reg.loss == "quantile" else "")
                    + ". Leave its loss at the default (or set loss='quantile' with "
                    "those levels), and choose the levels with quantile_levels; or use "
                    "intervals='conformal' for residual intervals around any loss."
                )
            reg.set_params(loss="quantile", quantile=None, quantiles=levels.tolist())
        return reg

    def _scaling_mode(self, reg):
        mode = "none" if self.scaling is None else self.scaling
        if mode == "auto":
            mode = "mean" if reg.loss == "poisson" else _AUTO_SCALING
        if reg.loss == "poisson":
            if mode == "standard" or mode in _WINDOW_SCALINGS:
                raise ValueError(
                    f"loss='poisson' needs non-negative targets, which scaling={mode!r} "
                    "does not keep; use scaling='mean' (or 'auto') or 'none'."
                )
            if self.differences == 1:
                raise ValueError(
                    "loss='poisson' cannot model changes (differences=1 makes targets "
                    "negative); use differences=0."
                )
        return mode

    # -- sktime interface ---------------------------------------------------------

    def _fit(self, y, X, fh):
        return self._fit_models(y, X, fh, calibrate=True)

    def _fit_models(self, y, X, fh, calibrate):
        self._check_params()
        self._cur_y = y
        self._cur_X = X
        self._series = _split_y(y)
        reg = self._make_regressor()
        self._mode = self._scaling_mode(reg)
        self._counts = reg.loss == "poisson"
        self._qlevels = self._head_levels()
        self._has_X = X is not None
        self._x_columns = list(X.columns) if X is not None else []
        self._sp = _seasonal_period(self._series[0].times)

        steps_pos, any_insample = self._fh_steps(fh)
        self._plan_steps(steps_pos, any_insample)
        Xd = _split_X(X)

        if calibrate:
            # the rolling-origin backtest: chooses the auto parameters, calibrates the
            # intervals and measures the skill against naive forecasts
            self._select_and_calibrate(reg, Xd, steps_pos)
        self._w, self._d = self.window_length_, self.differences_

        stats = self._scale_stats(self._series, Xd)
        self._loc, self._scale, self._xloc, self._xscale = stats
        models, n_windows = self._train(reg, self._series, Xd, stats)
        if self.strategy == "direct":
            self.regressors_ = models
        else:
            self.regressor_ = models[None]
        self.n_training_windows_ = n_windows
        keys = [s.key for s in self._series]
        index = (pd.MultiIndex.from_tuples(keys) if keys[0] is not None
                 else pd.Index([0]))
        self.series_scales_ = pd.DataFrame(
            {"loc": self._loc, "scale": self._scale}, index=index
        )
        return self

    # -- parameter choice, calibration and the skill guard -------------------------------

    def _select_and_calibrate(self, reg, Xd, steps_pos):
        bt = _selection.select(self, reg, Xd, steps_pos)
        self.calibration_residuals_ = None
        if self.calibration_fraction is None and self._use_head():
            self.intervals_ = QuantileIntervals(self._qlevels)  # not conformalized
        if self.calibration_fraction is not None:
            res = {}
            if bt is not None:
                res = bt.residuals(self.combination_)
            self.calibration_residuals_ = res
            self.intervals_ = ConformalIntervals().fit(
                _selection.interval_residuals(self, bt))
            if self._use_head():
                self.intervals_ = QuantileIntervals(self._qlevels)
                if self.intervals == "conformalized_quantile":
                    self.intervals_.fit(bt.scores() if bt is not None else {})
            thin = {k: len(v) for k, v in res.items() if len(v) < MIN_CALIBRATION_SIZE}
            if thin or not res:
                warnings.warn(
                    f"{type(self).__name__}: the prediction intervals rest on fewer than "
                    f"{MIN_CALIBRATION_SIZE} calibration residuals per step ahead "
                    f"(residuals per step: {thin or 'none'}); they may not hold their "
                    "coverage. Use longer series, a larger calibration_fraction or "
                    "calibration_folds, or a shorter horizon.",
                    CalibrationWarning, stacklevel=5,
                )

    def _use_head(self):
        """Whether the intervals come from the quantile head (not from residuals)."""
        return self._qlevels is not None and self.combination_ == {"model": 1.0}

    def _update(self, y, X=None, update_params=True):
        self._cur_y = update_data(self._cur_y, y)
        if X is not None:
            self._cur_X = update_data(self._cur_X, X) if self._cur_X is not None else X
        if update_params:
            # refit on everything seen so far; the calibration residuals of fit are kept
            return self._fit_models(self._cur_y, self._cur_X, self._fh, calibrate=False)
        self._series = _split_y(self._cur_y)
        return self

    def _predict(self, fh, X):
        point, _ = self._forecast_frame(fh, X, alpha=None)
        return point

    def _predict_quantiles(self, fh, X, alpha):
        _, quantiles = self._forecast_frame(fh, X, alpha=alpha)
        return quantiles

    # -- horizon bookkeeping ----------------------------------------------------------

    def _series_steps(self, fh, series):
        """Relative steps (ints) and absolute times of ``fh`` for one series."""
        if series.key is None:
            cut = self.cutoff
        else:  # each series of a panel forecasts from its own end, as sktime's loops do
            cut = _cutoff_index(series.times)
            fh = _with_freq(fh, series.times)
        steps = np.asarray(fh.to_relative(cut).to_pandas(), dtype=np.int64)
        if fh.is_relative:
            times = fh.to_absolute_index(cut)
        else:
            times = fh.to_pandas()
        return steps, times

    def _fh_steps(self, fh):
        """Positive steps over all series (sorted) and whether any step is in-sample."""
        if fh is None:
            return [], False
        steps = set()
        for s in self._series:
            steps.update(int(k) for k in self._series_steps(fh, s)[0])
        pos = sorted(k for k in steps if k > 0)
        return pos, any(k <= 0 for k in steps)

    def _plan_steps(self, steps_pos, any_insample):
        if self.strategy == "recursive":
            self.steps_ = [1]
        elif self.strategy == "direct":
            self.steps_ = sorted(set(steps_pos) | ({1} if any_insample or not steps_pos
                                                   else set()))
        else:
            self.steps_ = list(range(1, max(steps_pos, default=1) + 1))

    def _x_horizon(self, max_step):
        """How many future rows of X a forecast up to ``max_step`` reads."""
        if not self._has_X:
            return 0
        if self.strategy == "recursive":
            return max_step if self.exog == "future" else max_step - 1
        return max(self.steps_) if self.exog == "future" else 0

    # -- scaling ------------------------------------------------------------------------

    def _scale_stats(self, series, Xd):
        loc = np.zeros(len(series))
        scale = np.ones(len(series))
        for i, s in enumerate(series):
            v = s.values
            if self._mode == "standard":
                loc[i] = v.mean()
                sd = v.std()
                scale[i] = sd if sd > 1e-12 * max(1.0, abs(loc[i])) else 1.0
            elif self._mode == "mean":
                m = np.abs(v).mean()
                scale[i] = m if m > 1e-12 else 1.0
            elif self._mode in _WINDOW_SCALINGS:
                # each window is taken relative to its own level, so the series' scale
                # is that of its changes: a trend does not inflate it
                loc[i] = v.mean()
                sd = np.diff(v).std() if len(v) > 2 else 0.0
                if not sd > 1e-12 * max(1.0, abs(loc[i])):
                    sd = v.std()
                scale[i] = sd if sd > 1e-12 * max(1.0, abs(loc[i])) else 1.0
        xloc = xscale = None
        if Xd is not None and self._mode != "none":
            rows = []
            for s in series:
                if s.key in Xd:
                    rows.append(Xd[s.key].reindex(
                        columns=self._x_columns).reindex(s.times).to_numpy())
            allx = np.concatenate(rows)
            xloc = np.nanmean(allx, axis=0)
            xsd = np.nanstd(allx, axis=0)
            xscale = np.where(xsd > 1e-12 * np.maximum(1.0, np.abs(xloc)), xsd, 1.0)
        return loc, scale, xloc, xscale

    def _scaled_X(self, Xd, s, times, xloc, xscale):
        """Scaled exogenous values of series ``s`` at ``times`` (NaN where missing)."""
        if Xd is None:
            return np.zeros((len(times), 0))
        frame = Xd.get(s.key)
        if frame is None:
            return np.full((len(times), len(self._x_columns)), np.nan)
        xs = frame.reindex(columns=self._x_columns).reindex(times).to_numpy(np.float64)
        if xloc is not None:
            xs = (xs - xloc) / xscale
        return xs

    # -- windows ---------------------------------------------------------------------

    def _inputs(self, hist, xs, K):
        """Input sequences ``(B, w, F)`` from history ``(B, w + d)`` and X ``(B, w + Hx, nx)``.

        Step ``j`` of the window (time ``s``) holds the (differenced) scaled value and,
        with exog="future", X at ``s + k`` for every ``k`` in ``K``; with exog="past",
        X at ``s``.
        """
        w, d = self._w, self._d
        if d:
            u = np.diff(hist, axis=1)  # changes: the same whatever level is subtracted
        elif self._mode in _WINDOW_SCALINGS:
            # relative to the window's level; seq2seq's steps each learn from their own
            # level, which must not see later steps: its inputs are relative to the first
            u = hist - (hist[:, :1] if self.strategy == "seq2seq" else self._ref(hist)[:, None])
        else:
            u = hist
        parts = [u[:, :, None]]
        if xs is not None and xs.shape[2]:
            if self.exog == "future":
                parts.extend(xs[:, k : k + w] for k in K)
            else:
                parts.append(xs[:, :w])
        return np.concatenate(parts, axis=2)

    def _ref(self, hist):
        """The level ``(B,)`` that a window's targets are relative to (0: none).

        The window's last value (``differences=1`` or ``scaling="window_last"``) or its
        mean (``"window_mean"``), in scaled units; forecasts add it back.
        """
        if self._mode == "window_mean":
            return hist[:, -self._w:].mean(axis=1)
        if self._d or self._mode == "window_last":
            return hist[:, -1]
        return np.zeros(hist.shape[0])

    def _relative(self):
        return bool(self._d) or self._mode in _WINDOW_SCALINGS

    def _known_X_rows(self, Xd, s, xloc, xscale, hx):
        """Scaled X of series ``s`` at its own times, then ``hx`` rows of NaN.

        Beyond the data no X is known: a forecast that needs those rows comes out
        NaN (training windows stop short of them; calibration drops such residuals).
        """
        xs = self._scaled_X(Xd, s, s.times, xloc, xscale)
        return np.concatenate([xs, np.full((hx, xs.shape[1]), np.nan)])

    def _gather(self, z, xs, origins, hx):
        """History ``(B, w + d)`` and X rows ``(B, w + hx, nx)`` of windows ending at ``origins``.
        """
        w, d = self._w, self._d
        origins = np.asarray(origins, dtype=np.intp)
        hist = z[origins[:, None] + np.arange(-w + 1 - d, 1)]
        xw = xs[origins[:, None] + np.arange(-w + 1, 1 + hx)]
        return hist, xw

    def _training_set(self, series, Xd, stats, K):
        """Windows of every series for a model predicting steps ``K``, in time order."""
        loc, scale, xloc, xscale = stats
        w, d = self._w, self._d
        H = max(K)
        hx = H if (self._has_X and self.exog == "future") else 0
        Xs, Ys, order = [], [], []
        for i, s in enumerate(series):
            n = len(s)
            origins = np.arange(w - 1 + d, n - H)
            if origins.size == 0:
                continue
            z = (s.values - loc[i]) / scale[i]
            xs = self._known_X_rows(Xd, s, xloc, xscale, hx)
            hist, xw = self._gather(z, xs, origins, hx)
            Xs.append(self._inputs(hist, xw, K))
            if self.strategy == "seq2seq":
                steps_t = origins[:, None] + np.arange(-w + 1, 1)  # (B, w) step times
                Y = z[steps_t[:, :, None] + np.asarray(K)]  # (B, w, H)
                if self._mode == "window_mean":  # each step's level: the mean so far
                    zt = z[steps_t]
                    Y = Y - (np.cumsum(zt, axis=1) / np.arange(1, w + 1))[:, :, None]
                elif self._relative():
                    Y = Y - z[steps_t][:, :, None]
            else:
                Y = z[origins[:, None] + np.asarray(K)]
                if self._relative():
                    Y = Y - self._ref(hist)[:, None]
            Ys.append(Y)
            order.append(origins - (n - 1))
        if not Xs:
            lengths = sorted({len(s) for s in series})
            raise ValueError(
                f"No training window fits in the series (lengths {lengths[:5]}): a window "
                f"needs window_length + differences + max step = {w} + {d} + {H} = "
                f"{w + d + H} points. Use a shorter window_length or horizon, or longer "
                "series."
            )
        Xa, Ya = np.concatenate(Xs), np.concatenate(Ys)
        if np.isnan(Xa).any():
            raise ValueError("X has missing values at training times; impute them first.")
        idx = np.argsort(np.concatenate(order), kind="stable")  # time order, all series
        return Xa[idx], Ya[idx]

    def _train(self, reg, series, Xd, stats):
        """Fitted model(s) keyed by step (direct) or ``None``, and windows per model."""
        if self.strategy == "direct":
            models = {}
            for k in self.steps_:
                Xa, Ya = self._training_set(series, Xd, stats, [k])
                models[k] = clone(reg).fit(Xa, Ya[:, 0])
            return models, len(Xa)
        K = self.steps_
        Xa, Ya = self._training_set(series, Xd, stats, K)
        if self.strategy == "recursive":
            Ya = Ya[:, 0]
        return {None: clone(reg).fit(Xa, Ya)}, len(Xa)

    # -- forecasting ----------------------------------------------------------------

    def _forecast_scaled(self, models, hist, xw, max_step):
        """Scaled forecasts ``(B, max_step)`` of the steps ``1..max_step`` (NaN if not modelled)."""
        B = hist.shape[0]
        out = np.full((B, max_step), np.nan)
        if B == 0:
            return out
        if self.strategy == "recursive":
            model = models[None]
            traj = hist.copy()
            for h in range(1, max_step + 1):
                window = traj[:, -hist.shape[1]:]
                pred = _predict_rows(model, self._inputs(window, xw[:, h - 1 :], [1]))[:, 0]
                nxt = pred + self._ref(window) if self._relative() else pred
                out[:, h - 1] = nxt
                traj = np.concatenate([traj, nxt[:, None]], axis=1)
            return out
        if self.strategy == "direct":
            for k, model in models.items():
                if k <= max_step:
                    pred = _predict_rows(model, self._inputs(hist, xw, [k]))[:, 0]
                    out[:, k - 1] = pred + self._ref(hist) if self._relative() else pred
            return out
        model = models[None]
        pred = _predict_rows(model, self._inputs(hist, xw, self.steps_))
        if self._relative():
            pred = pred + self._ref(hist)[:, None]
        m = min(max_step, pred.shape[1])
        out[:, :m] = pred[:, :m]
        return out

    def _forecast_scaled_q(self, models, hist, xw, max_step):
        """Scaled quantile forecasts ``(B, max_step, n_levels)`` of the quantile head.

        The head predicts relative to the window's level like the point forecast, so
        the same level is added back. Recursive forecasts follow the median path and
        take, at each step, the head's one-step quantiles from the window reached.
        """
        B = hist.shape[0]
        out = np.full((B, max_step, len(self._qlevels)), np.nan)
        if B == 0:
            return out
        if self.strategy == "recursive":
            model = models[None]
            traj = hist.copy()
            for h in range(1, max_step + 1):
                window = traj[:, -hist.shape[1]:]
                inputs = self._inputs(window, xw[:, h - 1 :], [1])
                ref = self._ref(window) if self._relative() else np.zeros(B)
                out[:, h - 1] = _predict_quantile_rows(model, inputs)[:, 0] + ref[:, None]
                pred = _predict_rows(model, inputs)[:, 0]
                traj = np.concatenate([traj, (pred + ref)[:, None]], axis=1)
            return out
        ref = self._ref(hist) if self._relative() else np.zeros(B)
        if self.strategy == "direct":
            for k, model in models.items():
                if k <= max_step:
                    q = _predict_quantile_rows(model, self._inputs(hist, xw, [k]))[:, 0]
                    out[:, k - 1] = q + ref[:, None]
            return out
        q = _predict_quantile_rows(models[None], self._inputs(hist, xw, self.steps_))
        m = min(max_step, q.shape[1])
        out[:, :m] = q[:, :m] + ref[:, None, None]
        return out

    def _forecast_fitted(self, models, z, origins, hist, xw, max_step):
        """Scaled forecasts of the fitted forecaster: the model's, or its fallback's."""
        return _selection.combined_forecast(self, models, z, origins, hist, xw, max_step)

    def _models(self):
        return self.regressors_ if self.strategy == "direct" else {None: self.regressor_}

    def _check_future_X(self, xw, needed):
        if needed and np.isnan(xw).any():
            raise ValueError(
                f"{type(self).__name__}(exog={self.exog!r}, strategy={self.strategy!r}) "
                "needs X at every time of the forecast windows, including the forecast "
                "horizon"
                + (" (steps 1..h)" if self.exog == "future" else " (steps 1..h-1)")
                + ", but X passed to predict (with X from fit/update) does not cover "
                "them. Pass X for the forecast horizon, or use exog='past' with a "
                "direct, multioutput or seq2seq strategy."
            )

    def _forecast_frame(self, fh, X, alpha):
        """Point forecasts (and quantiles) at ``fh`` for every series, as sktime frames."""
        w, d = self._w, self._d
        series = self._series
        Xd = _split_X(self._pool_X(X)) if self._has_X else None
        models = self._models()
        per_series = []
        for i, s in enumerate(series):
            steps, times = self._series_steps(fh, s)
            n = len(s)
            z = (s.values - self._loc[i]) / self._scale[i]
            pos_max = int(max(steps.max(), 0))
            pred = np.full(len(steps), np.nan)
            qpred = None
            if pos_max > 0:
                self._check_step_range(pos_max)
                if n < w + d:
                    raise ValueError(
                        f"series {s.key if s.key is not None else ''} has {n} points; "
                        f"forecasting needs the last window_length + differences = "
                        f"{w + d} of them."
                    )
                hx = self._x_horizon(pos_max)
                xs = self._x_rows(Xd, s, hx)
                hist, xw = self._gather(z, xs, [n - 1], hx)
                self._check_future_X(xw, self._has_X)
                fc = self._forecast_fitted(models, z, [n - 1], hist, xw, pos_max)[0]
                oos = steps > 0
                pred[oos] = fc[steps[oos] - 1]
                if alpha is not None and self._use_head():
                    fq = self._forecast_scaled_q(models, hist, xw, pos_max)[0]
                    qpred = np.full((len(steps), fq.shape[1]), np.nan)
                    qpred[oos] = fq[steps[oos] - 1]
            ins = steps <= 0
            if ins.any():
                # one-step-ahead forecasts from the actual history (fitted values)
                target = n - 1 + steps[ins]
                origin = target - 1
                ok = origin >= w - 1 + d
                vals = np.full(ins.sum(), np.nan)
                if ok.any():
                    hx = self._x_horizon(1)
                    xs = self._x_rows(Xd, s, hx)
                    hist, xw = self._gather(z, xs, origin[ok], hx)
                    fc = self._forecast_fitted(models, z, origin[ok], hist, xw, 1)
                    vals[ok] = fc[:, 0]
                pred[ins] = vals
            per_series.append((steps, times, pred, qpred))

        name = self._y_name()
        frames, qframes = [], []
        for i, (s, (steps, times, pred, qpred)) in enumerate(zip(series, per_series)):
            index = pd.Index(times)
            if s.key is not None:
                index = pd.MultiIndex.from_tuples(
                    [(*s.key, t) for t in times], names=self._index_names()
                )
            value = pred * self._scale[i] + self._loc[i]
            frames.append(pd.Series(value, index=index, name=name))
            if alpha is not None:
                qframes.append(self._quantile_frame(steps, value, i, alpha, index, qpred))
        point = pd.concat(frames) if len(frames) > 1 else frames[0]
        if series[0].key is not None:
            point = point.to_frame()
        quantiles = None
        if alpha is not None:
            quantiles = pd.concat(qframes) if len(qframes) > 1 else qframes[0]
        return point, quantiles

    def _check_step_range(self, pos_max):
        if self.strategy == "recursive":
            return
        missing = sorted(set(range(1, pos_max + 1)) - set(self.steps_))
        if self.strategy != "direct" and missing:
            raise ValueError(
                f"This {self.strategy} model predicts steps 1..{max(self.steps_)}; "
                f"step {pos_max} was asked. Refit with the longer fh."
            )

    def _x_rows(self, Xd, s, hx):
        """Scaled X of series ``s`` at its times plus ``hx`` future times."""
        if Xd is None:
            return np.zeros((len(s) + hx, 0))
        times = s.times
        if hx > 0:
            future = ForecastingHorizon(
                list(range(1, hx + 1)), is_relative=True, freq=self._fh_freq()
            )
            if s.key is None:
                future = future.to_absolute_index(self.cutoff)
            else:
                future = _with_freq(future, times).to_absolute_index(_cutoff_index(times))
            times = times.append(pd.Index(future))
        return self._scaled_X(Xd, s, times, self._xloc, self._xscale)

    def _fh_freq(self):
        return getattr(self._fh, "freq", None) if self._fh is not None else None

    def _pool_X(self, X):
        if X is None:
            return self._cur_X
        if self._cur_X is None:
            return X
        return X.combine_first(self._cur_X)

    def _y_name(self):
        y = self._cur_y
        if isinstance(y, pd.DataFrame):
            return y.columns[0]
        return y.name

    def _index_names(self):
        return list(self._cur_y.index.names)

    # -- rolling-origin backtest -------------------------------------------------------------

    def _quantile_frame(self, steps, value, i, alpha, index, qpred=None):
        """Quantile forecasts of series ``i`` at ``steps``: the point forecast plus the
        residual quantiles, or the quantile head's (scaled) ``qpred`` plus its
        conformal corrections."""
        out = np.full((len(steps), len(alpha)), np.nan)
        if self._use_head():
            cols = self._level_columns(alpha)
            if self.intervals == "quantile" and self.strategy == "recursive" and (
                    np.asarray(steps) > 1).any():
                raise ValueError(
                    "intervals='quantile' with strategy='recursive' gives quantiles for "
                    "step 1 only: the quantile head predicts the next value, and the "
                    "quantiles of later steps are not those of the one-step errors fed "
                    f"back; fh has steps up to {int(np.max(steps))}. Use "
                    "intervals='conformalized_quantile' (calibrated per step), "
                    "intervals='conformal', or a direct, multioutput or seq2seq strategy."
                )
            order = np.argsort(alpha, kind="stable")
        for r, k in enumerate(steps):
            k = int(k)
            if k <= 0:
                continue
            if self._use_head():
                q = qpred[r, cols] + self.intervals_.offsets(k, alpha, self.calibration_fraction)
                # corrections of neighbouring levels may cross: sorting restores the
                # order and never moves a band away from the truth (rearrangement)
                q[order] = np.sort(q[order])
                out[r] = q * self._scale[i] + self._loc[i]
                continue
            out[r] = value[r] + self._scale[i] * self.intervals_.offsets(
                k, alpha, self.calibration_fraction)
        if self._counts:  # a Poisson model forecasts counts: no negative quantiles
            out = np.maximum(out, 0.0)
        cols = pd.MultiIndex.from_product([[self._y_name_for_columns()], alpha])
        return pd.DataFrame(out, index=index, columns=cols)

    def _level_columns(self, alpha):
        """Columns of the head's levels for the probabilities ``alpha`` (or a clear error)."""
        levels = self._qlevels
        alpha = np.asarray(alpha, dtype=float)
        cols = np.abs(alpha[:, None] - levels[None, :]).argmin(axis=1)
        unknown = alpha[~np.isclose(levels[cols], alpha, rtol=0, atol=1e-9)]
        if unknown.size:
            raise ValueError(
                f"intervals={self.intervals!r} gives only the quantile head's levels "
                f"quantile_levels={levels.tolist()}; asked for {unknown.tolist()} "
                "(predict_interval(coverage=c) needs the levels (1 - c) / 2 and "
                "(1 + c) / 2). Add them to quantile_levels and refit, or use "
                "intervals='conformal', which gives any level."
            )
        return cols

    def _y_name_for_columns(self):
        names = self._get_varnames()
        return names[0]

    # -- sktime test parameters ------------------------------------------------------------

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast parameter sets for sktime's estimator checks.

        Parameters
        ----------
        parameter_set : str, default="default"

        Returns
        -------
        params : list of dict
        """
        tiny = dict(units=2, max_iter=2, random_state=0)
        return [
            {"regressor": LSTMRegressor(**tiny), "window_length": 3},
            {
                "regressor": GRURegressor(**tiny),
                "window_length": 3,
                "strategy": "direct",
                "differences": 1,
                "exog": "past",
            },
            {
                "regressor": SimpleRNNRegressor(**tiny),
                "window_length": 2,
                "strategy": "multioutput",
                "pooling": "local",
                "calibration_fraction": None,
            },
            {
                "regressor": "lstm",
                "regressor_params": tiny,
                "window_length": 3,
                "strategy": "seq2seq",
                "scaling": "mean",
            },
            {
                "regressor": GRURegressor(**tiny),
                "window_length": "auto",
                "differences": "auto",
                "strategy": "multioutput",
                "scaling": "window_mean",
                "calibration_folds": 2,
                "fallback": "naive",
            },
        ]


def _predict_rows(model, inputs):
    """``model.predict`` as ``(B, n_outputs)``; NaN rows (inputs not available) stay NaN."""
    B = inputs.shape[0]
    ok = np.isfinite(inputs).all(axis=(1, 2))
    if ok.all():
        return model.predict(inputs).reshape(B, -1)
    out = np.full((B, model.n_outputs_), np.nan)
    if ok.any():
        out[ok] = model.predict(inputs[ok]).reshape(int(ok.sum()), -1)
    return out


def _predict_quantile_rows(model, inputs):
    """``model.predict_quantiles`` as ``(B, n_outputs, n_levels)``; NaN rows stay NaN."""
    B = inputs.shape[0]
    L = len(model.quantiles_)
    ok = np.isfinite(inputs).all(axis=(1, 2))
    out = np.full((B, model.n_outputs_, L), np.nan)
    if ok.any():
        out[ok] = model.predict_quantiles(inputs[ok]).reshape(int(ok.sum()), -1, L)
    return out


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


class ConformalIntervals:
    """Split-conformal prediction intervals from forecast residuals per step ahead.

    The interval component of :class:`RecurrentForecaster` (``intervals_``): ``fit``
    takes the scaled residuals ``y - y_pred`` of each step ahead, ``offsets`` gives the
    quantiles of the forecast error to add to a point forecast (in the same scaled
    units). ``RecurrentForecaster._quantile_frame`` is the one place that asks for
    them, so another kind of interval (a quantile head trained with the model, say)
    takes this one's place by offering ``offsets`` for its step and levels.
    """

    def fit(self, residuals):
        """Keep sorted residuals ``{step: array}``; returns self."""
        self.residuals_ = {int(k): np.sort(np.asarray(v, dtype=np.float64))
                           for k, v in residuals.items()}
        return self

    def offsets(self, step, alpha, calibration_fraction=None):
        """Quantiles at probabilities ``alpha`` of the residuals of ``step`` ahead."""
        e = self.residuals_.get(int(step))
        if e is None or len(e) == 0:
            raise ValueError(
                f"No calibration residuals for step {step}: the calibration region "
                f"(calibration_fraction={calibration_fraction}) is too short for that "
                "step ahead. Raise calibration_fraction or use longer series."
            )
        n = len(e)
        # the conformal rank of a level p exists only for n >= p / (1 - p)
        short = [p for p in alpha if max(p, 1 - p) > n / (n + 1)]
        if short:
            warnings.warn(
                f"Only {n} calibration residuals for step {step}: the quantiles "
                f"{sorted(short)} need at least "
                f"{int(np.ceil(max(max(p, 1 - p) / (1 - max(p, 1 - p)) for p in short)))}; "
                "they are clipped to the extreme residual and may not hold their "
                "coverage.",
                CalibrationWarning, stacklevel=6,
            )
        return _conformal_quantiles(e, alpha)


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

    def __init__(self, levels):
        self.levels = np.asarray(levels, dtype=np.float64)
        self.scores_ = None

    def fit(self, scores):
        """Keep the scores ``{step: (n, n_levels) array}``; returns self."""
        self.scores_ = {int(k): np.sort(np.asarray(v, dtype=np.float64), axis=0)
                        for k, v in scores.items()}
        return self

    def offsets(self, step, alpha, calibration_fraction=None):
        """Corrections of the head's quantiles at ``alpha`` (each one of ``levels``)."""
        alpha = np.asarray(alpha, dtype=float)
        if self.scores_ is None:
            return np.zeros(len(alpha))
        e = self.scores_.get(int(step))
        if e is None or len(e) == 0:
            raise ValueError(
                f"No calibration scores for step {step}: the calibration region "
                f"(calibration_fraction={calibration_fraction}) is too short for that "
                "step ahead. Raise calibration_fraction or use longer series."
            )
        cols = np.abs(alpha[:, None] - self.levels[None, :]).argmin(axis=1)
        n = len(e)
        short = [p for p in alpha if max(p, 1 - p) > n / (n + 1)]
        if short:
            warnings.warn(
                f"Only {n} calibration scores for step {step}: the levels "
                f"{sorted(short)} are clipped to the extreme score and may not hold "
                "their coverage.",
                CalibrationWarning, stacklevel=6,
            )
        return np.array([_conformal_quantiles(e[:, c], [p])[0]
                         for c, p in zip(cols, alpha)])
