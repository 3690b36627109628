"""Lag windows of a long panel as views, and one model per series.

A window matrix repeats every value of a series ``window`` times: a panel of 30k daily
series over 2 years holds about 20M values, its window matrix of 28 steps 580M. This
module keeps the panel and hands out windows on demand:

- :func:`series_windows`: the window matrix of one series as a strided view of its
  values (``numpy.lib.stride_tricks.sliding_window_view``), never copied;
- :class:`PanelWindows`: the windows of many series (and their targets) over one flat
  array of values plus the start of each window, so it costs O(panel), not
  O(windows x window). The recurrent regressors accept it as ``X`` and gather only
  each batch's rows; ``numpy.asarray`` gives the dense matrix for code that needs it;
  :meth:`PanelWindows.at` takes any rows and step offsets (explicit lag lists), over
  series padded by :func:`pad_series` -- the one place skrnn gathers windows
  (``LagFeatures`` and ``make_supervised`` build theirs here); labelled with their
  rows' index and column names (:meth:`PanelWindows.labelled`), they travel through
  the experiment runner's pipelines (split, per-series scaling, ``LastSteps``, the
  baselines) as windows, never as the window matrix;
- :func:`map_row_blocks`: the regressors' whole-input methods (``get_states``,
  ``input_gradients``, ``predict_quantiles``) and the early-stopping hold-out over
  blocks of rows, so that windows as views are gathered a block at a time there too;
- :func:`fit_local`: one clone of an estimator per series through ``joblib``, so
  ``joblib.parallel_config(backend="dask")`` spreads the fits over a cluster;
- :func:`predict_to_file`: forecasts of a large panel written chunk by chunk;
- window-relative scaling (reversible instance normalisation): the level a window is
  taken relative to (:func:`window_levels`, per step :func:`step_levels`), which
  :class:`PanelWindows` applies to the rows it gathers (``level``).

Layout: docs/architecture.md, contract 1 (step-major, oldest step first).
"""

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import clone

__all__ = [
    "PanelWindows",
    "fit_local",
    "pad_series",
    "predict_local",
    "predict_to_file",
    "series_windows",
    "step_levels",
    "window_levels",
]

_LEVELS = (None, "last", "mean", "first")


def series_windows(values, window):
    """Window matrix of one series, as a read-only strided view of ``values``.

    Parameters
    ----------
    values : array-like of shape (n_times,) or (n_times, n_step_features)
        One series in time order.
    window : int
        Steps per window.

    Returns
    -------
    windows : ndarray of shape (n_times - window + 1, window) or \
            (n_times - window + 1, window, n_step_features)
        Row ``i`` holds ``values[i : i + window]``, oldest step first; no value is
        copied (``windows.base`` is ``values``' memory).

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.windows import series_windows
    >>> series_windows(np.arange(5.0), 3)
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    """
    values = np.asarray(values)
    window = _check_positive_int(window, "window")
    if values.ndim not in (1, 2):
        raise ValueError(
            f"values must be 1D (n_times,) or 2D (n_times, n_step_features); got shape "
            f"{values.shape}."
        )
    if len(values) < window:
        raise ValueError(
            f"A series of {len(values)} values holds no window of {window} steps; use a "
            "shorter window or a longer series."
        )
    view = sliding_window_view(values, window, axis=0)
    return view if values.ndim == 1 else view.transpose(0, 2, 1)


def window_levels(windows, how, window=None):
    """The level ``(n_windows,)`` of each row of ``windows`` ``(n_windows, n_steps)``.

    Window-relative scaling subtracts it from a window's values and targets and adds it
    back to the forecasts, so that level shifts and trends never leave the range seen
    in training.

    Parameters
    ----------
    windows : ndarray of shape (n_windows, n_steps)
        One value per step, oldest first.
    how : {"last", "mean", "first"}
        The window's last value, the mean of its last ``window`` values, or its first
        value.
    window : int, default=None
        Steps the mean covers (rows may hold a leading value more, that differencing
        reads); None: all of them.
    """
    if how == "last":
        return windows[:, -1]
    if how == "mean":
        return windows[:, -(window or windows.shape[1]):].mean(axis=1)
    if how == "first":
        return windows[:, 0]
    raise ValueError(f"how must be 'last', 'mean' or 'first'; got {how!r}.")


def step_levels(windows, how):
    """The level ``(n_windows, n_steps)`` of every step of each window, seeing no later
    step: the step's own value (``"last"``) or the mean of the window so far
    (``"mean"``)."""
    if how == "last":
        return windows
    if how == "mean":
        return np.cumsum(windows, axis=1) / np.arange(1, windows.shape[1] + 1)
    raise ValueError(f"how must be 'last' or 'mean'; got {how!r}.")


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def pad_series(values, lengths, before, after, fill_value=np.nan):
    """Each series of a flat panel with ``before`` values in front and ``after`` behind.

    Parameters
    ----------
    values : ndarray of shape (n_values, n_columns)
        All series one after another, as in :class:`PanelWindows`.
    lengths : array-like of int
        Values of each series, in order (each at least 1).
    before, after : int
        Padding per series; ``after`` may be negative down to ``-before`` (the
        series then shift: row ``i`` of a series holds its value ``i - before``).
    fill_value : float or "edge", default=np.nan
        Value of the padding, or "edge": the series' first value in front, its
        last behind.

    Returns
    -------
    padded : ndarray of shape (n_values + n_series * (before + after), n_columns)
        Series ``g`` starts at ``offsets[g] + g * (before + after)``, where
        ``offsets`` are the starts of the unpadded series.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    size = lengths + before + after
    if before < 0 or (size < 0).any() or (lengths < 1).any():
        raise ValueError(f"cannot pad series of lengths >= 1 by before={before}, after={after}.")
    series = np.repeat(np.arange(len(lengths)), size)
    # position of each padded value relative to its series' first value
    rel = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size) - before
    inside = (rel >= 0) & (rel < lengths[series])
    offsets = np.cumsum(lengths) - lengths
    src = offsets[series] + np.clip(rel, 0, lengths[series] - 1)
    out = values[src]
    if not (isinstance(fill_value, str) or inside.all()):
        out[~inside] = fill_value
    return out


class PanelWindows:
    """Lag windows (and their targets) of many series, without the window matrix.

    Holds the values of all series in one array (each series contiguous, in time
    order) and the start of each window; rows are gathered only when asked for. It
    looks like the 2D ``X`` of :func:`skrnn.lags.make_supervised` to the recurrent
    regressors (``shape``, ``len``, row indexing), which then gather each batch's
    rows instead of copying ``X``. ``W[rows]`` is the dense rows; ``W[rows, ...]``
    (how scikit-learn's cross-validation takes a split) a ``PanelWindows`` of them.

    Parameters
    ----------
    values : array-like of shape (n_values,) or (n_values, n_step_features)
        All series one after another. Further columns are per-step covariates:
        each window holds them for its steps (step-major, as ``LagFeatures``).
    lengths : array-like of int, default=None
        Number of values of each series, in order (their sum is ``n_values``);
        None means one series.
    window : int
        Steps per window (the regressor's ``timesteps``).
    horizon : int, default=1
        Target steps after each window: ``y`` holds the ``horizon`` values of
        column ``target`` that follow the window. ``0`` gives the last window of
        each series and no target (the windows to forecast from).
    target : int, default=0
        Column of ``values`` that ``y`` is taken from.
    order : {"series", "time"}, default="series"
        Row order: series after series (each in time order), or by time across
        series, windows aligned on the end of their series (the order that
        early stopping's last-fraction hold-out expects, docs/architecture.md
        contract 5).
    level : {None, "last", "mean", "first"}, default=None
        Window-relative values: each gathered window's column ``target`` is taken
        relative to its own level (:func:`window_levels`), and so are its targets.

    Attributes
    ----------
    starts : ndarray of shape (n_windows,)
        Position in ``values`` of the first step of each window.
    series : ndarray of shape (n_windows,)
        Index of the series of each window.
    shape : tuple
        ``(n_windows, window * n_step_features)``, as the dense ``X``.
    index : pandas Index of length n_windows or None
        Row labels (e.g. the ``(date, group)`` of each window), set by
        :meth:`labelled` (``make_supervised(..., as_windows=True)`` sets them); row
        selections slice it too. Splitters and per-series scalers read dates and
        groups from it as from a DataFrame's index.
    columns : pandas Index of length shape[1] or None
        Column names of the dense ``X`` (``<col>_lag<L>``); estimators fitted on
        labelled windows record them as ``feature_names_in_``, so they predict on
        the DataFrame of the same windows without a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.windows import PanelWindows
    >>> W = PanelWindows(np.arange(10.0), lengths=[6, 4], window=2)
    >>> W.shape
    (6, 2)
    >>> W[[0, 4]]
    array([[0., 1.],
           [6., 7.]])
    >>> W.y[[0, 4]]
    array([2., 8.])
    """

    ndim = 2
    level = None
    # row labels and column names (None: unlabelled), see ``labelled``
    index = None
    columns = None

    def __init__(self, values, lengths=None, *, window, horizon=1, target=0,
                 order="series", level=None):
        values = np.asarray(values)
        if values.ndim not in (1, 2):
            raise ValueError(
                f"values must be 1D (n_values,) or 2D (n_values, n_step_features); got "
                f"shape {values.shape}."
            )
        if values.dtype.kind not in "biuf":
            raise TypeError(f"values must be numeric; got dtype {values.dtype}.")
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        self.values = values if values.ndim == 2 else values[:, None]
        self.window = _check_positive_int(window, "window")
        self.horizon = _check_positive_int(horizon, "horizon", minimum=0)
        n_values, F = self.values.shape
        if not isinstance(target, numbers.Integral) or not 0 <= target < F:
            raise ValueError(f"target must be a column index in [0, {F}); got {target!r}.")
        self.target = int(target)
        if order not in ("series", "time"):
            raise ValueError(f"order must be 'series' or 'time'; got {order!r}.")
        self.order = order
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}; got {level!r}.")
        self.level = level
        lengths = np.array([n_values] if lengths is None else lengths, dtype=np.int64)
        if lengths.ndim != 1 or (lengths < 0).any() or lengths.sum() != n_values:
            raise ValueError(
                f"lengths must be non-negative series lengths summing to the "
                f"{n_values} values; got {lengths.sum()} in {lengths.shape} entries."
            )
        self.lengths = lengths
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        need = self.window + self.horizon
        if self.horizon == 0:
            counts = (lengths >= self.window).astype(np.int64)
        else:
            counts = np.maximum(lengths - need + 1, 0)
        if counts.sum() == 0:
            raise ValueError(
                f"No window fits in the series (longest: {lengths.max(initial=0)} "
                f"values): a window with its targets needs window + horizon = {need} "
                "values."
            )
        series = np.repeat(np.arange(len(lengths), dtype=np.int32 if len(lengths) < 2**31
                                     else np.int64), counts)
        first = offsets + (lengths - self.window if self.horizon == 0 else 0)
        starts = first[series] + (np.arange(counts.sum()) - np.repeat(
            np.cumsum(counts) - counts, counts))
        if order == "time":
            # distance of each window's end from the end of its series, oldest first
            ends = starts + self.window - (offsets + lengths)[series]
            idx = np.argsort(ends, kind="stable")
            starts, series = starts[idx], series[idx]
        self.starts = starts
        self.series = series
        self._steps = np.arange(self.window)

    @classmethod
    def at(cls, values, starts, steps, *, lengths=None, series=None, level=None):
        """Windows at any rows and step offsets over ``values``, without targets.

        Row ``i`` holds ``values[starts[i] + steps]``: ``steps`` need not be
        consecutive (explicit lag lists, e.g. ``[-7, -1]``) and may be negative.
        Keep each window inside its own series, e.g. over :func:`pad_series`.

        Parameters
        ----------
        values : array-like of shape (n_values,) or (n_values, n_step_features)
        starts : array-like of int of shape (n_windows,)
            Anchor position of each window in ``values``.
        steps : array-like of int of shape (window,)
            Offsets from the anchor, oldest step first.
        lengths : array-like of int, default=None
            Series lengths of ``values``, for the record (None: one series).
        series : array-like of int of shape (n_windows,), default=None
            Series of each window, for the record.
        level : {None, "last", "mean", "first"}, default=None
            Window-relative values, as in :class:`PanelWindows`.
        """
        new = object.__new__(cls)
        values = np.asarray(values)
        new.values = values if values.ndim == 2 else values[:, None]
        new._steps = np.asarray(steps, dtype=np.int64).ravel()
        new.starts = np.asarray(starts, dtype=np.int64).ravel()
        n = len(new.values)
        if new.starts.size and len(new._steps) and (
                new.starts.min() + new._steps.min() < 0
                or new.starts.max() + new._steps.max() >= n):
            raise ValueError(f"windows reach outside the {n} values; pad the series first.")
        new.window, new.horizon, new.target, new.order = len(new._steps), 0, 0, None
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}; got {level!r}.")
        new.level = level
        new.lengths = np.array([n] if lengths is None else lengths, dtype=np.int64)
        new.series = (np.zeros(len(new.starts), dtype=np.int64) if series is None
                      else np.asarray(series))
        return new

    # -- array-like face -------------------------------------------------------------

    @property
    def n_step_features(self):
        return self.values.shape[1]

    @property
    def shape(self):
        return (len(self.starts), self.window * self.n_step_features)

    @property
    def dtype(self):
        return self.values.dtype

    def __len__(self):
        return len(self.starts)

    def __repr__(self):
        return (f"PanelWindows({len(self)} windows of {self.window} steps x "
                f"{self.n_step_features} features over {len(self.lengths)} series)")

    def sequences(self, rows=slice(None), dtype=None):
        """Windows ``rows`` as a dense ``(n_rows, window, n_step_features)`` array.

        ``rows`` is a slice, an int array or a boolean mask; ``dtype`` casts the
        gathered rows (only them).
        """
        if isinstance(rows, numbers.Integral):
            rows = [rows]
        starts = self.starts[rows]
        out = self.values[starts[:, None] + self._steps]
        if self.level is not None:
            col = np.ascontiguousarray(out[:, :, self.target])
            out[:, :, self.target] = col - window_levels(col, self.level)[:, None]
        return out if dtype is None else out.astype(dtype, copy=False)

    def time_major(self, rows=slice(None), dtype=None):
        """Windows ``rows`` as a contiguous time-major ``(window, n_rows, F)`` array."""
        return np.ascontiguousarray(self.sequences(rows, dtype).transpose(1, 0, 2))

    def __getitem__(self, key):
        if isinstance(key, tuple):
            # scikit-learn's _safe_indexing (cross-validation splits) asks for
            # X[rows, ...]: the rows stay windows over the same values
            if len(key) == 2 and key[1] is Ellipsis:
                return self.subset(key[0])
            raise TypeError("PanelWindows is indexed by rows only, e.g. W[idx].")
        if isinstance(key, numbers.Integral):
            return self.sequences(key)[0].reshape(-1)
        out = self.sequences(key)
        return out.reshape(len(out), -1)

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("PanelWindows cannot be viewed as one array without a copy.")
        return self[:].astype(dtype, copy=False) if dtype is not None else self[:]

    def nonfinite_rows(self):
        """Mask of the windows holding a NaN or infinity, in O(n_windows) memory."""
        bad = ~np.isfinite(self.values).all(axis=1)
        out = np.zeros(len(self.starts), dtype=bool)
        if bad.any():
            for step in self._steps:  # one step of every window at a time
                out |= bad[self.starts + step]
        return out

    def subset(self, rows):
        """The windows ``rows`` (slice, int array or boolean mask) as a new
        ``PanelWindows`` sharing ``values``; ``index`` is sliced alike."""
        new = self._copy()
        new.starts, new.series = self.starts[rows], self.series[rows]
        if self.index is not None:
            new.index = self.index[rows]
        return new

    def _copy(self, **changes):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def labelled(self, index=None, columns=None):
        """These windows with row labels and column names (a new object, same values).

        Parameters
        ----------
        index : pandas Index or array-like of length n_windows, default=None
            Label of each row, e.g. a ``(date, group)`` MultiIndex.
        columns : array-like of str of length shape[1], default=None
            Names of the dense ``X``'s columns, step-major like the values.
        """
        import pandas as pd

        changes = {}
        if index is not None:
            index = index if isinstance(index, pd.Index) else pd.Index(index)
            if len(index) != len(self):
                raise ValueError(f"index has {len(index)} labels for {len(self)} windows.")
            changes["index"] = index
        if columns is not None:
            columns = pd.Index(columns)
            if len(columns) != self.shape[1]:
                raise ValueError(f"columns has {len(columns)} names for windows of "
                                 f"{self.shape[1]} columns.")
            changes["columns"] = columns
        return self._copy(**changes)

    def frame(self, rows=slice(None)):
        """The dense rows ``rows`` as a DataFrame with the windows' index and columns.

        The dense matrix of those rows only (for a model that needs it, or the first
        rows as an input example); the labels are positional where there are none.
        """
        import pandas as pd

        rows = [rows] if isinstance(rows, numbers.Integral) else rows
        index = None if self.index is None else self.index[rows]
        return pd.DataFrame(self[rows], index=index, columns=self.columns)

    def head(self):
        """The first row as a one-row dense ``X`` (a DataFrame when the columns are
        named): what an estimator checks the column count and names on."""
        return self.frame(slice(0, 1)) if self.columns is not None else self[:1]

    def last_steps(self, n_steps, *, columns=True):
        """The windows cut to their last ``n_steps`` steps (the same rows, no copy).

        The cut windows carry no targets (``y``); the column names are cut alike, or
        dropped with ``columns=False``.
        """
        n_steps = _check_positive_int(n_steps, "n_steps")
        if n_steps > self.window:
            raise ValueError(f"n_steps={n_steps} exceeds the window of {self.window} steps.")
        F = self.n_step_features
        columns = (None if self.columns is None or not columns
                   else self.columns[-n_steps * F:])
        return self._copy(_steps=self._steps[-n_steps:], window=n_steps, horizon=0,
                          columns=columns)

    def take(self, columns):
        """The dense columns ``columns`` (positions in ``shape[1]``) of every window.

        Gathers only those cells: ``O(n_windows x len(columns))``, not the window
        matrix (the naive baselines read a window's target steps this way).
        """
        columns = np.asarray(columns, dtype=np.intp)
        if self.level is not None:  # levels need the whole window
            return self[:][:, columns]
        F = self.n_step_features
        return self.values[self.starts[:, None] + self._steps[columns // F], columns % F]

    def value_series(self):
        """The series (an index into ``lengths``) of each row of ``values``."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def with_values(self, values):
        """The same windows over other ``values`` of the same shape (e.g. scaled)."""
        values = np.asarray(values)
        values = values if values.ndim == 2 else values[:, None]
        if values.shape != self.values.shape:
            raise ValueError(f"values must have shape {self.values.shape}, got {values.shape}.")
        return self._copy(values=values)

    @property
    def y(self):
        """Targets: ``(n_windows,)`` for ``horizon=1``, ``(n_windows, horizon)`` else."""
        if self.horizon == 0:
            raise AttributeError(
                "these windows carry no targets (horizon=0, or built by PanelWindows.at); "
                "make_supervised returns its y beside them.")
        col = self.values[:, self.target]
        ends = self.starts + self.window
        y = col[ends] if self.horizon == 1 else col[ends[:, None] + np.arange(self.horizon)]
        if self.level is not None:
            level = self._target_levels(col)
            y = y - (level if self.horizon == 1 else level[:, None])
        return y

    def _target_levels(self, col):
        """Each window's level of the target column ``col``; the last and first value are
        read directly, only the mean gathers the windows."""
        if self.level == "last":
            return col[self.starts + self._steps[-1]]
        if self.level == "first":
            return col[self.starts + self._steps[0]]
        return window_levels(col[self.starts[:, None] + self._steps], self.level)

    @classmethod
    def from_series(cls, series, **kwargs):
        """Windows of a list of series (1D or 2D arrays), concatenated once."""
        arrays = [np.asarray(s) for s in series]
        if not arrays:
            raise ValueError("series is empty; pass at least one series.")
        return cls(np.concatenate(arrays), [len(a) for a in arrays], **kwargs)


# -- the regressors' side: rows gathered per batch ------------------------------------


class _LazySequences:
    """A ``(n, T, F)`` view of a row source whose rows are gathered only on demand.

    ``source`` is a :class:`PanelWindows` or a strided array view of shape
    ``(n, T, F)``; ``dtype`` is the regressor's, applied per gathered block.
    """

    def __init__(self, source, T, F, dtype, rows=None):
        self.source, self.T, self.F, self.dtype = source, T, F, dtype
        # a range until rows are picked: no index array of n_windows to hold
        self.rows = range(len(source)) if rows is None else rows

    @property
    def shape(self):
        return (len(self.rows), self.T, self.F)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        return _LazySequences(self.source, self.T, self.F, self.dtype, _take(self.rows, key))

    def gather(self, rows):
        """Rows ``rows`` (positions in this view) as a dense ``(n_rows, T, F)`` array."""
        idx = _take(self.rows, rows)
        if isinstance(idx, range):
            idx = slice(idx.start, idx.stop, idx.step)
        if isinstance(self.source, PanelWindows):
            return self.source.sequences(idx, self.dtype)
        out = np.asarray(self.source[idx], dtype=self.dtype)
        return out.reshape(len(out), self.T, self.F)

    def __array__(self, dtype=None, copy=None):
        out = self.gather(slice(None))
        return out if dtype is None else out.astype(dtype, copy=False)

    def transpose(self, *axes):
        if tuple(axes) != (1, 0, 2):
            raise ValueError("only the time-major transpose (1, 0, 2) is supported.")
        return _TimeMajor(self)

    def check_finite(self, block=1 << 16):
        """True when every value of every row is finite, checked block by block."""
        if isinstance(self.source, PanelWindows):
            # padding the windows never reach may hold NaN
            rows = self.rows
            if isinstance(rows, range):
                rows = slice(rows.start, rows.stop, rows.step)
            return not self.source.nonfinite_rows()[rows].any()
        return all(np.isfinite(self.gather(slice(s, s + block))).all()
                   for s in range(0, len(self), block))


def _take(rows, key):
    """``rows[key]`` for a range or an index array; a range stays a range for slices."""
    if isinstance(rows, range):
        if isinstance(key, slice):
            return rows[key]
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        key = np.where(key < 0, key + len(rows), key)
        return rows.start + rows.step * key
    return rows[key]


class _TimeMajor:
    """Time-major ``(T, n, F)`` face of :class:`_LazySequences` for the batch loop.

    ``X[:, rows]`` gathers those rows into a contiguous ``(T, n_rows, F)`` array,
    exactly what indexing the dense time-major matrix gives.
    """

    def __init__(self, seqs):
        self.seqs = seqs
        self.dtype = np.dtype(seqs.dtype)

    @property
    def shape(self):
        n, T, F = self.seqs.shape
        return (T, n, F)

    def __getitem__(self, key):
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)):
            raise TypeError("index the time-major windows as X[:, rows].")
        return np.ascontiguousarray(self.seqs.gather(key[1]).transpose(1, 0, 2))

    def __array__(self, dtype=None, copy=None):
        out = self[:, :]
        return out if dtype is None else out.astype(dtype, copy=False)


def lazy_source(X):
    """``X`` itself when its rows should be gathered per batch, else None.

    That is a :class:`PanelWindows`, or a window view such as
    :func:`series_windows` gives: an array whose consecutive rows overlap in
    memory, so that copying it whole would build the window matrix the view
    avoids. Any other array (slices included) takes the dense path.
    """
    if isinstance(X, PanelWindows):
        return X
    if (isinstance(X, np.ndarray) and X.ndim in (2, 3) and X.dtype.kind in "biuf"
            and X.size and X.shape[1] > 1 and not X.flags.owndata
            and abs(X.strides[0]) < X.shape[1] * abs(X.strides[1])):
        return X
    return None


def time_major(X3):
    """Time-major ``(T, n, F)`` training input: contiguous copy, or lazy for windows."""
    if isinstance(X3, _LazySequences):
        return X3.transpose(1, 0, 2)
    return np.ascontiguousarray(X3.transpose(1, 0, 2))


# rows that map_row_blocks gathers and runs at a time (the whole-input methods and the
# early-stopping hold-out); a power of two, so that the blocks start where the kernels'
# row blocks of one pass start (skrnn/_training.py's _holdout_output says what that buys)
CHUNK_ROWS = 4096


def map_row_blocks(fn, X3, chunk=None):
    """``fn`` over the rows of ``X3`` ``(n, T, F)``, ``chunk`` rows at a time.

    ``fn(block, rows)`` gets the rows ``rows`` (a slice) as a dense
    ``(n_rows, T, F)`` array and returns an array, or a list or dict of them, whose
    first axis is those rows; the blocks' results fill arrays of ``n`` rows,
    allocated once. Windows as views (:class:`_LazySequences`) are thus gathered a
    block at a time, never whole, and a dense ``X3`` goes through the same blocks, so
    both give the same bits; an ``X3`` of at most one block is one call.
    ``chunk`` defaults to ``CHUNK_ROWS``.
    """
    n = len(X3)
    chunk = CHUNK_ROWS if chunk is None else chunk
    out = None
    for s in range(0, max(n, 1), chunk):
        rows = slice(s, min(s + chunk, n))
        block = X3.gather(rows) if isinstance(X3, _LazySequences) else X3[rows]
        part = fn(block, rows)
        if n <= chunk:
            return part
        if out is None:
            out = _tree_map(lambda a: np.empty((n,) + a.shape[1:], a.dtype), part)
        _tree_fill(out, part, rows)
    return out


def _tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_tree_map(fn, v) for v in tree]
    return fn(tree)


def _tree_fill(out, part, rows):
    if isinstance(out, dict):
        for k in out:
            _tree_fill(out[k], part[k], rows)
    elif isinstance(out, list):
        for o, p in zip(out, part):
            _tree_fill(o, p, rows)
    else:
        out[rows] = part


# -- one model per series ---------------------------------------------------------------


def _fit_one(estimator, X, y, fit_params):
    return estimator.fit(X, y, **fit_params)


def fit_local(estimator, X, y, *, n_jobs=None, fit_params=None):
    """Fit one clone of ``estimator`` per series, in parallel through joblib.

    The fits go through ``joblib.Parallel``, so the active joblib backend decides
    where they run: processes on this machine (``n_jobs``), or the workers of a
    Dask cluster inside ``joblib.parallel_config(backend="dask")`` (with a
    ``dask.distributed.Client`` open; install ``skrnn[distributed]``). Each clone
    draws from its own ``random_state``, so the fitted models are bit-identical
    whichever backend ran them.

    Parameters
    ----------
    estimator : estimator
        Unfitted template; each series gets ``sklearn.base.clone(estimator)``.
    X, y : dict or sequence
        Per-series inputs and targets: two dicts with the same keys, or two
        sequences of the same length (``X[i]``, ``y[i]`` for series ``i``).
    n_jobs : int, default=None
        Parallel jobs (``joblib.Parallel``); None means 1 unless a
        ``joblib.parallel_config`` says otherwise.
    fit_params : dict, default=None
        Keyword arguments of every ``fit`` call.

    Returns
    -------
    models : dict or list
        The fitted clones, keyed (or ordered) like ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skrnn.windows import fit_local
    >>> X = {"a": np.eye(3), "b": 2 * np.eye(3)}
    >>> y = {"a": np.arange(3.0), "b": np.ones(3)}
    >>> sorted(fit_local(Ridge(), X, y))
    ['a', 'b']
    """
    from joblib import Parallel, delayed

    keys = _keys(X, y)
    fit_params = {} if fit_params is None else dict(fit_params)
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_fit_one)(clone(estimator), X[k], y[k], fit_params) for k in keys
    )
    return dict(zip(keys, fitted)) if isinstance(X, dict) else fitted


def _predict_one(model, X):
    return model.predict(X)


def predict_local(models, X, *, n_jobs=None):
    """Predictions of each per-series model of :func:`fit_local` on its own ``X``."""
    from joblib import Parallel, delayed

    keys = _keys(X, models, names=("X", "models"))
    preds = Parallel(n_jobs=n_jobs)(delayed(_predict_one)(models[k], X[k]) for k in keys)
    return dict(zip(keys, preds)) if isinstance(X, dict) else preds


def _keys(X, y, names=("X", "y")):
    if isinstance(X, dict) != isinstance(y, dict):
        raise TypeError(f"{names[0]} and {names[1]} must both be dicts or both sequences.")
    if isinstance(X, dict):
        if set(X) != set(y):
            missing = sorted(map(str, set(X) ^ set(y)))[:5]
            raise ValueError(
                f"{names[0]} and {names[1]} must have the same series keys; these are in "
                f"only one of them: {missing}."
            )
        return list(X)
    if len(X) != len(y):
        raise ValueError(
            f"{names[0]} and {names[1]} must hold the same number of series; got "
            f"{len(X)} and {len(y)}."
        )
    return list(range(len(X)))


# -- streaming prediction ----------------------------------------------------------------


def predict_to_file(estimator, values, lengths, path, *, window, keys=None,
                    series_per_chunk=10_000, progress=None, index=None, columns=None):
    """Forecast every series of a large panel, writing the forecasts chunk by chunk.

    The last ``window`` values of each series form its input; the panel is
    predicted ``series_per_chunk`` series at a time and each chunk is appended to
    ``path`` before the next one is built, so memory stays bounded by one chunk
    (plus the panel itself).

    Parameters
    ----------
    estimator : fitted regressor
        Predicts from windows of ``window`` steps (e.g. a fitted GRURegressor).
    values, lengths : array-like
        The panel, as in :class:`PanelWindows`.
    path : str or path-like
        Output file: Parquet when it ends in ``.parquet`` (needs ``pyarrow``), CSV
        otherwise. It must not exist (nothing already there is overwritten).
    window : int
        Steps per window.
    keys : array-like of shape (n_series,), default=None
        Series labels written in the ``series`` column; default ``0..n_series-1``.
    series_per_chunk : int, default=10_000
        Series per chunk.
    progress : bool, default=None
        Show a progress bar (``rich``); None shows one when rich is installed and
        the output is a terminal.
    index : pandas Index of length n_series, default=None
        Row labels of the series' windows, e.g. a ``(date, series)`` MultiIndex of
        the dates forecast, for a model that reads them (per-series scaling finds
        each row's series in the index). Each chunk is then predicted as a
        DataFrame with this index, and the index is written as the leading
        columns instead of ``series``.
    columns : list of str, default=None
        Column names of the window DataFrame (e.g. the model's
        ``feature_names_in_``); given with ``index`` or alone.

    Returns
    -------
    n_rows : int
        Rows written: one per series, columns ``series`` (or the index's) and
        ``y_pred`` (or ``y_pred_1..y_pred_h`` for ``h`` outputs).
    """
    import os

    import pandas as pd

    series_per_chunk = _check_positive_int(series_per_chunk, "series_per_chunk")
    path = os.fspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; choose a new file (nothing is overwritten).")
    W = PanelWindows(values, lengths, window=window, horizon=0)
    if len(W) != len(W.lengths):
        raise ValueError(
            f"{len(W.lengths) - len(W)} series are shorter than window={window}; drop or "
            "pad them first."
        )
    keys = np.arange(len(W)) if keys is None else np.asarray(keys)
    for name, labels in (("keys", keys), ("index", index)):
        if labels is not None and len(labels) != len(W):
            raise ValueError(f"{name} has {len(labels)} labels for {len(W)} series.")
    if columns is not None and len(columns) != W.shape[1]:
        raise ValueError(f"columns has {len(columns)} names for windows of {W.shape[1]} "
                         "columns.")
    parquet = path.endswith(".parquet")
    if parquet:
        from skrnn._optional import require

        require("pyarrow", by="Parquet output")
        import pyarrow as pa
        import pyarrow.parquet as pq
    bar = _progress_bar(progress, len(W))
    writer, n_rows = None, 0
    try:
        for s in range(0, len(W), series_per_chunk):
            rows = slice(s, s + series_per_chunk)
            X = W[rows]
            labels = None if index is None else index[rows]
            if index is not None or columns is not None:
                X = pd.DataFrame(X, index=labels, columns=columns)
            pred = np.asarray(estimator.predict(X))
            pred = pred.reshape(len(pred), -1)
            cols = ["y_pred"] if pred.shape[1] == 1 else [
                f"y_pred_{j + 1}" for j in range(pred.shape[1])]
            if labels is None:
                frame = pd.DataFrame(pred, columns=cols)
                frame.insert(0, "series", keys[rows])
            else:
                frame = pd.DataFrame(pred, columns=cols, index=labels).reset_index()
            if parquet:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(path, mode="a", header=n_rows == 0, index=False)
            n_rows += len(frame)
            if bar is not None:
                bar[0].update(bar[1], advance=len(frame))
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar[0].stop()
    return n_rows


def _progress_bar(progress, total):
    import sys

    if progress is False:
        return None
    try:
        from rich.progress import Progress
    except ImportError:
        if progress:
            raise ImportError(
                "progress=True needs rich; install it with `pip install skrnn[cli]`."
            ) from None
        return None
    if progress is None and not sys.stderr.isatty():
        return None
    bar = Progress(transient=True)
    task = bar.add_task("forecasting series", total=total)
    bar.start()
    return bar, task
