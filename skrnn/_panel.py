"""Panel plumbing shared by the lag, scaling and plotting tools.

A panel is a long table of several time series stacked on top of each other. This module
finds where each row's series (group) and time come from, checks the time stamps, and lays
the rows out on a regular per-group grid on which a lag is a fixed offset. Lags are always
taken on that grid, so they can neither cross a series boundary nor silently skip a missing
date.
"""

from collections import Counter
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd

_FILL_GAP_OPTIONS = ("ffill", "interpolate")


def lookup_key(data, key, param):
    """Return the values of the column or index level ``key`` of ``data`` as an Index.

    Columns win over index levels of the same name, as in ``DataFrame.groupby``.
    """
    if isinstance(data, pd.DataFrame):
        try:
            if key in data.columns:
                return pd.Index(data[key]), "column"
        except TypeError:  # unhashable key: not a column name
            pass
    names = list(data.index.names)
    if key is not None and key in names:
        return data.index.get_level_values(key), "level"
    columns = list(data.columns) if isinstance(data, pd.DataFrame) else []
    raise ValueError(
        f"{param}={key!r} is neither a column nor an index level of the data; "
        f"columns are {columns}, index levels are {names}."
    )


def group_codes(labels, param="groups"):
    """Integer codes (0..n_groups-1, in sorted label order where possible) and labels."""
    labels = pd.Index(labels)
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:  # labels of mixed, unorderable types
        codes, uniques = pd.factorize(labels, sort=False)
    if (codes < 0).any():
        raise ValueError(
            f"{param} has {int((codes < 0).sum())} missing label(s) (NaN/None); every row "
            "must belong to a series."
        )
    return codes.astype(np.intp), uniques


@dataclass
class Grid:
    """Rows laid out on a regular per-group time grid.

    Grid points of one group are contiguous and in time order. ``src[g]`` is the input row
    at grid point ``g`` (-1 for a filled gap) and ``row[i]`` the grid point of input row i.
    """

    codes: np.ndarray
    pos: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    src: np.ndarray
    row: np.ndarray
    labels: pd.Index
    freq: object = None  # the DateOffset of a datetime grid (None otherwise)

    @property
    def n_points(self):
        return self.codes.shape[0]

    def values(self, X, fill_gaps):
        """Values of the input rows ``X`` (n, c) at every grid point, gaps filled."""
        X = np.asarray(X, dtype=np.float64)
        real = self.src >= 0
        out = np.empty((self.n_points, X.shape[1]), dtype=np.float64)
        out[real] = X[self.src[real]]
        if real.all():
            return out
        idx = np.arange(self.n_points)
        # A group's first and last grid points are always real rows, so the nearest real
        # point before (after) a gap is always inside the same group.
        prev = np.maximum.accumulate(np.where(real, idx, -1))
        if fill_gaps == "ffill":
            out[~real] = out[prev[~real]]
        elif fill_gaps == "interpolate":
            nxt = np.minimum.accumulate(np.where(real, idx, self.n_points)[::-1])[::-1]
            gap = ~real
            w = ((idx[gap] - prev[gap]) / (nxt[gap] - prev[gap]))[:, None]
            out[gap] = (1.0 - w) * out[prev[gap]] + w * out[nxt[gap]]
        else:
            out[~real] = float(fill_gaps)
        return out


def series_constants(grid, values, names, param):
    """Each series' value of columns constant within it, ``(n_series, k)``; else an error."""
    codes = grid.codes[grid.row]
    first = np.empty((len(grid.lengths), values.shape[1]))
    first[codes[::-1]] = values[::-1]  # the first row of each series is written last
    ref = first[codes]
    same = (values == ref) | (np.isnan(values) & np.isnan(ref))
    if not same.all():
        i, j = np.argwhere(~same)[0]
        raise ValueError(
            f"{param}: column {names[j]!r} is not constant within the series"
            f"{_in_group(grid.labels, codes[i])} (it holds {ref[i, j]} and {values[i, j]}); "
            "a static column holds one value per series."
        )
    return first


def one_hot(labels, categories, param):
    """One-hot rows ``(len(labels), len(categories))`` of series labels."""
    idx = pd.Index(categories).get_indexer(pd.Index(labels, dtype=object))
    if (idx < 0).any():
        unseen = [str(g) for g in np.asarray(labels)[idx < 0][:5]]
        raise ValueError(
            f"{param}: series {unseen} were not seen in fit; the one-hot columns are those "
            f"of the {len(categories)} series fitted on."
        )
    out = np.zeros((len(idx), len(categories)))
    out[np.arange(len(idx)), idx] = 1.0
    return out


def static_features(grid, values, names, categories):
    """Per grid point ``(n_points, k)``: each series' constant ``values`` (input rows'
    columns ``names``), then a one-hot of its series over ``categories``; None if neither.
    """
    static = [] if values is None else [series_constants(grid, values, names, "static")]
    if categories is not None:
        if grid.labels is None:
            raise ValueError("group_one_hot=True needs the series of each row: pass group= "
                             "(a column or index level) or groups=.")
        static.append(one_hot(grid.labels, categories, "group_one_hot"))
    return np.hstack(static)[grid.codes] if static else None


def _grid_positions(rel, step, message):
    """Each key's position on a grid of fixed ``step`` from its series' first key
    (``rel``: key minus that first key); ``message(i)`` names the first key off it."""
    bad = rel % step != 0
    if bad.any():
        raise ValueError(message(int(np.flatnonzero(bad)[0])))
    return rel // step


def _in_group(labels, g):
    """' of group <label>' for messages, empty for a single unnamed series."""
    if labels is None:
        return ""
    label = labels[g]
    return f" of group {label.item() if isinstance(label, np.generic) else label!r}"


def _normalise_times(times, param):
    """Time stamps as sortable int64 plus their kind ("datetime", "period" or "int")."""
    times = pd.Index(times)
    if times.isna().any():
        raise ValueError(
            f"{param} has {int(times.isna().sum())} missing time stamp(s) (NaT/NaN); "
            "every row needs a time."
        )
    if isinstance(times, pd.DatetimeIndex):
        times = times.as_unit("ns")  # pandas 3 may parse to s/ms/us; keys below are ns
        return times, times.asi8, "datetime"
    if isinstance(times, pd.PeriodIndex):
        return times, times.asi8, "period"
    if pd.api.types.is_integer_dtype(times.dtype):
        return times, times.to_numpy(dtype=np.int64), "int"
    raise TypeError(
        f"{param} must hold datetimes, periods or integers, got dtype {times.dtype}. "
        "Convert it first, e.g. with pandas.to_datetime."
    )


def infer_frequency(times):
    """The step of one series' sorted time stamps, or None when it cannot be told.

    The one place skrnn infers a frequency (the grid here, the forecaster's horizon,
    the plots' future dates, the CLI's next date): the index's own ``freq`` when it
    has one, else what ``pandas.infer_freq`` finds in three or more stamps.

    Parameters
    ----------
    times : DatetimeIndex or array-like of datetimes

    Returns
    -------
    offset : pandas DateOffset or None
    """
    freq = getattr(times, "freq", None)
    if freq is None and len(times) >= 3:
        freq = pd.infer_freq(times)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq)


def _infer_offset(times, keys, codes, starts, ends):
    """The most common frequency pandas infers over the groups, else the smallest step."""
    found = Counter()
    for s, e in zip(starts, ends):
        if e - s >= 3:
            freq = infer_frequency(times[s:e])
            if freq is not None:
                found[freq] += 1
    if found:
        return pd.tseries.frequencies.to_offset(found.most_common(1)[0][0])
    diffs = np.diff(keys)[codes[1:] == codes[:-1]]
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return None  # every series has one row: nothing to check
    step = int(diffs.min())
    day = 86_400 * 10**9
    if step % day == 0:
        return pd.offsets.Day(step // day)
    return pd.tseries.frequencies.to_offset(pd.Timedelta(step, unit="ns"))


def _fixed_nanos(offset, tz):
    """Length of ``offset`` in ns when it is fixed (None for calendar offsets)."""
    if isinstance(offset, pd.offsets.Tick):
        return pd.Timedelta(offset).value
    # pandas 3 made Day a calendar offset; without a time zone it is still exactly 24h.
    if isinstance(offset, pd.offsets.Day) and tz is None:
        return offset.n * 86_400 * 10**9
    return None


def build_grid(n, codes=None, labels=None, times=None, freq=None, fill_gaps=None,
               param_date="date"):
    """Lay ``n`` rows out on a regular per-group grid.

    Parameters
    ----------
    n : int
        Number of rows.
    codes : ndarray of shape (n,) or None
        Group code of each row (None: one series).
    labels : Index or None
        Group label of each code, for messages.
    times : array-like of shape (n,) or None
        Time of each row; None means the row order is the time order inside each group.
    freq : str, DateOffset, Timedelta, int or None
        Step of the grid; inferred from the data when None.
    fill_gaps : None, float, "ffill" or "interpolate"
        What to do with missing steps inside a series; None refuses them.
    """
    if codes is None:
        codes = np.zeros(n, dtype=np.intp)
    n_groups = 1 if labels is None else len(labels)
    counts = np.bincount(codes, minlength=n_groups)
    if times is None:
        order = np.argsort(codes, kind="stable")
        starts = np.cumsum(counts) - counts
        grid_codes = codes[order]
        pos = np.arange(n) - starts[grid_codes]
        row = np.empty(n, dtype=np.intp)
        row[order] = np.arange(n)
        return Grid(grid_codes, pos, starts, counts, order, row, labels)

    times, keys, kind = _normalise_times(times, param_date)
    grid_freq = None
    order = np.lexsort((keys, codes))
    s_codes, s_keys, s_times = codes[order], keys[order], times[order]
    g_starts = np.cumsum(counts) - counts
    g_ends = g_starts + counts

    dup = (s_codes[1:] == s_codes[:-1]) & (s_keys[1:] == s_keys[:-1])
    if dup.any():
        where = np.flatnonzero(dup)[:5]
        pairs = [f"{str(s_times[i])}{_in_group(labels, s_codes[i])}" for i in where]
        raise ValueError(
            f"{int(dup.sum())} duplicated (group, {param_date}) key(s), e.g. {pairs}; each "
            "series may have one row per time stamp. Aggregate duplicates first "
            "(e.g. groupby([...]).sum())."
        )

    first = np.repeat(s_keys[g_starts[counts > 0]], counts[counts > 0])
    if kind == "period":
        step_pos = s_keys - first
        offset_desc = str(times.freqstr)
    elif kind == "int":
        if freq is None:
            diffs = np.diff(s_keys)[s_codes[1:] == s_codes[:-1]]
            step = int(diffs.min()) if diffs.size else 1
        elif isinstance(freq, Integral) and freq > 0:
            step = int(freq)
        else:
            raise ValueError(f"freq must be a positive int for integer times, got {freq!r}.")
        step_pos = _grid_positions(
            s_keys - first, step,
            lambda i: f"Irregular {param_date}: time {s_keys[i]}"
                      f"{_in_group(labels, s_codes[i])} is not on the grid of step {step} "
                      f"starting at {first[i]}; pass freq=.")
        offset_desc = f"step {step}"
    else:
        offset = (pd.tseries.frequencies.to_offset(freq) if freq is not None
                  else _infer_offset(s_times, s_keys, s_codes, g_starts, g_ends))
        nanos = None if offset is None else _fixed_nanos(offset, times.tz)
        if offset is None:
            step_pos = np.zeros(n, dtype=np.int64)
        elif nanos is not None:
            step_pos = _grid_positions(
                s_keys - first, nanos,
                lambda i: f"Irregular {param_date}: {s_times[i]}"
                          f"{_in_group(labels, s_codes[i])} is not on the {offset.freqstr!r} "
                          f"grid starting at {s_times[g_starts[s_codes[i]]]}; pass freq= "
                          "explicitly or regularise the dates.")
        else:  # calendar offsets (months, business days...): no fixed length in ns
            step_pos = np.empty(n, dtype=np.int64)
            for g in np.flatnonzero(counts):
                s, e = g_starts[g], g_ends[g]
                seg = s_times[s:e]
                grid = pd.date_range(seg[0], seg[-1], freq=offset)
                p = grid.get_indexer(seg)
                if (p < 0).any():
                    bad = seg[np.flatnonzero(p < 0)[0]]
                    raise ValueError(
                        f"Irregular {param_date}: {bad}{_in_group(labels, g)} is not on the "
                        f"{offset.freqstr!r} grid starting at {seg[0]}; pass freq= explicitly "
                        "or regularise the dates."
                    )
                step_pos[s:e] = p
        offset_desc = "one step" if offset is None else repr(offset.freqstr)
        grid_freq = offset

    lengths = np.zeros(n_groups, dtype=np.int64)
    last_in_group = g_ends[counts > 0] - 1
    lengths[counts > 0] = step_pos[last_in_group] + 1
    gaps = lengths - counts
    if gaps.any() and fill_gaps is None:
        g = int(np.flatnonzero(gaps)[0])
        seg_pos = step_pos[g_starts[g]:g_ends[g]]
        missing_at = int(np.flatnonzero(np.diff(seg_pos) > 1)[0])
        after = s_times[g_starts[g] + missing_at]
        raise ValueError(
            f"{param_date} has gaps inside {int((gaps > 0).sum())} series (grid: "
            f"{offset_desc}): e.g. the series{_in_group(labels, g)} misses {int(gaps[g])} "
            f"step(s), the first right after {after}. Pass fill_gaps=<number>, 'ffill' or "
            "'interpolate' to fill them, or fix the data."
        )
    starts = np.cumsum(lengths) - lengths
    gi = starts[s_codes] + step_pos
    m = int(lengths.sum())
    src = np.full(m, -1, dtype=np.intp)
    src[gi] = order
    row = np.empty(n, dtype=np.intp)
    row[order] = gi
    grid_codes = np.repeat(np.arange(n_groups), lengths)
    pos = np.arange(m) - starts[grid_codes]
    return Grid(grid_codes, pos, starts, lengths, src, row, labels, grid_freq)


def check_fill_gaps(fill_gaps):
    if fill_gaps is None or fill_gaps in _FILL_GAP_OPTIONS:
        return
    if isinstance(fill_gaps, (Integral, float, np.floating)) and not isinstance(fill_gaps, bool):
        return
    raise ValueError(
        f"fill_gaps must be None, a number, 'ffill' or 'interpolate', got {fill_gaps!r}."
    )


def grid_dates(grid, times):
    """The date of every grid point, filled gaps included, as a DatetimeIndex."""
    times = pd.Index(times)
    if isinstance(times, pd.PeriodIndex):
        times = times.to_timestamp()
    if not isinstance(times, pd.DatetimeIndex):
        raise TypeError(
            f"calendar features need dates as datetimes or periods, got dtype {times.dtype}."
        )
    if times.tz is not None:
        times = times.tz_localize(None)  # wall-clock dates decide the calendar
    secs = (times.as_unit("s").asi8).astype(np.float64)[:, None]
    real = grid.src >= 0
    if real.all():
        return pd.DatetimeIndex(grid.values(secs, None)[:, 0].astype(np.int64) * 10**9)
    # Filled gaps get their date by linear interpolation, exact on a grid of fixed step;
    # a calendar grid (months, business days) has no fixed step, so refuse rather than guess.
    point = np.flatnonzero(real)
    t = secs[grid.src[point], 0]
    same = grid.codes[point][1:] == grid.codes[point][:-1]
    rate = np.diff(t)[same] / np.diff(grid.pos[point])[same]
    if rate.size and np.ptp(rate) > 0:
        raise ValueError(
            "calendar features with fill_gaps need a grid of fixed step (days, hours...): the "
            "dates of the filled steps of a monthly or business-day grid cannot be inferred "
            "safely. Add the missing dates to the data instead."
        )
    filled = np.rint(grid.values(secs, "interpolate")[:, 0]).astype(np.int64)
    return pd.DatetimeIndex(filled * 10**9)
