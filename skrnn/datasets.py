"""Small time-series data sets: generators, offline loaders and a CSV reader.

Every frame returned here is in the long layout the lag tools take: one row per series and
time, a ``date`` column, optionally a group column, and the value column(s). Pass their
names to :class:`~skrnn.LagFeatures` / :func:`~skrnn.make_supervised` as ``date=``,
``group=`` and ``target=``.
"""

import os
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = [
    "make_sine_batch",
    "make_count_panel",
    "load_airline",
    "load_lynx",
    "load_shampoo_sales",
    "load_sales_panel",
    "read_series_csv",
]


def make_sine_batch(batch_size, n_steps=50, n_ahead=1, random_state=None):
    """Batch of noisy two-sine series, the classic RNN teaching example.

    Each series is ``n_steps + n_ahead`` points of ::

        t = np.linspace(0, 1, n_steps + n_ahead)
        0.5 * sin((t - o1) * (10 * f1 + 10)) + 0.2 * sin((t - o2) * (20 * f2 + 20))
        + 0.1 * (u - 0.5)

    with ``f1, f2, o1, o2`` drawn uniformly in [0, 1) per series and ``u`` per value (the
    generator of Géron, *Hands-On Machine Learning*, ch. 15, where the 51st value of a
    51-point series is the target; the last-value forecast has an MSE of about 0.020).

    Parameters
    ----------
    batch_size : int
        Number of series.
    n_steps : int, default=50
        Input length; ``X`` has one column per step, oldest first.
    n_ahead : int, default=1
        Number of future values to predict.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    X : ndarray of shape (batch_size, n_steps)
        The first ``n_steps`` values of each series.
    y : ndarray of shape (batch_size,) or (batch_size, n_ahead)
        The next value (``n_ahead=1``) or the next ``n_ahead`` values.

    Examples
    --------
    >>> from skrnn.datasets import make_sine_batch
    >>> X, y = make_sine_batch(4, n_steps=20, n_ahead=5, random_state=0)
    >>> X.shape, y.shape
    ((4, 20), (4, 5))
    """
    for name, v, low in (("batch_size", batch_size, 1), ("n_steps", n_steps, 1),
                         ("n_ahead", n_ahead, 1)):
        if not isinstance(v, Integral) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}.")
    rng = check_random_state(random_state)
    total = n_steps + n_ahead
    f1, f2, o1, o2 = rng.rand(4, batch_size, 1)
    t = np.linspace(0, 1, total)
    series = 0.5 * np.sin((t - o1) * (f1 * 10 + 10))
    series += 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
    series += 0.1 * (rng.rand(batch_size, total) - 0.5)
    X, y = series[:, :n_steps], series[:, n_steps:]
    return X, (y[:, 0] if n_ahead == 1 else y)


def make_count_panel(n_groups=5, start="2020-01-01", periods=730, *, zero_group=False,
                     random_state=None):
    """Daily count panel with trend, weekly and yearly seasonality and Poisson noise.

    Shaped like crime counts per police district and day. For district ``g`` and day ``d``
    the rate is ::

        level_g * exp(trend_g * years + a_g * cos(2 pi (weekday - peak_g) / 7)
                      + b_g * sin(2 pi dayofyear / 365.25 + phase_g))

    with ``level_g`` in [5, 40), ``trend_g`` in [-0.1, 0.3) per year, ``a_g, b_g`` in
    [0.1, 0.4), and the count is Poisson with that rate.

    Parameters
    ----------
    n_groups : int, default=5
        Number of districts, labelled ``"D01"``, ``"D02"``, ...
    start : str or Timestamp, default="2020-01-01"
        First day.
    periods : int, default=730
        Number of days per district.
    zero_group : bool, default=False
        Make the last district all zeros (a constant series, to exercise scalers).
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    frame : DataFrame of shape (n_groups * periods, 3)
        Columns ``date`` (datetime64), ``district`` (str) and ``crimes`` (int64), sorted by
        date then district (use ``group="district", date="date"`` with the lag tools).

    Examples
    --------
    >>> from skrnn.datasets import make_count_panel
    >>> df = make_count_panel(n_groups=2, periods=3, random_state=0)
    >>> df.columns.tolist(), df.shape
    (['date', 'district', 'crimes'], (6, 3))
    """
    for name, v in (("n_groups", n_groups), ("periods", periods)):
        if not isinstance(v, Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}.")
    rng = check_random_state(random_state)
    dates = pd.date_range(start, periods=periods, freq="D")
    level = rng.uniform(5, 40, n_groups)
    trend = rng.uniform(-0.1, 0.3, n_groups)
    week_amp, year_amp = rng.uniform(0.1, 0.4, (2, n_groups))
    peak = rng.randint(0, 7, n_groups)
    phase = rng.uniform(0, 2 * np.pi, n_groups)
    years = (np.arange(periods) / 365.25)[:, None]
    weekday = dates.dayofweek.to_numpy()[:, None]
    doy = dates.dayofyear.to_numpy()[:, None]
    log_rate = (
        trend * years
        + week_amp * np.cos(2 * np.pi * (weekday - peak) / 7)
        + year_amp * np.sin(2 * np.pi * doy / 365.25 + phase)
    )
    rate = level * np.exp(log_rate)
    if zero_group:
        rate[:, -1] = 0.0
    counts = rng.poisson(rate)  # (periods, n_groups)
    districts = np.array([f"D{g + 1:02d}" for g in range(n_groups)], dtype=object)
    return pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), n_groups),
        "district": np.tile(districts, periods),
        "crimes": counts.ravel().astype(np.int64),
    })


def _series_frame(series, description):
    """A sktime series (PeriodIndex) as a long frame with ``date`` and ``value``."""
    index = series.index
    dates = index.to_timestamp() if isinstance(index, pd.PeriodIndex) else index
    frame = pd.DataFrame({"date": np.asarray(dates), "value": series.to_numpy(dtype=float)})
    frame.attrs["description"] = description
    return frame


def _sktime_datasets():
    from skrnn._optional import require

    require("sktime", by="skrnn.datasets' sktime loaders")
    import sktime.datasets  # heavy: only imported when a loader is called

    return sktime.datasets


def load_airline():
    """Monthly international airline passengers, 1949-1960 (Box & Jenkins), offline.

    Returns
    -------
    frame : DataFrame of shape (144, 2)
        Columns ``date`` (month start) and ``value`` (thousands of passengers).

    Examples
    --------
    >>> from skrnn.datasets import load_airline
    >>> load_airline().shape
    (144, 2)
    """
    return _series_frame(_sktime_datasets().load_airline(),
                         "Monthly airline passengers (thousands), 1949-1960")


def load_lynx():
    """Annual Canadian lynx trappings, 1821-1934, offline.

    Returns
    -------
    frame : DataFrame of shape (114, 2)
        Columns ``date`` (year start) and ``value`` (number of lynx trapped).
    """
    return _series_frame(_sktime_datasets().load_lynx(),
                         "Annual lynx trappings in Canada, 1821-1934")


def load_shampoo_sales():
    """Monthly shampoo sales over three years, offline.

    Returns
    -------
    frame : DataFrame of shape (36, 2)
        Columns ``date`` (month start) and ``value`` (sales).
    """
    return _series_frame(_sktime_datasets().load_shampoo_sales(),
                         "Monthly shampoo sales over three years")


def load_sales_panel():
    """sktime's hierarchical toy sales as a panel: 4 product groups, 60 months each.

    Returns
    -------
    frame : DataFrame of shape (240, 3)
        Columns ``date`` (month start), ``series`` (product group) and ``value`` (sales),
        sorted by series then date.
    """
    raw = _sktime_datasets().load_hierarchical_sales_toydata()
    dates = raw.index.get_level_values(-1)
    dates = dates.to_timestamp() if isinstance(dates, pd.PeriodIndex) else dates
    frame = pd.DataFrame({
        "date": np.asarray(dates),
        "series": np.asarray(raw.index.get_level_values(-2), dtype=object),
        "value": raw.iloc[:, 0].to_numpy(dtype=float),
    })
    frame.attrs["description"] = "sktime hierarchical sales toy data, monthly"
    return frame


def read_series_csv(path, *, date, value, group=None, date_format=None, dayfirst=False,
                    **read_csv_kwargs):
    """Read a long time-series CSV and check it before it reaches the lag tools.

    Parameters
    ----------
    path : str or path-like
        CSV file.
    date : str
        Column of time stamps.
    value : str or list of str
        Numeric column(s) to keep. Empty cells become NaN; any other non-number is an error.
    group : str, default=None
        Column naming the series of each row (kept as is).
    date_format : str, default=None
        ``strftime`` format of the dates, e.g. ``"%d/%m/%Y"``; None lets pandas infer it.
    dayfirst : bool, default=False
        Read ``01/02/2020`` as 1 February when the format is inferred.
    **read_csv_kwargs
        Passed to :func:`pandas.read_csv` (e.g. ``sep=";"``).

    Returns
    -------
    frame : DataFrame
        The ``date`` column (parsed to datetime64), the ``group`` column (if given) and
        the value column(s) as float64, under their names in the file, sorted by group then
        date, with a fresh RangeIndex.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If a column is missing, a date cannot be parsed, or a value is not a number.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"read_series_csv: no file at {path!r} (resolved to {os.path.abspath(path)!r})."
        )
    frame = pd.read_csv(path, **read_csv_kwargs)
    return _check_series_frame(frame, path, date=date, value=value, group=group,
                               date_format=date_format, dayfirst=dayfirst)


def _check_series_frame(frame, path, *, date, value, group=None, date_format=None,
                        dayfirst=False, where="line", first=2, who="read_series_csv"):
    """The checks of :func:`read_series_csv` on a table read from a file (CSV, Parquet).

    The columns are there; the dates parse (a column of numbers is read as their text,
    so 20200131 is a date and 7 is refused, never nanoseconds since 1970); every value
    is a number or empty. Offending cells are named by ``where`` and their number in
    the file: the CSV's lines from ``first=2`` (under the header), a Parquet file's
    rows from 0. Returns the table as :func:`read_series_csv` does.
    """
    values = [value] if isinstance(value, str) else list(value)
    wanted = [date] + ([] if group is None else [group]) + values
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        hint = ""
        if frame.shape[1] == 1:
            hint = " Only one column was found: is the separator different (e.g. sep=';')?"
        raise ValueError(
            f"{who}: column(s) {missing} not in {os.fspath(path)!r}; its columns are "
            f"{list(frame.columns)}.{hint}"
        )
    frame = frame[wanted].copy()
    raw_dates = frame[date]
    if pd.api.types.is_numeric_dtype(raw_dates) and not pd.api.types.is_bool_dtype(raw_dates):
        raw_dates = raw_dates.astype(object).where(raw_dates.isna(), raw_dates.astype(str))
    parsed = pd.to_datetime(raw_dates, format=date_format, dayfirst=dayfirst, errors="coerce")
    bad = parsed.isna() & raw_dates.notna()
    if bad.any() or raw_dates.isna().any():
        rows = np.flatnonzero((bad | raw_dates.isna()).to_numpy())[:3]
        examples = [(int(r) + first, raw_dates.iloc[r]) for r in rows]
        raise ValueError(
            f"{who}: {int(bad.sum() + raw_dates.isna().sum())} value(s) of "
            f"date={date!r} could not be parsed as dates, e.g. ({where}, value) {examples}. "
            "Pass date_format= (e.g. '%d/%m/%Y') or fix the file."
        )
    frame[date] = parsed
    for col in values:
        numbers = pd.to_numeric(frame[col], errors="coerce")
        bad = numbers.isna() & frame[col].notna()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())[:3]
            examples = [(int(r) + first, frame[col].iloc[r]) for r in rows]
            raise ValueError(
                f"{who}: {int(bad.sum())} value(s) of column {col!r} are not "
                f"numbers, e.g. ({where}, value) {examples}. Fix them or pass na_values=."
            )
        frame[col] = numbers.astype(np.float64)
    keys = [date] if group is None else [group, date]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)
