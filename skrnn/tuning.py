"""Hyperparameter search with Optuna over any scikit-learn estimator or Pipeline.

Every trial is a record in an Optuna storage (in memory, SQLite, a journal file or
any database URL), so a study can be resumed, shared by several worker processes
and inspected later; with ``track=True`` every trial is also an MLflow run nested
under the study's run.

Validation is always time-ordered: a :class:`TimeHoldout` (the last part of the
rows, or the rows from a date on) or scikit-learn's ``TimeSeriesSplit`` (with its
``gap``). Scores follow scikit-learn's convention (greater is better: use
``"neg_mean_absolute_error"`` for MAE), and the study maximises them.

Per-epoch pruning: the skrnn regressor inside the estimator receives a
:class:`PruningCallback` (sklearn callback protocol) that reports the negated
validation loss of every epoch to the trial and stops training when the pruner says
so. The default pruner is ``MedianPruner(n_startup_trials=5, n_warmup_steps=5)``:
searches here run tens of trials, not hundreds, and recurrent learning curves are
noisy in their first epochs; the median rule needs no budget settings (unlike
Hyperband) and the warm-up keeps it from judging a trial on its noisiest epochs.

Multi-fidelity (``fidelity``): each trial first trains on the most recent part of its
training rows (``fidelity`` of the dates: a time-ordered subsample, never a random
one) and is scored on the same validation rows; only a trial whose low-fidelity score
ranks in the top ``promote`` share of the low-fidelity scores seen so far (the first
trial always) trains again on all rows, with per-epoch pruning, and completes. The
others end PRUNED after the cheap fit. This is successive halving with two rungs,
decided as each trial finishes its first rung (asynchronously, like ASHA), so most of
the budget goes to the promising trials. Each trial records ``fidelity`` (the share it
last trained on), ``fidelity_rows`` and ``fidelity_score`` in its user attributes.
"""

import json
import math
import os
import socket
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline

from skrnn._callbacks import EpochCallback, add_callbacks
from skrnn._meta import find_recurrent_regressors
from skrnn._optional import require

require("optuna", by="skrnn.tuning")

__all__ = [
    "TimeHoldout",
    "PruningCallback",
    "default_search_space",
    "make_storage",
    "create_study",
    "tune",
    "TuningResult",
]


# -- validation ---------------------------------------------------------------------------


class TimeHoldout:
    """One train/validation split: the validation rows come last in time.

    Parameters
    ----------
    test_size : float or int, default=0.2
        Fraction (float in (0, 1)) or number (int) of the last rows to validate on.
        Ignored when ``start`` is given.
    start : str or datetime-like, default=None
        Validate on the rows whose date is at or after ``start``. The dates are read
        from ``date`` (a column) or from the index (a ``DatetimeIndex``, or the level
        of a ``MultiIndex`` that holds dates), so panels split by date across all
        their groups.
    date : str, default=None
        Column or index level holding the dates, when ``start`` is used.
    gap : int, default=0
        Rows (or, with ``start``, days) left out between training and validation, so
        that lag windows of the validation rows do not overlap training targets.
    """

    def __init__(self, test_size=0.2, *, start=None, date=None, gap=0):
        self.test_size = test_size
        self.start = start
        self.date = date
        self.gap = gap

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1

    def split(self, X, y=None, groups=None):
        n = len(X)
        if self.start is None:
            n_test = (int(math.ceil(self.test_size * n)) if not isinstance(self.test_size, Integral)
                      else int(self.test_size))
            if not 0 < n_test < n - self.gap:
                raise ValueError(
                    f"TimeHoldout(test_size={self.test_size}, gap={self.gap}) leaves no "
                    f"training or no validation rows out of {n}."
                )
            idx = np.arange(n)
            yield idx[: n - n_test - self.gap], idx[n - n_test :]
            return
        import pandas as pd

        dates = _dates_of(X, self.date)
        start = pd.Timestamp(self.start)
        test = np.flatnonzero(dates >= start)
        train = np.flatnonzero(dates < start - pd.Timedelta(days=self.gap))
        if len(test) == 0 or len(train) == 0:
            raise ValueError(
                f"TimeHoldout(start={self.start!r}) leaves {len(train)} training and "
                f"{len(test)} validation rows; the data spans {dates.min()} to {dates.max()}."
            )
        yield train, test


def _dates_of(X, date):
    import pandas as pd

    if date is not None and getattr(X, "columns", None) is not None and date in X.columns:
        return pd.to_datetime(X[date]).to_numpy()
    index = getattr(X, "index", None)
    if index is None:
        raise ValueError("TimeHoldout(start=...) needs a DataFrame with dates in a column "
                         "or in the index.")
    if isinstance(index, pd.MultiIndex):
        level = date if date is not None else next(
            (i for i, lv in enumerate(index.levels) if isinstance(lv, pd.DatetimeIndex)), None)
        if level is None:
            raise ValueError("No datetime level in X's MultiIndex; pass date=<level name>.")
        return pd.to_datetime(index.get_level_values(level)).to_numpy()
    return pd.to_datetime(index).to_numpy()


# -- search spaces --------------------------------------------------------------------------


def _recurrent_space(prefix):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        f"{prefix}units": IntDistribution(4, 128, log=True),
        f"{prefix}n_layers": IntDistribution(1, 2),
        f"{prefix}batch_size": CategoricalDistribution([8, 16, 32, 64, 128]),
        f"{prefix}solver": CategoricalDistribution(["adam", "rmsprop", "sgd"]),
        f"{prefix}learning_rate_init": FloatDistribution(1e-4, 3e-2, log=True),
        f"{prefix}dropout": FloatDistribution(0.0, 0.3),
        f"{prefix}alpha": FloatDistribution(1e-6, 1e-2, log=True),
    }


def default_search_space(estimator, *, max_lags=28):
    """A ready search space for the skrnn parts of ``estimator``.

    For each recurrent regressor (alone or anywhere inside, e.g. a Pipeline step): units
    (log scale), number of stacked layers (the pseudo-parameter ``n_layers``: the sampled
    units are repeated per layer), batch size, solver, initial learning rate, dropout and L2
    penalty. For each ``LagFeatures`` step: ``lags`` from 1 to ``max_lags``. The
    result is a plain dict of Optuna distributions keyed by ``set_params`` names:
    extend it, or override entries, with ordinary dict operations.

    Parameters
    ----------
    estimator : estimator or Pipeline
    max_lags : int, default=28

    Returns
    -------
    space : dict of str to optuna.distributions.BaseDistribution
    """
    from optuna.distributions import IntDistribution

    from skrnn.lags import LagFeatures

    space = {}
    for path, _ in find_recurrent_regressors(estimator, fitted=False):
        space.update(_recurrent_space(f"{path}__" if path else ""))
    steps = estimator.steps if isinstance(estimator, Pipeline) else []
    for name, step in steps:
        if isinstance(step, LagFeatures):
            space[f"{name}__lags"] = IntDistribution(1, max_lags)
    if not space:
        raise ValueError(
            f"default_search_space found no skrnn regressor or LagFeatures in "
            f"{type(estimator).__name__}; pass search_space explicitly."
        )
    return space


def _suggest(trial, name, dist):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"search_space[{name!r}] must be an Optuna distribution; got {dist!r}.")


def params_for_estimator(sampled):
    """Turn sampled values into ``set_params`` arguments (``n_layers`` → ``units``)."""
    params = dict(sampled)
    for key in [k for k in params if k.endswith("n_layers")]:
        n_layers = params.pop(key)
        units_key = key[: -len("n_layers")] + "units"
        if units_key in params:
            params[units_key] = (params[units_key],) * n_layers
    return params


# -- pruning ----------------------------------------------------------------------------------


class PruningCallback(EpochCallback):
    """Report each epoch's validation loss to an Optuna trial; stop pruned fits.

    An sklearn-protocol callback for skrnn regressors. At the end of every epoch it
    reports ``-validation_loss`` (or ``-training loss`` when the regressor has no
    validation split, i.e. ``early_stopping=False``) at step
    ``step_offset + n_iter_``; when ``trial.should_prune()`` it records the step in
    ``pruned_step`` and returns True, which ends training. The caller then raises
    ``optuna.TrialPruned``.

    Parameters
    ----------
    trial : optuna.Trial
    step_offset : int, default=0
        Added to the epoch number, so the folds of a cross-validation report distinct
        steps.
    """

    def __init__(self, trial, step_offset=0):
        self.trial = trial
        self.step_offset = step_offset
        self.pruned_step = None

    def on_epoch_end(self, estimator):
        curve = estimator.validation_loss_curve_ or estimator.loss_curve_
        step = self.step_offset + estimator.n_iter_
        self.trial.report(-float(curve[-1]), step)
        if self.trial.should_prune():
            self.pruned_step = step
            return True
        return False


# -- storage ----------------------------------------------------------------------------------


def make_storage(url=None, *, heartbeat_interval=None, grace_period=None, max_retry=None):
    """An Optuna storage from a URL.

    Parameters
    ----------
    url : str or None
        ``None``: in memory. ``"sqlite:///study.db"`` or any SQLAlchemy URL
        (``postgresql+psycopg2://...``): a database, resumable and shareable.
        ``"journal:path.log"``: a journal file, safe for several processes on one
        machine (and without the SQLite writer lock).
    heartbeat_interval : int, default=None
        Database storages only: seconds between a running trial's heartbeats. A
        trial whose heartbeat stops for ``grace_period`` seconds (a killed worker) is
        marked FAIL the next time any worker polls.
    grace_period : int, default=None
    max_retry : int, default=None
        With heartbeats: re-enqueue a failed trial's parameters up to this many times
        (``optuna.storages.RetryFailedTrialCallback``).

    Returns
    -------
    storage : optuna.storages.BaseStorage or None
    """
    import optuna

    if url is None:
        return None
    if not isinstance(url, str):
        return url  # already a storage object
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal:") :]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period or 2 * heartbeat_interval
        if max_retry is not None:
            kwargs.update(_retry_callback(max_retry))
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # connection refused, unknown driver, bad URL...
        hint = ""
        if isinstance(exc, ImportError) or "import DB access module" in str(exc):
            hint = (" Install the database driver: psycopg[binary] for postgresql://, "
                    "PyMySQL for mysql+pymysql://.")
        raise ValueError(
            f"Could not open the Optuna storage {_redact(url)!r}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}{hint}"
        ) from exc


def _retry_callback(max_retry):
    """Optuna >= 4.9 names it RetryHeartbeatStaleTrialCallback; older ones differently."""
    import inspect

    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    if cls is not None and "heartbeat_stale_trial_callback" in params:
        return {"heartbeat_stale_trial_callback": cls(max_retry=max_retry)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)}


def _redact(url):
    """Hide a password in a database URL before it goes into a message."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def create_study(study_name=None, storage=None, *, sampler=None, pruner=None, seed=None):
    """Create (or load, when it exists) a maximising study.

    Create the study once before starting several workers: concurrent first
    creation of a fresh SQLite file races.
    """
    import optuna

    sampler = sampler if sampler is not None else optuna.samplers.TPESampler(seed=seed)
    pruner = pruner if pruner is not None else optuna.pruners.MedianPruner(
        n_startup_trials=5, n_warmup_steps=5)
    return optuna.create_study(
        study_name=study_name, storage=make_storage(storage) if isinstance(storage, str)
        else storage, sampler=sampler, pruner=pruner, direction="maximize",
        load_if_exists=True,
    )


# -- the search -------------------------------------------------------------------------------


@dataclass
class TuningResult:
    """What :func:`tune` returns."""

    study: object
    best_params: dict
    best_score: float
    best_estimator: object = None
    trials: object = None  # pandas DataFrame
    files: dict = field(default_factory=dict)

    def save(self, directory, plots=True):
        """Write ``best_params.json``, ``trials.csv`` and Optuna's plots as PNG."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        path = directory / "best_params.json"
        path.write_text(json.dumps({"best_score": self.best_score,
                                    "best_params": _jsonable(self.best_params)}, indent=2))
        files["best_params"] = path
        path = directory / "trials.csv"
        self.trials.to_csv(path, index=False)
        files["trials"] = path
        if plots:
            files.update(save_study_plots(self.study, directory))
        self.files = files
        return files


def _jsonable(params):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


def save_study_plots(study, directory):
    """Optimization history, parameter importances and slice plots as PNG files."""
    require("matplotlib", by="skrnn.tuning.save_study_plots")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.exceptions import ExperimentalWarning

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    plots = {"history": vis.plot_optimization_history}
    if len(done) >= 2 and len(study.best_params) >= 1:
        plots["slice"] = vis.plot_slice
    if len(done) >= 3 and len(study.best_params) >= 2:
        plots["importances"] = vis.plot_param_importances
    files = {}
    for name, plot in plots.items():
        with warnings.catch_warnings():
            # Optuna marks its matplotlib backend experimental; that is not news here
            warnings.simplefilter("ignore", ExperimentalWarning)
            ax = plot(study)
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        path = Path(directory) / f"tuning_{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        files[f"plot_{name}"] = path
    return files


def _fit_score(estimator, X, y, train, test, scorer, trial, fold, fit_params, run_id=None):
    est = clone(estimator)
    callbacks = []
    # every skrnn regressor a fit of est trains, however deep (a TransformedTargetRegressor
    # around a Pipeline, as `skrnn run` builds, included)
    for _, reg in find_recurrent_regressors(est, fitted=False):
        extra = []
        if trial is not None:
            cb = PruningCallback(trial, step_offset=fold * reg.max_iter)
            callbacks.append(cb)
            extra.append(cb)
        if run_id is not None:  # per-epoch curves of the trial, folds one after another
            from skrnn.tracking import MLflowCallback

            extra.append(MLflowCallback(run_id=run_id, step_offset=fold * reg.max_iter,
                                        log_params=False))
        if extra:
            add_callbacks(reg, *extra)
    with warnings.catch_warnings():
        # trials are short by design; "max_iter reached" says nothing about them
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(_take(X, train), _take(y, train), **fit_params)
    pruned = next((cb.pruned_step for cb in callbacks if cb.pruned_step is not None), None)
    if pruned is not None:
        return est, None, pruned
    return est, scorer(est, _take(X, test), _take(y, test)), None


def _take(data, idx):
    from skrnn.windows import PanelWindows

    if isinstance(data, PanelWindows):  # the rows stay windows, never the matrix
        return data.subset(idx)
    return data.iloc[idx] if hasattr(data, "iloc") else np.asarray(data)[idx]


# -- multi-fidelity -------------------------------------------------------------------------


def _row_dates(X, cv):
    """The date of each row, when ``X`` carries dates (a column named by the splitter's
    ``date``, a DatetimeIndex or a datetime level); None: the rows are in time order."""
    import pandas as pd

    index = getattr(X, "index", None)
    date = getattr(cv, "date", None)
    columns = getattr(X, "columns", None)  # None on unlabelled windows
    dated = (date is not None and columns is not None and date in columns) or isinstance(
        index, pd.DatetimeIndex) or (isinstance(index, pd.MultiIndex) and any(
            isinstance(level, pd.DatetimeIndex) for level in index.levels))
    return _dates_of(X, date) if dated else None


def _recent(train, dates, fidelity):
    """The rows of ``train`` in its most recent ``fidelity`` share of dates (of rows,
    when ``dates`` is None): a panel keeps every series over its latest dates."""
    if dates is None:
        return train[len(train) - max(1, math.ceil(fidelity * len(train))):]
    days = np.unique(dates[train])
    first = days[len(days) - max(1, math.ceil(fidelity * len(days)))]
    return train[dates[train] >= first]


def _promoted(study, trial, score, promote):
    """Whether ``score`` ranks in the top ``promote`` share (at least one) of the
    low-fidelity scores of the study's trials so far, this one included."""
    others = [t.user_attrs["fidelity_score"] for t in study.get_trials(deepcopy=False)
              if t.number != trial.number and "fidelity_score" in t.user_attrs]
    better = sum(s > score for s in others)  # scores are maximised
    return better < max(1, math.ceil(promote * (len(others) + 1)))


def tune(
    estimator,
    X,
    y,
    *,
    search_space=None,
    cv=None,
    scoring="neg_mean_absolute_error",
    n_trials=20,
    timeout=None,
    study_name=None,
    storage=None,
    sampler=None,
    pruner=None,
    n_jobs=1,
    seed=None,
    refit=True,
    track=False,
    heartbeat_interval=None,
    grace_period=None,
    max_retry=None,
    fit_params=None,
    parent_run_id=None,
    progress=False,
    fidelity=None,
    promote=1 / 3,
):
    """Search hyperparameters of ``estimator`` with Optuna (TPE by default).

    Parameters
    ----------
    estimator : estimator or Pipeline
        Any scikit-learn estimator. skrnn regressors inside it are pruned per epoch.
    X, y : array-like or DataFrame
        Rows in time order (per the validation scheme).
    search_space : dict, default=None
        ``set_params`` name → Optuna distribution. None: :func:`default_search_space`.
    cv : splitter, default=None
        Time-ordered validation: :class:`TimeHoldout` (default, last 20% of rows) or
        ``TimeSeriesSplit(n_splits, gap=...)``.
    scoring : str or callable, default="neg_mean_absolute_error"
        A scikit-learn scorer (greater is better); the study maximises its mean over
        the splits.
    n_trials : int, default=20
        Total number of finished (complete or pruned) trials the study should hold:
        a resumed study only runs what is missing, and several workers sharing a
        study stop together at this count.
    timeout : float, default=None
    study_name : str, default=None
    storage : str or optuna storage, default=None
        See :func:`make_storage`. Re-running with the same ``study_name`` and
        ``storage`` resumes the study.
    sampler, pruner : optuna objects, default=None
        TPE seeded with ``seed``; MedianPruner (see the module docstring).
    n_jobs : int, default=1
        Trials run in parallel threads of this process (use worker processes sharing
        the storage for real parallelism across cores).
    seed : int, default=None
    refit : bool, default=True
        Refit the best parameters on all of ``(X, y)``.
    track : bool, default=False
        Log the study as an MLflow run and every trial as a nested run (params,
        score, state, pruned step), in the store of :mod:`skrnn.tracking`.
    heartbeat_interval, grace_period, max_retry : int, default=None
        Database storages: see :func:`make_storage`. On a busy machine keep the grace
        period several heartbeats long (e.g. heartbeat 30-60 s, grace 2-4 heartbeats):
        a live worker declared stale by mistake loses its trial.
    fit_params : dict, default=None
        Passed to every ``fit`` as they are (not sliced per split).
    parent_run_id : str, default=None
        With ``track``: nest the study's MLflow run under this run.
    progress : bool, default=False
        Show Optuna's progress bar of the trials.
    fidelity : float in (0, 1), default=None
        Multi-fidelity (see the module docstring): each trial first trains on the most
        recent ``fidelity`` share of each split's training dates (of its rows when
        ``X`` has no dates); only the promoted ones train on all rows and complete.
        None: every trial trains on all rows.
    promote : float in (0, 1], default=1/3
        With ``fidelity``: the share of trials promoted to all rows (at least one: the
        first trial always is).

    Returns
    -------
    result : TuningResult
    """
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    if fidelity is not None and not 0 < fidelity < 1:
        raise ValueError(f"fidelity must be a share in (0, 1) of the training dates, or "
                         f"None; got {fidelity!r}")
    if fidelity is not None and not 0 < promote <= 1:
        raise ValueError(f"promote must be a share in (0, 1] of the trials; got {promote!r}")
    search_space = default_search_space(estimator) if search_space is None else search_space
    cv = TimeHoldout() if cv is None else cv
    scorer = check_scoring(estimator, scoring=scoring)
    fit_params = fit_params or {}
    if isinstance(storage, str):
        storage = make_storage(storage, heartbeat_interval=heartbeat_interval,
                               grace_period=grace_period, max_retry=max_retry)
    study = create_study(study_name, storage, sampler=sampler, pruner=pruner, seed=seed)
    if sampler is None and seed is not None and study.trials:
        # a resumed study (or a second worker) must not replay the same random draws
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    n_done = len(study.get_trials(deepcopy=False, states=finished))
    splits = list(cv.split(X, y))
    if fidelity is not None:
        dates = _row_dates(X, cv)
        recent = [(_recent(train, dates, fidelity), test) for train, test in splits]

    parent_run = _start_parent_run(study, parent_run_id) if track else None

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial):
        trial.set_user_attr("worker", worker)
        sampled = {name: _suggest(trial, name, dist) for name, dist in search_space.items()}
        est = clone(estimator).set_params(**params_for_estimator(sampled))
        scores = []
        run = _start_trial_run(parent_run, trial, sampled) if track else None
        try:
            if fidelity is not None:  # the first rung: a cheap fit on the recent rows
                low = float(np.mean([_fit_score(est, X, y, train, test, scorer, None, fold,
                                                fit_params)[1]
                                     for fold, (train, test) in enumerate(recent)]))
                trial.set_user_attr("fidelity_score", low)
                trial.set_user_attr("fidelity_rows", int(sum(len(tr) for tr, _ in recent)))
                trial.set_user_attr("fidelity", fidelity)
                # step 0, before any epoch: what TPE ranks a trial cut here by
                trial.report(low, 0)
                if not _promoted(study, trial, low, promote):
                    trial.set_user_attr("pruned_step", 0)
                    _end_trial_run(run, "PRUNED", pruned_step=0)
                    raise optuna.TrialPruned(
                        f"not promoted: its score on {fidelity:.0%} of the dates ranks "
                        f"below the top {promote:.0%}")
                trial.set_user_attr("fidelity", 1.0)
                trial.set_user_attr("fidelity_rows", int(sum(len(tr) for tr, _ in splits)))
            for fold, (train, test) in enumerate(splits):
                _, score, pruned = _fit_score(est, X, y, train, test, scorer, trial, fold,
                                              fit_params, run_id=run)
                if pruned is not None:
                    trial.set_user_attr("pruned_step", pruned)
                    _end_trial_run(run, "PRUNED", pruned_step=pruned)
                    raise optuna.TrialPruned(f"pruned at step {pruned}")
                scores.append(score)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{exc.__class__.__name__}: {exc}")
            _end_trial_run(run, "FAILED", error=exc)
            raise
        value = float(np.mean(scores))
        trial.set_user_attr("split_scores", [float(s) for s in scores])
        _end_trial_run(run, "COMPLETE", score=value)
        return value

    remaining = max(n_trials - n_done, 0)
    if remaining:
        with warnings.catch_warnings():
            # Optuna warns when a trial fails; the failure is recorded with its error
            warnings.filterwarnings("ignore", message="Trial .* failed", category=UserWarning)
            study.optimize(
                objective, n_trials=remaining, timeout=timeout, n_jobs=n_jobs,
                catch=(Exception,),
                callbacks=[MaxTrialsCallback(n_trials, states=finished)],
                show_progress_bar=progress,
            )
    if heartbeat_interval is not None:
        _sweep_stale_trials(study, objective, heartbeat_interval,
                            grace_period or 2 * heartbeat_interval)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        errors = {t.user_attrs.get("error") for t in study.trials if "error" in t.user_attrs}
        raise RuntimeError(
            f"No trial of study {study.study_name!r} completed "
            f"({len(study.trials)} trials). Errors seen: {sorted(errors) or 'none'}."
        )
    best_params = params_for_estimator(study.best_params)
    best = None
    if refit:
        best = clone(estimator).set_params(**best_params).fit(X, y, **fit_params)
    if track:
        _end_parent_run(parent_run, study)
    return TuningResult(study=study, best_params=best_params, best_score=study.best_value,
                        best_estimator=best, trials=trials_table(study))


def _sweep_stale_trials(study, objective, heartbeat_interval, grace_period):
    """Fail and retry the trials of dead workers before leaving.

    Optuna marks a dead worker's trial failed (and enqueues its retry) only when a
    live worker starts a new trial. Near the end of a study nobody does, and the trial
    would stay RUNNING for ever; so, while any trial still runs, wait out the grace
    period, fail the stale ones and run the retries they left WAITING.
    """
    import time

    import optuna
    from optuna.trial import TrialState

    deadline = time.monotonic() + grace_period + 2 * heartbeat_interval
    while time.monotonic() < deadline:
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return
        time.sleep(heartbeat_interval)
        optuna.storages.fail_stale_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if waiting:
            study.optimize(objective, n_trials=len(waiting), catch=(Exception,))


def trials_table(study):
    """The study's trials as a DataFrame, with pruned trials' ``value`` blanked.

    Optuna stores a pruned trial's last intermediate value (here a negated
    validation loss) as its value; beside the scores of complete trials it reads like
    a score, which it is not. It is kept in ``last_intermediate_value``.
    """
    table = study.trials_dataframe()
    if "value" in table and "state" in table:
        pruned = table["state"] == "PRUNED"
        table["last_intermediate_value"] = table["value"].where(pruned)
        table.loc[pruned, "value"] = np.nan
    return table


# -- MLflow records of a study (see skrnn.tracking) -----------------------------------------


def _start_parent_run(study, parent_run_id=None):
    from skrnn.tracking import start_study_run

    if parent_run_id is None:
        return start_study_run(study.study_name)
    from mlflow import MlflowClient

    client = MlflowClient()  # the study run lives in its parent's experiment
    experiment = client.get_experiment(client.get_run(parent_run_id).info.experiment_id)
    return start_study_run(study.study_name, experiment_name=experiment.name,
                           tags={"mlflow.parentRunId": parent_run_id})


def _start_trial_run(parent_run_id, trial, sampled):
    from skrnn.tracking import start_trial_run

    return start_trial_run(parent_run_id, trial, params=sampled)


def _end_trial_run(run, state, *, score=None, pruned_step=None, error=None):
    if run is None:
        return
    from skrnn.tracking import end_trial_run

    end_trial_run(run, "FAIL" if state == "FAILED" else state, value=score,
                  value_name="score", pruned_step=pruned_step, error=error)


def _end_parent_run(run_id, study):
    from skrnn.tracking import end_study_run

    end_study_run(run_id, study, value_name="best_score")


# The spawn-safe entry point of a separate worker process sharing a study.
def run_worker(estimator, X, y, **kwargs):
    """Run :func:`tune` without refit, for use in a separate worker process."""
    kwargs.setdefault("refit", False)
    return tune(estimator, X, y, **kwargs)
