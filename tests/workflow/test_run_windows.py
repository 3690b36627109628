"""``skrnn run`` on lag windows as views: the same forecasts as the dense window
DataFrame, a saved model that ``skrnn predict`` uses, and a window step of the order of
the panel in memory."""

import tracemalloc
import warnings

import numpy as np
import pandas as pd
from click.testing import CliRunner
from experiments import experiment

from skrnn.cli import main
from skrnn.datasets import make_count_panel
from skrnn.experiment import (
    _build,
    _split_dates,
    _windows,
    check_panel,
    load_data,
    load_experiment,
    load_model,
    resolve_features,
)

MODELS = """[[models]]
name = "gru"
kind = "gru"
params = {{ units = 4, max_iter = 2, batch_size = 32, dtype = "float32" }}

[[models]]
name = "seasonal_naive"
kind = "seasonal_naive"
params = {{ sp = 7 }}

[[models]]
name = "ridge"
kind = "ridge"
"""

WINDOWS = experiment("win", MODELS, periods=120, test_periods=20, lags=7).replace(
    "\nlags = 7\n", '\nlags = 7\ncalendar = ["dayofweek"]\n')


def _dense(exp):
    """The run's windows as the DataFrame the runner built before, split alike."""
    d = exp.data
    frame = load_data(d, exp.base_dir, exp.seed)
    grid = check_panel(frame, d)
    features = resolve_features(exp.features, grid.freq, True, grid.labels)
    X, y = _windows(frame, d, features, freq=grid.freq)
    test, _, _ = _split_dates(X, exp.split, d.date)
    return X[~test], y[~test], X[test], y[test], features, grid


def test_run_on_windows_forecasts_as_the_dense_path_and_predict_uses_it(tmp_path,
                                                                          monkeypatch):
    from skrnn._experiment import predict

    out, toml = tmp_path / "out", tmp_path / "win.toml"
    toml.write_text(WINDOWS.format(out=out.as_posix()))
    result = CliRunner().invoke(main, ["run", str(toml), "--quiet"])
    assert result.exit_code == 0, result.output
    exp = load_experiment(toml)
    Xtr, ytr, Xte, yte, features, grid = _dense(exp)
    assert features.n_step_features() == 8  # value + 7 weekday columns per step
    saved = pd.read_csv(out / "predictions.csv", index_col=[0, 1], parse_dates=[0],
                        float_precision="round_trip")
    assert saved.index.equals(Xte.index)
    dense = {}
    for model in exp.models:
        est, _ = _build(model, features, exp.seed, exp.data.group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence of the short fit
            dense[model.name] = est.fit(Xtr, ytr)
        expected = est.predict(Xte)
        if model.kind == "ridge":  # a differently laid out copy: last-bit sums
            np.testing.assert_allclose(saved[model.name], expected, rtol=0,
                                       atol=1e-12 * np.abs(expected).max())
        else:
            assert np.array_equal(saved[model.name].to_numpy(), expected), model.name

    # `skrnn predict` with the saved models (fitted on windows) on a new history
    history = make_count_panel(n_groups=2, periods=40, start="2021-01-01", random_state=3)
    csv = tmp_path / "history.csv"
    history.to_csv(csv, index=False)
    for name in ("gru", "seasonal_naive"):
        path = out / "models" / f"{name}.skops"
        forecasts = tmp_path / f"{name}.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # e.g. feature-name mismatches
            result = CliRunner().invoke(main, ["predict", "--model", str(path), "--data",
                                               str(csv), "--output", str(forecasts)])
        assert result.exit_code == 0, result.output
        table = pd.read_csv(forecasts, float_precision="round_trip")
        # recorded from the windows' names, as from the DataFrame's
        model = load_model(path)
        names = getattr(model, "regressor_", model).feature_names_in_
        assert list(names) == list(Xtr.columns)
        # the same forecasts from the model fitted on the dense windows
        with monkeypatch.context() as patch:
            patch.setattr(predict, "load_model", lambda _, m=dense[name]: m)
            expected = predict.forecast_next(path, csv)
        np.testing.assert_array_equal(table["forecast"].to_numpy(),
                                      expected["forecast"].to_numpy())


def test_the_runner_window_step_stays_of_the_order_of_the_panel(monkeypatch):
    """Windows, split, per-series scaling, the cut to the model's lags and a naive
    forecast hold O(panel) memory: far below the dense window matrix."""
    import skrnn.scaling
    from skrnn._experiment.config import DataConfig, FeaturesConfig, SplitConfig
    from skrnn.baselines import LastValueRegressor
    from skrnn.lags import LastSteps
    from skrnn.scaling import GroupScaler

    frame = make_count_panel(n_groups=60, periods=400, random_state=0)
    frame["district"] = frame["district"].astype(str)
    frame = frame.sort_values(["district", "date"]).reset_index(drop=True)
    d = DataConfig(source="generated", date="date", group="district", value="crimes")
    day = pd.tseries.frequencies.to_offset("D")
    features = resolve_features(
        FeaturesConfig(max_lags=56, lags=28, calendar=["dayofweek"]), day, True,
        sorted(frame["district"].unique()))
    # the statistics gather a bounded chunk of windows; shrink it to see the rest
    monkeypatch.setattr(skrnn.scaling, "_WINDOW_CELLS", 1 << 15)
    tracemalloc.start()
    try:
        X, y = _windows(frame, d, features, freq=day, as_windows=True)
        test, _, _ = _split_dates(X, SplitConfig(test_periods=30), "date")
        Xtr, Xte = X.subset(~test), X.subset(test)
        scaler = GroupScaler(group="district", n_step_features=8)
        cut = LastSteps(28, n_step_features=8).fit(scaler.fit_transform(Xtr))
        model = LastValueRegressor(n_step_features=8).fit(
            cut.transform(scaler.transform(Xtr)), y[~test])
        pred = model.predict(cut.transform(scaler.transform(Xte)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense = len(X) * X.shape[1] * 8
    assert len(pred) == test.sum() and np.isfinite(pred).all()
    assert dense > 70e6  # ~20k windows of 56 steps x 8 features
    assert peak < dense / 5, (peak, dense)


def test_windows_rows_by_plain_indexing_are_dense():
    """``W[rows]`` stays the dense rows (what the recurrent regressors' batches read);
    the runner splits with ``subset`` so that its rows stay windows."""
    frame = make_count_panel(n_groups=2, periods=30, random_state=0)
    from skrnn.lags import make_supervised

    W, _ = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=3,
                           date="date", group="district", as_windows=True)
    assert isinstance(W[[0, 1]], np.ndarray)
    assert W.subset([0, 1]).index.equals(W.index[[0, 1]])
