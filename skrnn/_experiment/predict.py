"""Forecasts from a saved run (``skrnn predict``): the next step of every series."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from skrnn._experiment.config import DataConfig, ExperimentError, FeaturesConfig
from skrnn._experiment.data import (
    _check_covariates,
    _check_values,
    _windows,
    check_panel,
    read_table,
)
from skrnn._experiment.run_folder import check_run

_UNSET = object()

def forecast_next(model_path, data_path, *, date=None, group=None, value=None,
                  fill_gaps=_UNSET, sep=None, date_format=None):
    """Next-step forecast of every series in a CSV with a model saved by a run.

    The CSV is checked as ``skrnn run`` checks its data (group keys as strings, no
    infinite or absurd values, one row per series and date on the run's date grid;
    gaps and empty cells refused unless filled), and each forecast comes from the
    series' latest window, built by the same code as the run's windows. The window
    layout (steps, step features), the grid step and ``fill_gaps`` come from the run
    (``models/windows.json``); ``date``, ``group``, ``value``, ``fill_gaps``, ``sep``
    and ``date_format`` override them.

    Step features are built as in the run: calendar features of each step's date (the
    forecast date's included), past covariates from the CSV's history, and
    known-future covariates, whose values on the forecast date come from the CSV's row
    of that date (its value cell left empty): each series needs one. Static features:
    the series' own static columns, read from the CSV (and checked constant within
    each series, as in the run), or the one-hot of the series over the run's series in
    the run's order (``groups`` in ``windows.json``): a series the run did not see is
    refused, since the model has no column for it.

    Returns
    -------
    forecasts : DataFrame
        One row per series: ``[group,] date`` (the next date) and ``forecast``.
    """
    model_path = Path(model_path)
    run_dir = model_path.parent.parent
    if model_path.parent.name != "models":
        raise ExperimentError(
            f"{model_path} is not a model of a run: use <run folder>/models/<model>.skops")
    manifest = check_run(run_dir)
    if not model_path.is_file():
        raise ExperimentError(f"{model_path} does not exist; this run's models: "
                              f"{sorted(manifest.get('models', {}))}")
    meta = json.loads((model_path.parent / "windows.json").read_text())
    features, one_hot = _step_features(meta, model_path)
    cfg = DataConfig(
        source="csv", path=str(data_path), date=date or meta["date"],
        group=group or meta["group"], value=value or meta["value"],
        fill_gaps=meta.get("fill_gaps") if fill_gaps is _UNSET else fill_gaps,
        sep=sep or meta.get("sep") or ",", date_format=date_format or meta.get("date_format"))
    model = load_model(model_path)
    frame = read_table(Path(data_path), cfg, features.known_future + features.past_covariates
                       + [c for c in features.static_columns() if c not in one_hot])
    if cfg.group:
        frame[cfg.group] = frame[cfg.group].astype(str)
    if one_hot:
        frame = _group_one_hot(frame, cfg, meta, one_hot)
    future = None
    if features.known_future:  # the forecast dates' rows: after each series' last value
        frame, future = _split_future(frame, cfg)
    frame = _check_values(frame, cfg, Path(data_path)).reset_index(drop=True)
    _check_covariates(frame, cfg, features)
    grid = check_panel(frame, cfg, freq=meta.get("freq"))
    static = _static_values(frame, grid, features.static_columns())
    L = meta["max_lags"]
    step = pd.tseries.frequencies.to_offset(meta["freq"]) if meta.get("freq") else grid.freq
    labels = grid.labels if grid.labels is not None else [None]
    dates = frame[cfg.date].to_numpy()
    rows, keep = [], np.zeros(len(frame), dtype=bool)
    for g, label in enumerate(labels):
        first, n = int(grid.starts[g]), int(grid.lengths[g])
        if n < L:
            raise ExperimentError(
                f"series {label!r} has {n} dates; the model needs the last {L}"
                if cfg.group else f"the series has {n} dates; the model needs the last {L}")
        # the latest window reads grid points n-L..n-1; keep the series from its last real
        # row at or before point n-L, so that filled gaps come out as in the run
        src = grid.src[first: first + n - L + 1]
        anchor = src[src >= 0][-1]
        mine = (frame[cfg.group].to_numpy() == label) if cfg.group else slice(None)
        keep[mine] = dates[mine] >= dates[anchor]
        last = pd.Timestamp(dates[grid.src[first + n - 1]])
        rows.append({**({cfg.group: label} if cfg.group else {}),
                     cfg.date: last + step if step is not None else pd.NaT})
    out = pd.DataFrame(rows)
    targets = out.assign(**{c: np.nan for c in [cfg.value, *features.past_covariates]},
                         **{c: static[:, j] for j, c in enumerate(features.static_columns())})
    if features.known_future:
        targets = _known_future(targets, future, cfg, features.known_future)
    # the forecast dates' rows hold no value: windows are built with them, then kept alone
    tail = pd.concat([frame[keep], targets], ignore_index=True)
    X, _ = _windows(tail, cfg, features, freq=step, dropna=False)
    keys = [cfg.date] + ([cfg.group] if cfg.group else [])
    X = X.loc[pd.MultiIndex.from_frame(out[keys]) if cfg.group else pd.Index(out[cfg.date])]
    if X.isna().to_numpy().any():  # a guard: the checks above leave no hole in a window
        raise ExperimentError("a latest window has missing values; check the data's gaps")
    # indexed like the run's windows: (target date[, series]), which per-series scaling
    # reads by the run's names; columns named as the model saw them
    X.index = X.index.set_names([meta["date"]] + ([meta["group"]] if cfg.group else []))
    names = getattr(model, "feature_names_in_", None)
    if names is None:  # a target transformer around the fitted pipeline
        names = getattr(getattr(model, "regressor_", None), "feature_names_in_", None)
    if names is not None and len(names) == X.shape[1]:
        X.columns = list(names)
    out["forecast"] = np.asarray(model.predict(X)).ravel()
    return out


def _step_features(meta, model_path):
    """The run's step features (``windows.json``), as the features of its windows, and
    the names of the columns standing for the series one-hot (``static = "group"``):
    the one-hot is built as static columns, one per series of the run, in its order."""
    static, one_hot = meta.get("static") or [], []
    if static == "group":
        if meta.get("groups") is None:
            raise ExperimentError(
                f"{model_path.name} reads a one-hot of the series (features.static = "
                "\"group\"), and its run did not record the series' order (a run of an "
                "older skrnn): run the experiment again to forecast with skrnn predict")
        taken = {meta["date"], meta["group"], meta["value"], *meta.get("known_future", []),
                 *meta.get("past_covariates", [])}
        one_hot = [f"{meta['group']}_{g}" for g in meta["groups"]]
        while taken & set(one_hot):  # never a name of the data's own columns
            one_hot = [f"_{c}" for c in one_hot]
        static = one_hot
    features = FeaturesConfig(
        max_lags=meta["max_lags"], lags=meta["max_lags"], scaling="none",
        calendar=meta.get("calendar", []), country=meta.get("country"),
        known_future=meta.get("known_future", []),
        past_covariates=meta.get("past_covariates", []), static=static)
    if features.n_step_features() != meta.get("n_step_features", 1):
        raise ExperimentError(
            f"{model_path.name} reads windows with {meta['n_step_features']} features per "
            "step, and its run did not record which (a run of an older skrnn): run the "
            "experiment again to forecast with skrnn predict")
    return features, one_hot


def _group_one_hot(frame, cfg, meta, columns):
    """``frame`` with the run's series one-hot as columns; a series the run did not see
    is refused (the model has no column for it)."""
    if not cfg.group:
        raise ExperimentError("this model reads a one-hot of the series: the data needs "
                              f"its series column ({meta['group']!r}, or --group)")
    known = pd.Index(meta["groups"], dtype=object)
    where = known.get_indexer(pd.Index(frame[cfg.group], dtype=object))
    if (where < 0).any():
        new = pd.unique(frame[cfg.group][where < 0])
        raise ExperimentError(
            f"series {[str(g) for g in new[:5]]} of the data were not in the run "
            f"({len(new)} unknown): the model reads a one-hot of the run's {len(known)} "
            "series (features.static = \"group\") and has no column for them; forecast the "
            "run's series only, or run the experiment again on data that holds them")
    flags = np.zeros((len(frame), len(known)))
    flags[np.arange(len(frame)), where] = 1.0
    return frame.assign(**dict(zip(columns, flags.T)))


def _static_values(frame, grid, columns):
    """Each series' value of its static ``columns``, ``(n_series, k)`` in the grid's
    order; a column that varies within a series is refused, as in the run."""
    from skrnn._panel import series_constants

    if not columns:
        return np.empty((len(grid.lengths), 0))
    try:
        return series_constants(grid, frame[columns].to_numpy(dtype=np.float64), columns,
                                "static")
    except ValueError as exc:
        raise ExperimentError(f"features: {exc}") from None


def _split_future(frame, cfg):
    """``frame`` up to each series' last value, and the rows after it (known-future rows)."""
    dates = pd.to_datetime(frame[cfg.date])
    valued = frame[cfg.value].notna()
    if cfg.group:
        last = dates.where(valued).groupby(frame[cfg.group]).transform("max")
    else:
        last = pd.Series(dates[valued].max(), index=frame.index)
    after = dates > last
    return frame[~after].copy(), frame[after]


def _known_future(targets, future, cfg, columns):
    """The known-future values of each forecast date, from the CSV's rows of that date."""
    keys = [cfg.date] + ([cfg.group] if cfg.group else [])
    found = targets.drop(columns=columns, errors="ignore").merge(
        future[keys + columns], on=keys, how="left", validate="one_to_one")
    for col in columns:
        values = pd.to_numeric(found[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            row = found[bad].iloc[0]
            where = f" of series {row[cfg.group]!r}" if cfg.group else ""
            raise ExperimentError(
                f"the known-future column {col!r} has no value for the forecast date "
                f"{pd.Timestamp(row[cfg.date]).date()}{where}: add that date's row to the CSV "
                f"with its {', '.join(map(repr, columns))} (the value cell left empty)")
        found[col] = values
    return found


def load_model(path):
    """A regressor saved by a run; any problem is named with the file, never its bytes."""
    from skrnn import persistence

    try:
        model = persistence.load(path)
    except (ValueError, TypeError, OSError) as exc:
        raise ExperimentError(str(exc)) from None
    if not hasattr(model, "predict"):
        raise ExperimentError(
            f"model file {str(path)!r} holds a {type(model).__name__}, not a regressor")
    return model
