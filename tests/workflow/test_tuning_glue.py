"""The small pieces of ``skrnn.tuning`` that turn Optuna objects into estimator
parameters, storages and tables (mutation testing found them unchecked; the studies
themselves are in ``tests/workflow/test_tuning.py``)."""

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from skrnn import tuning  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def test_suggest_keeps_each_distribution_exactly():
    space = {
        "units": IntDistribution(2, 64, log=True),
        "layers": IntDistribution(1, 5, step=2),
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "dropout": FloatDistribution(0.0, 0.5, step=0.1),
        "solver": CategoricalDistribution(["adam", "sgd"]),
    }
    study = optuna.create_study()
    trial = study.ask()
    values = {name: tuning._suggest(trial, name, dist) for name, dist in space.items()}
    assert trial.distributions == space
    assert values["layers"] in (1, 3, 5) and values["solver"] in ("adam", "sgd")
    with pytest.raises(TypeError, match=(
            r"^search_space\['units'\] must be an Optuna distribution; got \[2, 64\]\.$")):
        tuning._suggest(trial, "units", [2, 64])


def test_n_layers_becomes_a_units_tuple():
    sampled = {"gru__units": 8, "gru__n_layers": 3, "gru__alpha": 0.1, "lags__lags": 7}
    assert tuning.params_for_estimator(sampled) == {
        "gru__units": (8, 8, 8), "gru__alpha": 0.1, "lags__lags": 7}
    assert tuning.params_for_estimator({"units": 4, "n_layers": 2}) == {"units": (4, 4)}


def test_trials_table_blanks_the_value_of_pruned_trials():
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.7, state=optuna.trial.TrialState.COMPLETE))
    pruned = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                       intermediate_values={0: -3.0})
    study.add_trial(pruned)
    table = tuning.trials_table(study)
    assert table["value"].iloc[0] == 0.7 and np.isnan(table["value"].iloc[1])
    assert np.isnan(table["last_intermediate_value"].iloc[0])
    assert table["state"].tolist() == ["COMPLETE", "PRUNED"]


def test_create_study_defaults(tmp_path):
    study = tuning.create_study("s", f"sqlite:///{tmp_path}/deep/er/s.db", seed=3)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    assert (study.pruner._n_startup_trials, study.pruner._n_warmup_steps) == (5, 5)
    again = tuning.create_study("t", seed=3)
    dist = FloatDistribution(0, 1)
    a = [study.ask({"x": dist}).params["x"] for _ in range(2)]
    b = [again.ask({"x": dist}).params["x"] for _ in range(2)]
    assert a == b  # the seed reaches the sampler


def test_make_storage_journal_and_heartbeat(tmp_path):
    journal = tuning.make_storage(f"journal:{tmp_path}/a/b/study.log")
    assert isinstance(journal, optuna.storages.JournalStorage)
    optuna.create_study(storage=journal, study_name="j")
    assert (tmp_path / "a" / "b" / "study.log").exists()
    rdb = tuning.make_storage(f"sqlite:///{tmp_path}/h.db", heartbeat_interval=7)
    assert rdb.heartbeat_interval == 7 and rdb.grace_period == 14
    assert tuning.make_storage(f"sqlite:///{tmp_path}/h.db").heartbeat_interval is None


def test_redact_hides_only_the_password():
    assert (tuning._redact("postgresql://ann:s3cret@db:5432/x?opt=a://b")
            == "postgresql://ann:***@db:5432/x?opt=a://b")
    assert tuning._redact("sqlite:///study.db") == "sqlite:///study.db"


def test_time_holdout_reads_dates_from_a_column():
    X = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=10).astype(str),
                      "v": np.arange(10.0)}, index=np.arange(100, 110))
    (train, test), = tuning.TimeHoldout(start="2020-01-08", date="when").split(X)
    assert train.tolist() == list(range(7)) and test.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match=r"needs a DataFrame with dates in a column or in the "
                                         r"index\.$"):
        list(tuning.TimeHoldout(start="2020-01-08").split(np.zeros((10, 2))))


def _ridge_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    return X, X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=60)


def test_tune_refits_the_best_and_resumes_to_the_total(tmp_path):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    X, y = _ridge_data()
    space = {"alpha": FloatDistribution(1e-3, 1e3, log=True)}
    kw = {"search_space": space, "cv": tuning.TimeHoldout(0.25), "seed": 0, "study_name": "r",
              "storage": f"sqlite:///{tmp_path}/r.db"}
    first = tuning.tune(Ridge(), X, y, n_trials=3, **kw)
    assert len(first.trials) == 3 and (first.trials["state"] == "COMPLETE").all()
    best = first.best_estimator
    assert best.alpha == first.best_params["alpha"] == first.study.best_params["alpha"]
    np.testing.assert_array_equal(best.coef_, Ridge(alpha=best.alpha).fit(X, y).coef_)
    # the score is the negated MAE on the last quarter, averaged over that one split
    trial = first.study.best_trial
    model = Ridge(alpha=best.alpha).fit(X[:45], y[:45])
    assert trial.user_attrs["split_scores"] == pytest.approx(
        [-mean_absolute_error(y[45:], model.predict(X[45:]))])
    assert first.best_score == pytest.approx(trial.user_attrs["split_scores"][0])
    again = tuning.tune(Ridge(), X, y, n_trials=5, **kw)  # 2 more, to 5 in all
    assert len(again.trials) == 5
    stored = optuna.load_study(study_name="r", storage=kw["storage"])
    assert len(stored.trials) == 5  # in the storage, not in a fresh in-memory study
    assert len(tuning.tune(Ridge(), X, y, n_trials=5, refit=False, **kw).trials) == 5
    assert tuning.tune(Ridge(), X, y, n_trials=5, refit=False, **kw).best_estimator is None


def test_tune_reports_the_errors_when_no_trial_completes():
    from sklearn.linear_model import Ridge

    X, y = _ridge_data()
    space = {"solver": CategoricalDistribution(["no-such-solver"])}
    with pytest.raises(RuntimeError, match=(
            r"^No trial of study 'bad' completed \(2 trials\)\. Errors seen: \[\"Invalid"
            r"ParameterError: The 'solver' parameter of Ridge must be")):
        tuning.tune(Ridge(), X, y, search_space=space, n_trials=2, study_name="bad",
                    cv=tuning.TimeHoldout(0.25))


def test_time_holdout_integer_size_and_gap():
    (train, test), = tuning.TimeHoldout(test_size=3, gap=2).split(np.zeros((10, 1)))
    assert train.tolist() == [0, 1, 2, 3, 4] and test.tolist() == [7, 8, 9]
    (train, test), = tuning.TimeHoldout(test_size=0.25).split(np.zeros((10, 1)))
    assert test.tolist() == [7, 8, 9]  # ceil(2.5)
    with pytest.raises(ValueError, match=r"TimeHoldout\(test_size=3, gap=7\) leaves no"):
        list(tuning.TimeHoldout(test_size=3, gap=7).split(np.zeros((10, 1))))
