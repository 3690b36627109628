"""``features.static`` in an experiment: a series' constant columns or a one-hot of the
series reach the model as step features, through ``skrnn run`` (with the default
per-series scaling, which scales them with statistics pooled over all series) and
``skrnn predict``."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from experiments import csv_experiment

from skrnn._meta import fitted_recurrent_regressor
from skrnn.cli import main
from skrnn.datasets import make_count_panel
from skrnn.experiment import load_model
from skrnn.lags import make_supervised

GRU = """[[models]]
name = "gru"
kind = "gru"
params = {{ units = 3, max_iter = 1, batch_size = 32, dtype = "float32" }}
"""

RIDGE = """[[models]]
name = "ridge"
kind = "ridge"
params = {{ alpha = 0.5 }}
"""

AREA = {"D01": 12.5, "D02": 30.0, "D03": 7.25}  # one value per district


def _panel(tmp_path):
    csv = tmp_path / "panel.csv"
    frame = make_count_panel(n_groups=3, periods=60, start="2020-01-01", random_state=1)
    frame["area"] = frame["district"].map(AREA)
    frame["temp"] = np.linspace(0.0, 1.0, len(frame))  # varies within each district
    frame.to_csv(csv, index=False)
    return frame, csv


def _run(tmp_path, features, name, models=GRU):
    _, csv = _panel(tmp_path)
    out = tmp_path / name
    toml = tmp_path / f"{name}.toml"
    toml.write_text(csv_experiment("static", models, path=csv.as_posix(), test_periods=10,
                                   max_lags=5, features=features).format(out=out.as_posix()))
    result = CliRunner().invoke(main, ["run", str(toml), "--quiet"])
    return result, out


def _predict(model, data, output):
    return CliRunner().invoke(main, ["predict", "--model", str(model), "--data", str(data),
                                     "--output", str(output)])


def _by_hand(frame, model, static):
    """The model's forecast of the day after the data, on each series' latest window built
    here: per step k = 5..1, the value of t-k and the series' static features."""
    nxt = frame["date"].max() + pd.Timedelta(days=1)
    look = frame.set_index(["district", "date"])["crimes"]
    rows, names = [], None
    for g in sorted(AREA):
        window, names = [], []
        for k in range(5, 0, -1):
            window += [look[(g, nxt - pd.Timedelta(days=k))], *static[g]]
            names += [f"crimes_lag{k}", *[f"{s}_lag{k}" for s in static["names"]]]
        rows.append(window)
    X = pd.DataFrame(rows, columns=names, index=pd.MultiIndex.from_tuples(
        [(nxt, g) for g in sorted(AREA)], names=["date", "district"]))
    return model.predict(X), nxt


def test_static_columns_with_per_series_scaling(tmp_path):
    result, out = _run(tmp_path, 'static = ["area"]', "cols", GRU + RIDGE)
    assert result.exit_code == 0, result.output
    gru = load_model(out / "models" / "gru.skops")
    assert fitted_recurrent_regressor(gru).n_step_features == 2  # value, area
    scaler = gru.regressor_.named_steps["scale"]
    assert scaler.group == "district" and tuple(scaler.pooled_features) == (1,)
    # skrnn predict builds the static step features again, from the data's own column
    frame, csv = _panel(tmp_path)
    assert _predict(out / "models" / "gru.skops", csv, tmp_path / "f.csv").exit_code == 0
    got = pd.read_csv(tmp_path / "f.csv", dtype={"district": str}, parse_dates=["date"])
    want, nxt = _by_hand(frame, gru, {"names": ["area"], **{g: [a] for g, a in AREA.items()}})
    assert list(got["district"]) == sorted(AREA) and (got["date"] == nxt).all()
    np.testing.assert_allclose(got["forecast"], want, rtol=1e-6)
    # ... and refuses a static column that varies within a series, as the run does
    frame.loc[frame.index[-1], "area"] += 1.0
    frame.to_csv(tmp_path / "varying.csv", index=False)
    refused = _predict(out / "models" / "gru.skops", tmp_path / "varying.csv", tmp_path / "v")
    assert refused.exit_code == 2
    assert "static: column 'area' is not constant within the series of group 'D03'" in \
        " ".join(refused.output.split())
    _ridge_by_hand(frame.assign(area=frame["district"].map(AREA)), out)


def _ridge_by_hand(frame, out):
    """The run's ridge predictions: the value scaled per series, area pooled over all
    series (one statistic each over the training windows), the target per series."""
    from sklearn.linear_model import Ridge

    X, y = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=5,
                           date="date", group="district", static=["area"])
    dates, groups = X.index.get_level_values("date"), X.index.get_level_values("district")
    test = dates >= np.sort(dates.unique())[-10]
    raw, value = X.to_numpy(), np.arange(X.shape[1]) % 2 == 0
    Xs, ys, mu, sd = raw.copy(), y.to_numpy().copy(), {}, {}
    area = raw[~test][:, ~value]
    Xs[:, ~value] = (raw[:, ~value] - area.mean()) / area.std()
    for g in groups.unique():
        tr, rows = (groups == g) & ~test, groups == g
        v = raw[tr][:, value]
        Xs[np.ix_(rows, value)] = (raw[rows][:, value] - v.mean()) / v.std()
        mu[g], sd[g] = y.to_numpy()[tr].mean(), y.to_numpy()[tr].std()
        ys[rows] = (y.to_numpy()[rows] - mu[g]) / sd[g]
    assert len(np.unique(Xs[:, 1])) == 3  # the three areas stay apart
    ridge = Ridge(alpha=0.5).fit(Xs[~test], ys[~test])
    pred = ridge.predict(Xs[test]) * np.array([sd[g] for g in groups[test]]) + np.array(
        [mu[g] for g in groups[test]])
    saved = pd.read_csv(out / "predictions.csv", dtype={"district": str},
                        parse_dates=["date"]).set_index(["date", "district"])
    by_hand = pd.Series(pred, index=X.index[test])
    assert len(saved) == len(by_hand) == 30
    np.testing.assert_allclose(saved["ridge"].to_numpy(), by_hand[saved.index].to_numpy(),
                               rtol=1e-9, atol=1e-9)


def test_group_one_hot_with_per_series_scaling(tmp_path):
    result, out = _run(tmp_path, 'static = "group"', "onehot")
    assert result.exit_code == 0, result.output
    gru = load_model(out / "models" / "gru.skops")
    assert fitted_recurrent_regressor(gru).n_step_features == 1 + 3  # value, one per district
    scaler = gru.regressor_.named_steps["scale"]
    assert tuple(scaler.passthrough_features) == (1, 2, 3) and scaler.pooled_features is None
    frame, csv = _panel(tmp_path)
    X, _ = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=5,
                           date="date", group="district", group_one_hot=True)
    hot = np.arange(X.shape[1]) % 4 > 0  # the one-hot reaches the model as 0/1
    scaled = np.asarray(scaler.transform(X.set_axis(gru.regressor_.feature_names_in_, axis=1)))
    np.testing.assert_array_equal(scaled[:, hot], X.to_numpy()[:, hot])
    meta = json.loads((out / "models" / "windows.json").read_text())
    # the run records the one-hot's order, which is the order of the model's columns
    assert meta["groups"] == sorted(AREA)
    assert list(gru.regressor_.feature_names_in_[1:4]) == [
        f"district_{g}_lag5" for g in meta["groups"]]
    assert _predict(out / "models" / "gru.skops", csv, tmp_path / "f.csv").exit_code == 0
    got = pd.read_csv(tmp_path / "f.csv", dtype={"district": str}, parse_dates=["date"])
    eye = {g: list(np.eye(3)[i]) for i, g in enumerate(sorted(AREA))}
    want, _ = _by_hand(frame, gru, {"names": [f"district_{g}" for g in sorted(AREA)], **eye})
    np.testing.assert_allclose(got["forecast"], want, rtol=1e-6)
    # fewer series than the run: the one-hot keeps the run's columns
    frame[frame["district"] != "D01"].to_csv(tmp_path / "two.csv", index=False)
    assert _predict(out / "models" / "gru.skops", tmp_path / "two.csv",
                    tmp_path / "f2.csv").exit_code == 0
    two = pd.read_csv(tmp_path / "f2.csv", dtype={"district": str})
    assert list(two["district"]) == ["D02", "D03"]
    np.testing.assert_allclose(two["forecast"], want[1:], rtol=1e-6)
    # a series the run never saw has no column: refused, never a silent all-zero one-hot
    frame.assign(district=frame["district"].replace("D02", "D09")).to_csv(
        tmp_path / "new.csv", index=False)
    refused = _predict(out / "models" / "gru.skops", tmp_path / "new.csv", tmp_path / "f3")
    assert refused.exit_code == 2
    assert "series ['D09'] of the data were not in the run" in " ".join(
        refused.output.split())


@pytest.mark.parametrize("features, message", [
    ('static = ["crimes_x"]', "['crimes_x'] not in"),
    ('static = ["temp"]', "features: static: column 'temp' is not constant within the series"),
    ('static = "groups"', "static"),
])
def test_static_settings_are_checked(tmp_path, features, message):
    result, _ = _run(tmp_path, features, "bad")
    assert result.exit_code == 2 and message in result.output


def test_a_one_hot_run_without_the_series_order_is_refused(tmp_path):
    from skrnn._experiment.config import ExperimentError
    from skrnn._experiment.predict import _step_features

    meta = {"max_lags": 5, "n_step_features": 4, "date": "date", "group": "district",
            "value": "crimes", "static": "group"}  # a run of an older skrnn
    with pytest.raises(ExperimentError, match="did not record the series' order"):
        _step_features(meta, tmp_path / "gru.skops")
    features, one_hot = _step_features({**meta, "groups": ["a", "b", "c"]},
                                       tmp_path / "gru.skops")
    assert one_hot == ["district_a", "district_b", "district_c"]
    assert features.static_columns() == one_hot and features.n_step_features() == 4
    # a one-hot name never takes a column of the data
    _, one_hot = _step_features({**meta, "groups": ["a", "b", "c"], "group": "x",
                                 "value": "x_a"}, tmp_path / "gru.skops")
    assert one_hot == ["_x_a", "_x_b", "_x_c"]
