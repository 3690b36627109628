"""Run records of Optuna studies and trials, and ending the runs of an interrupted job.

Part of :mod:`skrnn.tracking` (import from there).
"""

import os
import time

from skrnn._tracking_base import (
    _PARAMS_PER_BATCH,
    _client,
    _current_experiment_id,
    _param_text,
    _truncate,
    configure_tracking,
)
from skrnn._version import __version__

# -- Optuna: one nested run per trial ---------------------------------------------------------


def start_study_run(study_name, *, experiment_name=None, run_name=None, tags=None):
    """Create (not activate) the parent run of an Optuna study; return its id.

    Parameters
    ----------
    study_name : str
    experiment_name : str, default=None
        See :func:`configure_tracking`; None: ``MLFLOW_EXPERIMENT_NAME`` or Default.
    run_name : str, default=None
        None: ``study-<study_name>``.
    tags : dict, default=None

    Returns
    -------
    run_id : str
    """
    import mlflow

    if experiment_name is not None or not mlflow.is_tracking_uri_set():
        configure_tracking(experiment_name=experiment_name)
    name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment = mlflow.get_experiment_by_name(name) if name else None
    experiment_id = experiment.experiment_id if experiment else _current_experiment_id()
    run = _client().create_run(
        experiment_id, run_name=run_name or f"study-{study_name}",
        tags={"optuna.study_name": study_name, "skrnn.role": "study",
              "skrnn.version": __version__, **(tags or {})},
    )
    return run.info.run_id

def start_trial_run(parent_run_id, trial, *, params=None):
    """Create the run of one Optuna trial, nested under the study's run.

    Parameters
    ----------
    parent_run_id : str
        From :func:`start_study_run`.
    trial : optuna.Trial or optuna.trial.FrozenTrial
        Tags ``optuna.trial_number`` (and ``optuna.study_name``).
    params : dict, default=None
        Parameters to log now (e.g. the sampled values); None: ``trial.params``.

    Returns
    -------
    run_id : str
        Log to it (e.g. ``MLflowCallback(run_id=...)``) and end it with
        :func:`end_trial_run`.
    """
    from mlflow.entities import Param

    client = _client()
    parent = client.get_run(parent_run_id)
    tags = {"mlflow.parentRunId": parent_run_id, "optuna.trial_number": str(trial.number),
            "skrnn.role": "trial"}
    study = getattr(trial, "study", None)
    if study is not None:
        tags["optuna.study_name"] = study.study_name
    run = client.create_run(parent.info.experiment_id, run_name=f"trial-{trial.number}",
                            tags=tags)
    params = trial.params if params is None else params
    items = [Param(k, _truncate(_param_text(v))) for k, v in params.items()]
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run.info.run_id, params=items[start: start + _PARAMS_PER_BATCH],
                         synchronous=True)
    return run.info.run_id


def end_trial_run(run_id, state, *, value=None, value_name="value", pruned_step=None,
                  error=None):
    """Record a trial's outcome on its run and end the run.

    Parameters
    ----------
    run_id : str
    state : optuna.trial.TrialState or str
        ``COMPLETE`` or ``PRUNED`` end the run FINISHED, ``FAIL`` ends it FAILED;
        the state is kept in the tag ``optuna.state``.
    value : float, default=None
        The objective value, logged as the metric ``value_name``.
    value_name : str, default="value"
    pruned_step : int, default=None
        Logged as the metric and tag ``pruned_step``.
    error : BaseException or str, default=None
        Kept in the tag ``error``.
    """
    from mlflow.entities import Metric, RunTag

    state = getattr(state, "name", state)
    state = "FAIL" if state in ("FAIL", "FAILED") else state
    now = int(time.time() * 1000)
    metrics, tags = [], [RunTag("optuna.state", str(state))]
    if value is not None:
        metrics.append(Metric(value_name, float(value), now, 0))
    if pruned_step is not None:
        metrics.append(Metric("pruned_step", float(pruned_step), now, 0))
        tags.append(RunTag("pruned_step", str(pruned_step)))
    if error is not None:
        text = (f"{type(error).__name__}: {error}" if isinstance(error, BaseException)
                else str(error))
        tags.append(RunTag("error", text[:5000]))
    client = _client()
    client.log_batch(run_id, metrics=metrics, tags=tags, synchronous=True)
    client.set_terminated(run_id, status="FAILED" if state == "FAIL" else "FINISHED")


def end_study_run(run_id, study, *, value_name="best_value"):
    """Record a study's outcome on its run (best parameters and value) and end it.

    Parameters
    ----------
    run_id : str
        From :func:`start_study_run`.
    study : optuna.Study
    value_name : str, default="best_value"
        Metric name of the best objective value.
    """
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    params, metrics = [], []
    try:
        best = study.best_trial
    except ValueError:  # no completed trial
        best = None
    if best is not None:
        params = [Param(k, _truncate(_param_text(v))) for k, v in best.params.items()]
        metrics = [Metric(value_name, float(best.value), now, 0)]
    tags = [RunTag("optuna.n_trials", str(len(study.trials)))]
    if best is not None:
        tags.append(RunTag("optuna.best_trial", str(best.number)))
    client = _client()
    for start in range(0, max(len(params), 1), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[start: start + _PARAMS_PER_BATCH],
                         metrics=metrics if start == 0 else (),
                         tags=tags if start == 0 else (), synchronous=True)
    client.set_terminated(run_id, status="FINISHED")


def end_unfinished_runs(run_id, status="KILLED"):
    """End ``run_id`` and every run below it that is still RUNNING with ``status``.

    For an interrupted job (Ctrl-C: ``"KILLED"``, an error: ``"FAILED"``): study and
    trial runs nested under it (``mlflow.parentRunId``), and the active fluent run,
    would otherwise stay RUNNING (or be closed as FINISHED when Python exits).

    Parameters
    ----------
    run_id : str
        The top run of the job.
    status : {"KILLED", "FAILED"}, default="KILLED"
    """
    # A Ctrl-C can cut a database call half way and leave the store busy for a moment
    # (SQLite: "database is locked"): try again on fresh connections, and look again
    # until no run of the family is left RUNNING.
    for attempt in range(6):
        try:
            if not _end_unfinished_runs_once(run_id, status):
                return
        except Exception:
            if attempt == 5:
                raise
        _reset_store_connections()
        time.sleep(0.25 * (attempt + 1))


def _end_unfinished_runs_once(run_id, status):
    """One pass of :func:`end_unfinished_runs`; the number of runs it ended."""
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status=status)
    client = _client()
    top = client.get_run(run_id)
    runs = client.search_runs([top.info.experiment_id], max_results=50000)
    children = {}
    for run in runs:
        children.setdefault(run.data.tags.get("mlflow.parentRunId"), []).append(run)
    todo, family = [run_id], [top]
    while todo:
        for run in children.get(todo.pop(), []):
            family.append(run)
            todo.append(run.info.run_id)
    ended = 0
    for run in family:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status=status)
            ended += 1
    return ended


def _reset_store_connections():
    """Drop the tracking store's pooled database connections (a SQL store's engine)."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store

        engine = getattr(_get_store(), "engine", None)
    except Exception:
        return
    if engine is not None:
        engine.dispose()
