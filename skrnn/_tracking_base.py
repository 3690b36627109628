"""The MLflow store, the active run and parameter texts: what skrnn's tracking shares.

Part of :mod:`skrnn.tracking` (import from there): where runs go
(:func:`default_tracking_uri`, :func:`configure_tracking`), which run a helper logs to,
and :func:`log_params` with the short texts it logs. mlflow is imported inside the
functions.
"""

import os
import re
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from skrnn._version import __version__

# older MLflow servers cap parameter values at 500 characters (current ones at 6000);
# keep to the portable limit
MAX_PARAM_LENGTH = 500
_PARAMS_PER_BATCH = 100  # mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH

# -- the store --------------------------------------------------------------------------------


def default_tracking_uri():
    """The tracking URI skrnn uses: ``MLFLOW_TRACKING_URI`` if set, else ``./mlruns``.

    Returns
    -------
    uri : str
        The environment's ``MLFLOW_TRACKING_URI``, or
        ``sqlite:///<absolute path of ./mlruns/mlflow.db>``.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + (Path.cwd() / "mlruns" / "mlflow.db").as_posix()


def _sqlite_path(uri):
    """The database file of a local ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?")[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


def _artifact_root(uri):
    """``<db folder>/artifacts`` for a local SQLite store; None lets MLflow decide."""
    db = _sqlite_path(uri)
    return None if db is None else db.absolute().parent / "artifacts"


def _safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"


def configure_tracking(uri=None, experiment_name=None):
    """Point MLflow at skrnn's store and (optionally) an experiment.

    Parameters
    ----------
    uri : str, default=None
        Tracking URI; None means :func:`default_tracking_uri`.
    experiment_name : str, default=None
        Experiment to make active, created when missing. None uses
        ``MLFLOW_EXPERIMENT_NAME`` when set, else leaves MLflow's choice alone.

    Returns
    -------
    experiment_id : str
        The experiment new runs go to: ``experiment_name``'s (or
        ``MLFLOW_EXPERIMENT_NAME``'s), else the one already active (``"0"``, Default,
        unless ``mlflow.set_experiment`` chose another). ``mlflow.get_tracking_uri()``
        gives the URI now in use.

    Notes
    -----
    For a local SQLite store the database folder is created, and so is the database
    itself (with its ``Default`` experiment storing artifacts in
    ``<db folder>/artifacts/0``); experiments created here store theirs in
    ``<db folder>/artifacts/<name>``. Create a fresh store from one process before
    several processes share it (first creation of a SQLite file races).
    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, so subprocesses
    use the same store.
    """
    import mlflow

    uri = uri or default_tracking_uri()
    root = _artifact_root(uri)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        if not _sqlite_path(uri).exists():
            # MLflow would give the Default experiment ./mlruns/0 relative to the
            # current folder; creating the database here keeps it beside the database
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(uri, root.as_uri())
            store.engine.dispose()
    mlflow.set_tracking_uri(uri)
    name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            from mlflow.exceptions import MlflowException

            location = None if root is None else (root / _safe_name(name)).as_uri()
            try:
                experiment_id = mlflow.create_experiment(name, artifact_location=location)
            except MlflowException:  # another worker created it meanwhile
                experiment = mlflow.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
    return _current_experiment_id()


def _ensure_tracking():
    """Apply skrnn's default store unless a tracking URI was chosen already."""
    import mlflow

    if not mlflow.is_tracking_uri_set():
        configure_tracking()


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _active_run_id(run_id=None):
    """``run_id``, else the active run's id; raise when there is neither."""
    import mlflow

    if run_id is not None:
        return run_id
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            "No active MLflow run: call this inside `with mlflow.start_run():`, pass "
            "run_id=..., or use skrnn.tracking.track_fit."
        )
    return run.info.run_id

def _current_experiment_id():
    """The active experiment's id, when it exists in the current store; else Default.

    MLflow remembers the active experiment in a module global and in
    ``MLFLOW_EXPERIMENT_ID``; after the tracking URI changes (another store, a test's
    temporary store) that id may name nothing, so it is checked.
    """
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        return active.info.experiment_id
    try:  # the experiment chosen with mlflow.set_experiment, if any
        from mlflow.tracking.fluent import _get_experiment_id

        experiment_id = _get_experiment_id() or "0"
    except Exception:  # pragma: no cover - private MLflow helper moved or id invalid
        return "0"
    try:
        _client().get_experiment(experiment_id)
    except Exception:  # not in this store
        return "0"
    return experiment_id

# -- helpers ----------------------------------------------------------------------------------


def _qualname(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _param_text(value):
    """A short, stable text for a parameter value (no reprs of whole estimators)."""
    if value is None or isinstance(value, (bool, str, Integral, Real)):
        return str(value)
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_param_text(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_param_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, type) or callable(value):
        return getattr(value, "__module__", "") + "." + getattr(
            value, "__qualname__", getattr(value, "__name__", type(value).__name__))
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=20)
    return repr(value)


def _truncate(text, limit=MAX_PARAM_LENGTH):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def log_params(estimator, *, run_id=None, prefix=""):
    """Log every parameter of ``estimator``, nested ones included.

    ``get_params(deep=True)``: for a Pipeline that is ``steps`` plus every step's
    parameters as ``<step>__<param>``. Values become text: scalars as such, estimators
    by class name, callables by qualified name; each at most 500 characters (longer
    ones are cut and end with ``...``). The run is also tagged with the estimator's
    class and the skrnn version.

    Parameters
    ----------
    estimator : estimator
    run_id : str, default=None
        Run to log to; None: the active run.
    prefix : str, default=""
        Prepended to every name.

    Returns
    -------
    params : dict of str to str
        What was logged.
    """
    from mlflow.entities import Param, RunTag

    run_id = _active_run_id(run_id)
    params = {f"{prefix}{k}": _truncate(_param_text(v))
              for k, v in sorted(estimator.get_params(deep=True).items())}
    client = _client()
    items = [Param(k, v) for k, v in params.items()]
    tags = [RunTag("skrnn.estimator", _qualname(type(estimator))),
            RunTag("skrnn.version", __version__)]
    for start in range(0, max(len(items), 1), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start: start + _PARAMS_PER_BATCH],
                         tags=tags if start == 0 else (), synchronous=True)
    return params
