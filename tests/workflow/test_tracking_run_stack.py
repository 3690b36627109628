"""MLflow's active-run stack after callbacks that start runs of their own.

Two :class:`skrnn.tracking.MLflowCallback` on one fit, each starting its own run (the
second nested under the first), are torn down in the order they were set up: the
first run ends while the second is still above it on MLflow's fluent run stack. After
the fit, the stack must be exactly what it was before: the user's own run active (and
still running), or none, whether the fit ends normally, raises or is interrupted;
never a run that has ended, into which the user's next ``mlflow.log_metric`` would go.
"""

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

from stopping import RaiseAtEpoch  # noqa: E402

from skrnn import GRURegressor, tracking  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:fit was interrupted:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"),
]

X = np.sin(np.arange(240, dtype=float) / 5).reshape(40, 6)
Y = X[:, -1] * 0.9 + 0.1


def _isolate(mp):
    """Undo, after the test, what MLflow keeps in globals and the environment."""
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    mp.setattr(tracking_utils, "_tracking_uri", None)
    mp.setattr(fluent, "_active_experiment_id", None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        mp.delenv(name, raising=False)
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """A SQLite store in a temporary folder (its migrations run once per module)."""
    root = tmp_path_factory.mktemp("stack")
    uri = "sqlite:///" + (root / "mlflow.db").as_posix()
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp)
        tracking.configure_tracking(uri)
    return uri


@pytest.fixture
def client(store_uri, monkeypatch, request):
    _isolate(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    tracking.configure_tracking(experiment_name=request.node.name)
    assert mlflow.active_run() is None
    yield mlflow.MlflowClient()
    while mlflow.active_run() is not None:  # never leak a run into the next test
        mlflow.end_run()


ENDINGS = {"normal": (None, "FINISHED"),
           "error": (RuntimeError("stop"), "FAILED"),
           "ctrl-c": (KeyboardInterrupt(), "KILLED")}


def _fit(callbacks, error):
    model = GRURegressor(units=3, max_iter=2, random_state=0)
    model.set_callbacks(*callbacks, *([] if error is None else [RaiseAtEpoch(1, error)]))
    if error is None:
        model.fit(X, Y)
    else:
        with pytest.raises(type(error)):
            model.fit(X, Y)


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("users_run", [False, True], ids=["no-run", "users-run"])
def test_two_own_runs_leave_the_run_stack_as_it_was(client, ending, users_run):
    error, status = ENDINGS[ending]
    mine = mlflow.start_run(run_name="mine") if users_run else None
    first = tracking.MLflowCallback(nested=users_run)
    second = tracking.MLflowCallback(nested=True)

    _fit([first, second], error)

    runs = [client.get_run(c.last_run_id_) for c in (first, second)]
    assert [r.info.status for r in runs] == [status, status]
    assert runs[1].data.tags["mlflow.parentRunId"] == runs[0].info.run_id
    active = mlflow.active_run()
    if not users_run:
        assert active is None
        return
    assert runs[0].data.tags["mlflow.parentRunId"] == mine.info.run_id
    assert active is not None and active.info.run_id == mine.info.run_id
    # the user's next metric lands in the user's run, which is still running
    mlflow.log_metric("after", 1.0)
    assert client.get_run(mine.info.run_id).data.metrics["after"] == 1.0
    assert client.get_run(mine.info.run_id).info.status == "RUNNING"
    assert "after" not in client.get_run(runs[0].info.run_id).data.metrics
    mlflow.end_run()
    assert mlflow.active_run() is None


def test_a_callback_in_the_users_run_then_one_of_its_own(client):
    # the first logs into the user's run (not owned), the second starts a child of it
    with mlflow.start_run() as mine:
        first, second = tracking.MLflowCallback(), tracking.MLflowCallback(nested=True)
        _fit([first, second], None)
        assert first.last_run_id_ == mine.info.run_id
        assert mlflow.active_run().info.run_id == mine.info.run_id
    assert client.get_run(mine.info.run_id).info.status == "FINISHED"
    assert client.get_run(second.last_run_id_).info.status == "FINISHED"
    assert mlflow.active_run() is None


def test_three_own_runs_in_one_fit(client):
    callbacks = [tracking.MLflowCallback()] + [tracking.MLflowCallback(nested=True)
                                               for _ in range(2)]
    _fit(callbacks, RuntimeError("stop"))
    assert [client.get_run(c.last_run_id_).info.status for c in callbacks] == ["FAILED"] * 3
    assert mlflow.active_run() is None
