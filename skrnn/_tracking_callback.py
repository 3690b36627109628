"""The MLflow training callback and attaching it inside meta-estimators.

Part of :mod:`skrnn.tracking` (import from there).
"""

import sys
import threading
import time
from contextlib import contextmanager
from numbers import Integral

from skrnn._callbacks import EpochCallback, add_callbacks, callbacks_of
from skrnn._meta import find_recurrent_regressors
from skrnn._tracking_base import (
    _client,
    _ensure_tracking,
    _qualname,
    log_params,
)
from skrnn._version import __version__

# Runs a callback ended while a later run sat above them on MLflow's fluent run stack
# (thread-local, like that stack): run id -> status, popped when they surface.
_buried = threading.local()


def _end_own_run(run_id, status, client):
    """End a run this module started with ``mlflow.start_run``, and keep MLflow's stack
    of active runs as it was before that run started.

    Callbacks are torn down in the order they were set up, so a run can end while a
    later callback's (nested) run is still above it on the stack. It is ended through
    the client now and popped once the runs above it are: never left on the stack as
    the ended "active run" into which the user's next ``mlflow.log_metric`` would go.
    """
    import mlflow

    buried = _buried.__dict__.setdefault("runs", {})
    active = mlflow.active_run()
    if active is None or active.info.run_id != run_id:
        client.set_terminated(run_id, status=status)
        buried[run_id] = status
        return
    mlflow.end_run(status=status)
    while (active := mlflow.active_run()) is not None and active.info.run_id in buried:
        mlflow.end_run(status=buried.pop(active.info.run_id))


class MLflowCallback(EpochCallback):
    """Log each epoch's losses to MLflow (scikit-learn callback protocol).

    Set it on a skrnn regressor (``est.set_callbacks(MLflowCallback())``); for a
    Pipeline or any meta-estimator use :func:`attach_callback`, which sets it on every
    skrnn regressor inside. It is not auto-propagated, so scikit-learn's
    meta-estimators (GridSearchCV, ...) accept regressors that carry it; their clones
    share it.

    At the end of every ``log_every_n_epochs``-th epoch (and of the last one) it logs,
    with ``step = step_offset + n_iter_``: ``loss`` (training loss, penalty
    included), ``grad_norm`` (mean gradient norm before clipping), ``learning_rate``
    (the rate the epoch stepped with: ``learning_rate_curve_``), and with early
    stopping ``validation_loss`` and ``validation_score`` (R²). With the default
    ``log_every_n_epochs=1`` a run holds ``n_iter_`` values of ``loss``.

    Which run:

    * ``run_id`` given: that run (left open; its owner ends it);
    * else the active run (``with mlflow.start_run():``), unless ``nested=True``;
    * else (or with ``nested=True``) a new run per fit, nested under the active run if
      there is one, tagged with the estimator, holding its parameters when
      ``log_params``; it ends FINISHED, FAILED when fit raises, KILLED on Ctrl-C,
      and MLflow's active run is then again the one before the fit (or none), also
      when several callbacks each start a run in one fit.
      Use ``nested=True`` in searches and cross-validation, where one regressor is
      fitted many times: each fit then gets its own child run.

    Parameters
    ----------
    run_id : str, default=None
    nested : bool, default=False
    log_every_n_epochs : int, default=1
    prefix : str, default=""
        Prepended to the metric names (e.g. ``"fold0/"``).
    step_offset : int, default=0
        Added to the epoch number (e.g. ``fold * max_iter`` across folds).
    log_params : bool, default=True
        Log the regressor's parameters into a run this callback starts.

    Attributes
    ----------
    last_run_id_ : str or None
        The run of the most recent fit.
    """

    def __init__(self, *, run_id=None, nested=False, log_every_n_epochs=1, prefix="",
                 step_offset=0, log_params=True):
        if not isinstance(log_every_n_epochs, Integral) or log_every_n_epochs < 1:
            raise ValueError(
                f"log_every_n_epochs must be a positive int; got {log_every_n_epochs!r}."
            )
        self.run_id = run_id
        self.nested = nested
        self.log_every_n_epochs = log_every_n_epochs
        self.prefix = prefix
        self.step_offset = step_offset
        self.log_params = log_params
        self.last_run_id_ = None
        self._fits = {}  # id(estimator) -> state of that estimator's running fit

    def __getstate__(self):
        # a copy sent to a worker process keeps the settings, not the live state
        return {**self.__dict__, "_fits": {}}

    # -- protocol hooks

    def setup(self, estimator, context):
        import mlflow

        active = mlflow.active_run()
        if self.run_id is not None:
            run_id, owned = self.run_id, False
        elif active is not None and not self.nested:
            run_id, owned = active.info.run_id, False
        else:
            if active is None:
                _ensure_tracking()
            run = mlflow.start_run(
                run_name=type(estimator).__name__, nested=active is not None,
                tags={"skrnn.estimator": _qualname(type(estimator)),
                      "skrnn.version": __version__},
            )
            run_id, owned = run.info.run_id, True
            if self.log_params:
                log_params(estimator, run_id=run_id)
        self.last_run_id_ = run_id
        self._fits[id(estimator)] = {"run_id": run_id, "owned": owned, "completed": False,
                                     "last_step": None, "client": _client()}

    def on_epoch_end(self, estimator):
        fit = self._fits.get(id(estimator))
        if fit is not None and estimator.n_iter_ % self.log_every_n_epochs == 0:
            self._log_epoch(estimator, fit)
        return False

    def on_fit_end(self, estimator):
        fit = self._fits.get(id(estimator))
        if fit is None:
            return
        if getattr(estimator, "n_iter_", 0) and fit["last_step"] != estimator.n_iter_:
            self._log_epoch(estimator, fit)
        fit["completed"] = True

    def teardown(self, estimator, context):
        fit = self._fits.pop(id(estimator), None)
        if fit is None or not fit["owned"]:
            return
        if fit["completed"]:
            status = "FINISHED"
        else:
            status = "KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED"
        _end_own_run(fit["run_id"], status, fit["client"])

    # -- logging

    def _log_epoch(self, estimator, fit):
        from mlflow.entities import Metric

        step = self.step_offset + estimator.n_iter_
        values = {}
        # the last value of each per-epoch curve the estimator records (the validation
        # ones only with early stopping)
        for name, curve in (("loss", "loss_curve_"), ("grad_norm", "grad_norm_curve_"),
                            ("validation_loss", "validation_loss_curve_"),
                            ("validation_score", "validation_scores_"),
                            ("learning_rate", "learning_rate_curve_")):
            if getattr(estimator, curve, None):
                values[name] = getattr(estimator, curve)[-1]
        now = int(time.time() * 1000)
        metrics = [Metric(self.prefix + k, float(v), now, step) for k, v in values.items()]
        fit["client"].log_batch(fit["run_id"], metrics=metrics, synchronous=True)
        fit["last_step"] = estimator.n_iter_


def _recurrent_regressors(estimator):
    """Every skrnn recurrent regressor in ``estimator``'s parameters (those a fit uses)."""
    return [reg for _, reg in find_recurrent_regressors(estimator, fitted=False)]


def attach_callback(estimator, callback):
    """Add ``callback`` to every skrnn regressor inside ``estimator``.

    Works on a regressor itself, a Pipeline, TransformedTargetRegressor, a search, or
    any estimator exposing its parts through ``get_params``. Callbacks already set are
    kept.

    Parameters
    ----------
    estimator : estimator
    callback : sklearn-protocol callback, e.g. :class:`MLflowCallback`

    Returns
    -------
    regressors : list
        The regressors that received the callback.

    Raises
    ------
    ValueError
        ``estimator`` holds no skrnn recurrent regressor.
    """
    regressors = _recurrent_regressors(estimator)
    if not regressors:
        raise ValueError(
            f"{type(estimator).__name__} holds no skrnn recurrent regressor to attach "
            f"{type(callback).__name__} to."
        )
    for reg in regressors:
        add_callbacks(reg, callback)
    return regressors


@contextmanager
def _callback_attached(estimator, callback):
    """Put ``callback`` in place of any MLflowCallback for the block, then restore."""
    regressors = _recurrent_regressors(estimator)
    before = [callbacks_of(r) for r in regressors]
    for reg, callbacks in zip(regressors, before):
        kept = [c for c in callbacks if not isinstance(c, MLflowCallback)]
        reg.set_callbacks(*kept, callback)
    try:
        yield regressors
    finally:
        for reg, callbacks in zip(regressors, before):
            reg.set_callbacks(*callbacks)
