"""Plots for forecasting work: fits per series, training curves, forecasts, diagnostics.

matplotlib is imported inside each function, so ``import skrnn`` stays light and headless
machines only pay for it when they plot. Every function returns the matplotlib Figure;
save it with ``fig.savefig(...)`` or let a notebook display it.
"""

import numpy as np
import pandas as pd

from skrnn._optional import require
from skrnn._panel import infer_frequency, lookup_key

__all__ = [
    "plot_fit",
    "plot_loss_curves",
    "plot_forecast",
    "plot_chow_test",
    "plot_residual_diagnostics",
    "plot_impulse_response",
    "plot_lag_importance",
]


def _pyplot():
    require("matplotlib", by="skrnn.plotting")
    import matplotlib.pyplot as plt  # lazy: see the module docstring

    return plt


def _concise_dates(ax):
    """Short date tick labels (no overlapping '2020-09-08' labels) when x holds dates."""
    import matplotlib.dates as mdates

    if isinstance(ax.xaxis.get_major_locator(), mdates.DateLocator):
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _align(pred, data, name):
    """Predictions as a float array aligned with the rows of ``data`` (NaN where absent)."""
    if pred is None:
        return None
    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] != 1:
            raise ValueError(
                f"{name} must have one column (plot one forecast step), got {pred.shape[1]}."
            )
        pred = pred.iloc[:, 0]
    if isinstance(pred, pd.Series):
        if not data.index.is_unique:
            raise ValueError(
                f"{name} is a Series aligned by index, so data's index must be unique; put "
                "the date and group in the index or pass an array aligned with data's rows."
            )
        missing = pred.index.difference(data.index)
        if len(missing):
            raise ValueError(
                f"{name} has {len(missing)} index label(s) not in data, e.g. "
                f"{list(missing[:3])}."
            )
        return pred.reindex(data.index).to_numpy(dtype=np.float64)
    arr = np.asarray(pred, dtype=np.float64).ravel()
    if arr.shape[0] != len(data):
        raise ValueError(
            f"{name} as an array must have one value per row of data ({len(data)}), got "
            f"{arr.shape[0]}; pass a Series indexed like the rows it predicts instead."
        )
    return arr


def plot_fit(data, y_train_pred=None, y_test_pred=None, *, value, date=None, group=None,
             groups=None, max_groups=12, figsize=None, title=None):
    """Truth, training fit and test fit of each series, one panel per series.

    Parameters
    ----------
    data : DataFrame
        Long table with the observed ``value`` (one row per series and time).
    y_train_pred, y_test_pred : Series or array-like, default=None
        One-step predictions. A Series is aligned with ``data`` by index (e.g. predictions on
        the ``X`` of :func:`~skrnn.make_supervised`, which keeps ``data``'s index); an array
        must have one value per row of ``data`` (NaN where there is none).
    value : str
        Column of observed values.
    date : str, default=None
        Column or index level on the x axis; None plots against the position in the series.
    group : str, default=None
        Column or index level naming the series; None: one series.
    groups : list, default=None
        Series to plot; None: the first ``max_groups`` in sorted order.
    max_groups : int, default=12
        Most panels drawn when ``groups`` is None.
    figsize : tuple, default=None
        Figure size; None scales the height with the number of panels.
    title : str, default=None
        Figure title (e.g. the model and its test error).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axis per series; a dashed line marks where the test predictions start.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if value not in data.columns:
        raise ValueError(f"value={value!r} is not a column of data; columns: {list(data.columns)}.")
    truth = data[value].to_numpy(dtype=np.float64)
    train = _align(y_train_pred, data, "y_train_pred")
    test = _align(y_test_pred, data, "y_test_pred")
    x = (lookup_key(data, date, "date")[0] if date is not None
         else pd.Index(np.arange(len(data))))
    labels = (pd.Index(lookup_key(data, group, "group")[0]) if group is not None
              else pd.Index(np.zeros(len(data), dtype=int)))
    if groups is None:
        shown = list(pd.Index(labels.unique()).sort_values()[:max_groups])
    else:
        shown = list(groups)
        unknown = [g for g in shown if g not in set(labels)]
        if unknown:
            raise ValueError(f"groups {unknown} are not in the data.")

    plt = _pyplot()
    n = len(shown)
    fig, axes = plt.subplots(n, 1, figsize=figsize or (9, 2.4 * n + 0.6), sharex=True,
                             squeeze=False)
    for ax, g in zip(axes[:, 0], shown):
        rows = np.flatnonzero(labels == g)
        order = rows[np.argsort(np.asarray(x[rows]), kind="stable")] if date is not None else rows
        xs = x[order] if date is not None else np.arange(order.shape[0])
        ax.plot(xs, truth[order], color="0.2", lw=1.0, label="truth")
        if train is not None:
            ax.plot(xs, train[order], color="tab:blue", lw=1.0, label="train fit")
        if test is not None:
            ax.plot(xs, test[order], color="tab:orange", lw=1.2, label="test fit")
            has = np.flatnonzero(~np.isnan(test[order]))
            if has.size:
                ax.axvline(xs[has[0]], color="tab:red", ls="--", lw=0.8)
        if group is not None:
            ax.set_title(f"{group} = {g}", fontsize=9, loc="left")
        ax.set_ylabel(value)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel(date if date is not None else "step")
    _concise_dates(axes[-1, 0])
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_loss_curves(estimator, *, ax=None, logy=False):
    """Training loss and validation loss per epoch of a fitted regressor.

    Parameters
    ----------
    estimator : object
        Fitted regressor with ``loss_curve_`` (list of floats per epoch) and optionally
        ``validation_loss_curve_`` (absent or None without a validation split) and
        ``best_iteration_``.
    ax : matplotlib Axes, default=None
        Axis to draw on; None creates a figure.
    logy : bool, default=False
        Logarithmic loss axis.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the curves.
    """
    loss = getattr(estimator, "loss_curve_", None)
    if loss is None or len(loss) == 0:
        raise ValueError(
            f"{type(estimator).__name__} has no loss_curve_; fit it first (only iterative "
            "regressors record one)."
        )
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, np.asarray(loss, dtype=float), label="training loss", color="tab:blue")
    val = getattr(estimator, "validation_loss_curve_", None)
    if val is not None and len(val):
        ax.plot(np.arange(1, len(val) + 1), np.asarray(val, dtype=float),
                label="validation loss", color="tab:orange")
    best = getattr(estimator, "best_iteration_", None)
    if best is not None:
        ax.axvline(best, color="0.5", ls=":", lw=1, label=f"best epoch ({best})")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _future_index(history_index, h):
    """Index of the ``h`` steps after ``history_index``."""
    if isinstance(history_index, pd.DatetimeIndex):
        freq = infer_frequency(history_index)
        if freq is None:
            raise ValueError(
                "Cannot infer the step of the history's dates; pass forecast as a Series "
                "with its own dates."
            )
        return pd.date_range(history_index[-1], periods=h + 1, freq=freq)[1:]
    if isinstance(history_index, pd.PeriodIndex):
        return pd.period_range(history_index[-1] + 1, periods=h, freq=history_index.freq)
    last = history_index[-1] if len(history_index) else -1
    return pd.Index(np.arange(h) + last + 1)


def plot_forecast(history, forecast, truth=None, *, ax=None, title=None):
    """History, forecast and (optionally) the truth over the horizon, horizon shaded.

    Parameters
    ----------
    history : Series or array-like of shape (n_history,)
        Observed values up to the forecast origin; a Series supplies the time axis.
    forecast : Series or array-like of shape (h,)
        Forecast for the next ``h`` steps; an array continues the history's index.
    truth : Series or array-like of shape (h,), default=None
        Observed values over the horizon.
    ax : matplotlib Axes, default=None
        Axis to draw on; None creates a figure.
    title : str, default=None
        Axis title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; the forecast origin is a dashed line, the horizon a shaded band.
    """
    history = history if isinstance(history, pd.Series) else pd.Series(
        np.asarray(history, dtype=np.float64).ravel())
    if not isinstance(forecast, pd.Series):
        values = np.asarray(forecast, dtype=np.float64).ravel()
        forecast = pd.Series(values, index=_future_index(history.index, values.shape[0]))
    if truth is not None and not isinstance(truth, pd.Series):
        values = np.asarray(truth, dtype=np.float64).ravel()
        if values.shape[0] != len(forecast):
            raise ValueError(
                f"truth must have one value per forecast step ({len(forecast)}), got "
                f"{values.shape[0]}."
            )
        truth = pd.Series(values, index=forecast.index)

    def axis(index):
        return index.to_timestamp() if isinstance(index, pd.PeriodIndex) else index

    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.5))
    else:
        fig = ax.figure
    ax.plot(axis(history.index), history.to_numpy(dtype=float), color="0.2", lw=1,
            label="history")
    fx = axis(forecast.index)
    if truth is not None:
        ax.plot(axis(truth.index), truth.to_numpy(dtype=float), color="0.2", lw=1, ls=":",
                marker=".", label="truth")
    ax.plot(fx, forecast.to_numpy(dtype=float), color="tab:orange", lw=1.5, marker="o",
            ms=3, label="forecast")
    origin = axis(history.index)[-1] if len(history) else fx[0]
    ax.axvline(origin, color="tab:red", ls="--", lw=0.8)
    ax.axvspan(origin, fx[-1], color="tab:orange", alpha=0.08,
               label=f"horizon ({len(forecast)} steps)")
    if title:
        ax.set_title(title)
    _concise_dates(ax)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_chow_test(result, *, ax=None):
    """F statistic of a Chow scan against its critical value.

    Parameters
    ----------
    result : DataFrame
        Output of :func:`skrnn.diagnostics.chow_test`.
    ax : matplotlib Axes, default=None
        Axis to draw on; None creates a figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        F per candidate break (line), critical value (dashed), rejections (red dots).
    """
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.2))
    else:
        fig = ax.figure
    x = result["label"].to_numpy()
    ax.plot(x, result["F"].to_numpy(), color="tab:blue", lw=1.2, label="Chow F")
    ax.plot(x, result["critical_value"].to_numpy(), color="tab:red", ls="--", lw=1,
            label="critical value")
    rej = result["reject"].to_numpy(dtype=bool)
    if rej.any():
        ax.scatter(x[rej], result["F"].to_numpy()[rej], color="tab:red", s=10, zorder=3,
                   label="break rejected at alpha")
    ax.set_xlabel("candidate break")
    ax.set_ylabel("F")
    _concise_dates(ax)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_residual_diagnostics(diagnostics):
    """Residuals, their autocorrelation with Ljung-Box p-values, and the Chow scan.

    Parameters
    ----------
    diagnostics : Bunch
        Output of :func:`skrnn.diagnostics.residual_diagnostics`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Three axes: residuals over time, ACF (bars, with the +-1.96/sqrt(n) band and the
        Ljung-Box p-value per lag), Chow F against its critical value.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 8))
    resid = diagnostics.residuals
    axes[0].plot(resid.index, resid.to_numpy(), color="0.3", lw=0.8)
    axes[0].axhline(0, color="0.6", lw=0.8)
    axes[0].set_title("residuals", fontsize=9, loc="left")
    _concise_dates(axes[0])
    lb = diagnostics.ljung_box
    band = 1.96 / np.sqrt(len(resid))
    axes[1].axhspan(-band, band, color="0.9", zorder=0, label="white-noise band")
    axes[1].bar(lb.index, lb["acf"], color="tab:blue", width=0.6, zorder=2)
    axes[1].axhline(0, color="0.6", lw=0.8)
    axes[1].set_xlabel("lag")
    axes[1].set_title("autocorrelation", fontsize=9, loc="left")
    twin = axes[1].twinx()
    twin.plot(lb.index, lb["lb_pvalue"], color="tab:red", marker="o", ms=3, lw=1)
    twin.set_ylim(0, 1)
    twin.set_ylabel("Ljung-Box p", color="tab:red")
    plot_chow_test(diagnostics.chow, ax=axes[2])
    fig.tight_layout()
    return fig


def plot_impulse_response(result, *, max_units=16, figsize=None):
    """Response of each recorded state to the spike of :func:`~skrnn.diagnostics.impulse_response`.

    Parameters
    ----------
    result : Bunch
        Output of :func:`skrnn.diagnostics.impulse_response`.
    max_units : int, default=16
        Most units drawn per state (the first ones).
    figsize : tuple, default=None
        Figure size.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The input on top, then one axis per state whose first axis is time: one line per
        unit, a dashed line at the spike.
    """
    n_steps = result.n_steps
    panels = {}
    for name, value in result.response.items():
        value = np.asarray(value, dtype=np.float64)
        if value.ndim >= 1 and value.shape[0] == n_steps:
            panels[name] = value.reshape(n_steps, -1)
    if not panels:
        raise ValueError(
            "No state in the result has a time axis of length n_steps="
            f"{n_steps}; states: { {k: np.shape(v) for k, v in result.response.items()} }."
        )
    plt = _pyplot()
    n = len(panels) + 1
    fig, axes = plt.subplots(n, 1, figsize=figsize or (7, 1.9 * n + 0.6), sharex=True,
                             squeeze=False)
    steps = np.arange(n_steps)
    F = result.X.shape[1] // n_steps
    axes[0, 0].step(steps, result.X.reshape(n_steps, F), where="mid", color="0.2")
    axes[0, 0].set_title("input", fontsize=9, loc="left")
    for ax, (name, value) in zip(axes[1:, 0], panels.items()):
        ax.plot(steps, value[:, :max_units], lw=1)
        ax.axhline(0, color="0.7", lw=0.6)
        ax.set_title(f"{name}: response ({value.shape[1]} units"
                     f"{', first %d shown' % max_units if value.shape[1] > max_units else ''})",
                     fontsize=9, loc="left")
    for ax in axes[:, 0]:
        ax.axvline(result.spike_at, color="tab:red", ls="--", lw=0.8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return fig


def plot_lag_importance(estimator, X, *, method="integrated", baseline=None, n_steps=50,
                        output=0, ax=None):
    """Mean absolute attribution of each lag (and step feature) of a fitted regressor.

    The attributions come from the regressor's ``input_gradients`` (exact gradients,
    or integrated gradients, whose values add up to the prediction minus the
    baseline's): the bar of a lag is the mean over the rows of ``X`` of the absolute
    attribution to that step, stacked by step feature. Lag 1 is the last (most
    recent) step of a window.

    Parameters
    ----------
    estimator : fitted skrnn regressor, or a Pipeline ending with one
        For a Pipeline, ``X`` goes through the steps before the regressor and the
        attributions are to the regressor's own input (the transformed lags).
    X : array-like of shape (n_samples, timesteps * n_step_features) or \
            (n_samples, timesteps, n_step_features)
        The windows to explain (e.g. the test windows).
    method : {"integrated", "gradient"}, default="integrated"
    baseline : array-like, default=None
        Integrated gradients' reference input (None: zeros; after scaling, zero is
        the mean level).
    n_steps : int, default=50
        Quadrature nodes of integrated gradients.
    output : int, default=0
        Which output (forecast step) of a multi-output model to explain.
    ax : matplotlib Axes, default=None
        Axis to draw on; None creates a figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the bars.
    """
    model = estimator
    if hasattr(estimator, "steps"):  # a Pipeline: explain its last step
        model = estimator.steps[-1][1]
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
    if not hasattr(model, "input_gradients"):
        raise TypeError(
            f"plot_lag_importance needs a skrnn recurrent regressor (or a Pipeline ending "
            f"with one); got {type(model).__name__}."
        )
    attr = np.asarray(model.input_gradients(X, method=method, baseline=baseline,
                                            n_steps=n_steps))
    n_out = getattr(model, "n_outputs_", 1)
    if attr.ndim == np.ndim(X) + 1:  # one attribution per output
        if not 0 <= output < n_out:
            raise ValueError(f"output must be in [0, {n_out}); got {output}.")
        attr = attr[:, output]
    F = model.n_step_features_
    importance = np.abs(attr.reshape(len(attr), -1, F)).mean(axis=0)  # (T, F)
    T = len(importance)
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * T + 2), 3.2))
    else:
        fig = ax.figure
    positions = np.arange(T)
    bottom = np.zeros(T)
    for f in range(F):
        ax.bar(positions, importance[:, f], bottom=bottom, width=0.8,
               label=f"step feature {f}" if F > 1 else None)
        bottom += importance[:, f]
    step = max(1, T // 12)
    ax.set_xticks(positions[::-1][::step])
    ax.set_xticklabels([str(T - p) for p in positions[::-1][::step]])
    ax.set_xlabel("lag (1 = most recent step)")
    what = "integrated gradients" if method == "integrated" else "gradient"
    ax.set_ylabel(f"mean |{what}|")
    if F > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
