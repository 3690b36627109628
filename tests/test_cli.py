"""The ``skrnn`` command end to end, in subprocesses, on a tiny experiment."""

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

TINY = """
name = "tiny"
seed = 0
output = "{out}"

[data]
source = "generated"
params = {{ n_groups = 2, periods = 200, start = "2020-01-01" }}
date = "date"
group = "district"
value = "crimes"

[split]
test_periods = 30

[features]
max_lags = 7
lags = 3

[[models]]
name = "last_value"
kind = "last_value"

[[models]]
name = "gru"
kind = "gru"
params = {{ units = 4, max_iter = 4, batch_size = 32, dtype = "float32" }}
[models.search]
n_trials = 3
space = {{ lags = [2, 7], units = [2, 8] }}

[tracking]
enabled = false
"""


def skrnn(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "skrnn", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"skrnn {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def tiny(tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(out=out.as_posix()))
    return path, out


def test_run_writes_table_csv_plots_models_and_resumes(tiny, tmp_path, monkeypatch):
    path, out = tiny
    # tracking on, as in the README's main job, into a temporary MLflow store
    path.write_text(path.read_text().replace("enabled = false", "enabled = true"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    first = skrnn("run", str(path))  # with progress bars: trials and nested epoch bars
    assert "one-step-ahead holdout" in first.stdout and "gru" in first.stdout
    assert "GRURegressor - fit" in first.stdout
    table = pd.read_csv(out / "results.csv")
    assert list(table["model"]) == ["last_value", "gru"]
    assert table.loc[0, "skill"] == 0.0 and table["MAE"].gt(0).all()
    assert (out / "fit_gru.png").stat().st_size > 5000
    assert (out / "loss_gru.png").exists() and (out / "tuning" / "gru" / "trials.csv").exists()
    assert (out / "models" / "gru.skops").exists()
    trials = pd.read_csv(out / "tuning" / "gru" / "trials.csv")
    assert len(trials) == 3
    # the second run resumes the study: no new trial, same best parameters
    skrnn("run", str(path), "--quiet")
    again = pd.read_csv(out / "tuning" / "gru" / "trials.csv")
    assert len(again) == 3
    assert pd.read_csv(out / "results.csv")["best_params"][1] == table["best_params"][1]
    shown = skrnn("show", str(out))
    assert "last_value" in shown.stdout
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    models = [r for r in runs if r.data.tags.get("skrnn.kind") == "gru"]
    assert len(models) == 2 and all(r.info.status == "FINISHED" for r in models)
    assert "MAE" in models[0].data.metrics


def test_predict_with_a_saved_model(tiny, tmp_path):
    path, out = tiny
    skrnn("run", str(path), "--quiet")
    from skrnn.datasets import make_count_panel

    history = make_count_panel(n_groups=2, periods=60, start="2021-01-01", random_state=1)
    csv = tmp_path / "history.csv"
    history.to_csv(csv, index=False)
    forecasts = tmp_path / "forecasts.csv"
    skrnn("predict", "--model", str(out / "models" / "gru.skops"), "--data", str(csv),
          "--output", str(forecasts))
    table = pd.read_csv(forecasts)
    assert len(table) == 2 and table["forecast"].notna().all()
    assert set(table["date"]) == {"2021-03-02"}  # the day after the last observation


def test_user_csv_replaces_the_data(tiny, tmp_path):
    path, out = tiny
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=2, periods=150, random_state=3).rename(
        columns={"date": "Date", "district": "District", "crimes": "Incidents"})
    csv = tmp_path / "districts.csv"
    panel[["District", "Date", "Incidents"]].to_csv(csv, index=False)
    skrnn("run", str(path), "--quiet", "--data", str(csv), "--date-col", "Date",
          "--group-col", "District", "--value-col", "Incidents", "--trials", "1")
    assert len(pd.read_csv(out / "results.csv")) == 2


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t + '\n[extra]\nkey = 1\n', "extra: unknown key"),
        (lambda t: t.replace("test_periods = 30", 'test_periods = "thirty"'),
         "split.test_periods"),
        (lambda t: t.replace('source = "generated"', 'source = "csv"\npath = "nope.csv"'),
         "data file not found"),
        (lambda t: t.replace("test_periods = 30", "test_periods = 5000"),
         "leaves no training dates"),
    ],
    ids=["unknown-key", "wrong-type", "missing-file", "holdout-too-long"],
)
def test_bad_experiment_files_fail_with_a_clear_message(tiny, edit, message):
    path, _ = tiny
    path.write_text(edit(path.read_text()))
    proc = skrnn("run", str(path), "--quiet", check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_shows_the_bundled_pipelines():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = skrnn("list", cwd=root)
    assert "default" in proc.stdout and "chicago_districts" in proc.stdout
