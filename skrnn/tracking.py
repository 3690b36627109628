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
    weights only), :func:`load_model` (skrnn's own trust policy), :func:`track_fit`
    (all of it around one ``fit``), and the Optuna records :func:`start_study_run`,
    :func:`start_trial_run`, :func:`end_trial_run`, :func:`end_study_run` (one run per
    study, one nested run per trial).

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

import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from skrnn._callbacks import EpochCallback, add_callbacks, callbacks_of
from skrnn._meta import find_recurrent_regressors, fitted_recurrent_regressor
from skrnn._optional import require
from skrnn._version import __version__

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
    "track_fit",
    "start_study_run",
    "start_trial_run",
    "end_trial_run",
    "end_study_run",
]

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


# -- the training callback --------------------------------------------------------------------


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
      ``log_params``; it ends FINISHED, FAILED when fit raises, KILLED on Ctrl-C.
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
        import mlflow

        if fit["completed"]:
            status = "FINISHED"
        else:
            status = "KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED"
        active = mlflow.active_run()
        if active is not None and active.info.run_id == fit["run_id"]:
            mlflow.end_run(status=status)
        else:
            fit["client"].set_terminated(fit["run_id"], status=status)

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


def _head(X, n=5):
    return X.iloc[:n] if hasattr(X, "iloc") else np.asarray(X)[:n]


def _default_requirements():
    import numpy
    import sklearn
    import skops

    return [f"skrnn=={__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}", f"numpy=={numpy.__version__}"]


class _SkopsFlavor:
    """``mlflow.sklearn`` whose model file is the one :mod:`skrnn.persistence` writes.

    MLflow's sklearn flavor writes an uncompressed skops archive of whatever it is
    given; this writes everything the same way, then replaces ``model.skops`` with
    skrnn's file of the same object: deflated, type-checked, with the ``skrnn.json``
    version entry. MLflow's own loader reads it as any skops file.
    """

    __name__ = "mlflow.sklearn"

    def __init__(self, data):
        self.data = data

    def save_model(self, path, mlflow_model, sk_model, **kwargs):
        import mlflow.sklearn
        from mlflow.models.model import MLMODEL_FILE_NAME

        mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
        Path(path, mlflow_model.flavors["sklearn"]["pickled_model"]).write_bytes(self.data)
        mlflow_model.model_size_bytes = sum(
            p.stat().st_size for p in Path(path).rglob("*") if p.is_file()
            and p.name != MLMODEL_FILE_NAME)
        mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def log_model(estimator, name="model", *, X_example=None, run_id=None,
              registered_model_name=None, pip_requirements=None, trusted=()):
    """Log a fitted estimator as an MLflow model: skops format, weights only.

    The MLflow sklearn flavor with ``serialization_format="skops"``: no pickle. The
    file holds :func:`skrnn.persistence.strip_training_state` of ``estimator`` and
    the skrnn version (also in the ``MLmodel`` metadata as ``skrnn_version``); the types
    skops must be told to trust (skrnn's classes, and no others) are declared as
    ``skops_trusted_types``. Load it back with ``mlflow.pyfunc.load_model`` or, safer,
    :func:`load_model`.

    Parameters
    ----------
    estimator : fitted estimator
    name : str, default="model"
    X_example : array-like, default=None
        A few input rows: the first 5 become the input example, and with the
        predictions on them the signature (``mlflow.models.infer_signature``).
    run_id : str, default=None
        Run to log to; None: the active run.
    registered_model_name : str, default=None
        Also register the model under this name.
    pip_requirements : list of str, default=None
        None: pinned skrnn, scikit-learn, skops and NumPy (no slow inference).
    trusted : iterable of str, default=()
        Extra types to allow (see :func:`skrnn.persistence.save`).

    Returns
    -------
    model_info : mlflow.models.model.ModelInfo
        ``model_info.model_uri`` loads the model.
    """
    from mlflow.models import Model, infer_signature

    from skrnn import persistence

    run_id = _active_run_id(run_id)
    stripped = persistence.strip_training_state(estimator)
    data = persistence.dumps(stripped, trusted=trusted)
    needed, _ = persistence.untrusted_types(data=data, trusted=trusted)
    signature = example = None
    if X_example is not None:
        example = _head(X_example)
        signature = infer_signature(example, estimator.predict(example))
        if not _predicts_without_index(estimator, example):
            # MLflow stores an input example without its index; a model that reads its
            # series from the index (per-series scaling) cannot predict it back, so
            # only the signature is logged
            example = None
    return Model.log(
        artifact_path=None,  # deprecated in MLflow 3 in favour of name, still positional
        name=name,
        flavor=_SkopsFlavor(data),
        flavor_name="mlflow.sklearn",
        sk_model=stripped,
        serialization_format="skops",
        skops_trusted_types=needed,
        signature=signature,
        input_example=example,
        metadata={"skrnn_version": __version__},
        pip_requirements=pip_requirements or _default_requirements(),
        run_id=run_id,
        registered_model_name=registered_model_name,
    )


_log_model = log_model  # track_fit's ``log_model`` flag shadows the name


def _predicts_without_index(estimator, example):
    """Whether ``estimator`` predicts ``example`` once its index is dropped."""
    if not hasattr(example, "reset_index"):
        return True
    try:
        estimator.predict(example.reset_index(drop=True))
    except Exception:
        return False
    return True


def load_model(model_uri, *, trusted=(), check_version=True):
    """Load a model logged by :func:`log_model`, under skrnn's trust policy.

    Unlike ``mlflow.pyfunc.load_model``, which trusts the types listed in the model's
    own ``MLmodel`` file, this checks every type against
    :func:`skrnn.persistence.is_trusted_type` (plus ``trusted``) and the skrnn major
    version, then returns the estimator itself (``predict``, ``get_weights``, ...).

    Parameters
    ----------
    model_uri : str
        ``models:/<model_id>``, ``runs:/<run_id>/model``, a local folder, ...
    trusted : iterable of str, default=()
    check_version : bool, default=True

    Returns
    -------
    estimator : estimator
    """
    import mlflow
    from mlflow.models import Model

    from skrnn import persistence

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        model = Model.load(local)
        flavor = model.flavors.get("sklearn")
        if flavor is None or flavor.get("serialization_format") != "skops":
            raise ValueError(
                f"{model_uri!r} is not a scikit-learn model in the skops format (flavors: "
                f"{sorted(model.flavors)}); skrnn loads only those."
            )
        data = Path(local, flavor["pickled_model"]).read_bytes()
    if check_version:
        meta = persistence.read_metadata(data) or {}
        saved = meta.get("skrnn_version") or (model.metadata or {}).get("skrnn_version")
        persistence.check_skrnn_version(saved, source=f"The model {model_uri!r}")
    return persistence._load_checked(data, trusted=trusted, name=f"The model {model_uri!r}")


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
