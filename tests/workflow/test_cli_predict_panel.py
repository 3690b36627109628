"""``skrnn predict-panel``: streaming forecasts of a panel equal the in-memory predictions."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from skrnn import GRURegressor, persistence
from skrnn.cli import main
from skrnn.scaling import GroupScaler, GroupTargetRegressor
from skrnn.windows import PanelWindows

W_STEPS = 5


def _panel(tmp_path, n_series=7, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 20, size=n_series)
    series = {f"st{g}": rng.poisson(3.0 + g, size=n).astype(float)
              for g, n in enumerate(lengths)}
    rows = [{"day": d, "store": g, "sales": v} for g, vals in series.items()
            for d, v in zip(pd.date_range("2023-02-01", periods=len(vals)), vals)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows out of order
    return series, frame


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streamed_forecasts_equal_in_memory_predictions(tmp_path, suffix):
    series, frame = _panel(tmp_path)
    values = np.concatenate(list(series.values()))
    lengths = [len(v) for v in series.values()]
    W = PanelWindows(values, lengths, window=W_STEPS)
    model = GRURegressor(units=4, max_iter=2, random_state=0).fit(W, W.y)
    persistence.save(model, tmp_path / "gru.skops")
    data = tmp_path / ("data.parquet" if suffix == ".parquet" else "data.csv")
    frame.to_parquet(data) if suffix == ".parquet" else frame.to_csv(data, index=False)
    out = tmp_path / f"forecasts{suffix}"

    result = _invoke("predict-panel", tmp_path / "gru.skops", data, "--out", out,
                     "--chunk-series", 3, "--value-col", "sales", "--group-col", "store",
                     "--date-col", "day")

    assert result.exit_code == 0, result.output
    assert f"7 forecasts -> {out}" in result.output
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out, parse_dates=["day"])
    assert list(got.columns) == ["day", "store", "y_pred"]
    expected = model.predict(np.vstack([v[-W_STEPS:] for v in series.values()]))
    assert list(got["store"]) == list(series)  # sorted labels, one row each
    np.testing.assert_allclose(got["y_pred"], expected, rtol=1e-12 if suffix == ".csv" else 0)
    last = [pd.Timestamp("2023-02-01") + pd.Timedelta(days=len(v)) for v in series.values()]
    assert list(got["day"]) == last  # the date forecast: the day after each series ends
    assert sorted(p.name for p in tmp_path.iterdir() if "forecasts" in p.name) == [out.name]


# GroupTargetRegressor's own target scaler warns on its inverse (outside this command)
@pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")
def test_a_run_model_reads_the_run_layout_and_its_series_index(tmp_path):
    series, frame = _panel(tmp_path, seed=1)
    names = [f"sales_lag{k}" for k in range(W_STEPS, 0, -1)]
    X = pd.DataFrame(
        np.vstack([np.lib.stride_tricks.sliding_window_view(v, W_STEPS)[:-1]
                   for v in series.values()]), columns=names)
    y = np.concatenate([v[W_STEPS:] for v in series.values()])
    keys = np.concatenate([[g] * (len(v) - W_STEPS) for g, v in series.items()])
    X.index = pd.MultiIndex.from_arrays([np.arange(len(X)), keys], names=["day", "store"])
    # per-series scaling finds each row's series in the index, as the runner's models do
    model = GroupTargetRegressor(
        make_pipeline(GroupScaler(group="store").set_output(transform="pandas"), Ridge()),
        group="store").fit(X, y)
    models = tmp_path / "models"
    models.mkdir()
    persistence.save(model, models / "ridge.skops")
    (models / "windows.json").write_text(json.dumps(
        {"max_lags": W_STEPS, "n_step_features": 1, "date": "day", "group": "store",
         "value": "sales", "freq": "D", "fill_gaps": None, "sep": ";",
         "date_format": "%d/%m/%Y"}))
    # the run's CSV dialect is the default
    frame.to_csv(tmp_path / "data.csv", index=False, sep=";", date_format="%d/%m/%Y")
    out = tmp_path / "f.csv"

    result = _invoke("predict-panel", models / "ridge.skops", tmp_path / "data.csv",
                     "--out", out, "--chunk-series", 2)

    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, parse_dates=["day"])
    last = pd.DatetimeIndex([pd.Timestamp("2023-02-01") + pd.Timedelta(days=len(v))
                             for v in series.values()])
    Xlast = pd.DataFrame(np.vstack([v[-W_STEPS:] for v in series.values()]), columns=names,
                         index=pd.MultiIndex.from_arrays([last, list(series)],
                                                         names=["day", "store"]))
    np.testing.assert_allclose(got["y_pred"], model.predict(Xlast), rtol=1e-12)
    assert list(got["store"]) == list(series)


def test_errors_leave_nothing_behind(tmp_path):
    series, frame = _panel(tmp_path)
    values = np.concatenate(list(series.values()))
    model = Ridge().fit(PanelWindows(values, [len(values)], window=W_STEPS)[:],
                        PanelWindows(values, [len(values)], window=W_STEPS).y)
    persistence.save(model, tmp_path / "m.skops")
    frame.to_csv(tmp_path / "data.csv", index=False)
    base = ("predict-panel", tmp_path / "m.skops", tmp_path / "data.csv", "--group-col",
            "store", "--date-col", "day")
    out = tmp_path / "kept.csv"
    out.write_text("mine\n")
    result = _invoke(*base, "--value-col", "sales", "--out", out)
    assert result.exit_code == 2 and "exists" in result.output
    assert out.read_text() == "mine\n"  # nothing a user saved is overwritten
    result = _invoke(*base, "--out", tmp_path / "x.csv")
    assert result.exit_code == 2 and "--value-col is needed" in result.output
    # the shortest series has 8 dates: a window of 9 does not fit
    result = _invoke(*base, "--value-col", "sales", "--window", 9, "--out", tmp_path / "y.csv")
    assert result.exit_code == 2 and "shorter than window=9" in result.output
    assert not any("y." in p.name or "partial" in p.name for p in tmp_path.iterdir())
    gappy = frame.drop(frame.index[3])
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    result = _invoke("predict-panel", tmp_path / "m.skops", tmp_path / "gappy.csv",
                     "--value-col", "sales", "--group-col", "store", "--date-col", "day",
                     "--out", tmp_path / "z.csv")
    assert result.exit_code == 2 and "fill_gaps" in result.output.replace("-", "_")
