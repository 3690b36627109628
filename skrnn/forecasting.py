"""sktime forecasters built on skrnn's recurrent regressors.

:class:`RecurrentForecaster` is a native sktime ``BaseForecaster``: it cuts each series
into windows (never across series boundaries), scales each series on its training
data, trains one recurrent regressor (or one per step) with a recursive, direct,
multi-output or sequence-to-sequence strategy, and gives conformal prediction intervals
from forecast residuals at rolling origins over the end of the training series, or
intervals from the regressor's quantile head (conformalized on the same origins, CQR,
if asked). The same
rolling-origin backtest chooses ``window_length="auto"`` / ``differences="auto"`` and
measures the model against the naive, drift and seasonal-naive forecasts (the skill
guard), which can forecast instead of a model that loses to them (``fallback``).

The forecaster is a thin sktime face over small private modules: the multi-step
strategies are objects (``skrnn/_forecast_strategies.py``: windows, targets, models and
forecasts of each), the interval components live in ``skrnn/_forecast_intervals.py``,
the series bookkeeping (panels, horizons, exogenous rows, output frames) in
``skrnn/_forecast_panel.py``; scaling and windows come from the shared core
(``skrnn/scaling.py``, ``skrnn/windows.py``). See docs/architecture.md.

This and ``_forecast_panel.py`` are the only skrnn modules that import sktime;
``import skrnn`` does not.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import clone

from skrnn import _forecast_selection as _selection
from skrnn._forecast_intervals import (
    CalibrationWarning,
    ConformalIntervals,
    QuantileIntervals,
    _conformal_quantiles,  # noqa: F401  (its home before; tests import it from here)
)
from skrnn._forecast_selection import (
    SkillWarning,
    _seasonal_period,
    backtest_coverage,
)
from skrnn._forecast_strategies import POINT, QUANTILES, STRATEGIES, make_strategy
from skrnn._optional import require

require("sktime", by="skrnn.forecasting")

from sktime.datatypes import update_data
from sktime.forecasting.base import BaseForecaster

from skrnn import _forecast_panel as panel
from skrnn._quantile_head import check_levels
from skrnn.recurrent import (
    BaseRecurrentRegressor,
    GRURegressor,
    LSTMRegressor,
    SimpleRNNRegressor,
)
from skrnn.scaling import series_scales

__all__ = [
    "CalibrationWarning",
    "ConformalIntervals",
    "QuantileIntervals",
    "RecurrentForecaster",
    "SkillWarning",
    "backtest_coverage",
]

_CELLS = {"lstm": LSTMRegressor, "gru": GRURegressor, "rnn": SimpleRNNRegressor}
_STRATEGIES = tuple(STRATEGIES)
_INTERVALS = ("conformal", "quantile", "conformalized_quantile")
# quantile_levels=None: the levels that predict_interval's 80% and 95% coverages need
_DEFAULT_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
_SCALINGS = ("auto", "standard", "mean", "none", "window_last", "window_mean")
_WINDOW_SCALINGS = ("window_last", "window_mean")
# what scaling="auto" means for losses other than Poisson
_AUTO_SCALING = "window_last"
# sktime's joblib route with nothing fixed: joblib.Parallel(backend=None, n_jobs=None)
# takes both from the active joblib.parallel_config
_JOBLIB_PARAMS = {"backend": None, "n_jobs": None}
# residuals per step ahead below which fit warns that the intervals rest on too few
MIN_CALIBRATION_SIZE = 20


class RecurrentForecaster(_selection._SelectionMixin, BaseForecaster):
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
        one model per series (``"local"``, sktime fits a clone per series). The
        per-series fits and forecasts of ``"local"`` run through ``joblib.Parallel``
        (see ``n_jobs``), so the active joblib backend decides where they run.
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
        included, starts from the same seed). With ``pooling="local"`` every series'
        clone starts from the same seed (a ``RandomState`` instance is copied into each
        clone, never shared), so a series' model does not depend on the other series
        or on the order in which a backend fits them.
    n_jobs : int or None, default=None
        Parallel jobs of sktime's per-series loop (``pooling="local"``, and its loop
        over the columns of a multivariate ``y``), which runs through
        ``joblib.Parallel``: None means 1 unless a ``joblib.parallel_config`` says
        otherwise, -1 all cores. Inside ``joblib.parallel_config(backend="dask")``
        with a ``dask.distributed.Client`` open (``pip install 'skrnn[distributed]'``)
        the series are fitted and forecast on the cluster's workers; Ray's joblib
        backend (``ray.util.joblib.register_ray()``, then
        ``parallel_config(backend="ray")``) is used the same way. The forecasts are
        bit-identical to the sequential run. sktime's own ``backend:parallel``
        config, set with ``set_config``, replaces this route (e.g.
        ``{"backend:parallel": "dask"}``: ``dask.compute``).

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

    # sktime's per-series loop (pooling="local") goes through joblib.Parallel with
    # neither backend nor n_jobs fixed, so that an active joblib.parallel_config (Dask,
    # Ray, processes) decides where the series run; n_jobs sets the jobs (_vectorize)
    _config = {
        "remember_data": False,
        "backend:parallel": "joblib",
        "backend:parallel:params": dict(_JOBLIB_PARAMS),
    }

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
        n_jobs=None,
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
        self.n_jobs = n_jobs
        super().__init__()
        # sktime's suite may switch remember_data on after construction; the base class
        # then pools data into _y/_X, which must exist (empty) from the start
        self._y = None
        self._X = None

        tags = {}
        if isinstance(strategy, str) and not getattr(
                STRATEGIES.get(strategy), "requires_fh", True):
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
        self._check_n_jobs()
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

    def _check_n_jobs(self):
        n = self.n_jobs
        if n is not None and (not isinstance(n, Integral) or isinstance(n, bool)
                              or n == 0):
            raise ValueError(
                f"n_jobs must be None or a non-zero int (-1: all cores); got {n!r}."
            )

    def _head_levels(self):
        """The quantile head's levels (validated), or None for residual intervals."""
        if self.intervals == "conformal":
            return None
        levels = _DEFAULT_LEVELS if self.quantile_levels is None else self.quantile_levels
        return check_levels(levels, "quantile_levels")

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

    def get_config(self):
        """Get config flags for self (sktime's ``BaseObject.get_config``).

        Returns
        -------
        config_dict : dict
            The class's config, overridden by what ``set_config`` set. The default
            route of the per-series loop is ``"backend:parallel": "joblib"`` with
            ``"backend:parallel:params": {"backend": None, "n_jobs": None}``; another
            ``"backend:parallel"`` set alone gets sktime's default params (None).
        """
        config = super().get_config()
        # the joblib route's params mean nothing to another backend ("dask" would pass
        # them to dask.compute): a user who picks one gets that backend's defaults
        if (config.get("backend:parallel") != "joblib"
                and config.get("backend:parallel:params") == _JOBLIB_PARAMS):
            config["backend:parallel:params"] = None
        return config

    def _vectorize(self, methodname, **kwargs):
        # sktime's loop over the series (pooling="local") or columns; with the joblib
        # route of _config, n_jobs joins the active joblib.parallel_config (its backend
        # is kept), so parallel_config(backend="dask") plus n_jobs still means Dask
        if self.n_jobs is None:
            return super()._vectorize(methodname, **kwargs)
        self._check_n_jobs()
        from joblib import parallel_config

        with parallel_config(n_jobs=self.n_jobs):
            return super()._vectorize(methodname, **kwargs)

    def _fit(self, y, X, fh):
        return self._fit_models(y, X, fh, calibrate=True)

    def _fit_models(self, y, X, fh, calibrate):
        self._check_params()
        self._cur_y = y
        self._cur_X = X
        self._series = panel.split_y(y)
        reg = self._make_regressor()
        self._mode = self._scaling_mode(reg)
        self._counts = reg.loss == "poisson"
        self._qlevels = self._head_levels()
        self._has_X = X is not None
        self._x_columns = list(X.columns) if X is not None else []
        self._sp = _seasonal_period(self._series[0].times)

        steps_pos, any_insample = panel.fh_steps(fh, self._series, self.cutoff)
        self._plan_steps(steps_pos, any_insample)
        Xd = panel.split_X(X)

        if calibrate:
            # the rolling-origin backtest: chooses the auto parameters, calibrates the
            # intervals and measures the skill against naive forecasts
            self._select_and_calibrate(reg, Xd, steps_pos)
        self._w, self._d = self.window_length_, self.differences_

        stats = self._scale_stats(self._series, Xd)
        self._loc, self._scale, self._xloc, self._xscale = stats
        models, n_windows = self._train(reg, self._series, Xd, stats)
        if self._plan().per_step:
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
        bt = self._select(reg, Xd, steps_pos)
        self.calibration_residuals_ = None
        if self.calibration_fraction is None and self._use_head():
            self.intervals_ = QuantileIntervals(self._qlevels)  # not conformalized
        if self.calibration_fraction is not None:
            res = {}
            if bt is not None:
                res = bt.residuals(self.combination_)
            self.calibration_residuals_ = res
            self.intervals_ = ConformalIntervals().fit(
                self._interval_residuals(bt))
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
        self._series = panel.split_y(self._cur_y)
        return self

    def _predict(self, fh, X):
        point, _ = self._forecast_frame(fh, X, alpha=None)
        return point

    def _predict_quantiles(self, fh, X, alpha):
        _, quantiles = self._forecast_frame(fh, X, alpha=alpha)
        return quantiles

    # -- horizon bookkeeping ----------------------------------------------------------

    def _plan_steps(self, steps_pos, any_insample):
        self.steps_ = STRATEGIES[self.strategy].plan_steps(steps_pos, any_insample)

    def _plan(self):
        """The strategy object (``skrnn/_forecast_strategies.py``) of the current
        window length and differencing: windows, targets, models and forecasts."""
        return make_strategy(self.strategy, window=self._w, differences=self._d,
                             scaling=self._mode, exog=self.exog, has_X=self._has_X,
                             steps=self.steps_)

    def _x_horizon(self, max_step):
        """How many future rows of X a forecast up to ``max_step`` reads."""
        return self._plan().x_horizon(max_step)

    # -- scaling ------------------------------------------------------------------------

    def _scale_stats(self, series, Xd):
        """Per-series ``loc``, ``scale`` of ``y`` and pooled ``xloc``, ``xscale`` of X."""
        loc, scale = series_scales([s.values for s in series], self._mode)
        xloc = xscale = None
        if Xd is not None and self._mode != "none":
            xloc, xscale = panel.x_scales(series, Xd, self._x_columns)
        return loc, scale, xloc, xscale

    # -- windows ---------------------------------------------------------------------

    def _known_X_rows(self, Xd, s, xloc, xscale, hx):
        """Scaled X of series ``s`` at its own times, then ``hx`` rows of NaN."""
        return panel.known_X_rows(Xd, s, self._x_columns, xloc, xscale, hx)

    def _gather(self, z, xs, origins, hx):
        """History ``(B, w + d)`` and X rows ``(B, w + hx, nx)`` of windows ending at ``origins``.
        """
        return self._plan().gather(z, xs, origins, hx)

    def _train(self, reg, series, Xd, stats):
        """Fitted model(s) keyed by step (direct) or ``None``, and windows per model."""
        loc, scale, xloc, xscale = stats
        zs = [(s.values - loc[i]) / scale[i] for i, s in enumerate(series)]

        def x_rows(i, hx):
            return self._known_X_rows(Xd, series[i], xloc, xscale, hx)

        return self._plan().fit(reg, zs, x_rows)

    # -- forecasting ----------------------------------------------------------------

    def _forecast_scaled(self, models, hist, xw, max_step):
        """Scaled forecasts ``(B, max_step)`` of the steps ``1..max_step`` (NaN if not modelled)."""
        return self._plan().forecast(models, hist, xw, max_step, POINT)

    def _forecast_scaled_q(self, models, hist, xw, max_step):
        """Scaled quantile forecasts ``(B, max_step, n_levels)`` of the quantile head."""
        return self._plan().forecast(models, hist, xw, max_step, QUANTILES)

    def _forecast_fitted(self, models, z, origins, hist, xw, max_step):
        """Scaled forecasts of the fitted forecaster: the model's, or its fallback's."""
        return self._combined_forecast(models, z, origins, hist, xw, max_step)

    def _models(self):
        return self.regressors_ if self._plan().per_step else {None: self.regressor_}

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
        Xd = panel.split_X(panel.pool_X(X, self._cur_X)) if self._has_X else None
        models = self._models()
        per_series = []
        for i, s in enumerate(series):
            steps, times = panel.series_steps(fh, s, self.cutoff)
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

        y = self._cur_y
        name = y.columns[0] if isinstance(y, pd.DataFrame) else y.name
        frames, qframes = [], []
        for i, (s, (steps, times, pred, qpred)) in enumerate(zip(series, per_series)):
            index = panel.series_index(s, times, list(y.index.names))
            value = pred * self._scale[i] + self._loc[i]
            frames.append(pd.Series(value, index=index, name=name))
            if alpha is not None:
                qframes.append(self._quantile_frame(steps, value, i, alpha, index, qpred))
        return panel.join_frames(series, frames, qframes)

    def _check_step_range(self, pos_max):
        self._plan().check_steps(pos_max)

    def _x_rows(self, Xd, s, hx):
        """Scaled X of series ``s`` at its times plus ``hx`` future times."""
        if Xd is None:
            return np.zeros((len(s) + hx, 0))
        freq = getattr(self._fh, "freq", None) if self._fh is not None else None
        times = panel.future_times(s, hx, freq, self.cutoff)
        return panel.scaled_X(Xd, s, times, self._x_columns, self._xloc, self._xscale)

    # -- rolling-origin backtest -------------------------------------------------------------

    def _quantile_frame(self, steps, value, i, alpha, index, qpred=None):
        """Quantile forecasts of series ``i`` at ``steps`` from the interval component:
        the point forecast plus the residual quantiles, or the quantile head's (scaled)
        ``qpred`` plus its conformal corrections."""
        kw = {}
        if self._use_head():
            kw["cols"] = self.intervals_.columns(alpha, self.intervals)
            if self.intervals == "quantile" and self._plan().one_step_head and (
                    np.asarray(steps) > 1).any():
                raise ValueError(
                    f"intervals='quantile' with strategy={self.strategy!r} gives "
                    "quantiles for step 1 only: the quantile head predicts the next "
                    "value, and the quantiles of later steps are not those of the "
                    "one-step errors fed back; fh has steps up to "
                    f"{int(np.max(steps))}. Use intervals='conformalized_quantile' "
                    "(calibrated per step), intervals='conformal', or a direct, "
                    "multioutput or seq2seq strategy."
                )
        out = self.intervals_.quantiles(
            steps, alpha, value, self._loc[i], self._scale[i], self.calibration_fraction,
            head=qpred, **kw)
        if self._counts:  # a Poisson model forecasts counts: no negative quantiles
            out = np.maximum(out, 0.0)
        cols = pd.MultiIndex.from_product([[self._y_name_for_columns()], alpha])
        return pd.DataFrame(out, index=index, columns=cols)

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


