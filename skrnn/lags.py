"""Lag windows for single series and panels.

:class:`LagFeatures` turns a long table (one row per series and time) into lag windows laid
out step-major, oldest step first -- the 2D sequence layout every skrnn regressor reads (see
``n_step_features``). :func:`make_supervised` builds the aligned ``(X, y)`` pair for a forecast
horizon and drops the rows whose window or target is incomplete.

Conventions
-----------
A row at time ``t`` gets ``<col>_lag<L>``, the value of ``col`` at ``t - L`` in the same series,
and ``<col>_lead<L>``, its value at ``t + L``. The targets of :func:`make_supervised` are the
values at ``t, t+1, ..., t+h-1``: the row's index is the time of the first forecast step, so
one-step predictions join back to the truth on the row's own date and group.

Step features
-------------
Besides the lagged values, each step of a window can carry *known-future* features: the
columns named by ``future_covariates`` (values known in advance, such as a temperature
forecast or a work-day flag) and calendar features of the date (``calendar=``, see
:mod:`skrnn.calendar`). The step of lag ``L`` of the row at time ``t`` holds the lagged
columns at ``t - L`` and the known-future features at ``t - L + 1``, named
``<col>_lag<L-1>``: the date that follows the lagged value. So every step has the same width,
``n_step_features_ = len(columns) + len(future_covariates) + n_calendar_columns``, and the
most recent step (``L = 1``) carries the known-future features of the target date ``t``
itself (``<col>_lag0``) -- never a value of the target at or after ``t``. *Static* features
(``static=`` columns constant within a series, ``group_one_hot=True``) close every step.

The windows are gathered by :mod:`skrnn.windows` (the one place skrnn builds them) from one
padded copy of the panel; ``make_supervised(..., as_windows=True)`` hands them out without
the window matrix.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.callback import CallbackSupportMixin, with_callbacks
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from skrnn import _layout
from skrnn._panel import (
    build_grid,
    check_fill_gaps,
    grid_dates,
    group_codes,
    lookup_key,
    static_features,
)
from skrnn.calendar import calendar_feature_names, calendar_features
from skrnn.windows import PanelWindows, pad_series

__all__ = ["LagFeatures", "make_supervised"]

_ROLLING_STATS = {
    "mean": lambda a: a.mean(axis=1),
    "std": lambda a: a.std(axis=1),
    "min": lambda a: a.min(axis=1),
    "max": lambda a: a.max(axis=1),
    "sum": lambda a: a.sum(axis=1),
}


def _offsets(value, param, minimum):
    """An int k (meaning minimum..k, here 1..k) or an explicit list, as sorted unique ints."""
    if value is None:
        return []
    if isinstance(value, Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{param} must be >= 1 when given as an int, got {value}.")
        return list(range(1, int(value) + 1))
    values = np.asarray(value).ravel()
    if values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{param} must be an int or a non-empty list of ints, got {value!r}."
        )
    if values.min() < minimum:
        raise ValueError(f"{param} must all be >= {minimum}, got {sorted(values.tolist())}.")
    return sorted(set(int(v) for v in values))


def lag_names(columns, lags):
    """Names of lag columns, ``<column>_lag<k>``, step-major in the order of ``lags``.

    The one place lag columns are named (docs/architecture.md, contract 2): pass
    ``lags`` oldest first (``[3, 2, 1]``) for the layout the regressors read.
    """
    return [f"{c}_lag{L}" for L in lags for c in columns]


class LagFeatures(TransformerMixin, BaseEstimator):
    """Lag windows of chosen columns, per series, in the sequence layout of the regressors.

    The output lists the lag columns step-major, oldest step first: for ``lags=3`` and one
    column ``y`` it is ``y_lag3, y_lag2, y_lag1``; for columns ``a, b`` and ``lags=2`` it is
    ``a_lag2, b_lag2, a_lag1, b_lag1``. So ``make_pipeline(LagFeatures(lags=k, columns=cols),
    LSTMRegressor(n_step_features=len(cols)))`` reads each window as a sequence of ``k`` steps
    with ``len(cols)`` features each. Optional rolling statistics and leads are appended after
    the lag block (they are then no longer part of a pure sequence layout).

    Lags are computed inside each series only (never across groups) and on a regular time
    grid when ``date`` is given. Rows need not be sorted: the output keeps the input's row
    order (and, with ``set_output(transform="pandas")``, its index). Positions whose window
    reaches before the start of their series (or, for leads, past its end) get ``fill_value``;
    a transformer cannot drop rows -- use :func:`make_supervised` to drop them.

    The transformer learns nothing from the data: ``transform`` computes the lags from the
    rows it is given, so pass the history together with the rows to predict.

    Parameters
    ----------
    lags : int or list of int, default=1
        ``k`` means lags ``1, ..., k``; a list gives explicit lags (``0`` is the current value).
    columns : str, list of str or list of int, default=None
        Columns to lag. None: every column except those named by ``group`` and ``date``.
        Positions for array input.
    leads : int or list of int, default=None
        Future values to append (``<col>_lead<L>``), e.g. to build targets. Never feed them
        to a model as inputs: they leak the future.
    group : str, default=None
        Column or index level (columns take precedence) naming the series of each row. None:
        one series, unless ``groups`` is passed to ``fit``/``transform``.
    date : str, default=None
        Column or index level giving the time of each row (datetimes, periods or integers).
        None: the row order is the time order inside each series.
    freq : str, pandas offset, Timedelta or int, default=None
        Step of the time grid when ``date`` is given. None infers it (the most common
        frequency pandas infers per series, else the smallest step seen).
    fill_gaps : None, float, "ffill" or "interpolate", default=None
        Missing steps inside a series: None refuses them with an error; a number fills them
        with that value (e.g. ``0`` for counts); "ffill" repeats the last value;
        "interpolate" interpolates linearly. Filled steps feed the lags but add no rows.
    fill_value : float or "edge", default=np.nan
        Value for positions outside the series. "edge" repeats the series' first value (last,
        for leads), like ``numpy.pad(mode="edge")``, so every row gets a complete window.
    rolling : int or list of int, default=None
        Window length(s) ``w`` of rolling statistics (an int is one window, not ``1..w``).
        Each statistic covers the previous ``w`` values (lags ``1..w``, never the current
        value) and is named ``<col>_roll<w>_<stat>``. Incomplete windows are padded with
        ``fill_value`` before the statistic is taken.
    rolling_stats : tuple of str, default=("mean",)
        Statistics among "mean", "std", "min", "max", "sum".
    future_covariates : str or list of str, default=None
        Known-future columns (values known for the date being forecast: a work-day flag, a
        temperature forecast). The step of lag ``L`` carries their values at ``t - L + 1``
        (``<col>_lag<L-1>``), so the last step holds the values of the row's own date ``t``.
        They are not lagged as ``columns`` (and not part of the default ``columns``).
        Needs a DataFrame and lags >= 1.
    calendar : str or list of str, default=None
        Calendar features of the same dates ``t - L + 1`` (see
        :func:`skrnn.calendar.calendar_features`): among "dayofweek", "month", "dayofyear",
        "weekofyear", "dayofmonth", "monthstart", "holiday". Needs ``date`` (datetimes or
        periods) and lags >= 1.
    country : str, default=None
        Country code of the public holidays for ``calendar="holiday"`` (the ``holidays``
        package, ``pip install 'skrnn[calendar]'``).
    static : str or list of str, default=None
        Static covariates: columns holding one value per series (a store's size), repeated
        on every step after the known-future features (``<col>_lag<L>``). A column that
        varies within a series is refused. Needs a DataFrame.
    group_one_hot : bool, default=False
        Also repeat a one-hot of the series on every step (``<group>_<label>_lag<L>``),
        over the series seen in ``fit`` (an unseen one in ``transform`` is refused).

    Attributes
    ----------
    lags_ : list of int
        Lags in output order (oldest first).
    leads_ : list of int
        Leads in output order.
    rolling_ : list of int
        Rolling window lengths.
    columns_ : list
        The lagged columns (labels for DataFrames, positions for arrays).
    future_covariates_ : list of str
        The known-future columns.
    n_step_features_ : int
        Features per step in the lag block (lagged columns, known-future columns,
        calendar columns and static features), to pass as ``n_step_features`` downstream.
    static_ : list of str
        The static columns.
    group_categories_ : ndarray of object
        With ``group_one_hot``: the series of the one-hot columns, in order.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Input column names, when they are all strings.

    See Also
    --------
    make_supervised : Aligned ``(X, y)`` with a forecast horizon, incomplete rows dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrnn import LagFeatures
    >>> df = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "y": [1.0, 2, 3, 10, 20]})
    >>> LagFeatures(lags=2, group="g").set_output(transform="pandas").fit_transform(df)
       y_lag2  y_lag1
    0     NaN     NaN
    1     NaN     1.0
    2     1.0     2.0
    3     NaN     NaN
    4     NaN    10.0
    """

    _parameter_constraints = {
        "lags": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "columns": [None, str, "array-like"],
        "leads": [None, Interval(Integral, 1, None, closed="left"), "array-like"],
        "group": [None, str, Integral],
        "date": [None, str, Integral],
        "freq": "no_validation",  # str, offset, Timedelta or int: checked by pandas
        "fill_gaps": [None, Real, StrOptions({"ffill", "interpolate"})],
        "fill_value": [Real, StrOptions({"edge"})],
        "rolling": [None, Interval(Integral, 1, None, closed="left"), "array-like"],
        "rolling_stats": ["array-like"],
        "future_covariates": [None, str, "array-like"],
        "calendar": [None, str, "array-like"],
        "country": [None, str],
        "static": [None, str, "array-like"],
        "group_one_hot": ["boolean"],
    }

    def __init__(
        self,
        lags=1,
        *,
        columns=None,
        leads=None,
        group=None,
        date=None,
        freq=None,
        fill_gaps=None,
        fill_value=np.nan,
        rolling=None,
        rolling_stats=("mean",),
        future_covariates=None,
        calendar=None,
        country=None,
        static=None,
        group_one_hot=False,
    ):
        self.lags = lags
        self.columns = columns
        self.leads = leads
        self.group = group
        self.date = date
        self.freq = freq
        self.fill_gaps = fill_gaps
        self.fill_value = fill_value
        self.rolling = rolling
        self.rolling_stats = rolling_stats
        self.future_covariates = future_covariates
        self.calendar = calendar
        self.country = country
        self.static = static
        self.group_one_hot = group_one_hot

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- input handling -------------------------------------------------------------------

    def _read(self, X, groups, reset):
        """Values of the lagged columns (n, c) and the grid the rows lie on."""
        if isinstance(X, pd.Series):
            X = X.to_frame()
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            keys = {}
            for param in ("group", "date"):
                key = getattr(self, param)
                if key is not None:
                    keys[param] = lookup_key(X, key, param)
            if reset:
                used = [getattr(self, p) for p, (_, where) in keys.items() if where == "column"]
                self.columns_ = self._frame_columns(X, used)
                self._positions = [X.columns.get_loc(c) for c in self.columns_]
            values = check_array(
                X[self.columns_], dtype=np.float64, ensure_all_finite="allow-nan",
                ensure_min_samples=1, input_name="X",
            )
            future_values, static_values = (None if not names else check_array(
                X[names], dtype=np.float64, ensure_all_finite="allow-nan", input_name=param)
                for param, names in (("future_covariates", self.future_covariates_),
                                     ("static", self.static_)))
            group_labels = keys.get("group", (None,))[0]
            times = keys.get("date", (None,))[0]
        else:
            for param in ("future_covariates", "calendar", "static"):
                if getattr(self, param) is not None:
                    raise ValueError(
                        f"{param}={getattr(self, param)!r} needs X as a pandas DataFrame (with "
                        f"its columns and dates); got {type(X).__name__}."
                    )
            future_values = static_values = None
            for param in ("group", "date"):
                if getattr(self, param) is not None:
                    raise ValueError(
                        f"{param}={getattr(self, param)!r} names a column or index level, so X "
                        f"must be a pandas DataFrame; got {type(X).__name__}. For arrays, pass "
                        "the series labels as groups= to fit/transform; in a Pipeline, "
                        "set_output(transform='pandas') keeps the frame and its index."
                    )
            X = validate_data(
                self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan"
            )
            if reset:
                cols = np.arange(X.shape[1]) if self.columns is None else np.atleast_1d(
                    np.asarray(self.columns))
                if not np.issubdtype(cols.dtype, np.integer) or (
                        (cols < 0) | (cols >= X.shape[1])).any():
                    raise ValueError(
                        f"columns must be column positions in [0, {X.shape[1] - 1}] for "
                        f"array input, got {self.columns!r}.")
                self.columns_ = self._positions = [int(c) for c in cols]
            values = X[:, self._positions]
            group_labels, times = None, None

        n = values.shape[0]
        if groups is not None:
            if group_labels is not None:
                raise ValueError(
                    f"Pass either group={self.group!r} or groups=, not both."
                )
            group_labels = np.asarray(groups)
            if group_labels.ndim != 1 or group_labels.shape[0] != n:
                raise ValueError(
                    f"groups must have shape ({n},) like X's rows, got {group_labels.shape}."
                )
        codes, labels = (None, None) if group_labels is None else group_codes(
            group_labels, "group" if groups is None else "groups"
        )
        grid = build_grid(
            n, codes, labels, times, freq=self.freq, fill_gaps=self.fill_gaps,
            param_date=f"date={self.date!r}",
        )
        known = []
        if future_values is not None:
            known.append(grid.values(future_values, self.fill_gaps))
        if self._calendar:
            if times is None:
                raise ValueError(
                    f"calendar={self.calendar!r} needs the dates of the rows: pass date=<column "
                    "or index level holding datetimes or periods>."
                )
            known.append(calendar_features(grid_dates(grid, times), self._calendar,
                                           country=self.country))
        if self.group_one_hot and reset and grid.labels is not None:
            self.group_categories_ = np.asarray(grid.labels, dtype=object)
        static = static_features(grid, static_values, self.static_, getattr(
            self, "group_categories_", ()) if self.group_one_hot else None)
        return values, grid, (np.hstack(known) if known else None), static

    def _frame_columns(self, X, used):
        """The lagged columns of a DataFrame, after checking every column named (at fit)."""
        future, static = self.future_covariates_, self.static_
        if self.columns is None:
            cols = [c for c in X.columns if c not in used + future + static]
        else:
            cols = [self.columns] if isinstance(self.columns, str) else list(self.columns)
        named = {"future_covariates": future, "static": static, "columns": cols}
        for param, names in named.items():
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise ValueError(f"{param}={getattr(self, param)!r}: {missing} not in X; X has "
                                 f"columns {list(X.columns)}.")
        if not cols:
            raise ValueError("columns: X has no column left to lag.")
        both = [c for c in cols if c in future]
        if both:
            raise ValueError(
                f"{both} are both lagged columns and future_covariates; a column is either "
                "past-only (columns) or known in advance (future_covariates).")
        both = [c for c in static if c in cols or c in future or c in used]
        if both:
            raise ValueError(
                f"static={self.static!r}: {both} are also lagged, known-future, group or date "
                "columns; a static column holds one value per series.")
        for param, names in named.items():
            bad = [c for c in names if not pd.api.types.is_numeric_dtype(X[c].dtype)
                   or pd.api.types.is_bool_dtype(X[c].dtype)]
            if bad:
                raise TypeError(
                    f"{param}: {bad} are not numeric (dtypes {[str(X[c].dtype) for c in bad]}); "
                    "use only numeric columns, or name the series/time columns with "
                    "group=/date=.")
        return cols

    def _setup(self):
        """Check the parameters; set the offsets and feature lists (what fit learns first)."""
        check_fill_gaps(self.fill_gaps)
        self.lags_ = sorted(_offsets(self.lags, "lags", 0), reverse=True)
        self.leads_ = _offsets(self.leads, "leads", 1)
        self.rolling_ = (
            [int(self.rolling)] if isinstance(self.rolling, Integral)
            else _offsets(self.rolling, "rolling", 1)
        )
        stats = [self.rolling_stats] if isinstance(self.rolling_stats, str) else list(
            self.rolling_stats)
        unknown = [s for s in stats if s not in _ROLLING_STATS]
        if unknown or not stats:
            raise ValueError(
                f"rolling_stats must be a non-empty list among {sorted(_ROLLING_STATS)}, got "
                f"{self.rolling_stats!r}."
            )
        self._stats = stats
        fc, st = self.future_covariates, self.static
        self.future_covariates_ = [] if fc is None else ([fc] if isinstance(fc, str) else list(fc))
        self.static_ = [] if st is None else ([st] if isinstance(st, str) else list(st))
        self._calendar = [] if self.calendar is None else (
            [self.calendar] if isinstance(self.calendar, str) else list(self.calendar))
        self._calendar_names = (
            calendar_feature_names(self._calendar, self.country) if self._calendar else [])
        if self.country is not None and "holiday" not in self._calendar:
            raise ValueError(
                f"country={self.country!r} is only used by calendar='holiday'; add 'holiday' to "
                "calendar or leave country unset."
            )
        if (self.future_covariates_ or self._calendar) and min(self.lags_) < 1:
            raise ValueError(
                "lags must all be >= 1 with future_covariates or calendar: the step of lag L "
                "carries the known-future features of t - L + 1, and lag 0 would reach past the "
                f"row's own date; got lags={self.lags!r}."
            )

    def _known_names(self):
        return [*(str(c) for c in self.future_covariates_), *self._calendar_names]

    def _static_names(self):
        key = "group" if self.group is None else str(self.group)
        return [*(str(c) for c in self.static_), *(
            f"{key}_{g}" for g in getattr(self, "group_categories_", [])
            if self.group_one_hot)]

    def _lag_names(self):
        """Names of the lag block, step by step (oldest first)."""
        names, known, static = self._names_in(), self._known_names(), self._static_names()
        return [n for L in self.lags_ for n in
                lag_names(names, [L]) + lag_names(known, [L - 1]) + lag_names(static, [L])]

    def _names_in(self):
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.columns_]
        if all(isinstance(c, Integral) for c in self.columns_):
            return [f"x{c}" for c in self.columns_]
        return [str(c) for c in self.columns_]

    def _step_table(self, values, grid, known, static, before, after):
        """Every series' steps padded for the windows: lagged columns at each step, the
        known-future features of the next step, the series' static features; and the
        position of each input row."""
        table = pad_series(grid.values(values, self.fill_gaps), grid.lengths, before, after,
                           self.fill_value)
        if known is not None:  # one step ahead: a step's known-future values are of t - L + 1
            table = np.hstack([table, pad_series(known, grid.lengths, before - 1, after + 1,
                                                 self.fill_value)])
        if static is not None:  # the series' own values, before and after it too
            table = np.hstack([table, pad_series(static, grid.lengths, before, after, "edge")])
        return table, grid.row + (before + after) * grid.codes[grid.row] + before

    def _blocks(self, values, grid, known, static):
        """The lag, rolling and lead blocks for the input rows, in output order."""
        before = max(self.lags_ + self.rolling_)
        table, at = self._step_table(values, grid, known, static, before,
                                     max(self.leads_ + [0]))
        c = values.shape[1]
        blocks = [PanelWindows.at(table, at, [-L for L in self.lags_])[:]]
        for w in self.rolling_:  # lags 1..w, most recent first
            window = PanelWindows.at(table[:, :c], at, np.arange(-1, -w - 1, -1)).sequences()
            blocks += [_ROLLING_STATS[s](window) for s in self._stats]
        if self.leads_:
            blocks.append(PanelWindows.at(table[:, :c], at, self.leads_)[:])
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    # -- estimator API --------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Check the parameters and the data layout; learn the output columns.

        Parameters
        ----------
        X : DataFrame, Series or array-like of shape (n_samples, n_features)
            Long table: one row per series and time.
        y : None
            Ignored.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        self : LagFeatures
            Fitted transformer.
        """
        self._setup()
        stats = self._stats
        _, grid, _, _ = self._read(X, groups, reset=True)
        reach = max(self.lags_)
        longest = int(grid.lengths.max())
        if longest <= reach:
            raise ValueError(
                f"lags reach back {reach} step(s) but the longest series has only "
                f"n_samples={longest} row(s), so no row gets a complete window; use fewer lags "
                "or longer series."
            )
        names = self._names_in()
        out = self._lag_names()
        out += [f"{c}_roll{w}_{s}" for w in self.rolling_ for s in stats for c in names]
        out += [f"{c}_lead{L}" for L in self.leads_ for c in names]
        self._feature_names_out = np.asarray(out, dtype=object)
        self.n_step_features_ = (len(names) + len(self._known_names())
                                 + len(self._static_names()))
        return self

    def transform(self, X, groups=None):
        """Lag windows of the rows of ``X``, in the input's row order.

        Parameters
        ----------
        X : DataFrame, Series or array-like of shape (n_samples, n_features)
            Same layout as in ``fit``; include enough history before the rows you need.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        X_lags : ndarray of shape (n_samples, n_features_out)
            Columns named by :meth:`get_feature_names_out`.
        """
        check_is_fitted(self)
        return self._blocks(*self._read(X, groups, reset=False))

    def fit_transform(self, X, y=None, groups=None):
        """Fit, then transform ``X``; ``groups`` goes to both (see :meth:`fit`)."""
        return self.fit(X, y, groups=groups).transform(X, groups=groups)

    def get_feature_names_out(self, input_features=None):
        """Output column names: lags (oldest first), rolling statistics, then leads.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Must match ``feature_names_in_`` when given.

        Returns
        -------
        feature_names_out : ndarray of str objects
            Output column names.
        """
        check_is_fitted(self)
        if input_features is not None and hasattr(self, "feature_names_in_"):
            if list(input_features) != list(self.feature_names_in_):
                raise ValueError(
                    "input_features must equal feature_names_in_ "
                    f"{list(self.feature_names_in_)}, got {list(input_features)}."
                )
        return self._feature_names_out.copy()


def make_supervised(
    data,
    target,
    *,
    lags=1,
    horizon=1,
    multi_output=True,
    columns=None,
    group=None,
    date=None,
    groups=None,
    freq=None,
    fill_gaps=None,
    dropna=True,
    past_covariates=None,
    future_covariates=None,
    calendar=None,
    country=None,
    static=None,
    group_one_hot=False,
    as_windows=False,
):
    """Build an aligned ``(X, y)`` for forecasting ``horizon`` steps from lag windows.

    Each row keeps its original index (so predictions join back to dates and groups): ``X``
    holds the lag windows of ``columns`` in the layout of :class:`LagFeatures`
    (``<col>_lag<L>``, oldest first) and ``y`` the target at the row's own time ``t`` and the
    following steps. Everything is computed inside each series; rows keep the input order.

    Parameters
    ----------
    data : DataFrame or Series
        Long table, one row per series and time.
    target : str
        Column to forecast.
    lags : int or list of int, default=1
        ``k`` means lags ``1..k``; a list gives explicit lags.
    horizon : int, default=1
        Number of steps ahead ``h``.
    multi_output : bool, default=True
        True: ``y`` has ``h`` columns ``<target>_h1..<target>_h<h>`` (values at
        ``t..t+h-1``), for direct multi-output forecasting. False: ``y`` is the single
        ``h``-step target, the value at ``t+h-1``. A single target is returned as a Series,
        named ``target`` for ``h=1``.
    columns : str or list of str, default=None
        Columns whose lags form ``X``; default ``[target]``. Several columns give several
        features per step (``n_step_features=len(columns)``).
    group, date, freq, fill_gaps
        As in :class:`LagFeatures`: the series and time of each row (column or index level
        names), the time step, and what to do with missing dates (refused by default).
    groups : array-like of shape (n_samples,), default=None
        Series label of each row, when not given by ``group``.
    dropna : bool, default=True
        Drop rows with any missing value in ``X`` or ``y`` -- in particular those whose
        window reaches before the start of their series or whose targets run past its end.
    past_covariates : str or list of str, default=None
        Other columns known only up to the previous step, lagged like the target (appended
        to ``columns``).
    future_covariates : str or list of str, default=None
        Known-future columns: the step of lag ``L`` carries their values at ``t - L + 1``, so
        the last step holds those of the first target date ``t`` (see
        :class:`LagFeatures`). For ``horizon > 1`` only the first target date's values are in
        the window.
    calendar : str or list of str, default=None
        Calendar features of the same dates (:func:`skrnn.calendar.calendar_features`);
        needs ``date``.
    country : str, default=None
        Country of the public holidays for ``calendar="holiday"``.
    static, group_one_hot
        Static covariates repeated on every step: the series' own constant columns, and a
        one-hot of the series (see :class:`LagFeatures`).
    as_windows : bool, default=False
        Return ``X`` as a :class:`~skrnn.windows.PanelWindows` instead of a DataFrame: the
        same rows (``numpy.asarray(X)`` is the DataFrame's values, bit for bit) over one
        padded copy of the panel, so it costs O(panel) memory instead of O(rows x lags).
        The recurrent regressors fit and predict on it directly, gathering each batch's
        rows; the windows carry the rows' index and the column names
        (``X.index``, ``X.columns``), and ``y`` the same index.

    Returns
    -------
    X : DataFrame of shape (n_rows, n_lags * n_step_features), or PanelWindows
        Lag windows, indexed like ``data``; ``n_step_features`` is the number of lagged
        columns plus known-future, calendar and static columns.
    y : Series or DataFrame of shape (n_rows,) or (n_rows, h)
        Targets, same index.

    Raises
    ------
    ValueError
        If a series is too short to give a single complete row, if ``(group, date)`` keys
        are duplicated, or if dates have gaps and ``fill_gaps`` is None.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrnn import make_supervised
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5]})
    >>> X, y = make_supervised(df, "y", lags=2, horizon=2)
    >>> pd.concat([X, y], axis=1)
       y_lag2  y_lag1  y_h1  y_h2
    2     1.0     2.0   3.0   4.0
    3     2.0     3.0   4.0   5.0
    """
    if isinstance(data, pd.Series):
        data = data.to_frame(name=target if data.name is None else data.name)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"data must be a pandas DataFrame or Series, got {type(data).__name__}."
        )
    if target not in data.columns:
        raise ValueError(f"target={target!r} is not a column of data; columns: "
                         f"{list(data.columns)}.")
    if not isinstance(horizon, Integral) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon must be an int >= 1, got {horizon!r}.")
    cols = [target] if columns is None else (
        [columns] if isinstance(columns, str) else list(columns))
    if past_covariates is not None:
        cols += [past_covariates] if isinstance(past_covariates, str) else list(past_covariates)
    future = [future_covariates] if isinstance(future_covariates, str) else future_covariates
    if future is not None and target in list(future):
        raise ValueError(f"target={target!r} cannot be a future covariate: its value on the "
                         "target date is what is forecast.")
    lagger = LagFeatures(lags, columns=cols, group=group, date=date, freq=freq,
                         fill_gaps=fill_gaps, future_covariates=future, calendar=calendar,
                         country=country, static=static, group_one_hot=group_one_hot)
    lagger._validate_params()
    lagger._setup()
    lagger.leads_, lagger.rolling_, lagger._stats = [], [], []
    values, grid, known, static = lagger._read(data, groups, reset=True)

    need = max(lagger.lags_) + horizon
    short = np.flatnonzero(grid.lengths < need)
    if short.size:
        shown = {"all rows" if grid.labels is None else str(grid.labels[g]):
                 int(grid.lengths[g]) for g in short[:5]}
        raise ValueError(
            f"{short.size} series are too short for lags up to {max(lagger.lags_)} and "
            f"horizon={horizon} (need at least {need} steps; series: length {shown}). Use "
            "fewer lags or drop those series first."
        )
    # one step table holds the windows and the targets: rows anchor at their own date
    table, at = lagger._step_table(values, grid, known, static, max(lagger.lags_),
                                   horizon - 1)
    W = PanelWindows.at(table, at, [-L for L in lagger.lags_],
                        lengths=grid.lengths + max(lagger.lags_) + horizon - 1,
                        series=grid.codes[grid.row])
    tvals = grid.values(check_array(data[[target]], dtype=np.float64,
                                    ensure_all_finite="allow-nan"), fill_gaps)
    steps = range(1, horizon + 1) if multi_output else [horizon]
    Y = PanelWindows.at(pad_series(tvals, grid.lengths, max(lagger.lags_), horizon - 1),
                        at, [k - 1 for k in steps])[:]

    if dropna:
        keep = np.flatnonzero(~(W.nonfinite_rows() | np.isnan(Y).any(axis=1)))
        W, Y = W.subset(keep), Y[keep]
    index = data.index if not dropna else data.index[keep]
    X = (W.labelled(index, lagger._lag_names()) if as_windows
         else pd.DataFrame(W[:], index=index, columns=lagger._lag_names()))
    if Y.shape[1] == 1:
        name = target if horizon == 1 else f"{target}_h{horizon}"
        y = pd.Series(Y[:, 0], index=index, name=name)
    else:
        y = pd.DataFrame(Y, index=index, columns=[f"{target}_h{k}" for k in steps])
    return X, y


class LastSteps(CallbackSupportMixin, TransformerMixin, BaseEstimator):
    """Keep the most recent ``n_steps`` steps of a step-major lag window.

    Build the window once for the largest lag you consider (``make_supervised(...,
    lags=max_lags)``), then tune ``n_steps`` as a pipeline parameter: every candidate
    sees exactly the same rows, so their validation scores are comparable, and no row
    is lost to a longer window.

    Parameters
    ----------
    n_steps : int or None, default=None
        Steps to keep (the last ``n_steps * n_step_features`` columns). None keeps all.
    n_step_features : int, default=1
        Features per step of the window.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.lags import LastSteps
    >>> LastSteps(n_steps=2).fit_transform(np.array([[1.0, 2, 3], [4, 5, 6]]))
    array([[2., 3.],
           [5., 6.]])
    """

    _parameter_constraints = {
        "n_steps": [Interval(Integral, 1, None, closed="left"), None],
        "n_step_features": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_steps=None, *, n_step_features=1):
        self.n_steps = n_steps
        self.n_step_features = n_step_features

    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the window layout; learns nothing else."""
        # a one-task fit, so a Pipeline's progress bar propagates through it
        ctx = self._init_callback_context()
        ctx.call_on_fit_task_begin(estimator=self, X=X, y=y)
        if isinstance(X, PanelWindows):
            self._check_windows(X)
            validate_data(self, X.head(), ensure_all_finite="allow-nan")
        else:
            X = validate_data(self, X, ensure_all_finite="allow-nan")
        self._check_width(X.shape[1])
        ctx.call_on_fit_task_end(estimator=self, X=X, y=y, reconstruction_attributes={})
        return self

    def _check_width(self, n_columns):
        F = self.n_step_features
        _layout.n_steps(n_columns, F, "X has {n_columns} columns, which do not divide into "
                        "steps of n_step_features={n_step_features}.")
        if self.n_steps is not None and self.n_steps * F > n_columns:
            raise ValueError(
                f"n_steps={self.n_steps} needs {self.n_steps * F} columns, but the window "
                f"has {n_columns} ({n_columns // F} steps). Build a longer window."
            )

    def _keep(self):
        return self.n_features_in_ if self.n_steps is None else self.n_steps * self.n_step_features

    def _check_windows(self, X):
        if X.n_step_features != self.n_step_features:
            raise ValueError(
                f"X holds windows of {X.n_step_features} features per step, but "
                f"n_step_features={self.n_step_features}.")

    def transform(self, X):
        """The last ``n_steps`` steps of each window, oldest first.

        A :class:`~skrnn.windows.PanelWindows` gives windows again: the same rows cut
        to their last steps (:meth:`~skrnn.windows.PanelWindows.last_steps`), with
        nothing gathered or copied, and without column names, like the array a
        DataFrame gives (so a model after this step records no feature names on
        either path). Leave ``set_output`` at its default for windows: a pandas output
        would densify them.
        """
        check_is_fitted(self)
        if isinstance(X, PanelWindows):
            self._check_windows(X)
            validate_data(self, X.head(), reset=False, ensure_all_finite="allow-nan")
            return X.last_steps(self._keep() // self.n_step_features, columns=False)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return X[:, -self._keep():]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # it only selects columns
        return tags

    def get_feature_names_out(self, input_features=None):
        """Names of the kept columns."""
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        return names[-self._keep():]
