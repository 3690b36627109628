"""``skrnn predict-panel`` reads and checks its data with the code of ``skrnn run``.

One finished run (made once per module) on a CSV whose two series are keyed "007" and
"7". Its ridge model forecasts each of them as ``skrnn predict`` does; every bad input
ends with exit status 2 and one ``Error:`` line naming the problem, writes no output
file (nor a partial one) and leaves a file already there untouched.
"""

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from experiments import experiment

from skrnn.cli import main

# pandas says so while failing to read numbers as dates, which the error then names
pytestmark = pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning")

RIDGE = """[[models]]
name = "ridge"
kind = "ridge"
params = {{ alpha = 1.0 }}
"""
KEYS = {"D01": "007", "D02": "7"}  # one series per key: read as numbers, both are 7


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of a ridge on panel.csv (series "007" and "7", 60 days)."""
    from skrnn.datasets import make_count_panel

    base = tmp_path_factory.mktemp("panel_run")
    frame = make_count_panel(n_groups=2, periods=60, start="2020-01-01", random_state=3)
    frame["district"] = frame["district"].map(KEYS)
    frame.to_csv(base / "panel.csv", index=False)
    toml = experiment("keys", RIDGE, periods=60, test_periods=10, lags=3)
    (base / "keys.toml").write_text(toml.format(out=(base / "run").as_posix()))
    result = invoke("run", base / "keys.toml", "--quiet", "--data", base / "panel.csv")
    assert result.exit_code == 0, result.output
    return base


def _read(path):
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"district": str}, parse_dates=["date"])


def _holes(frame):
    """An empty value cell and a missing date, both inside the latest windows."""
    frame = frame.astype({"crimes": object})
    frame.loc[frame.index[frame["district"] == "7"][-3], "crimes"] = ""
    return frame.drop(index=frame.index[frame["district"] == "007"][-2])


@pytest.mark.parametrize("suffix, change, extra", [
    (".csv", None, []), (".parquet", None, []),
    (".csv", _holes, ["--fill-gaps", "ffill"])], ids=["csv", "parquet", "filled-gaps"])
def test_keys_007_and_7_are_two_series_forecast_as_skrnn_predict_does(finished, tmp_path,
                                                                      suffix, change, extra):
    model = finished / "run" / "models" / "ridge.skops"
    frame = pd.read_csv(finished / "panel.csv", dtype={"district": str})
    if change is not None:
        frame = change(frame)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    data = tmp_path / f"data{suffix}"
    frame.to_parquet(data) if suffix == ".parquet" else frame.to_csv(data, index=False)
    result = invoke("predict", "--model", model, "--data", tmp_path / "panel.csv",
                    "--output", tmp_path / "predict.csv", *extra)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"forecasts{suffix}"

    result = invoke("predict-panel", model, data, "--out", out, "--chunk-series", 1, *extra)

    assert result.exit_code == 0, result.output
    got = _read(out)
    expected = _read(tmp_path / "predict.csv")
    assert list(got.columns) == ["date", "district", "y_pred"]
    assert list(got["district"]) == ["007", "7"]  # two series, keys kept as written
    merged = got.merge(expected, on=["district", "date"], validate="one_to_one")
    assert len(merged) == 2
    np.testing.assert_allclose(merged["y_pred"], merged["forecast"], rtol=1e-12)
    assert merged["y_pred"].nunique() == 2
    assert (merged["date"] == pd.Timestamp("2020-03-01")).all()  # the day after the last


def test_skrnn_predict_refuses_data_of_another_frequency_too(finished, tmp_path):
    # the check lives in the shared check_panel: filling weekly data's "gaps" would
    # forecast from a made-up daily series
    frame = pd.read_csv(finished / "panel.csv", dtype={"district": str})
    _weekly(frame).to_csv(tmp_path / "weekly.csv", index=False)
    result = invoke("predict", "--model", finished / "run" / "models" / "ridge.skops",
                    "--data", tmp_path / "weekly.csv", "--output", tmp_path / "f.csv",
                    "--fill-gaps", "ffill")
    assert result.exit_code == 2
    assert "another frequency than the model's ('D'" in result.stderr
    assert not (tmp_path / "f.csv").exists()


# -- bad inputs ------------------------------------------------------------------------------


def _set(frame, row, col, value):
    frame = frame.astype({col: object})
    frame.loc[row, col] = value
    return frame


def _weekly(frame):
    return frame[pd.to_datetime(frame["date"]).dt.dayofweek == 0]


def _irregular_last(frame):
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d %H:%M")
    last = frame.index[frame["district"] == "007"][-1]
    frame.loc[last, "date"] = "2020-02-29 12:00"
    return frame


def _day_numbers(frame):
    """Dates replaced by each series' day number: numbers, not dates."""
    return frame.assign(date=frame.groupby("district").cumcount() + 1)


def _data(change=None, *extra, suffix=".csv"):
    """predict-panel with the run's model on panel.csv after ``change(frame)``."""
    def edit(d):
        frame = pd.read_csv(d / "panel.csv", dtype={"district": str})
        changed = frame if change is None else change(frame)
        data = d / f"data{suffix}"
        if suffix == ".parquet":
            changed.to_parquet(data)
        elif isinstance(changed, str):
            data.write_text(changed)
        else:
            changed.to_csv(data, index=False)
        return [d / "models" / "ridge.skops", data, *extra]
    return edit


def _windows_json(**changes):
    """The run's model, its windows.json saying the run had other step features."""
    def edit(d):
        path = d / "models" / "windows.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return _data()(d)
    return edit


def _not_parquet(d):
    (d / "data.parquet").write_text("date,district,crimes\n")
    return [d / "models" / "ridge.skops", d / "data.parquet"]


CASES = [
    ("infinite", _data(lambda f: _set(f, 30, "crimes", "inf")), "line 32 ('inf')"),
    ("absurd", _data(lambda f: _set(f, 41, "crimes", "1e300")),
     "infinite or absurd (|value| >= 1e+15), e.g."),
    ("empty-cell", _data(lambda f: _set(f, 40, "crimes", "")),
     "empty value cell(s) in 'crimes'"),
    ("word-value",
     _data(lambda f: _set(f, 12, "crimes", "twelve"), "--fill-gaps", "ffill"), "not numbers"),
    ("not-a-date", _data(lambda f: _set(f, 5, "date", "31/02/2020")),
     "could not be parsed as dates"),
    ("numbers-for-dates", _data(_day_numbers), "could not be parsed as dates"),
    ("short-series", _data(lambda f: f.groupby("district").tail(5)),
     "shorter than window=7, e.g. '007' with 5 dates"),
    ("duplicate", _data(lambda f: pd.concat([f, f.iloc[[7]]])),
     "duplicated (group, date) key"),
    ("gap", _data(lambda f: f.drop(index=[10])), "has gaps inside 1 series"),
    ("irregular", _data(_irregular_last), "Irregular date"),
    ("weekly-data", _data(_weekly), "another frequency than the model's ('D'"),
    ("weekly-data-filled", _data(_weekly, "--fill-gaps", "0"),
     "another frequency than the model's ('D'"),
    ("missing-column", _data(None, "--value-col", "Incidents"), "column(s) ['Incidents']"),
    ("wrong-sep", _data(lambda f: f.to_csv(index=False, sep=";")), "--sep"),
    ("missing-group", _data(lambda f: _set(f, 3, "district", np.nan)), "missing label"),
    ("parquet-infinite", _data(lambda f: _set(f, 30, "crimes", np.inf).astype(
        {"crimes": float}), suffix=".parquet"), "data.parquet: row 30 ('inf')"),
    ("parquet-numbers-for-dates", _data(_day_numbers, suffix=".parquet"),
     "could not be parsed as dates, e.g. (row, value) [(0, '1')"),
    ("parquet-words", _data(lambda f: f.astype({"crimes": str}).pipe(
        _set, 12, "crimes", "twelve"), suffix=".parquet"), "(row, value) [(12, 'twelve')]"),
    ("parquet-missing-column", _data(lambda f: f.drop(columns="crimes"), suffix=".parquet"),
     "no column(s) ['crimes']"),
    ("not-parquet", _not_parquet, "is not a readable Parquet file"),
    ("run-with-static", _windows_json(static="group"), "static = 'group'"),
    ("run-with-calendar", _windows_json(calendar=["dayofweek"], n_step_features=2),
     "calendar = ['dayofweek']"),
    ("other-window", _data(None, "--window", 5), "reads windows of 7 steps"),
    ("group-is-value", _data(None, "--group-col", "crimes"),
     "must be different columns; got ['date', 'crimes', 'crimes']"),
    ("no-data", lambda d: [d / "models" / "ridge.skops", d / "nope.csv"], "no such file"),
]


@pytest.fixture()
def case(finished, tmp_path):
    """tmp/models (the run's), tmp/panel.csv and a file of the user's, tmp/previous.csv."""
    shutil.copytree(finished / "run" / "models", tmp_path / "models")
    shutil.copy(finished / "panel.csv", tmp_path / "panel.csv")
    (tmp_path / "previous.csv").write_text("date,district,y_pred\n2020-03-01,007,1.0\n")
    return tmp_path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("edit, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_writes_nothing(case, edit, expected):
    args = edit(case)
    before = _digest(case / "previous.csv")
    out = case / "forecasts.csv"

    result = invoke("predict-panel", *args, "--out", out)

    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not [p.name for p in case.iterdir() if "partial" in p.name]
    assert _digest(case / "previous.csv") == before


def test_an_existing_output_is_kept(case):
    before = _digest(case / "previous.csv")
    result = invoke("predict-panel", *_data()(case), "--out", case / "previous.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --out") and "exists" in result.stderr
    assert _digest(case / "previous.csv") == before
