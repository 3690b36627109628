"""The multi-step strategies of :class:`skrnn.forecasting.RecurrentForecaster`.

Each strategy is a small object, as in sktime's reduction module
(``sktime/forecasting/compose/_reduce.py``): it owns which steps ahead its model(s)
predict, how the training windows and targets are cut from the scaled series, how many
models it fits, and how it forecasts. Point and quantile forecasts go through one path
(:meth:`_Strategy.forecast` with a :data:`POINT` or :data:`QUANTILES` head).

- :class:`Recursive`: one model of the next value; longer horizons feed forecasts back.
- :class:`Direct`: one model per step ahead.
- :class:`MultiOutput`: one model with an output per step ``1..h``.
- :class:`Seq2Seq`: one model trained with per-step targets; forecasts come from the
  window's last step.

A window of ``window`` steps ending at ``origin`` reads ``window + differences`` values
of the scaled series ``z`` (its *history*) and, with exogenous data, ``window + hx`` rows
of the scaled ``X`` (``hx`` future rows). Windows are gathered from strided views
(:func:`skrnn.windows.series_windows`), and the training windows reach the regressor
as a :class:`~skrnn.windows.PanelWindows` over the per-step values of each series (the
regressor gathers each batch's rows; no window matrix is built). Window-relative scaling
(the level a window's inputs and targets are taken relative to) is
:mod:`skrnn.windows`' (:func:`~skrnn.windows.window_levels`,
:func:`~skrnn.windows.step_levels`, ``PanelWindows(level=...)``).
Layout of the inputs: docs/architecture.md, contract 1 (oldest step first).

Nothing here imports sktime; the forecaster hands over NumPy arrays.
"""

import numpy as np
from sklearn.base import clone

from skrnn.windows import PanelWindows, series_windows, step_levels, window_levels

__all__ = ["POINT", "QUANTILES", "STRATEGIES", "make_strategy"]

_WINDOW_SCALINGS = ("window_last", "window_mean")


class _Head:
    """How a fitted regressor is read: point forecasts or its quantile head."""

    def __init__(self, name, predict, trailing):
        self.name, self.predict, self.trailing = name, predict, trailing

    def empty(self, B, max_step, model):
        return np.full((B, max_step, *self.trailing(model)), np.nan)


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


#: point forecasts: ``(B, n_outputs)`` per call, ``(B, max_step)`` in all
POINT = _Head("point", _predict_rows, lambda model: ())
#: the quantile head's forecasts: ``(B, n_outputs, L)``, ``(B, max_step, L)`` in all
QUANTILES = _Head("quantiles", _predict_quantile_rows,
                  lambda model: (len(model.quantiles_),))


def _add_level(pred, level):
    """``pred`` (``(B, ...)``) plus each row's window level; unchanged without one."""
    if level is None:
        return pred
    return pred + level.reshape(-1, *([1] * (pred.ndim - 1)))


class _Strategy:
    """Windows, targets, models and forecasts of one multi-step strategy.

    Parameters
    ----------
    window : int
        Steps per input window.
    differences : {0, 1}
        1: inputs are changes of the scaled series, targets changes from the window's
        level.
    scaling : str
        The forecaster's resolved scaling (``"window_last"`` and ``"window_mean"`` take
        every window relative to its level).
    exog : {"future", "past"}
        How exogenous columns enter a window's steps.
    has_X : bool
        Whether there are exogenous columns.
    steps : list of int
        The steps ahead the model(s) predict directly (from :meth:`plan_steps`).
    """

    name = None
    #: whether fit needs the horizon (sktime's ``requires-fh-in-fit``)
    requires_fh = True
    #: one model per step ahead (``regressors_``) rather than one (``regressor_``)
    per_step = False
    #: whether the quantile head knows the next step only
    one_step_head = False

    def __init__(self, window, differences, scaling, exog, has_X, steps):
        self.window, self.differences = window, differences
        self.scaling, self.exog, self.has_X = scaling, exog, has_X
        self.steps = list(steps)
        # the level windows are taken relative to (None: absolute windows)
        if scaling == "window_mean":
            self.level = "mean"
        elif differences or scaling == "window_last":
            self.level = "last"
        else:
            self.level = None

    # -- which steps, how much X ------------------------------------------------------

    @staticmethod
    def plan_steps(steps_pos, any_insample):
        """The steps ahead to model, from the positive steps of ``fh``."""
        return list(range(1, max(steps_pos, default=1) + 1))

    def x_horizon(self, max_step):
        """How many future rows of X a forecast up to ``max_step`` reads."""
        if not self.has_X:
            return 0
        return max(self.steps) if self.exog == "future" else 0

    def check_steps(self, pos_max):
        """Raise if a forecast up to ``pos_max`` asks for steps this model lacks."""
        if pos_max > max(self.steps):
            raise ValueError(
                f"This {self.name} model predicts steps 1..{max(self.steps)}; "
                f"step {pos_max} was asked. Refit with the longer fh."
            )

    # -- windows --------------------------------------------------------------------

    def gather(self, z, xs, origins, hx):
        """History ``(B, w + d)`` and X rows ``(B, w + hx, nx)`` of windows ending at
        ``origins``, gathered from strided views of ``z`` and ``xs``."""
        w, d = self.window, self.differences
        origins = np.asarray(origins, dtype=np.intp)
        hist = series_windows(z, w + d)[origins - (w - 1 + d)]
        xw = series_windows(xs, w + hx)[origins - (w - 1)]
        return hist, xw

    def window_level(self, hist):
        """The level ``(B,)`` a window's targets are relative to, or None."""
        if self.level is None:
            return None
        return window_levels(hist, self.level, self.window)

    @property
    def input_level(self):
        """The level a window's inputs are relative to (None: absolute or changes)."""
        if self.differences or self.scaling not in _WINDOW_SCALINGS:
            return None  # changes are the same whatever level is subtracted
        return self.level

    def _input_values(self, hist):
        """The (differenced, window-relative) values of the window's steps."""
        if self.differences:
            return np.diff(hist, axis=1)
        if self.input_level is not None:
            return hist - window_levels(hist, self.input_level, self.window)[:, None]
        return hist

    def _step_values(self, z, xs, steps, K):
        """Per-step values ``(len(steps), F)`` of a series at its rows ``steps``: what
        :meth:`inputs` holds at each step of a window, before its level is taken off."""
        u = z[steps] - z[steps - 1] if self.differences else z[steps]
        parts = [u[:, None]]
        if xs.shape[1]:
            if self.exog == "future":
                parts.extend(xs[steps + k] for k in K)
            else:
                parts.append(xs[steps])
        return np.concatenate(parts, axis=1)

    def inputs(self, hist, xs, K):
        """Input sequences ``(B, w, F)`` from history ``(B, w + d)`` and X ``(B, w + hx, nx)``.

        Step ``j`` of the window (time ``s``) holds the (differenced) scaled value and,
        with exog="future", X at ``s + k`` for every ``k`` in ``K``; with exog="past",
        X at ``s``.
        """
        w = self.window
        parts = [self._input_values(hist)[:, :, None]]
        if xs is not None and xs.shape[2]:
            if self.exog == "future":
                parts.extend(xs[:, k : k + w] for k in K)
            else:
                parts.append(xs[:, :w])
        return np.concatenate(parts, axis=2)

    def targets(self, z, origins, hist, K):
        """Training targets ``(B, len(K))`` of windows ending at ``origins``."""
        Y = z[origins[:, None] + np.asarray(K)]
        if self.level is not None:
            Y = Y - self.window_level(hist)[:, None]
        return Y

    # -- training -------------------------------------------------------------------

    def training_set(self, zs, x_rows, K):
        """Windows of every series for a model predicting steps ``K``, in time order.

        ``zs`` are the scaled series, ``x_rows(i, hx)`` the scaled X rows of series
        ``i`` at its times and ``hx`` future times (NaN where unknown). The windows are
        a :class:`~skrnn.windows.PanelWindows` over the per-step values of the rows
        they read (O(panel) memory; a window's rows equal :meth:`inputs`' exactly), the
        targets a dense array.
        """
        w, d = self.window, self.differences
        H = max(K)
        hx = H if (self.has_X and self.exog == "future") else 0
        values, starts, Ys, order = [], [], [], []
        offset = 0
        for i, z in enumerate(zs):
            n = len(z)
            origins = np.arange(w - 1 + d, n - H)
            if origins.size == 0:
                continue
            hist = series_windows(z, w + d)[origins - (w - 1 + d)]
            Ys.append(self.targets(z, origins, hist, K))
            steps = np.arange(d, n - H)  # the rows the windows read
            values.append(self._step_values(z, x_rows(i, hx), steps, K))
            starts.append(offset + origins - (w - 1 + d))
            offset += len(steps)
            order.append(origins - (n - 1))
        if not values:
            lengths = sorted({len(z) for z in zs})
            raise ValueError(
                f"No training window fits in the series (lengths {lengths[:5]}): a window "
                f"needs window_length + differences + max step = {w} + {d} + {H} = "
                f"{w + d + H} points. Use a shorter window_length or horizon, or longer "
                "series."
            )
        values = np.concatenate(values)
        if np.isnan(values).any():
            raise ValueError("X has missing values at training times; impute them first.")
        idx = np.argsort(np.concatenate(order), kind="stable")  # time order, all series
        windows = PanelWindows.at(values, np.concatenate(starts)[idx], np.arange(w),
                                  level=self.input_level)
        return windows, np.concatenate(Ys)[idx]

    def fit(self, reg, zs, x_rows):
        """Fitted model(s) keyed by step (direct) or ``None``, and windows per model."""
        Xa, Ya = self.training_set(zs, x_rows, self.steps)
        return {None: clone(reg).fit(Xa, self._fit_targets(Ya))}, len(Xa)

    def _fit_targets(self, Ya):
        return Ya

    # -- forecasting ----------------------------------------------------------------

    def forecast(self, models, hist, xw, max_step, head=POINT):
        """Scaled forecasts of steps ``1..max_step`` from windows ``hist``/``xw``.

        ``(B, max_step)`` point forecasts, or ``(B, max_step, n_levels)`` quantiles of
        the head (``head=QUANTILES``); NaN for steps the model(s) do not predict. The
        head predicts relative to the window's level like the point forecast, so the
        same level is added back.
        """
        model = models[None]
        out = head.empty(hist.shape[0], max_step, model)
        if hist.shape[0] == 0:
            return out
        pred = _add_level(head.predict(model, self.inputs(hist, xw, self.steps)),
                          self.window_level(hist))
        m = min(max_step, pred.shape[1])
        out[:, :m] = pred[:, :m]
        return out


class Recursive(_Strategy):
    """One model of the next value; longer horizons feed its forecasts back in.

    Quantile forecasts follow the median (point) path and take, at each step, the
    head's one-step quantiles from the window reached: they hold for step 1 only
    (:attr:`one_step_head`), unless calibrated per step.
    """

    name = "recursive"
    requires_fh = False
    one_step_head = True

    @staticmethod
    def plan_steps(steps_pos, any_insample):
        return [1]

    def x_horizon(self, max_step):
        if not self.has_X:
            return 0
        return max_step if self.exog == "future" else max_step - 1

    def check_steps(self, pos_max):
        return None  # any step: forecasts are fed back

    def _fit_targets(self, Ya):
        return Ya[:, 0]

    def forecast(self, models, hist, xw, max_step, head=POINT):
        model = models[None]
        B, T = hist.shape
        out = head.empty(B, max_step, model)
        if B == 0:
            return out
        traj = hist.copy()
        for h in range(1, max_step + 1):
            window = traj[:, -T:]
            inputs = self.inputs(window, xw[:, h - 1 :], [1])
            level = self.window_level(window)
            nxt = _add_level(_predict_rows(model, inputs)[:, 0], level)
            out[:, h - 1] = nxt if head is POINT else _add_level(
                head.predict(model, inputs)[:, 0], level)
            traj = np.concatenate([traj, nxt[:, None]], axis=1)
        return out


class Direct(_Strategy):
    """One model per step ahead (the steps of ``fh``, and 1 for in-sample points)."""

    name = "direct"
    per_step = True

    @staticmethod
    def plan_steps(steps_pos, any_insample):
        return sorted(set(steps_pos) | ({1} if any_insample or not steps_pos else set()))

    def check_steps(self, pos_max):
        return None  # steps without a model forecast NaN

    def fit(self, reg, zs, x_rows):
        models = {}
        for k in self.steps:
            Xa, Ya = self.training_set(zs, x_rows, [k])
            models[k] = clone(reg).fit(Xa, Ya[:, 0])
        return models, len(Xa)

    def forecast(self, models, hist, xw, max_step, head=POINT):
        out = head.empty(hist.shape[0], max_step, next(iter(models.values())))
        if hist.shape[0] == 0:
            return out
        level = self.window_level(hist)
        for k, model in models.items():
            if k <= max_step:
                pred = head.predict(model, self.inputs(hist, xw, [k]))[:, 0]
                out[:, k - 1] = _add_level(pred, level)
        return out


class MultiOutput(_Strategy):
    """One model with ``h = max(fh)`` outputs, the steps ``1..h``."""

    name = "multioutput"


class Seq2Seq(_Strategy):
    """One model trained with per-step targets: every step of the window learns the
    ``h`` values that follow it, relative to its own level (the value at that step, or
    the mean so far), with inputs relative to the window's first value, so that no step
    sees a later one; forecasts come from the last step."""

    name = "seq2seq"

    @property
    def input_level(self):
        # each step's targets are relative to its own level: the inputs must not show
        # a later step's, so they are relative to the window's first value
        return None if super().input_level is None else "first"

    def targets(self, z, origins, hist, K):
        w = self.window
        steps_t = origins[:, None] + np.arange(-w + 1, 1)  # (B, w) step times
        Y = z[steps_t[:, :, None] + np.asarray(K)]  # (B, w, H)
        if self.level is not None:
            Y = Y - step_levels(z[steps_t], self.level)[:, :, None]
        return Y


#: the strategies by name
STRATEGIES = {cls.name: cls for cls in (Recursive, Direct, MultiOutput, Seq2Seq)}


def make_strategy(name, **kwargs):
    """The strategy object of ``name`` (one of :data:`STRATEGIES`)."""
    return STRATEGIES[name](**kwargs)
