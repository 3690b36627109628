"""Experiment tracking with MLflow: a training callback and logging helpers.

Where runs go (docs/architecture.md, contract 7)
    A set ``MLFLOW_TRACKING_URI`` (a server, PostgreSQL, ...) always wins. Otherwise
    skrnn uses a local SQLite database ``./mlruns/mlflow.db`` with artifacts under
    ``./mlruns/artifacts`` (MLflow 3's plain file store needs an opt-in).
    :func:`configure_tracking` sets this up; every helper here calls it when no
    tracking URI has been chosen yet. For any local SQLite store, the experiments skrnn
    creates keep their artifacts in an ``artifacts`` folder next to the database.

Per-epoch metrics
    :class:`MLflowCallback` speaks scikit-learn's callback protocol
    (docs/architecture.md, contract 5). Set it on a skrnn regressor -- or on every
    regressor inside a Pipeline or other meta-estimator with :func:`attach_callback`
    -- and each epoch logs ``loss``,
    ``validation_loss`` and ``validation_score`` (with early stopping), ``grad_norm``
    and ``learning_rate`` at ``step=n_iter_``, in one ``log_batch`` call.

Helpers
    :func:`log_params` (the whole pipeline's parameters), :func:`log_final_metrics`,
    :func:`log_plots`, :func:`log_model` (skops format, signature, input example,
    weights only; a per-series model inside :class:`IndexColumns`), :func:`load_model`
    (skrnn's own trust policy), :func:`track_fit` (all of it around one ``fit``), and
    the Optuna records :func:`start_study_run`, :func:`start_trial_run`,
    :func:`end_trial_run`, :func:`end_study_run` (one run per study, one nested run per
    trial).

Loading models
    ``mlflow.pyfunc.load_model(uri)`` works on a model logged here (MLflow's sklearn
    flavor, skops format, skrnn's types declared trusted in the ``MLmodel`` file). That
    list lives inside the artifact, so whoever can write the artifact can widen it:
    for models of unknown origin use :func:`load_model`, which ignores it and applies
    skrnn's policy (:mod:`skrnn.persistence`) and checks the skrnn version.

A fit that raises inside a run leaves that run FAILED with the metrics of the epochs
that completed (``with mlflow.start_run()`` and :func:`track_fit` do that; a run the
callback starts itself is ended FAILED by the callback, KILLED on Ctrl-C).

mlflow is imported inside the functions, so ``import skrnn`` stays light.
"""

import time

import numpy as np

from skrnn._meta import fitted_recurrent_regressor
from skrnn._optional import require

# the parts, by job (docs/architecture.md); their public names are this module's
from skrnn._tracking_base import (
    MAX_PARAM_LENGTH,  # noqa: F401 (public constant)
    _active_run_id,
    _client,
    _ensure_tracking,
    configure_tracking,
    default_tracking_uri,
    log_params,
)
from skrnn._tracking_callback import (
    MLflowCallback,
    _callback_attached,
    _recurrent_regressors,
    attach_callback,
)
from skrnn._tracking_models import IndexColumns, load_model, log_model
from skrnn._tracking_runs import (
    end_study_run,
    end_trial_run,
    end_unfinished_runs,  # noqa: F401 (the CLI's, documented there)
    start_study_run,
    start_trial_run,
)

require("mlflow", by="skrnn.tracking")

__all__ = [
    "default_tracking_uri",
    "configure_tracking",
    "MLflowCallback",
    "attach_callback",
    "log_params",
    "log_final_metrics",
    "log_plots",
    "log_model",
    "load_model",
    "IndexColumns",
    "track_fit",
    "start_study_run",
    "start_trial_run",
    "end_trial_run",
    "end_study_run",
]



def log_final_metrics(estimator, X=None, y=None, *, prefix="test_", run_id=None):
    """Log the end-of-training summary and, given ``X, y``, the held-out errors.

    From the (last) skrnn regressor inside ``estimator``: ``n_iter``, ``final_loss``,
    ``best_loss`` (without early stopping), ``best_iteration``,
    ``best_validation_score`` (with it). With ``X, y``: ``<prefix>mae``,
    ``<prefix>rmse`` and ``<prefix>r2`` of ``estimator.predict(X)``.

    Parameters
    ----------
    estimator : fitted estimator
    X, y : array-like, default=None
    prefix : str, default="test_"
    run_id : str, default=None

    Returns
    -------
    metrics : dict of str to float
    """
    from mlflow.entities import Metric
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    run_id = _active_run_id(run_id)
    metrics = {}
    reg = fitted_recurrent_regressor(estimator)
    if reg is not None:
        summary = {"n_iter": reg.n_iter_, "final_loss": getattr(reg, "loss_", None),
                   "best_loss": reg.best_loss_, "best_iteration": reg.best_iteration_,
                   "best_validation_score": reg.best_validation_score_}
        metrics.update({k: float(v) for k, v in summary.items()
                        if v is not None and np.isfinite(v)})
    if X is not None and y is not None:
        pred = estimator.predict(X)
        y = np.asarray(y, dtype=float)
        metrics[f"{prefix}mae"] = float(mean_absolute_error(y, pred))
        metrics[f"{prefix}rmse"] = float(np.sqrt(mean_squared_error(y, pred)))
        if len(y) > 1:
            metrics[f"{prefix}r2"] = float(r2_score(y, pred))
    now = int(time.time() * 1000)
    _client().log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                        synchronous=True)
    return metrics


def log_plots(estimator=None, *, figures=None, run_id=None, folder="plots"):
    """Log figures as PNG artifacts: the loss curves, plus any ``figures`` given.

    Parameters
    ----------
    estimator : fitted estimator, default=None
        Its skrnn regressor's loss curves (:func:`skrnn.plotting.plot_loss_curves`)
        are logged as ``<folder>/loss_curves.png``.
    figures : dict of str to matplotlib Figure, default=None
        Extra figures, logged as ``<folder>/<name>.png``.
    run_id : str, default=None
    folder : str, default="plots"

    Returns
    -------
    paths : list of str
        Artifact paths written. The figures are closed.
    """
    import matplotlib.pyplot as plt

    run_id = _active_run_id(run_id)
    figures = dict(figures or {})
    reg = fitted_recurrent_regressor(estimator) if estimator is not None else None
    if reg is not None and getattr(reg, "loss_curve_", None):
        from skrnn.plotting import plot_loss_curves

        figures = {"loss_curves": plot_loss_curves(reg), **figures}
    client = _client()
    paths = []
    for name, fig in figures.items():
        path = f"{folder}/{name}.png"
        client.log_figure(run_id, fig, path, save_kwargs={"dpi": 100})
        plt.close(fig)
        paths.append(path)
    return paths

_log_model = log_model  # track_fit's ``log_model`` flag shadows the name


def track_fit(estimator, X, y, *, X_test=None, y_test=None, run_name=None,
              experiment_name=None, nested=False, tags=None, log_model=True, plots=True,
              log_every_n_epochs=1, **fit_params):
    """Fit ``estimator`` inside a new MLflow run that records everything.

    Parameters (:func:`log_params`), per-epoch metrics (an :class:`MLflowCallback` on
    every skrnn regressor inside, in place of any it carries, for the duration of the
    fit; the regressors' callbacks are restored afterwards), final metrics
    (:func:`log_final_metrics`, on ``X_test, y_test`` when given), the loss-curve plot
    (:func:`log_plots`) and the model (:func:`log_model`, input example from
    ``X_test`` or ``X``). If ``fit`` raises, the run ends FAILED with the epochs logged
    so far, and the exception propagates.

    Parameters
    ----------
    estimator : estimator
    X, y : array-like
    X_test, y_test : array-like, default=None
    run_name : str, default=None
    experiment_name : str, default=None
        See :func:`configure_tracking`.
    nested : bool, default=False
        Start the run nested under the active run.
    tags : dict, default=None
    log_model, plots : bool, default=True
    log_every_n_epochs : int, default=1
    **fit_params
        Passed to ``fit``.

    Returns
    -------
    run_id : str
    """
    import mlflow

    if experiment_name is not None:
        configure_tracking(experiment_name=experiment_name)
    else:
        _ensure_tracking()
    callback = MLflowCallback(log_every_n_epochs=log_every_n_epochs)
    with mlflow.start_run(run_name=run_name, nested=nested, tags=tags) as run:
        run_id = run.info.run_id
        log_params(estimator, run_id=run_id)
        if _recurrent_regressors(estimator):
            with _callback_attached(estimator, callback):
                estimator.fit(X, y, **fit_params)
        else:
            estimator.fit(X, y, **fit_params)
        log_final_metrics(estimator, X_test, y_test, run_id=run_id)
        if plots:
            log_plots(estimator, run_id=run_id)
        if log_model:
            _log_model(estimator, X_example=X_test if X_test is not None else X,
                       run_id=run_id)
    return run_id
