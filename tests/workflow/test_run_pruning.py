"""`skrnn run` prunes its trials and logs their epoch curves (the one walker, end to end).

The runner tunes ``TransformedTargetRegressor(Pipeline([..., model]))``; the pruning and
MLflow callbacks must reach the regressor inside it.
"""

import os
import subprocess
import sys

import pandas as pd
import pytest
from experiments import experiment

pytest.importorskip("optuna")
pytest.importorskip("mlflow")

EXPERIMENT = experiment("prune", """[[models]]
name = "gru"
kind = "gru"
params = {{ units = 4, max_iter = 8, batch_size = 32, dtype = "float32" }}
[models.search]
n_trials = 12
space = {{ units = [2, 8], learning_rate_init = [0.0003, 0.03, "log"] }}
""", periods=200, test_periods=30, lags=7, tracking=True)


def test_skrnn_run_prunes_trials_and_logs_their_epochs(tmp_path):
    out = tmp_path / "out"
    path = tmp_path / "prune.toml"
    path.write_text(EXPERIMENT.format(out=out.as_posix()))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run([sys.executable, "-m", "skrnn", "run", str(path), "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # the default MedianPruner(n_startup_trials=5, n_warmup_steps=5) prunes some of
    # the 12 trials at an epoch >= 5; the others complete
    trials = pd.read_csv(out / "tuning" / "gru" / "trials.csv")
    states = trials["state"].value_counts()
    assert states.get("PRUNED", 0) >= 1 and states.get("COMPLETE", 0) >= 5, states
    pruned_steps = trials.loc[trials["state"] == "PRUNED", "user_attrs_pruned_step"]
    assert pruned_steps.between(5, 8).all()

    # one MLflow run per trial, each with its epoch curve: 8 epochs when complete,
    # as many as it trained when pruned
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`skrnn.role` = 'trial'")
    assert len(runs) == 12
    for run in runs:
        losses = client.get_metric_history(run.info.run_id, "loss")
        rates = client.get_metric_history(run.info.run_id, "learning_rate")
        state = run.data.tags["optuna.state"]
        n = int(run.data.tags["pruned_step"]) if state == "PRUNED" else 8
        assert [m.step for m in losses] == list(range(1, n + 1)), state
        assert len(rates) == n


def test_skrnn_run_multi_fidelity_trials(tmp_path):
    """search.fidelity = 0.25: every trial first trains on the latest quarter of the
    training dates; the top third so far trains on all of them and completes, the
    others end pruned at step 0. trials.csv shows how far each trial got."""
    out = tmp_path / "out"
    text = EXPERIMENT.format(out=out.as_posix()).replace(
        "n_trials = 12", "n_trials = 6\nfidelity = 0.25").replace(
        "max_iter = 8", "max_iter = 4").replace(
        "[tracking]\nenabled = true", "[tracking]\nenabled = false")
    path = tmp_path / "fidelity.toml"
    path.write_text(text)
    from click.testing import CliRunner

    from skrnn.cli import main

    result = CliRunner().invoke(main, ["run", str(path), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "tuning" / "gru" / "trials.csv")
    assert len(trials) == 6
    complete = trials["state"] == "COMPLETE"
    # 2 series x (200 - 7 windows - 30 test dates) = 326 training rows, of which the
    # validation split (the last 20% of the dates) leaves 2 x 130 = 260 to train on
    assert (trials.loc[complete, "user_attrs_fidelity"] == 1.0).all()
    assert (trials.loc[complete, "user_attrs_fidelity_rows"] == 260).all()
    cut = trials[~complete]
    assert len(cut) >= 1 and (cut["state"] == "PRUNED").all()
    assert (cut["user_attrs_fidelity"] == 0.25).all()
    assert (cut["user_attrs_fidelity_rows"] == 2 * 33).all()  # ceil(0.25 * 130) dates
    assert (cut["user_attrs_pruned_step"] == 0).all()
    assert trials.loc[trials["number"] == 0, "state"].item() == "COMPLETE"
    results = pd.read_csv(out / "results.csv")
    assert results["model"].tolist() == ["gru"]
