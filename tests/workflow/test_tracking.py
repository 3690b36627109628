"""MLflow tracking: per-epoch metrics, failed runs, logged models, Optuna trial runs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mlflow = pytest.importorskip("mlflow")

from stopping import RaiseAtEpoch  # noqa: E402

from skrnn import GRURegressor, LSTMRegressor, tracking  # noqa: E402
from skrnn.persistence import IncompatibleVersionError  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # SQLAlchemy 2.x deprecates the `noload` loader strategy that MLflow's SQL store
    # mappings still use; it is raised when the store's mappers are first configured
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"),
]

X = np.sin(np.arange(480, dtype=float) / 5).reshape(80, 6)  # 80 windows of 6 steps
Y = X[:, -1] * 0.9 + 0.1


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """One SQLite store per session, created the way skrnn's default creates ./mlruns.

    Creating an MLflow database runs its migrations (seconds), so tests share it and
    keep apart by experiment.
    """
    root = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp)
        mp.chdir(root)
        assert tracking.configure_tracking() == "0"  # the Default experiment
        uri = mlflow.get_tracking_uri()
    return {"root": root, "uri": uri}


def _isolate(mp):
    """Undo, after the test, what MLflow keeps in globals and the environment."""
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    mp.setattr(tracking_utils, "_tracking_uri", None)
    mp.setattr(fluent, "_active_experiment_id", None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        mp.delenv(name, raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no network from tests


@pytest.fixture
def tracked(store, monkeypatch, request):
    """MLflow on the session store, in an experiment of this test's own."""
    _isolate(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    tracking.configure_tracking(experiment_name=request.node.name)
    yield mlflow.MlflowClient()
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


# -- the store --------------------------------------------------------------------------------


def test_default_store_is_sqlite_under_mlruns(store, tmp_path, monkeypatch):
    _isolate(monkeypatch)
    root = store["root"]
    assert store["uri"] == "sqlite:///" + (root / "mlruns" / "mlflow.db").as_posix()
    assert (root / "mlruns" / "mlflow.db").is_file()
    assert (root / "mlruns" / "artifacts").is_dir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    default = mlflow.MlflowClient().get_experiment("0")
    assert default.artifact_location == (root / "mlruns" / "artifacts" / "0").as_uri()
    # a set MLFLOW_TRACKING_URI always wins; unset, the current folder's ./mlruns is used
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://host/db")
    assert tracking.default_tracking_uri() == "postgresql://host/db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert tracking.default_tracking_uri() == f"sqlite:///{tmp_path.as_posix()}/mlruns/mlflow.db"


def test_experiments_keep_artifacts_beside_the_database(tracked, store, request):
    experiment = mlflow.get_experiment_by_name(request.node.name)
    assert experiment.artifact_location.startswith(
        (store["root"] / "mlruns" / "artifacts").as_uri())
    # configure_tracking returns the experiment runs go to, also when it exists already
    assert tracking.configure_tracking(experiment_name=request.node.name) == \
        experiment.experiment_id
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == experiment.experiment_id


# -- per-epoch metrics ------------------------------------------------------------------------


def test_callback_logs_every_epoch_to_the_active_run(tracked):
    model = LSTMRegressor(units=4, max_iter=5, early_stopping=True, n_iter_no_change=50,
                          random_state=0)
    with mlflow.start_run() as run:
        model.set_callbacks(tracking.MLflowCallback())
        model.fit(X, Y)
    loss = _history(tracked, run.info.run_id, "loss")
    assert len(loss) == model.n_iter_ == 5
    assert loss == [(i + 1, v) for i, v in enumerate(model.loss_curve_)]
    assert [v for _, v in _history(tracked, run.info.run_id, "validation_loss")] == \
        model.validation_loss_curve_
    assert [v for _, v in _history(tracked, run.info.run_id, "grad_norm")] == \
        model.grad_norm_curve_
    assert [v for _, v in _history(tracked, run.info.run_id, "learning_rate")] == \
        model.learning_rate_curve_
    assert tracked.get_run(run.info.run_id).info.status == "FINISHED"


def test_callback_every_n_epochs_keeps_the_last(tracked):
    model = GRURegressor(units=4, max_iter=5, random_state=0)
    model.set_callbacks(tracking.MLflowCallback(log_every_n_epochs=2, prefix="fold0/"))
    with mlflow.start_run() as run:
        model.fit(X, Y)
    assert [s for s, _ in _history(tracked, run.info.run_id, "fold0/loss")] == [2, 4, 5]


def test_callback_starts_its_own_run_per_fit(tracked):
    callback = tracking.MLflowCallback()
    model = GRURegressor(units=4, max_iter=3, random_state=0).set_callbacks(callback)
    model.fit(X, Y)
    run = tracked.get_run(callback.last_run_id_)
    assert run.info.status == "FINISHED"
    assert run.data.params["units"] == "4"
    assert run.data.tags["skrnn.estimator"] == "skrnn.recurrent.GRURegressor"
    assert len(_history(tracked, run.info.run_id, "loss")) == model.n_iter_
    assert mlflow.active_run() is None
    # nested=True: one child run per fit under the active run (searches, CV)
    callback = tracking.MLflowCallback(nested=True)
    model.set_callbacks(callback)
    with mlflow.start_run() as parent:
        model.fit(X, Y)
        model.fit(X, Y)
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        output_format="list")
    assert len(children) == 2
    assert all(len(_history(tracked, c.info.run_id, "loss")) == 3 for c in children)


def test_pipeline_params_and_metrics(tracked):
    pipe = make_pipeline(StandardScaler(), LSTMRegressor(units=(3,) * 200, max_iter=2,
                                                         random_state=0))
    with mlflow.start_run() as run:
        params = tracking.log_params(pipe)
        regressors = tracking.attach_callback(pipe, tracking.MLflowCallback())
        pipe.fit(X, Y)
    assert regressors == [pipe[-1]]
    logged = tracked.get_run(run.info.run_id).data.params
    assert logged == params
    assert logged["steps"] == "[(standardscaler, StandardScaler), (lstmregressor, LSTMRegressor)]"
    assert logged["standardscaler__with_mean"] == "True"
    assert len(logged["lstmregressor__units"]) == 500
    assert logged["lstmregressor__units"].endswith("...")
    assert len(_history(tracked, run.info.run_id, "loss")) == pipe[-1].n_iter_ == 2
    with pytest.raises(ValueError, match="no skrnn recurrent regressor"):
        tracking.attach_callback(StandardScaler(), tracking.MLflowCallback())


# -- failures ---------------------------------------------------------------------------------


def test_fit_that_raises_leaves_the_run_failed_with_metrics_so_far(tracked):
    model = LSTMRegressor(units=4, max_iter=6, random_state=0)
    model.set_callbacks(tracking.MLflowCallback(), RaiseAtEpoch(3))
    with pytest.raises(RuntimeError, match="stopped at epoch 3"):
        tracking.track_fit(model, X, Y, run_name="failing")
    (run,) = mlflow.search_runs(filter_string="attributes.run_name = 'failing'",
                                output_format="list")
    assert run.info.status == "FAILED"
    # track_fit's callback replaced the model's MLflowCallback and runs after the raising
    # one: epochs 1 and 2 are logged, epoch 3 raised before it was
    assert [s for s, _ in _history(tracked, run.info.run_id, "loss")] == [1, 2]
    assert [type(c) for c in model._skl_callbacks] == [tracking.MLflowCallback, RaiseAtEpoch]
    # a run the callback started itself ends FAILED too
    callback = tracking.MLflowCallback()
    model.set_callbacks(RaiseAtEpoch(2), callback)
    with pytest.raises(RuntimeError):
        model.fit(X, Y)
    run = tracked.get_run(callback.last_run_id_)
    assert run.info.status == "FAILED"
    assert [s for s, _ in _history(tracked, run.info.run_id, "loss")] == [1]
    assert mlflow.active_run() is None


# -- models -----------------------------------------------------------------------------------


@pytest.fixture
def logged(tracked):
    """A Pipeline fitted and logged by track_fit."""
    pipe = make_pipeline(StandardScaler(), LSTMRegressor(units=32, max_iter=3, random_state=0,
                                                         early_stopping=True))
    run_id = tracking.track_fit(pipe, X[:64], Y[:64], X_test=X[64:], y_test=Y[64:],
                                run_name="logged")
    model = mlflow.last_logged_model()
    return {"pipe": pipe, "run_id": run_id, "model_uri": f"models:/{model.model_id}",
            "client": tracked}


def test_track_fit_records_run_and_model(logged, tmp_path):
    client, run_id, pipe = logged["client"], logged["run_id"], logged["pipe"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(_history(client, run_id, "loss")) == pipe[-1].n_iter_ == 3
    assert {"test_mae", "test_rmse", "test_r2", "n_iter", "final_loss",
            "best_validation_score"} <= set(run.data.metrics)
    assert run.data.params["lstmregressor__units"] == "32"
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/loss_curves.png"]
    # the model: skops, skrnn's types declared trusted, signature, input example
    local = Path(mlflow.artifacts.download_artifacts(logged["model_uri"], dst_path=tmp_path))
    mlmodel = mlflow.models.Model.load(local)
    flavor = mlmodel.flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert all(t.split(".")[0] in ("skrnn", "numpy") for t in flavor["skops_trusted_types"])
    assert mlmodel.metadata["skrnn_version"] == __import__("skrnn").__version__
    assert tuple(mlmodel.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 6)
    assert (local / "input_example.json").is_file()
    # weights only: the model file is about the size of the weights
    weights = pipe[-1]._net.theta.nbytes
    assert (local / "model.skops").stat().st_size < 1.25 * weights + 8_000
    assert not list(local.glob("*.pkl"))


def test_logged_model_loads_in_a_fresh_process(logged, store, tmp_path):
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import numpy as np
        import mlflow
        from skrnn import tracking
        X = np.load({str(tmp_path / "X.npy")!r})
        out = {{"pyfunc": mlflow.pyfunc.load_model({logged["model_uri"]!r}).predict(X),
               "skrnn": tracking.load_model({logged["model_uri"]!r}).predict(X)}}
        np.savez({str(tmp_path / "pred.npz")!r}, **out)
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=env,
                   cwd=tmp_path)
    expected = logged["pipe"].predict(X)
    with np.load(tmp_path / "pred.npz") as pred:
        np.testing.assert_array_equal(pred["pyfunc"], expected)
        np.testing.assert_array_equal(pred["skrnn"], expected)


def test_load_model_checks_the_major_version(logged, monkeypatch):
    import skrnn.persistence

    loaded = tracking.load_model(logged["model_uri"])
    np.testing.assert_array_equal(loaded.predict(X), logged["pipe"].predict(X))
    monkeypatch.setattr(skrnn.persistence, "__version__", "99.0.0")
    with pytest.raises(IncompatibleVersionError, match="same major version"):
        tracking.load_model(logged["model_uri"])


# -- Optuna -----------------------------------------------------------------------------------


def test_trial_runs_nest_under_the_study_run(tracked, request):
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(study_name="s", direction="maximize")
    parent = tracking.start_study_run(study.study_name, experiment_name=request.node.name)
    outcomes = {}
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        trial = study.ask()
        units = trial.suggest_int("units", 2, 8)
        run_id = tracking.start_trial_run(parent, trial)
        model = GRURegressor(units=units, max_iter=2, random_state=0)
        model.set_callbacks(tracking.MLflowCallback(run_id=run_id))
        model.fit(X, Y)
        tracking.end_trial_run(run_id, state, value=0.5 if state == "COMPLETE" else None,
                               pruned_step=2 if state == "PRUNED" else None,
                               error=RuntimeError("bad") if state == "FAIL" else None)
        study.tell(trial, 0.5 if state == "COMPLETE" else None,
                   state=getattr(optuna.trial.TrialState, state))
        outcomes[state] = (trial.number, run_id, units)
    children = {r.info.run_id: r for r in mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent}'", output_format="list")}
    assert set(children) == {run_id for _, run_id, _ in outcomes.values()}
    for state, (number, run_id, units) in outcomes.items():
        run = children[run_id]
        assert run.data.tags["optuna.trial_number"] == str(number)
        assert run.data.tags["optuna.state"] == state
        assert run.data.tags["optuna.study_name"] == "s"
        assert run.data.params["units"] == str(units)
        assert len(_history(tracked, run_id, "loss")) == 2
        assert run.info.status == ("FAILED" if state == "FAIL" else "FINISHED")
    assert children[outcomes["PRUNED"][1]].data.metrics["pruned_step"] == 2
    assert children[outcomes["COMPLETE"][1]].data.metrics["value"] == 0.5
    assert children[outcomes["FAIL"][1]].data.tags["error"] == "RuntimeError: bad"
    tracking.end_study_run(parent, study)
    parent_run = tracked.get_run(parent)
    assert parent_run.info.status == "FINISHED"
    assert parent_run.data.tags["optuna.study_name"] == "s"
    assert parent_run.data.tags["optuna.best_trial"] == str(outcomes["COMPLETE"][0])
    assert parent_run.data.params == {"units": str(outcomes["COMPLETE"][2])}
    assert parent_run.data.metrics["best_value"] == 0.5


def test_import_skrnn_stays_light():
    code = ("import sys, skrnn, skrnn.tracking, skrnn.persistence; "
            "heavy = {'mlflow', 'skops', 'optuna', 'matplotlib'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_param_texts_are_short_and_stable():
    from skrnn._tracking_base import _param_text

    assert _param_text(np.log1p) == "numpy.log1p"
    assert _param_text((4,)) == "(4,)"
    assert _param_text({"a": StandardScaler()}) == "{a: StandardScaler}"
    assert _param_text(None) == "None"


def _per_series_frame(dates):
    import pandas as pd

    index = pd.MultiIndex.from_product([dates, ["a", "b"]], names=["date", "g"])
    return pd.DataFrame(X, index=index, columns=[f"x{k}" for k in range(6)])


def test_a_per_series_model_is_served_with_its_index_as_columns(tracked, tmp_path):
    # MLflow serves (and stores the input example as) a plain table: a per-series
    # pipeline reads its series from the (date, group) index, so it is logged inside
    # IndexColumns and takes the index levels as columns; a plain model is logged as is
    import pandas as pd
    from sklearn.linear_model import Ridge

    from skrnn import GroupScaler

    frame = _per_series_frame(pd.date_range("2024-01-01", periods=40, freq="D"))
    per_series = make_pipeline(GroupScaler(group="g").set_output(transform="pandas"),
                               LSTMRegressor(units=4, max_iter=2, random_state=0)).fit(frame, Y)
    plain = Ridge().fit(frame, Y)
    with mlflow.start_run():
        grouped_info = tracking.log_model(per_series, name="grouped", X_example=frame)
        plain_info = tracking.log_model(plain, name="plain", X_example=frame)
    assert plain_info.saved_input_example_info is not None
    assert [c["name"] for c in plain_info.signature.inputs.to_dict()] == list(frame.columns)
    columns = grouped_info.signature.inputs.to_dict()
    assert grouped_info.signature.outputs.to_dict() == plain_info.signature.outputs.to_dict()
    assert [(c["name"], c["required"]) for c in columns] == \
        [("date", False), ("g", False)] + [(f"x{k}", True) for k in range(6)]
    expected = per_series.predict(frame)
    served = mlflow.pyfunc.load_model(grouped_info.model_uri)
    np.testing.assert_array_equal(served.predict(frame.reset_index()), expected)
    # the rows in another order, and the index kept as the index, predict the same
    shuffled = frame.reset_index()[["x0", "g", "x1", "x2", "x3", "x4", "x5", "date"]]
    np.testing.assert_array_equal(served.predict(shuffled.iloc[::-1]), expected[::-1])
    np.testing.assert_array_equal(served.predict(frame), expected)
    # the stored example is the first 5 rows, levels as columns, and predicts them back
    local = mlflow.artifacts.download_artifacts(grouped_info.model_uri, dst_path=tmp_path)
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert list(example.columns) == ["date", "g"] + [f"x{k}" for k in range(6)]
    np.testing.assert_array_equal(served.predict(example), per_series.predict(frame.iloc[:5]))
    with pytest.raises(ValueError, match=r"has the index column\(s\) \['g'\] but not "
                       r"\['date'\]; the model needs all of \['date', 'g'\]"):
        served.predict(frame.reset_index().drop(columns="date"))
    # skrnn's own loader returns the pipeline itself
    loaded = tracking.load_model(grouped_info.model_uri)
    assert type(loaded) is type(per_series)
    np.testing.assert_array_equal(loaded.predict(frame), expected)


class _ByPosition(RegressorMixin, BaseEstimator):
    """Predicts from the second index level, found by position."""

    def fit(self, X, y):
        return self

    def predict(self, X):
        return (X.index.get_level_values(1) == "b").astype(float)


def test_a_model_that_reads_unnamed_index_levels_logs_its_signature_only(tracked):
    # levels without a name cannot travel as columns
    frame = _per_series_frame(range(40))
    frame.index = frame.index.set_names([None, None])
    model = _ByPosition().fit(frame, Y)
    with mlflow.start_run():
        info = tracking.log_model(model, X_example=frame, trusted=[
            f"{_ByPosition.__module__}.{_ByPosition.__qualname__}"])
    assert info.signature is not None and info.saved_input_example_info is None


# -- the behaviour mutation testing found unpinned (docs/testing.md) ---------------------------


def _now_ms():
    import time

    return int(time.time() * 1000)


def test_helpers_without_a_run_say_how_to_get_one(tracked):
    with pytest.raises(RuntimeError, match=r"No active MLflow run: call this inside "
                       r"`with mlflow.start_run\(\):`, pass run_id=\.\.\., or use "
                       r"skrnn.tracking.track_fit\."):
        tracking.log_params(StandardScaler())
    with pytest.raises(ValueError, match="log_every_n_epochs must be a positive int; got 0"):
        tracking.MLflowCallback(log_every_n_epochs=0)
    with pytest.raises(ValueError, match="^StandardScaler holds no skrnn recurrent regressor "
                       "to attach MLflowCallback to"):
        tracking.attach_callback(StandardScaler(), tracking.MLflowCallback())


def test_param_texts_of_dicts_arrays_and_callable_objects():
    import functools

    from skrnn._tracking_base import _param_text

    class Named:  # a callable object that carries a __name__ but no __qualname__
        __name__ = "huber"

        def __call__(self, x):
            return x

    assert _param_text({"a": 1, "b": (2, 3)}) == "{a: 1, b: (2, 3)}"
    assert _param_text(functools.partial(np.add, 1)) == "functools.partial"
    assert _param_text(Named()) == f"{__name__}.huber"
    # long arrays are summarised (the text stays short before the 500-character cut)
    assert _param_text(np.arange(30)) == "[ 0  1  2 ... 27 28 29]"


def test_experiment_artifact_folders_keep_the_name_readable(tracked, store):
    artifacts = (store["root"] / "mlruns" / "artifacts").as_uri()
    for name, folder in (("Demand Forecast/v2", "Demand_Forecast_v2"), ("€€", "experiment")):
        experiment_id = tracking.configure_tracking(experiment_name=name)
        location = mlflow.MlflowClient().get_experiment(experiment_id).artifact_location
        assert location == f"{artifacts}/{folder}"


def test_configure_tracking_survives_a_worker_creating_the_experiment_first(
        tracked, request, monkeypatch):
    # another worker creates the experiment between our lookup and our create
    name = request.node.name + "-raced"
    created = mlflow.create_experiment(name)
    lookup = mlflow.get_experiment_by_name
    calls = []

    def racing_lookup(n):
        calls.append(n)
        return None if len(calls) == 1 else lookup(n)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", racing_lookup)
    assert tracking.configure_tracking(experiment_name=name) == created
    assert calls == [name, name]


def test_log_params_tags_the_run_and_logs_every_batch(tracked, monkeypatch):
    import skrnn._tracking_base

    monkeypatch.setattr(skrnn._tracking_base, "_PARAMS_PER_BATCH", 3)
    pipe = make_pipeline(StandardScaler(), GRURegressor(units=3))
    with mlflow.start_run() as run:
        params = tracking.log_params(pipe)
    logged = tracked.get_run(run.info.run_id).data
    assert len(params) > 12 and logged.params == params
    assert logged.tags["skrnn.estimator"] == "sklearn.pipeline.Pipeline"
    assert logged.tags["skrnn.version"] == __import__("skrnn").__version__


def test_log_final_metrics_values_and_timestamps(tracked):
    model = GRURegressor(units=3, max_iter=2, random_state=0).fit(X, Y)
    with mlflow.start_run() as run:
        before = _now_ms()
        one = tracking.log_final_metrics(model, X[:1], Y[:1])
        after = _now_ms()
    # R² is undefined on one sample: not logged (MAE and RMSE are)
    assert set(one) == {"n_iter", "final_loss", "best_loss", "best_iteration",
                        "test_mae", "test_rmse"}
    assert one["test_mae"] == pytest.approx(abs(model.predict(X[:1])[0] - Y[0]))
    (metric,) = tracked.get_metric_history(run.info.run_id, "test_mae")
    assert before <= metric.timestamp <= after and metric.step == 0


def test_log_plots_closes_the_figures_it_logged(tracked):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine, other = plt.figure(), plt.figure()  # ``other`` is the current figure
    with mlflow.start_run():
        assert tracking.log_plots(figures={"mine": mine}) == ["plots/mine.png"]
    assert not plt.fignum_exists(mine.number)
    assert plt.fignum_exists(other.number)
    plt.close(other)


def test_log_model_names_signature_and_run(tracked):
    from sklearn.linear_model import Ridge

    model = Ridge().fit(X, Y)
    with mlflow.start_run() as run:
        pass  # logging to a run that is no longer active, by its id
    info = tracking.log_model(model, name="ridge", X_example=X, run_id=run.info.run_id,
                              registered_model_name=f"ridge-{run.info.run_id}")
    assert info.name == "ridge" and info.run_id == run.info.run_id
    assert info.registered_model_version == 1
    version = tracked.get_model_version(f"ridge-{run.info.run_id}", "1")
    assert version.run_id == run.info.run_id
    assert info.signature.outputs.to_dict()[0]["type"] == "tensor"
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(info.model_uri).predict(X), model.predict(X))


def test_load_model_passes_the_callers_trusted_types_and_names_the_model(tracked, monkeypatch):
    import operator

    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import FunctionTransformer

    import skrnn.persistence

    pipe = make_pipeline(FunctionTransformer(operator.neg), Ridge()).fit(X, Y)
    untrusted = ["_operator.neg"]
    with mlflow.start_run():
        info = tracking.log_model(pipe, trusted=untrusted)
    # declared in the MLmodel file, so MLflow's own loader accepts it too
    assert "_operator.neg" in info.flavors["sklearn"]["skops_trusted_types"]
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(info.model_uri).predict(X), pipe.predict(X))
    with pytest.raises(Exception, match="_operator.neg"):
        tracking.load_model(info.model_uri)
    loaded = tracking.load_model(info.model_uri, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    monkeypatch.setattr(skrnn.persistence, "__version__", "99.0.0")
    with pytest.raises(IncompatibleVersionError, match=f"^The model '{info.model_uri}'"):
        tracking.load_model(info.model_uri, trusted=untrusted)


def test_track_fit_experiment_nesting_and_plain_estimators(tracked, request):
    from sklearn.linear_model import Ridge

    other = request.node.name + "-other"
    with mlflow.start_run() as parent:
        run_id = tracking.track_fit(Ridge(), X, Y, nested=True, plots=False)
    run = tracked.get_run(run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert run.data.params == {k: str(v) for k, v in Ridge().get_params().items()}
    # the input example (and signature) come from X when no X_test is given
    info = mlflow.models.get_model_info(f"models:/{mlflow.last_logged_model().model_id}")
    assert info.run_id == run_id and info.saved_input_example_info is not None
    assert tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 6)
    run_id = tracking.track_fit(Ridge(), X, Y, experiment_name=other, plots=False,
                                log_model=False)
    assert tracked.get_run(run_id).info.experiment_id == \
        mlflow.get_experiment_by_name(other).experiment_id


def test_callback_run_of_its_own_names_and_tags_the_estimator(tracked):
    callback = tracking.MLflowCallback(log_params=False)
    GRURegressor(units=3, max_iter=2, random_state=0).set_callbacks(callback).fit(X, Y)
    run = tracked.get_run(callback.last_run_id_)
    assert run.info.run_name == "GRURegressor" and run.data.params == {}
    assert run.data.tags["skrnn.estimator"] == "skrnn.recurrent.GRURegressor"
    assert run.data.tags["skrnn.version"] == __import__("skrnn").__version__


def test_callback_without_a_configured_store_uses_skrnns_default(store, monkeypatch):
    # no tracking URI chosen and no active run: the callback's own run goes to
    # ./mlruns/mlflow.db (skrnn's default), not to MLflow's own default
    _isolate(monkeypatch)
    monkeypatch.chdir(store["root"])
    callback = tracking.MLflowCallback()
    GRURegressor(units=3, max_iter=1, random_state=0).set_callbacks(callback).fit(X, Y)
    assert mlflow.get_tracking_uri() == store["uri"]
    run = mlflow.MlflowClient(store["uri"]).get_run(callback.last_run_id_)
    assert run.info.status == "FINISHED"


@pytest.mark.filterwarnings("ignore:fit was interrupted:UserWarning")
def test_callback_run_ends_killed_on_ctrl_c(tracked):
    callback = tracking.MLflowCallback()
    model = GRURegressor(units=3, max_iter=4, random_state=0)
    model.set_callbacks(callback, RaiseAtEpoch(2, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y)
    run = tracked.get_run(callback.last_run_id_)
    assert run.info.status == "KILLED"
    assert [s for s, _ in _history(tracked, run.info.run_id, "loss")] == [1, 2]
    assert mlflow.active_run() is None


def test_two_callbacks_with_runs_of_their_own_both_end(tracked):
    # the first callback's run is no longer the active one when it ends (the second
    # one's nested run is); it is ended through the client
    first, second = tracking.MLflowCallback(), tracking.MLflowCallback(nested=True)
    GRURegressor(units=3, max_iter=2, random_state=0).set_callbacks(first, second).fit(X, Y)
    runs = [tracked.get_run(c.last_run_id_) for c in (first, second)]
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert runs[1].data.tags["mlflow.parentRunId"] == runs[0].info.run_id
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_attach_callback_sets_it_where_a_later_fit_clones_from(tracked):
    from sklearn.compose import TransformedTargetRegressor

    ttr = TransformedTargetRegressor(GRURegressor(units=3, max_iter=1, random_state=0),
                                     func=np.log1p, inverse_func=np.expm1).fit(X, Y + 2)
    callback = tracking.MLflowCallback()
    assert tracking.attach_callback(ttr, callback) == [ttr.regressor]


def test_study_run_goes_to_the_experiment_asked_for(tracked, request):
    with mlflow.start_run():  # active in this test's experiment
        run_id = tracking.start_study_run("s", experiment_name=request.node.name + "-study")
    run = tracked.get_run(run_id)
    assert run.info.experiment_id == \
        mlflow.get_experiment_by_name(request.node.name + "-study").experiment_id
    assert run.data.tags["skrnn.role"] == "study"


def test_trial_records_from_frozen_trials_and_enum_states(tracked):
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(study_name="f")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    parent = tracking.start_study_run("f")
    before = _now_ms()
    ended = {}
    for frozen, state, pruned in zip(study.trials, (optuna.trial.TrialState.FAIL, "FAILED"),
                                     (None, 3)):
        run_id = tracking.start_trial_run(parent, frozen)  # a FrozenTrial has no .study
        tracking.end_trial_run(run_id, state, value=frozen.value, pruned_step=pruned)
        ended[run_id] = frozen
    tracking.end_study_run(parent, study)
    after = _now_ms()
    for run_id, frozen in ended.items():
        run = tracked.get_run(run_id)
        assert run.info.status == "FAILED" and run.data.tags["optuna.state"] == "FAIL"
        assert "optuna.study_name" not in run.data.tags
        assert run.data.params == {"x": str(frozen.params["x"])}
        (value,) = tracked.get_metric_history(run_id, "value")
        assert value.step == 0 and before <= value.timestamp <= after
    assert run.data.tags["pruned_step"] == "3"
    study_run = tracked.get_run(parent)
    assert study_run.data.tags["optuna.n_trials"] == "2"
    (best,) = tracked.get_metric_history(parent, "best_value")
    assert best.value == study.best_value and before <= best.timestamp <= after


def test_end_unfinished_runs_ends_the_family_that_is_still_running(tracked):
    client = tracked
    with mlflow.start_run() as top:
        pass
    client.set_terminated(top.info.run_id, status="RUNNING")
    done = client.create_run(top.info.experiment_id,
                             tags={"mlflow.parentRunId": top.info.run_id})
    client.set_terminated(done.info.run_id, status="FINISHED")
    child = client.create_run(top.info.experiment_id,
                              tags={"mlflow.parentRunId": top.info.run_id})
    grandchild = client.create_run(top.info.experiment_id,
                                   tags={"mlflow.parentRunId": child.info.run_id})
    stranger = client.create_run(top.info.experiment_id)
    mlflow.start_run(run_id=grandchild.info.run_id)  # the active fluent run
    tracking.end_unfinished_runs(top.info.run_id, status="FAILED")
    assert mlflow.active_run() is None
    status = {r: client.get_run(r).info.status for r in (
        top.info.run_id, done.info.run_id, child.info.run_id, grandchild.info.run_id,
        stranger.info.run_id)}
    assert list(status.values()) == ["FAILED", "FINISHED", "FAILED", "FAILED", "RUNNING"]
    client.set_terminated(stranger.info.run_id)


def test_end_unfinished_runs_tries_again_and_looks_again(tracked, monkeypatch):
    # a Ctrl-C can leave the store busy ("database is locked") or a run written back
    # as RUNNING after a pass: it tries again on fresh connections, and stops looking
    # once a pass finds nothing left to end
    from mlflow.tracking._tracking_service.utils import _get_store

    import skrnn._tracking_runs as runs

    client = tracked
    with mlflow.start_run() as top:
        pass
    client.set_terminated(top.info.run_id, status="RUNNING")
    child = client.create_run(top.info.experiment_id,
                              tags={"mlflow.parentRunId": top.info.run_id})
    real, passes, disposed = runs._end_unfinished_runs_once, [], []
    engine = _get_store().engine
    monkeypatch.setattr(engine, "dispose", lambda: disposed.append(True))
    monkeypatch.setattr(runs.time, "sleep", lambda s: None)

    def flaky(run_id, status):
        passes.append(status)
        if len(passes) == 1:
            raise RuntimeError("database is locked")
        ended = real(run_id, status)
        if len(passes) == 2:  # a late write puts the child back to RUNNING
            client.set_terminated(child.info.run_id, status="RUNNING")
        return ended

    monkeypatch.setattr(runs, "_end_unfinished_runs_once", flaky)
    tracking.end_unfinished_runs(top.info.run_id)
    assert len(passes) == 4 and len(disposed) == 3
    assert [client.get_run(r).info.status for r in (top.info.run_id, child.info.run_id)] == \
        ["KILLED", "KILLED"]
    # an error that persists is raised after the last try
    monkeypatch.setattr(runs, "_end_unfinished_runs_once",
                        lambda run_id, status: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tracking.end_unfinished_runs(top.info.run_id)


def test_log_model_writes_skops_where_mlflow_would_pickle(tracked, monkeypatch):
    # MLflow picks cloudpickle by default on Databricks; skrnn's file is skops anyway
    import mlflow.sklearn
    from sklearn.linear_model import Ridge

    monkeypatch.setattr(mlflow.sklearn, "_get_default_serialization_format",
                        lambda: mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    model = Ridge().fit(X, Y)
    with mlflow.start_run():
        info = tracking.log_model(model, X_example=X)
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    np.testing.assert_array_equal(
        mlflow.pyfunc.load_model(info.model_uri).predict(X), model.predict(X))
