import os

# scikit-learn's estimator checks include an array-API input check that is skipped
# unless SciPy's array API support is switched on; switch it on so the check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# MLflow 3 sends usage telemetry by default; tests stay off the network
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# A throwaway PostgreSQL server for the tests marked `postgres` (tests/postgres_server.py)
from postgres_server import postgres_server, postgres_url  # noqa: E402, F401
