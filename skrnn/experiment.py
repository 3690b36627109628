"""Experiments as data: a TOML definition, validated, and the runner that executes it.

An experiment reads a long table of dated observations (a bundled dataset, a
generator, or a user's CSV), builds lag windows inside each series (the value and, as
extra step features, calendar features and covariate columns), splits by date, tunes
and refits every model on the training dates (inputs and target scaled per series by
default, predictions inverted), averages the top configurations where asked
(``ensemble``), evaluates one-step-ahead on the holdout dates against naive baselines
and Ridge and HistGradientBoosting on the same windows, and writes a results table
ranked by the metric, predictions, plots and the time of each phase (``timings.json``;
and, with tracking on, MLflow runs). Everything is checked before the first
fit, and a run is published atomically (a staging folder renamed into place, with
``manifest.json`` written last; a previous run is moved aside). Studies live in a
SQLite file in the output folder, named by a fingerprint of the model, its search
space, the features, the split and the data: running the same experiment again
resumes its searches, a changed one starts new studies.

See ``pipelines/*.toml`` for examples; :class:`Experiment` documents every key.

This module holds the runner (:func:`run_experiment`); its parts live in
``skrnn/_experiment/`` (one job per module: config, data, models, studies,
run_folder, outputs, predict) and their public names are re-exported here.
"""

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import skrnn._experiment  # noqa: F401 - first: names the `cli` extra when one is missing
from skrnn._experiment.config import (  # noqa: F401 - re-exported
    BASELINES,
    DEFAULT_MAX_LAGS,
    RECURRENT,
    SKLEARN,
    DataConfig,
    Experiment,
    ExperimentError,
    FeaturesConfig,
    ModelConfig,
    SearchConfig,
    SplitConfig,
    TrackingConfig,
    TuningConfig,
    infer_max_lags,
    load_experiment,
    override_experiment,
    parse_experiment,
    resolve_features,
)
from skrnn._experiment.data import (  # noqa: F401 - re-exported
    ABSURD,
    _check_covariates,
    _split_dates,
    _windows,
    check_panel,
    data_hash,
    load_data,
    read_table,
)
from skrnn._experiment.models import _build, _ensemble, _short_name, check_model
from skrnn._experiment.outputs import (
    _convergence_warning,
    _finish_tracking,
    _plots,
    _progress_bars,
    _results_table,
    _rounded,
    _save_models,
    _say_timings,
    _sayer,
    _short,
    _start_tracking,
)
from skrnn._experiment.predict import forecast_next, load_model  # noqa: F401 - re-exported
from skrnn._experiment.run_folder import (  # noqa: F401 - re-exported
    MANIFEST,
    _abandon,
    _check_output,
    _checkpoint,
    _new_staging,
    _open_storage,
    _publish,
    _recover,
    _study_file,
    check_run,
)
from skrnn._experiment.studies import (  # noqa: F401 - re-exported
    _check_in_space,
    _study,
    _tuning_plots,
    display_study,
    study_fingerprint,
)

__all__ = ["Experiment", "ExperimentError", "load_experiment", "run_experiment"]


def run_experiment(exp, *, output=None, track=None, progress=True, console=None, n_trials=None,
                   fresh=False):
    """Run an experiment; return the results table (a DataFrame).

    Everything that can be checked is checked before the first fit: every model's
    params and search space (on clones), the tuning storage, the output folder and
    the data. The run is written to a hidden folder beside ``output`` and renamed into
    place when complete, ``manifest.json`` last; a previous run in ``output`` is moved
    aside to ``<output>.previous-<time>``, never mixed with the new one.

    Each search's study is named after the experiment, the model and a fingerprint
    of everything that defines its trials (model config, search space, features,
    split, metric, seed and data): running the same experiment again resumes it, a
    changed one starts a new study.

    Parameters
    ----------
    exp : Experiment
    output : path, default=None
        Output folder (default: the experiment's ``output``).
    track : bool, default=None
        Override ``tracking.enabled``.
    progress : bool, default=True
        Progress bars for trials and the final fits' epochs.
    console : rich.console.Console, default=None
        Where to report; None prints.
    n_trials : int, default=None
        Override every search's ``n_trials`` (>= 1).
    fresh : bool, default=False
        Delete the matching studies first and start the searches over.
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    from skrnn.tuning import TimeHoldout, tune

    say = _sayer(console)
    out = Path(output) if output is not None else exp.output_dir
    track = exp.tracking.enabled if track is None else track
    d = exp.data
    if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 1):
        raise ExperimentError(f"the number of trials must be >= 1, got {n_trials!r}")

    # 1. everything that needs no data and no fit (window bounds are checked again
    # once the data's frequency has fixed max_lags)
    group = d.group
    draft = exp.features.model_copy(update={
        "max_lags": exp.features.max_lags or 10_000, "lags": exp.features.lags or 1,
        "scaling": exp.features.resolved_scaling(bool(group)), "scale": None})
    spaces = {m.name: check_model(m, draft, exp.seed, group) for m in exp.models}
    for m in exp.models:
        if m.ensemble and spaces[m.name] is None and m.kind in ("ridge",):
            raise ExperimentError(
                f"model {m.name!r}: ensemble = {m.ensemble} needs a search (the top "
                f"configurations) or a model with seeds; {m.kind} has none")
    study_file = _study_file(exp)
    _check_output(out, study_file)
    _recover(out, study_file)
    staging = _new_staging(out)
    parent, tuned = None, False
    timings = {}
    try:
        storage = _open_storage(exp, out, staging, study_file) if any(
            s is not None for s in spaces.values()) else None
        # 2. the data, checked like `skrnn predict` checks it
        clock = time.perf_counter()
        frame = load_data(d, exp.base_dir, exp.seed,
                          exp.features.known_future + exp.features.past_covariates
                          + exp.features.static_columns())
        _check_covariates(frame, d, exp.features)
        grid = check_panel(frame, d)
        features = resolve_features(exp.features, grid.freq, bool(group),
                                    grid.labels if group else ())
        timings["data_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        # lag windows as views of the panel: no n_rows x window matrix is built (only
        # Ridge, HGB and MLP gather theirs, after the window is cut to its lags)
        X, y = _windows(frame, d, features, freq=grid.freq, as_windows=True)
        test, start, val_start = _split_dates(X, exp.split, d.date)
        train = ~test
        if exp.split.train_start is not None:
            train &= X.index.get_level_values(d.date) >= pd.Timestamp(exp.split.train_start)
            if not train.any() or val_start <= pd.Timestamp(exp.split.train_start):
                raise ExperimentError(
                    f"split.train_start {exp.split.train_start} leaves no training dates "
                    f"before the validation dates (from {val_start.date()})")
        Xtr, ytr, Xte, yte = X.subset(train), y[train], X.subset(test), y[test]
        nonnegative = bool((ytr >= 0).all())
        spaces = {m.name: check_model(m, features, exp.seed, group, nonnegative)
                  for m in exp.models}
        digest = data_hash(frame)
        timings["features_s"] = time.perf_counter() - clock
        F = features.n_step_features()
        say(f"[{exp.name}] {len(frame)} observations, {len(X)} windows of "
            f"{features.max_lags} steps x {F} feature(s), {features.scaling} scaling; "
            f"train {len(Xtr)} rows before {start.date()}, test {len(Xte)} rows")
        _checkpoint("data")
        if track:
            parent = _start_tracking(exp, out)

        rows, predictions, fitted = [], {}, {}
        timings["models"] = {}
        scoring = ("neg_mean_absolute_error" if exp.tuning.metric == "mae"
                   else "neg_mean_squared_error")
        for model in exp.models:
            est, _ = _build(model, features, exp.seed, group)
            began = time.perf_counter()
            spent = timings["models"][model.name] = {}
            best_params, result = {}, None
            space = spaces[model.name]
            if space is not None:
                wanted = n_trials or model.search.n_trials
                tuned = True
                name = _study(exp, model, space, digest, storage, wanted, fresh, say,
                              private=study_file is not None)
                result = tune(
                    est, Xtr, ytr, search_space=space,
                    cv=TimeHoldout(start=str(val_start), date=d.date), scoring=scoring,
                    n_trials=wanted, timeout=exp.tuning.timeout, study_name=name,
                    storage=storage, seed=exp.seed, n_jobs=exp.tuning.n_jobs, refit=False,
                    track=bool(parent), parent_run_id=parent, progress=progress,
                    fidelity=model.search.fidelity, promote=model.search.promote,
                )
                best_params = result.best_params
                _check_in_space(model, result.study.best_params, space)
                est.set_params(**best_params)
                result.save(staging / "tuning" / model.name, plots=False)
                _tuning_plots(result.study, staging / "tuning" / model.name, exp.tuning.metric)
                _checkpoint("tuned")
            if space is not None:
                spent["tune_s"] = time.perf_counter() - began
            fits = [(model.name, model.kind, est, best_params)]
            if model.ensemble:
                fits.append((f"{model.name}_ensemble", f"{model.kind}_ensemble",
                             _ensemble(est, model, result, exp.seed), best_params))
            for row_name, kind, fit_est, params in fits:
                clock = time.perf_counter()
                _progress_bars(fit_est, progress)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=_convergence_warning())
                    fit_est.fit(Xtr, ytr)
                fit_s = time.perf_counter() - clock
                clock = time.perf_counter()
                pred = pd.Series(np.asarray(fit_est.predict(Xte)).ravel(), index=Xte.index)
                predict_s = time.perf_counter() - clock
                key = "refit" if row_name == model.name else "ensemble"
                spent[f"{key}_s"], spent[f"{key}_predict_s"] = fit_s, predict_s
                predictions[row_name] = pred
                fitted[row_name] = fit_est
                rows.append({
                    "model": row_name, "kind": kind,
                    "MAE": mean_absolute_error(yte, pred), "MSE": mean_squared_error(yte, pred),
                    "fit_s": round(spent.get("tune_s", 0) + fit_s if key == "refit" else fit_s,
                                   2),
                    "best_params": " ".join(f"{_short_name(k)}={_short(v)}"
                                            for k, v in params.items()),
                })
        table = _results_table(rows, exp, Xtr, ytr, Xte, yte, predictions, say)

        # 3. the files, into the staging folder; the manifest last, then into place
        table.to_csv(staging / "results.csv", index=False)
        _checkpoint("results")
        pd.DataFrame({"y": yte, **predictions}).to_csv(staging / "predictions.csv")
        clock = time.perf_counter()
        plots = _plots(exp, frame, Xtr, fitted, predictions, table, staging)
        _save_models(fitted, exp, staging, grid.freq, features)
        (staging / "experiment.json").write_text(exp.model_dump_json(indent=2))
        timings["outputs_s"] = time.perf_counter() - clock
        if parent:
            clock = time.perf_counter()
            _finish_tracking(parent, exp, table, fitted, plots, Xte, staging)
            timings["tracking_s"] = time.perf_counter() - clock
        (staging / "timings.json").write_text(json.dumps(_rounded(timings), indent=2))
        _say_timings(timings, say)
        del storage  # closes the studies' database before its folder moves
        _publish(staging, out, exp, fitted, study_file, say)
    except BaseException as exc:
        if parent:
            from skrnn.tracking import end_unfinished_runs

            end_unfinished_runs(parent, "KILLED" if interrupted(exc) else "FAILED")
        if (staging / MANIFEST).is_file() and not out.exists():
            os.replace(staging, out)  # interrupted between the two renames: finish
        else:
            _abandon(staging, out, study_file if tuned else None)
        raise
    return table


def interrupted(exc):
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt.

    A Ctrl-C inside a library's cleanup can surface as another error (Optuna, hit
    during a trial's final commit, raises UnboundLocalError from its ``finally``).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
