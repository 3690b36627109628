"""Optuna tuning: pruning, resuming, several workers, OptunaSearchCV."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import make_pipeline

optuna = pytest.importorskip("optuna")

from skrnn import GRURegressor, LagFeatures  # noqa: E402
from skrnn.tuning import TimeHoldout, default_search_space, make_storage, tune  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # Optuna flags its own newer features (e.g. MaxTrialsCallback states) experimental
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]

SERIES_SCRIPT = """
import numpy as np, pandas as pd
def series(n=360, seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(n)
    v = 10 + 3 * np.sin(2 * np.pi * t / 7) + 0.01 * t + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"value": v})
"""
exec(SERIES_SCRIPT)  # defines series(); the worker scripts below reuse the same text


def _pipeline():
    return make_pipeline(
        LagFeatures(lags=7, fill_value="edge"),
        GRURegressor(units=8, max_iter=10, batch_size=32, early_stopping=True,
                     validation_fraction=0.2, n_iter_no_change=4, random_state=0),
    )


def test_study_over_lags_and_gru_prunes_and_beats_naive(tmp_path):
    df = series(n=300)  # noqa: F821
    train, test = df.iloc[:240], df.iloc[240:]
    space = default_search_space(_pipeline(), max_lags=14)
    assert {"lagfeatures__lags", "gruregressor__units", "gruregressor__n_layers"} <= set(space)
    # a smaller space keeps the test quick: lags, units, learning rate and solver
    space = {k: v for k, v in space.items()
             if k.split("__")[1] in ("lags", "units", "learning_rate_init", "solver")}
    result = tune(
        _pipeline(), train[["value"]], train["value"], search_space=space,
        cv=TimeHoldout(test_size=0.25), n_trials=10, seed=0,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
        study_name="lags-gru", storage=f"sqlite:///{tmp_path}/study.db",
    )
    states = result.trials["state"].value_counts()
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 10
    assert states.get("PRUNED", 0) >= 1, states
    assert 2 <= result.best_params["lagfeatures__lags"] <= 14
    # the refit best model against "yesterday's value" on the held-out range
    history = pd.concat([train, test])
    pred = result.best_estimator.predict(history[["value"]])[240:]
    naive = history["value"].shift(1).iloc[240:]
    assert mean_absolute_error(test["value"], pred) < mean_absolute_error(test["value"], naive)
    files = result.save(tmp_path / "out")
    assert json.loads(files["best_params"].read_text())["best_params"]
    assert len(pd.read_csv(files["trials"])) == 10
    assert files["plot_history"].stat().st_size > 1000


def test_rerunning_a_study_resumes_it(tmp_path):
    df = series()  # noqa: F821
    kw = dict(cv=TimeHoldout(0.25), study_name="resume", seed=1,
              storage=f"sqlite:///{tmp_path}/s.db", refit=False,
              search_space={"gruregressor__units": optuna.distributions.IntDistribution(2, 40)})
    first = tune(_pipeline(), df[["value"]], df["value"], n_trials=2, **kw)
    before = [(t.number, t.params, t.value) for t in first.study.trials]
    assert len(before) == 2
    again = tune(_pipeline(), df[["value"]], df["value"], n_trials=4, **kw)
    after = [(t.number, t.params, t.value) for t in again.study.trials]
    assert len(after) == 4 and after[:2] == before  # ran 2 more, kept the first 2
    # the resumed sampler does not replay the first run's random draws
    assert [p for _, p, _ in after[2:]] != [p for _, p, _ in before]


WORKER = SERIES_SCRIPT + """
import sys, time
from sklearn.pipeline import make_pipeline
import optuna
from skrnn import GRURegressor, LagFeatures
from skrnn.tuning import tune, TimeHoldout
storage, name = sys.argv[1], sys.argv[2]
n_trials, seed, slow = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
df = series()
pipe = make_pipeline(LagFeatures(lags=5, fill_value="edge"),
                     GRURegressor(units=4, max_iter=3, random_state=0))
space = {"gruregressor__units": optuna.distributions.IntDistribution(2, 30),
         "gruregressor__learning_rate_init":
             optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
if slow:  # each trial lasts long enough to be killed in the middle of one
    from sklearn.base import BaseEstimator, TransformerMixin
    class Sleep(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None): time.sleep(slow); return self
        def transform(self, X): return X
    pipe.steps.insert(0, ("sleep", Sleep()))
tune(pipe, df[["value"]], df["value"], search_space=space, cv=TimeHoldout(0.25),
     study_name=name, storage=storage, n_trials=n_trials, seed=seed, refit=False)
"""


def _worker(tmp_path, storage, name, n_trials, seed, slow=0.0):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return subprocess.Popen([sys.executable, str(script), storage, name, str(n_trials),
                             str(seed), str(slow)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finished(storage, name):
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    return [t for t in study.trials if t.state.is_finished()]


def test_killed_study_resumes_without_losing_completed_trials(tmp_path):
    storage, name = f"sqlite:///{tmp_path}/kill.db", "killed"
    from skrnn.tuning import create_study

    create_study(name, storage)
    proc = _worker(tmp_path, storage, name, 6, 0, slow=0.7)
    deadline = time.time() + 120
    while time.time() < deadline and len(_finished(storage, name)) < 2:
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    before = {t.number: t.value for t in _finished(storage, name)}
    assert len(before) >= 2
    proc = _worker(tmp_path, storage, name, 6, 0)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    after = {t.number: t.value for t in _finished(storage, name)}
    assert len(after) == 6
    assert all(after[k] == v for k, v in before.items())


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_worker_processes_share_one_study(tmp_path, kind):
    storage = (f"sqlite:///{tmp_path}/w.db" if kind == "sqlite"
               else f"journal:{tmp_path}/w.log")
    from skrnn.tuning import create_study

    create_study("shared", storage)  # create first: concurrent creation races
    # trials last a moment, so a worker that imports faster cannot take them all
    procs = [_worker(tmp_path, storage, "shared", 6, seed, slow=0.8) for seed in (1, 2)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    trials = _finished(storage, "shared")
    assert 6 <= len(trials) <= 7  # each worker may finish the trial it had started
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials
    study = optuna.load_study(study_name="shared", storage=make_storage(storage))
    assert study.best_value == max(t.value for t in trials if t.value is not None)


def test_failed_trials_are_recorded_with_their_error(tmp_path):
    df = series()  # noqa: F821
    space = {"gruregressor__units": optuna.distributions.CategoricalDistribution([4, -1])}
    result = tune(_pipeline(), df[["value"]], df["value"], search_space=space, n_trials=6,
                  cv=TimeHoldout(0.25), seed=0, refit=False)
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and "units" in failed[0].user_attrs["error"]


def test_unreachable_storage_is_a_clear_error():
    # nothing listens on port 9: a connection error, with the password hidden
    with pytest.raises(ValueError, match=r"Could not open the Optuna storage 'postgresql") as info:
        make_storage("postgresql://u:secret@127.0.0.1:9/db")
    assert "secret" not in str(info.value)


def test_time_holdout_by_date_on_a_panel():
    idx = pd.MultiIndex.from_product(
        [pd.date_range("2020-01-01", periods=10), ["a", "b"]], names=["date", "district"])
    X = pd.DataFrame({"v": np.arange(20.0)}, index=idx)
    (train, test), = TimeHoldout(start="2020-01-08", gap=2).split(X)
    dates = X.index.get_level_values("date")
    assert dates[test].min() == pd.Timestamp("2020-01-08") and len(test) == 6
    assert dates[train].max() == pd.Timestamp("2020-01-05")


def test_multi_fidelity_promotes_the_top_share_of_cheap_fits():
    """fidelity=0.25: every trial first fits on the latest quarter of the training dates
    (every series of the panel), then only a trial whose score ranks in the top third
    of the cheap scores so far fits on all rows and completes."""
    from sklearn.linear_model import Ridge

    fits = []

    class Recorder(Ridge):
        def fit(self, X, y, sample_weight=None):
            fits.append(X.index)
            return super().fit(X, y, sample_weight)

    rng = np.random.RandomState(0)
    idx = pd.MultiIndex.from_product([["a", "b"], pd.date_range("2020-01-01", periods=100)],
                                     names=["district", "date"])  # series-major rows
    X = pd.DataFrame(rng.normal(size=(200, 3)), index=idx, columns=["x0", "x1", "x2"])
    y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.3, size=200)
    space = {"alpha": optuna.distributions.FloatDistribution(1e-3, 1e3, log=True)}
    result = tune(Recorder(), X, y, search_space=space, n_trials=12, seed=0, refit=False,
                  cv=TimeHoldout(start="2020-03-21", date="date"), scoring="neg_mean_squared_error",
                  fidelity=0.25, promote=1 / 3)

    # the cheap fits: the latest 20 of the 80 training dates, of both series
    cheap = [f for f in fits if len(f) < 160]
    assert len(cheap) == 12 and {len(f) for f in cheap} == {40}
    for f in cheap:
        dates = f.get_level_values("date")
        assert dates.min() == pd.Timestamp("2020-03-01")
        assert dates.max() == pd.Timestamp("2020-03-20")
        assert set(f.get_level_values("district")) == {"a", "b"}
    trials = sorted(result.study.trials, key=lambda t: t.number)
    seen, promoted = [], 0
    for trial in trials:
        score = trial.user_attrs["fidelity_score"]
        rank = sum(s > score for s in seen)
        expected = rank < max(1, int(np.ceil((len(seen) + 1) / 3)))
        seen.append(score)
        assert trial.state.name == ("COMPLETE" if expected else "PRUNED")
        assert trial.user_attrs["fidelity"] == (1.0 if expected else 0.25)
        assert trial.user_attrs["fidelity_rows"] == (160 if expected else 40)
        promoted += expected
    assert trials[0].state.name == "COMPLETE" and 1 < promoted < 12
    assert len(fits) == 12 + promoted  # one full fit per promoted trial
    # a completed trial's value is its score on all rows, not the cheap one
    full = [t for t in trials if t.state.name == "COMPLETE"]
    assert all(t.value != t.user_attrs["fidelity_score"] for t in full)


@pytest.mark.parametrize("kwargs, match", [({"fidelity": 1.0}, "fidelity must be a share"),
                                           ({"fidelity": 0.5, "promote": 0}, "promote must")])
def test_multi_fidelity_settings_are_checked(kwargs, match):
    df = series()  # noqa: F821
    with pytest.raises(ValueError, match=match):
        tune(_pipeline(), df[["value"]], df["value"], n_trials=1, **kwargs)


def test_optuna_search_cv_prunes_through_partial_fit():
    from optuna_integration import OptunaSearchCV

    epochs = []

    class Recording(GRURegressor):
        """Records the epoch count after every partial_fit call of the search."""

        def partial_fit(self, X, y, sample_weight=None):
            super().partial_fit(X, y, sample_weight)
            epochs.append(self.n_iter_)
            return self

    df = series()  # noqa: F821
    X = np.lib.stride_tricks.sliding_window_view(df["value"].to_numpy()[:-1], 7)
    y = df["value"].to_numpy()[7:]
    # learning rates four decades apart: the slow ones trail the median after the
    # two startup trials and one warm-up step, so the pruner has something to prune
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    max_iter = 6
    search = OptunaSearchCV(
        Recording(units=4, max_iter=max_iter, batch_size=32, random_state=0),
        {"learning_rate_init": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)},
        enable_pruning=True, max_iter=max_iter, n_trials=8, cv=TimeSeriesSplit(2),
        study=study, verbose=0,
    )
    search.fit(X, y)
    states = [t.state.name for t in study.trials]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete, states
    # a pruned trial stopped early; a complete one reported every step
    assert all(len(t.intermediate_values) < max_iter for t in pruned)
    assert all(len(t.intermediate_values) == max_iter for t in complete)
    # partial_fit trained one more epoch per step, and the scores moved with it
    assert max(epochs) == max_iter and sorted(set(epochs)) == list(range(1, max_iter + 1))
    best = study.best_trial.intermediate_values
    assert best[max_iter - 1] > best[0]
    assert search.best_estimator_.n_iter_ == max_iter  # the refit is a full fit
    np.testing.assert_array_equal(
        search.predict(X[:5]), search.best_estimator_.predict(X[:5]))


def test_tracked_study_nests_one_run_per_trial(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    df = series()  # noqa: F821
    space = {"gruregressor__units": optuna.distributions.IntDistribution(2, 6)}
    result = tune(_pipeline(), df[["value"]], df["value"], search_space=space, n_trials=3,
                  cv=TimeHoldout(0.25), seed=0, refit=False, track=True, study_name="tracked")
    client = mlflow.MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    study_run = next(r for r in runs if r.data.tags.get("skrnn.role") == "study")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study_run.info.run_id]
    assert len(trials) == 3
    assert {r.data.tags["optuna.trial_number"] for r in trials} == {"0", "1", "2"}
    assert all(r.data.tags["optuna.state"] == "COMPLETE" for r in trials)
    best = max(trials, key=lambda r: r.data.metrics["score"])
    assert best.data.metrics["score"] == pytest.approx(result.best_score)
    # each trial run holds its per-epoch training loss
    history = client.get_metric_history(trials[0].info.run_id, "loss")
    assert len(history) >= 1
    assert study_run.data.metrics["best_score"] == pytest.approx(result.best_score)
