"""Plots render under Agg and draw the data they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from skrnn import LastValueRegressor, WindowMeanRegressor, make_supervised  # noqa: E402
from skrnn.datasets import load_airline, make_count_panel  # noqa: E402
from skrnn.diagnostics import chow_test, impulse_response, residual_diagnostics  # noqa: E402
from skrnn.plotting import (  # noqa: E402
    plot_chow_test,
    plot_fit,
    plot_forecast,
    plot_impulse_response,
    plot_loss_curves,
    plot_residual_diagnostics,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def as_timestamps(values):
    """x data of a date axis (datetimes, or matplotlib's float days) as Timestamps."""
    values = np.atleast_1d(values)
    if np.issubdtype(np.asarray(values).dtype, np.number):
        values = [matplotlib.dates.num2date(v).replace(tzinfo=None) for v in values]
    return pd.DatetimeIndex([pd.Timestamp(v) for v in values])


def is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_fit_one_panel_per_series(tmp_path):
    df = make_count_panel(n_groups=3, periods=90, random_state=0).set_index(["date", "district"])
    X, y = make_supervised(df, "crimes", lags=7, group="district", date="date")
    dates = X.index.get_level_values("date")
    train = dates < "2020-03-01"
    model = WindowMeanRegressor().fit(X[train], y[train])
    fit_train = pd.Series(model.predict(X[train]), index=X.index[train])
    fit_test = pd.Series(model.predict(X[~train]), index=X.index[~train])
    fig = plot_fit(df, fit_train, fit_test, value="crimes", date="date", group="district")
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_title(loc="left") for ax in axes] == [f"district = D0{i}" for i in (1, 2, 3)]
    truth, tr, te = axes[1].lines[:3]
    d2 = df.xs("D02", level="district")["crimes"].to_numpy(dtype=float)
    np.testing.assert_array_equal(truth.get_ydata(), d2)
    # Train fit where trained, NaN elsewhere; the test line starts on 1 March.
    np.testing.assert_array_equal(np.isnan(tr.get_ydata()), np.isnan(
        fit_train.reindex(df.index).xs("D02", level="district").to_numpy()))
    assert np.isnan(te.get_ydata()[:60]).all() and not np.isnan(te.get_ydata()[60:]).any()
    assert to_rgba(te.get_color()) == to_rgba("tab:orange")
    marker = axes[1].lines[3]
    assert as_timestamps(marker.get_xdata())[0] == pd.Timestamp("2020-03-01")
    out = tmp_path / "fit.png"
    fig.savefig(out, dpi=60)
    assert is_png(out)


def test_plot_fit_input_errors():
    df = pd.DataFrame({"v": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"one value per row of data \(3\), got 2"):
        plot_fit(df, [1.0, 2.0], value="v")
    with pytest.raises(ValueError, match="value='w' is not a column"):
        plot_fit(df, value="w")
    fig = plot_fit(df, np.array([np.nan, 1.0, 2.0]), value="v")  # single series, no date
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [np.nan, 1.0, 2.0])


class Curves:
    def __init__(self, loss, val=None, best=None):
        self.loss_curve_ = loss
        if val is not None:
            self.validation_loss_curve_ = val
        if best is not None:
            self.best_iteration_ = best


def test_plot_loss_curves():
    fig = plot_loss_curves(Curves([3.0, 2.0, 1.5, 1.4], [3.5, 2.5, 2.4, 2.6], best=3))
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["training loss", "validation loss", "best epoch (3)"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [3.5, 2.5, 2.4, 2.6])
    # No validation split: validation_loss_curve_ absent or None.
    only = plot_loss_curves(Curves([1.0, 0.5]), logy=True).axes[0]
    assert len(only.lines) == 1 and only.get_yscale() == "log"
    none = Curves([1.0, 0.5])
    none.validation_loss_curve_ = None
    assert len(plot_loss_curves(none).axes[0].lines) == 1
    with pytest.raises(ValueError, match="no loss_curve_"):
        plot_loss_curves(LastValueRegressor())


def test_plot_forecast_marks_the_horizon(tmp_path):
    df = load_airline().set_index("date")["value"]
    history, truth = df.iloc[:-12], df.iloc[-12:]
    forecast = history.iloc[-12:].to_numpy()  # seasonal naive, as a bare array
    fig = plot_forecast(history, forecast, truth.to_numpy(), title="airline")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    # The array forecast was placed on the 12 months after the history.
    fx = as_timestamps(lines["forecast"].get_xdata())
    assert list(fx.strftime("%Y-%m")) == list(truth.index.strftime("%Y-%m"))
    np.testing.assert_array_equal(lines["forecast"].get_ydata(), forecast)
    np.testing.assert_array_equal(lines["truth"].get_ydata(), truth.to_numpy())
    assert "horizon (12 steps)" in [t.get_text() for t in ax.get_legend().texts]
    (band,) = ax.patches
    x0, x1 = band.get_x(), band.get_x() + band.get_width()
    assert as_timestamps([x0, x1]).strftime("%Y-%m").tolist() == ["1959-12", "1960-12"]
    out = tmp_path / "forecast.png"
    fig.savefig(out, dpi=60)
    assert is_png(out)
    with pytest.raises(ValueError, match="truth must have one value per forecast step"):
        plot_forecast(history, forecast, truth.to_numpy()[:3])


def test_diagnostic_plots():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100)
    y[60:] += 2
    res = chow_test(y)
    ax = plot_chow_test(res).axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), res["F"].to_numpy())
    assert len(ax.collections) == 1  # the rejected points
    diag = residual_diagnostics(pd.Series(y), np.zeros(100), lags=5)
    fig = plot_residual_diagnostics(diag)
    assert len(fig.axes) == 4  # residuals, ACF (+ twin for p-values), Chow
    assert len(fig.axes[1].patches) >= 5  # one bar per lag


def test_plot_impulse_response():
    class Fake:
        n_features_in_ = 10

        def get_states(self, X):
            X = np.asarray(X)
            h = np.cumsum(X, axis=1)[:, :, None] * np.arange(1, 21)
            return [{"h": h, "gates": {"z": np.tanh(h[:, :, :3])}}, {"summary": np.ones((1, 4))}]

    res = impulse_response(Fake(), spike_at=4)
    fig = plot_impulse_response(res, max_units=5)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0] == "input"
    assert titles[1].startswith("layer0/h: response (20 units, first 5 shown")
    assert titles[2].startswith("layer0/gates/z")
    assert len(fig.axes) == 3  # the state without a time axis is left out
    assert len(fig.axes[1].lines) == 5 + 2  # units + zero line + spike marker
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), [0] * 4 + [1] * 6)
