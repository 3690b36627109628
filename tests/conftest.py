import os

# scikit-learn's estimator checks include an array-API input check that is skipped
# unless SciPy's array API support is switched on; switch it on so the check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# MLflow 3 sends usage telemetry by default; tests stay off the network
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _forget_mlflow_state(monkeypatch):
    """MLflow keeps the tracking URI and active experiment in globals and in the
    environment; a test that points it at a temporary store must not leave the next
    test in the same worker pointing there too."""
    if "mlflow" in sys.modules:
        import mlflow.tracking._tracking_service.utils as tracking_utils
        import mlflow.tracking.fluent as fluent

        monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
        monkeypatch.setattr(fluent, "_active_experiment_id", None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    yield
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()


# A throwaway PostgreSQL server for the tests marked `postgres` (tests/postgres_server.py)
from postgres_server import postgres_server, postgres_url  # noqa: E402, F401
