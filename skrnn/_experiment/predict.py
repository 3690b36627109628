"""Forecasts from a saved run (``skrnn predict``): the next step of every series."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from skrnn._experiment.config import DataConfig, ExperimentError
from skrnn._experiment.data import _check_values, check_panel, read_csv
from skrnn._experiment.run_folder import check_run

_UNSET = object()

def forecast_next(model_path, data_path, *, date=None, group=None, value=None,
                  fill_gaps=_UNSET, sep=None, date_format=None):
    """Next-step forecast of every series in a CSV with a model saved by a run.

    The CSV is checked as ``skrnn run`` checks its data (group keys as strings, no
    infinite or absurd values, one row per series and date on the run's date grid;
    gaps and empty cells refused unless filled), and each forecast comes from the
    series' latest window. The window layout, the grid step and ``fill_gaps`` come
    from the run (``models/windows.json``); ``date``, ``group``, ``value``,
    ``fill_gaps``, ``sep`` and ``date_format`` override them.

    Returns
    -------
    forecasts : DataFrame
        One row per series: ``[group,] date`` (the next date) and ``forecast``.
    """
    from skrnn.lags import lag_names

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
    if meta.get("n_step_features", 1) != 1:
        raise ExperimentError(
            f"{model_path.name} reads windows with {meta['n_step_features']} features per step "
            "(calendar or covariate features): skrnn predict builds value-only windows; "
            "forecast with the model from Python (make_supervised with the same features)")
    cfg = DataConfig(
        source="csv", path=str(data_path), date=date or meta["date"],
        group=group or meta["group"], value=value or meta["value"],
        fill_gaps=meta.get("fill_gaps") if fill_gaps is _UNSET else fill_gaps,
        sep=sep or meta.get("sep") or ",", date_format=date_format or meta.get("date_format"))
    model = load_model(model_path)
    frame = read_csv(Path(data_path), cfg)
    if cfg.group:
        frame[cfg.group] = frame[cfg.group].astype(str)
    frame = _check_values(frame, cfg, Path(data_path)).reset_index(drop=True)
    grid = check_panel(frame, cfg, freq=meta.get("freq"))
    values = grid.values(frame[[cfg.value]].to_numpy(), cfg.fill_gaps)[:, 0]
    L = meta["max_lags"]
    names = list(getattr(model, "feature_names_in_",
                         lag_names([cfg.value], range(L, 0, -1))))
    step = pd.tseries.frequencies.to_offset(meta["freq"]) if meta.get("freq") else grid.freq
    labels = grid.labels if grid.labels is not None else [None]
    rows, windows = [], []
    for g, label in enumerate(labels):
        first, n = int(grid.starts[g]), int(grid.lengths[g])
        if n < L:
            raise ExperimentError(
                f"series {label!r} has {n} dates; the model needs the last {L}"
                if cfg.group else f"the series has {n} dates; the model needs the last {L}")
        windows.append(values[first + n - L: first + n])  # the latest window, oldest first
        last = pd.Timestamp(frame[cfg.date].iloc[grid.src[first + n - 1]])
        rows.append({**({cfg.group: label} if cfg.group else {}),
                     cfg.date: last + step if step is not None else pd.NaT})
    # indexed like the run's windows: (target date[, series]), which per-series scaling reads
    keys = [pd.DatetimeIndex([r[cfg.date] for r in rows])]
    keys += [pd.Index([str(r[cfg.group]) for r in rows])] if cfg.group else []
    index = pd.MultiIndex.from_arrays(keys, names=[meta["date"]] + (
        [meta["group"]] if cfg.group else []))
    X = pd.DataFrame(np.vstack(windows), columns=names, index=index)
    out = pd.DataFrame(rows)
    out["forecast"] = np.asarray(model.predict(X)).ravel()
    return out


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
