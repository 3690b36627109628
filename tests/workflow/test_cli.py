"""The ``skrnn`` command end to end, on tiny experiments.

The run with tracking and progress bars goes through a subprocess, as a user types it;
the rest use click's in-process runner (the same code path, much faster).
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from experiments import LAST_VALUE, experiment

from skrnn.cli import main

TINY = experiment("tiny", LAST_VALUE + """
[[models]]
name = "gru"
kind = "gru"
params = {{ units = 4, max_iter = 4, batch_size = 32, dtype = "float32" }}
[models.search]
n_trials = 3
space = {{ lags = [2, 7], units = [2, 8] }}
""", periods=200, test_periods=30, lags=3)

FAST = experiment("fast", LAST_VALUE + """
[[models]]
name = "ridge"
kind = "ridge"
[models.search]
n_trials = 2
space = {{ alpha = [0.1, 10.0, "log"] }}
""", periods=120, test_periods=20, lags=3)


def skrnn(*args, cwd=None, check=True, env=None):
    proc = subprocess.run([sys.executable, "-m", "skrnn", *map(str, args)], check=False,
                          capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"skrnn {' '.join(map(str, args))} failed:\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def invoke(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The README's main job in small: tracking on, progress bars, one finished run."""
    tmp = tmp_path_factory.mktemp("tiny")
    out = tmp / "out"
    path = tmp / "tiny.toml"
    path.write_text(TINY.format(out=out.as_posix()).replace("enabled = false",
                                                            "enabled = true"))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
    first = skrnn("run", path, env=env)
    return tmp, path, out, first, env


@pytest.fixture()
def fast(tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "fast.toml"
    path.write_text(FAST.format(out=out.as_posix()))
    return path, out


def test_run_writes_table_csv_plots_models_and_tracks(tiny_run):
    tmp, _, out, first, _ = tiny_run
    assert "one-step-ahead holdout" in first.stdout and "gru" in first.stdout
    assert "GRURegressor - fit" in first.stdout
    assert "[tiny]" in first.stdout  # user text is not read as rich markup
    table = pd.read_csv(out / "results.csv")
    assert sorted(table["model"]) == ["gru", "last_value"]
    assert list(table["MAE"]) == sorted(table["MAE"])  # ranked by the metric
    assert table.set_index("model").loc["last_value", "skill"] == 0.0
    assert table["MAE"].gt(0).all()
    for name in ("gru", "last_value"):  # every model's test period is plotted
        assert (out / f"fit_{name}.png").stat().st_size > 5000
    assert (out / "loss_gru.png").exists()
    assert (out / "tuning" / "gru" / "tuning_history.png").exists()
    assert len(pd.read_csv(out / "tuning" / "gru" / "trials.csv")) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["models"]) == {"gru", "last_value"}
    assert "results.csv" in manifest["files"]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert all(r.info.status == "FINISHED" for r in runs)
    gru = [r for r in runs if r.data.tags.get("skrnn.kind") == "gru"]
    assert len(gru) == 1 and "MAE" in gru[0].data.metrics
    params = gru[0].data.params  # the model's full hyperparameters, not only best_params
    assert params["regressor__model__max_iter"] == "4"
    assert params["regressor__model__units"] == str(
        json.loads((out / "tuning" / "gru" / "best_params.json").read_text())[
            "best_params"]["regressor__model__units"])
    assert "regressor__model__learning_rate_init" in params


def test_second_run_resumes_and_keeps_the_first(fast, tmp_path):
    path, out = fast
    invoke("run", path, "--quiet")
    first = pd.read_csv(out / "results.csv")
    again = invoke("run", path, "--quiet")
    assert "ridge: resumed: 2/2 trials done" in again.stdout
    assert len(pd.read_csv(out / "tuning" / "ridge" / "trials.csv")) == 2
    best = pd.read_csv(out / "results.csv").set_index("model")["best_params"]
    assert best["ridge"] == first.set_index("model")["best_params"]["ridge"]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.previous-")]
    assert len(aside) == 1 and (aside[0] / "manifest.json").exists()
    assert f"the previous run was moved to {aside[0]}" in again.stdout
    pd.testing.assert_frame_equal(pd.read_csv(aside[0] / "results.csv"), first)
    more = invoke("run", path, "--quiet", "--trials", "3")
    assert "resumed: 2/3 trials done" in more.stdout
    assert len(pd.read_csv(out / "tuning" / "ridge" / "trials.csv")) == 3
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("out.previous-")]) == 2
    assert "last_value" in invoke("show", out).stdout


def _independent_forecast(model_path, history, n_lags):
    """The model's prediction on each series' latest window, built here from scratch."""
    from skrnn import persistence

    model = persistence.load(model_path)
    rows = []
    for district, part in history.groupby("district"):
        window = part.sort_values("date")["crimes"].to_numpy(dtype=float)[-n_lags:]
        # indexed by (date, series) like the run's windows: per-series scaling reads it
        X = pd.DataFrame([window], columns=[f"crimes_lag{k}" for k in range(n_lags, 0, -1)],
                         index=pd.MultiIndex.from_tuples([(pd.Timestamp("2021-03-02"),
                                                           district)],
                                                         names=["date", "district"]))
        rows.append((district, float(np.ravel(model.predict(X))[0]), window[-1]))
    return rows


def test_predict_forecasts_from_the_latest_window(tiny_run, tmp_path):
    _, _, out, _, _ = tiny_run
    from skrnn.datasets import make_count_panel

    history = make_count_panel(n_groups=2, periods=60, start="2021-01-01", random_state=1)
    csv = tmp_path / "history.csv"
    # the file's row order must not matter: windows are built by date
    history.sample(frac=1, random_state=0).to_csv(csv, index=False)
    for name in ("gru", "last_value"):
        forecasts = tmp_path / f"{name}.csv"
        invoke("predict", "--model", out / "models" / f"{name}.skops", "--data", csv,
               "--output", forecasts)
        table = pd.read_csv(forecasts).set_index("district")
        assert set(table["date"]) == {"2021-03-02"}  # the day after the last observation
        for district, expected, last in _independent_forecast(
                out / "models" / f"{name}.skops", history, 7):
            assert table.loc[district, "forecast"] == pytest.approx(expected, rel=1e-6)
            if name == "last_value":
                assert table.loc[district, "forecast"] == last
    assert len(set(pd.read_csv(tmp_path / "gru.csv")["forecast"])) == 2


def test_a_changed_experiment_starts_a_new_study(fast, tmp_path):
    path, out = fast
    invoke("run", path, "--quiet")
    path.write_text(path.read_text().replace('alpha = [0.1, 10.0, "log"]',
                                             "alpha = [20.0, 50.0]"))
    changed = invoke("run", path, "--quiet")
    assert "the experiment changed" in changed.stdout and "new study" in changed.stdout
    trials = pd.read_csv(out / "tuning" / "ridge" / "trials.csv")
    assert len(trials) == 2 and trials["params_regressor__model__alpha"].between(20, 50).all()
    best = json.loads((out / "tuning" / "ridge" / "best_params.json").read_text())
    assert 20 <= best["best_params"]["regressor__model__alpha"] <= 50
    from skrnn import persistence

    ridge = persistence.load(out / "models" / "ridge.skops")
    assert 20 <= ridge.regressor_.named_steps["model"].alpha <= 50  # refit inside the space
    # other data: another study again; the same experiment: resumed
    from skrnn.datasets import make_count_panel

    make_count_panel(n_groups=2, periods=120, random_state=9).to_csv(tmp_path / "d.csv",
                                                                      index=False)
    other = invoke("run", path, "--quiet", "--data", tmp_path / "d.csv")
    assert "the experiment changed" in other.stdout
    same = invoke("run", path, "--quiet", "--data", tmp_path / "d.csv")
    assert "resumed: 2/2 trials done" in same.stdout
    fresh = invoke("run", path, "--quiet", "--data", tmp_path / "d.csv", "--fresh")
    assert "--fresh: deleted study" in fresh.stdout
    assert len(pd.read_csv(out / "tuning" / "ridge" / "trials.csv")) == 2


def test_group_keys_stay_strings(fast, tmp_path):
    path, out = fast
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=3, periods=100, random_state=2)
    panel["district"] = panel["district"].map(dict(zip(sorted(panel["district"].unique()),
                                                       ["007", "7", "012"])))
    csv = tmp_path / "districts.csv"
    panel.to_csv(csv, index=False)
    invoke("run", path, "--quiet", "--data", csv)
    preds = pd.read_csv(out / "predictions.csv", dtype={"district": str})
    assert sorted(preds["district"].unique()) == ["007", "012", "7"]
    forecasts = tmp_path / "f.csv"
    invoke("predict", "--model", out / "models" / "last_value.skops", "--data", csv,
           "--output", forecasts)
    lines = forecasts.read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in lines) == ["007", "012", "7"]
    last = panel.sort_values("date").groupby("district")["crimes"].last()
    got = pd.read_csv(forecasts, dtype={"district": str}).set_index("district")["forecast"]
    assert got.to_dict() == last.astype(float).to_dict()


def test_parquet_data_runs_and_predicts_like_its_csv(fast, tmp_path):
    path, out = fast
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=2, periods=100, random_state=5)
    panel["district"] = panel["district"].map({"D01": "007", "D02": "7"})
    panel.to_csv(tmp_path / "d.csv", index=False)
    panel.to_parquet(tmp_path / "d.parquet", index=False)
    tables, forecasts = {}, {}
    for kind in ("csv", "parquet"):
        invoke("run", path, "--quiet", "--data", tmp_path / f"d.{kind}", "--fresh")
        tables[kind] = pd.read_csv(out / "results.csv")
        invoke("predict", "--model", out / "models" / "ridge.skops", "--data",
               tmp_path / f"d.{kind}", "--output", tmp_path / f"f_{kind}.csv")
        forecasts[kind] = pd.read_csv(tmp_path / f"f_{kind}.csv", dtype={"district": str})
    pd.testing.assert_frame_equal(tables["csv"].drop(columns="fit_s"),
                                  tables["parquet"].drop(columns="fit_s"))
    pd.testing.assert_frame_equal(forecasts["csv"], forecasts["parquet"])
    assert sorted(forecasts["csv"]["district"]) == ["007", "7"]


def test_empty_cells_are_missing_rows(fast, tmp_path):
    path, _ = fast
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=2, periods=120, random_state=4)
    holes = panel.copy().astype({"crimes": float})
    holes.loc[[50, 51], "crimes"] = np.nan  # two empty cells...
    holes.to_csv(tmp_path / "cells.csv", index=False)
    panel.drop(index=[50, 51]).to_csv(tmp_path / "rows.csv", index=False)  # ...two rows
    results = {}
    for name in ("cells", "rows"):
        invoke("run", path, "--quiet", "--fill-gaps", "interpolate", "--data",
               tmp_path / f"{name}.csv", "--output", tmp_path / name)
        results[name] = pd.read_csv(tmp_path / name / "predictions.csv")
    pd.testing.assert_frame_equal(results["cells"], results["rows"])
    assert len(results["rows"]) == 2 * 20  # nothing dropped silently


def test_names_cannot_escape_and_markup_is_text(fast, tmp_path):
    path, out = fast
    text = path.read_text()
    path.write_text(text.replace('name = "ridge"', 'name = "../../escaped"'))
    before = set(tmp_path.parent.parent.rglob("escaped*"))
    refused = invoke("run", path, "--quiet", ok=False)
    assert refused.exit_code == 2 and "cannot name a file" in refused.stderr
    assert set(tmp_path.parent.parent.rglob("escaped*")) == before and not out.exists()
    path.write_text(text.replace('name = "ridge"', 'name = "[bold]x"').replace(
        'name = "last_value"', 'name = "[fast]"'))
    done = invoke("run", path, "--quiet")
    assert "[fast]" in done.stdout and "[bold]x" in done.stdout
    assert (out / "models" / "[bold]x.skops").exists() and (out / "fit_[fast].png").exists()


def test_constant_series_completes_with_undefined_skill(fast, tmp_path):
    path, out = fast
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=2, periods=120, random_state=4)
    panel["crimes"] = 3
    panel.to_csv(tmp_path / "flat.csv", index=False)
    result = invoke("run", path, "--quiet", "--data", tmp_path / "flat.csv")
    assert "skill is undefined" in result.stdout
    assert pd.read_csv(out / "results.csv")["skill"].isna().all()


def test_holdout_and_dialect_options(fast, tmp_path):
    path, out = fast
    from skrnn.datasets import make_count_panel

    panel = make_count_panel(n_groups=2, periods=120, random_state=4)
    panel["date"] = panel["date"].dt.strftime("%d/%m/%Y")
    panel.to_csv(tmp_path / "eu.csv", index=False, sep=";")
    invoke("run", path, "--quiet", "--data", tmp_path / "eu.csv", "--sep", ";",
           "--date-format", "%d/%m/%Y", "--test-start", "2020-04-01")
    preds = pd.read_csv(out / "predictions.csv", parse_dates=["date"])
    assert preds["date"].min() == pd.Timestamp("2020-04-01")
    assert preds["date"].max() == pd.Timestamp("2020-04-29")
    invoke("run", path, "--quiet", "--data", tmp_path / "eu.csv", "--sep", ";",
           "--date-format", "%d/%m/%Y", "--test-periods", "5")
    assert pd.read_csv(out / "predictions.csv")["date"].nunique() == 5
    # predict reads the same dialect by default (the run recorded it)
    invoke("predict", "--model", out / "models" / "ridge.skops", "--data",
           tmp_path / "eu.csv", "--output", tmp_path / "f.csv")
    assert set(pd.read_csv(tmp_path / "f.csv")["date"]) == {"2020-04-30"}


def test_ctrl_c_ends_tracked_runs_killed(tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(out=out.as_posix()).replace("enabled = false",
                                                            "enabled = true")
                    .replace("n_trials = 3", "n_trials = 200"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    # its own session: a helper process it leaves (MLflow's git look-ups) can be reaped
    proc = subprocess.Popen([sys.executable, "-m", "skrnn", "run", str(path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    for line in proc.stdout:  # wait until the search runs, then a little more
        if "new study" in line:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        exited = proc.poll() is not None
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        # the run itself must have ended; only a process it left may hold the pipes open
        assert exited, f"skrnn run still running 120 s after Ctrl-C:\n{stderr[-3000:]}"
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Interrupted" in stderr
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    top = [r for r in runs if r.data.tags.get("skrnn.role") == "experiment"]
    assert [r.info.status for r in top] == ["KILLED"]
    assert not out.exists()  # nothing half-written was published
    # the finished trials are kept: the next run resumes them
    again = invoke("run", path, "--quiet", "--no-tracking", "--trials", "1")
    assert "resumed:" in again.stdout


def test_list_shows_the_bundled_pipelines():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = CliRunner().invoke(main, ["list", "--pipelines", str(root / "pipelines")])
    assert "default" in result.stdout and "chicago_districts" in result.stdout


def test_readme_mlflow_ui_command_opens_the_store_the_cli_writes(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from skrnn.tracking import default_tracking_uri

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    uri = re.search(r"mlflow ui --backend-store-uri (\S+)", readme).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    written = default_tracking_uri()
    assert uri.startswith("sqlite:///") and written.startswith("sqlite:///")
    # a relative sqlite:/// path is read from the folder `mlflow ui` starts in
    assert (tmp_path / uri[len("sqlite:///"):]).resolve() == Path(
        written[len("sqlite:///"):]).resolve()


def test_tuning_plots_show_the_error_under_short_names(fast):
    import optuna

    from skrnn.experiment import display_study

    path, out = fast
    path.write_text(path.read_text().replace("space = { alpha", "space = { lags = [2, 7], alpha"))
    invoke("run", path, "--quiet", "--trials", "3")
    (name,) = optuna.study.get_all_study_names(f"sqlite:///{out}/optuna.db")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out}/optuna.db")
    shown = display_study(study)
    assert [set(t.params) for t in shown.trials] == [{"alpha", "lags"}] * 3
    assert [t.value for t in shown.trials] == [-t.value for t in study.trials]
    assert all(t.value > 0 for t in shown.trials)  # an MAE, not the negated objective
    for kind in ("history", "slice", "importances"):
        assert (out / "tuning" / "ridge" / f"tuning_{kind}.png").stat().st_size > 5000


def test_interrupt_records_of_loggers_without_handler_are_dropped(capsys):
    # SQLAlchemy's pool logs "Error closing cursor" with the traceback through Python's
    # handler of last resort when Ctrl-C cuts a query (a fresh-clone run printed it)
    import logging

    from skrnn import cli

    cli._quiet_interrupted_trials()
    pool = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
    root_handlers = logging.root.handlers[:]
    logging.root.handlers.clear()  # pytest's capture handler; without it: last resort
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            try:
                raise RuntimeError("cannot operate on a closed database")
            except RuntimeError:
                pool.error("Error closing cursor", exc_info=True)
        try:
            raise RuntimeError("a real failure")
        except RuntimeError:
            pool.error("Error closing cursor (unrelated)", exc_info=True)
    finally:
        logging.root.handlers[:] = root_handlers
        logging.lastResort.removeFilter(cli._NoInterrupt.instance)
        for name in ("optuna", "mlflow", "sqlalchemy"):
            logging.getLogger(name).removeFilter(cli._NoInterrupt.instance)
    err = capsys.readouterr().err
    assert "closed database" not in err and "KeyboardInterrupt" not in err
    assert "Error closing cursor (unrelated)" in err and "a real failure" in err
