"""An experiment's data: reading it (bundled, generated or a user's CSV), its checks
(values, covariates, the per-series date grid), its digest, the lag windows and the
split by date."""

from pathlib import Path

import numpy as np
import pandas as pd

from skrnn._experiment.config import ExperimentError

# Values this large are refused as absurd: beyond 2**53 (~9e15) float64 no longer holds
# every integer, so counts and their errors are silently rounded, and squared errors of
# such values overflow float32 networks.
ABSURD = 1e15


def load_data(cfg, base_dir=Path("."), seed=0, columns=()):
    """The long frame ``(date, [group], value)`` an experiment works on, checked and sorted.

    ``skrnn run``, ``skrnn predict`` and ``skrnn predict-panel`` read a user's file here
    (CSV, or Parquet by its ``.parquet`` suffix: :func:`read_table`). Group keys are
    strings; infinite and absurd values (``|x| >= 1e15``) are refused
    with the file's line numbers; rows with an empty value are refused like missing
    dates unless ``cfg.fill_gaps`` is set, in which case they become gaps to fill.
    """
    from skrnn import datasets

    path = None
    if cfg.source == "generated":
        frame = datasets.make_count_panel(**{"random_state": seed, **cfg.params})
    elif cfg.source == "sktime":
        frame = getattr(datasets, f"load_{cfg.dataset}")()
    else:
        path = Path(cfg.path)
        if not path.is_absolute():
            path = base_dir / path
        frame = read_table(path, cfg, columns)
    missing = [c for c in (cfg.date, cfg.group, cfg.value) if c and c not in frame.columns]
    if missing:
        raise ExperimentError(
            f"the data has no column(s) {missing}; its columns are {list(frame.columns)}. "
            "Set data.date / data.group / data.value."
        )
    if cfg.group:
        frame[cfg.group] = frame[cfg.group].astype(str)
    frame = _check_values(frame, cfg, path)
    keys = [c for c in (cfg.group, cfg.date) if c]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def is_parquet(path):
    return str(path).lower().endswith(".parquet")


def read_table(path, cfg, columns=()):
    """Read a user's CSV, or Parquet file (by its suffix), as ``cfg`` describes it.

    Only the date, group, value and numeric ``columns`` (covariates) are read, so the
    memory is bounded by them. Group keys are read as strings (``"007"`` and ``"7"`` are
    two series), dates are parsed (``cfg.date_format``; a column of numbers is read as
    their text, never as nanoseconds since 1970), and every value must be a number or
    empty; offending cells are named by their line (CSV) or row (Parquet).
    """
    from skrnn.datasets import _check_series_frame, read_series_csv

    if not Path(path).is_file():
        raise ExperimentError(f"data file not found: {path}")
    keys = [c for c in (cfg.date, cfg.group, cfg.value) if c]
    if len(set(keys)) < len(keys):
        raise ExperimentError(
            f"the date, group and value columns must be different columns; got {keys} "
            "(--date-col / --group-col / --value-col, data.date / data.group / data.value)")
    value = [cfg.value, *[c for c in columns if c not in (cfg.value, cfg.date, cfg.group)]]
    wanted = list(dict.fromkeys([cfg.date, *([cfg.group] if cfg.group else []), *value]))
    try:
        if is_parquet(path):
            frame = _read_parquet(path, wanted)
            return _check_series_frame(frame, path, date=cfg.date, value=value,
                                       group=cfg.group, date_format=cfg.date_format,
                                       where="row", first=0, who="data")
        # dates and keys as their text: "007" stays "007", 20200131 is not a count of ns
        kwargs = {"sep": cfg.sep, "dtype": {c: str for c in (cfg.date, cfg.group) if c}}
        header = pd.read_csv(path, sep=cfg.sep, nrows=0).columns
        if set(wanted) <= set(header):
            kwargs["usecols"] = wanted
        else:  # the reader names the missing columns (and a wrong separator): no rows needed
            kwargs["nrows"] = 0
        return read_series_csv(path, date=cfg.date, value=value, group=cfg.group,
                               date_format=cfg.date_format, **kwargs)
    except ValueError as exc:
        msg = str(exc).replace("date_format=", "--date-format / data.date_format ")
        msg = msg.replace("sep=", "--sep / data.sep = ")
        raise ExperimentError(msg) from None


def _read_parquet(path, wanted):
    """The ``wanted`` columns of a Parquet file (the others are not read)."""
    from skrnn._optional import require

    require("pyarrow", by=f"reading the Parquet file {path}")
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow's own errors: not a Parquet file, damaged
        raise ExperimentError(f"{path} is not a readable Parquet file: {exc}") from None
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ExperimentError(f"the data has no column(s) {missing}; its columns are "
                              f"{[n for n in names if not n.startswith('__index_level_')]}. "
                              "Set data.date / data.group / data.value.")
    return pd.read_parquet(path, columns=wanted)


def _value_masks(numbers):
    return {"missing": np.isnan(numbers), "bad": np.isinf(numbers) | (
        np.isfinite(numbers) & (np.abs(numbers) >= ABSURD))}


def _check_values(frame, cfg, path=None):
    """Refuse infinite/absurd values; empty cells follow the rule of missing dates."""
    masks = _value_masks(frame[cfg.value].to_numpy(dtype=np.float64))
    refuse_missing = masks["missing"].any() and cfg.fill_gaps is None
    if not masks["bad"].any() and not refuse_missing:
        # with fill_gaps, a row without a value is a missing date of its series
        return frame[~masks["missing"]].copy()
    if path is not None and is_parquet(path):  # the file's rows, before sorting
        raw = pd.read_parquet(path, columns=[cfg.value])[cfg.value]
        masks = _value_masks(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64))
        where, offset = f"{path}: row", 0
    elif path is not None:  # locate the offending cells in the file itself
        raw = pd.read_csv(path, sep=cfg.sep, usecols=[cfg.value], dtype=str,
                          keep_default_na=False)[cfg.value]
        masks = _value_masks(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64))
        where, offset = f"{path}: line", 2  # header on line 1
    else:
        raw, where, offset = frame[cfg.value], "row", 0
    kind = "bad" if masks["bad"].any() else "missing"
    rows = np.flatnonzero(masks[kind])
    examples = ", ".join(f"{where} {r + offset} ({str(raw.iloc[r])!r})" for r in rows[:3])
    if kind == "bad":
        raise ExperimentError(
            f"{len(rows)} value(s) of {cfg.value!r} are infinite or absurd (|value| >= "
            f"{ABSURD:.0e}), e.g. {examples}; fix them or rescale the data."
        )
    raise ExperimentError(
        f"{len(rows)} empty value cell(s) in {cfg.value!r}, e.g. {examples}; an empty value "
        "is a gap in its series, like a missing date: pass --fill-gaps (a number, ffill or "
        "interpolate; data.fill_gaps in the experiment) or fix the data."
    )


def check_panel(frame, cfg, freq=None):
    """The regular per-series date grid of ``frame`` (duplicates, gaps and irregular
    dates refused unless ``cfg.fill_gaps``); ``grid.freq`` is its step.

    With ``freq`` (a model's: the step of its run's grid), data of a coarser frequency
    (weekly dates for a daily model) is refused, never re-gridded by filling its "gaps".
    """
    from skrnn._panel import build_grid, group_codes

    codes, labels = (group_codes(frame[cfg.group], cfg.group) if cfg.group else (None, None))

    def grid(fill_gaps):
        return build_grid(len(frame), codes, labels, times=frame[cfg.date], freq=freq,
                          fill_gaps=fill_gaps, param_date=cfg.date)

    try:
        try:
            found = grid(cfg.fill_gaps)
        except ValueError:
            if freq is not None and cfg.fill_gaps is None:
                _check_step(grid("ffill"), freq)  # gaps everywhere: another frequency?
            raise
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("Pass fill_gaps=<number>, 'ffill' or 'interpolate'",
                               "Pass --fill-gaps <number>, ffill or interpolate (data.fill_gaps)")
        raise ExperimentError(msg.replace("pass freq= explicitly or ", "")) from None
    if freq is not None:
        _check_step(found, freq)
    return found


def _check_step(grid, freq):
    """Refuse a grid on which no two dates of any series are one step apart: the data
    is of a coarser frequency than ``freq``, and filling its "gaps" would forecast from
    a made-up series."""
    real = np.flatnonzero(grid.src >= 0)
    same = grid.codes[real[1:]] == grid.codes[real[:-1]]
    steps = np.diff(real)[same]
    if steps.size and steps.min() > 1:
        freqstr = getattr(pd.tseries.frequencies.to_offset(freq), "freqstr", str(freq))
        raise ExperimentError(
            f"every series has gaps between all its dates on the model's {freqstr!r} grid "
            f"(at least {int(steps.min())} steps apart): the data is of another frequency "
            f"than the model's ({freqstr!r}, its run's); give it data of that frequency "
            f"(dates are not re-gridded).")


def data_hash(frame):
    """A digest of the checked data, part of every study's identity."""
    import hashlib

    digest = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(digest + repr(list(frame.columns)).encode()).hexdigest()


def _check_covariates(frame, cfg_data, features):
    """Every covariate a numeric column of the data without gaps; refuse anything else."""
    keys = {cfg_data.date, cfg_data.group, cfg_data.value}
    for what in ("known_future", "past_covariates", "static"):
        for col in (features.static_columns() if what == "static"
                    else getattr(features, what)):
            if col in keys:
                raise ExperimentError(
                    f"features.{what} lists {col!r}, which is the data's date, group or value "
                    "column; list other columns")
            if col not in frame.columns:
                raise ExperimentError(
                    f"features.{what} lists {col!r}, which is not a column of the data; its "
                    f"columns are {list(frame.columns)}")
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise ExperimentError(
                    f"features.{what}: column {col!r} has {int(bad.sum())} empty, non-numeric "
                    f"or infinite value(s), e.g. row {row} ({frame[col].iloc[row]!r})")
            frame[col] = values.astype(np.float64)


def _windows(frame, cfg_data, features, freq=None, dropna=True, as_windows=False):
    """Lag windows of ``features.max_lags`` steps inside each series (value, covariates,
    calendar features per step), indexed by (date[, group]); ``dropna=False`` keeps the
    rows without a target (the forecast dates of ``skrnn predict``).

    ``as_windows=True`` (the runner) gives them as a labelled
    :class:`~skrnn.windows.PanelWindows` (``index`` and ``columns`` as the DataFrame's)
    over one padded copy of the panel: O(panel) memory instead of the
    n_rows x (max_lags x n_step_features) matrix."""
    from skrnn.lags import make_supervised

    index = [cfg_data.date] + ([cfg_data.group] if cfg_data.group else [])
    data = frame.set_index(index)
    try:
        X, y = make_supervised(
            data, cfg_data.value, lags=features.max_lags, date=cfg_data.date,
            group=cfg_data.group, fill_gaps=cfg_data.fill_gaps, freq=freq,
            past_covariates=features.past_covariates or None,
            future_covariates=features.known_future or None,
            calendar=features.calendar or None, country=features.country,
            static=features.static_columns() or None,
            group_one_hot=features.static == "group", dropna=dropna, as_windows=as_windows)
    except (ValueError, TypeError, ImportError) as exc:
        raise ExperimentError(f"features: {exc}") from None
    return X, y


def _split_dates(X, cfg_split, date):
    dates = pd.DatetimeIndex(X.index.get_level_values(date))
    unique = dates.unique().sort_values()
    if cfg_split.test_start is not None:
        start = pd.Timestamp(cfg_split.test_start)
    else:
        if cfg_split.test_periods >= len(unique):
            raise ExperimentError(
                f"split.test_periods={cfg_split.test_periods} leaves no training dates: "
                f"the windows cover {len(unique)} dates."
            )
        start = unique[-cfg_split.test_periods]
    test = dates >= start
    if test.all() or not test.any():
        raise ExperimentError(
            f"the holdout starting {start.date()} leaves {int((~test).sum())} training and "
            f"{int(test.sum())} test rows; the windows span {unique[0].date()} to "
            f"{unique[-1].date()}."
        )
    train_dates = unique[unique < start]
    n_val = max(1, int(np.ceil(cfg_split.validation_fraction * len(train_dates))))
    if n_val >= len(train_dates):
        raise ExperimentError("split.validation_fraction leaves no dates to train on")
    return test, start, train_dates[-n_val]
