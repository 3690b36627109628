"""Per-series scaling for panels.

Series in a panel live on very different scales (a quiet district and a busy one); one
global scaler squashes the quiet ones to noise. :class:`GroupScaler` keeps one min-max or
standard scaling per series, learned on the training rows only.
:class:`GroupTargetRegressor` does the same for the target of any regressor: it scales ``y``
per series before fitting and inverts the predictions with the statistics of each row's
series, so one pooled model serves series of very different levels.

The functions below are the per-series scaling of
:class:`~skrnn.forecasting.RecurrentForecaster` (one implementation, on NumPy arrays):
:func:`series_scales` (a location and scale per series, including the scale of a
series' changes that window-relative scaling divides by) and :func:`pooled_scales` (the
NaN-aware standardisation of columns pooled over all series). The other half of
window-relative scaling, the level each window is taken relative to, belongs to the
windows (:func:`skrnn.windows.window_levels`, :class:`skrnn.windows.PanelWindows`'s
``level``).
"""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skrnn._panel import group_codes, lookup_key
from skrnn.windows import PanelWindows

__all__ = [
    "GroupScaler",
    "GroupTargetRegressor",
    "pooled_scales",
    "series_scales",
]


# window cells GroupScaler gathers at once when fitting on lag windows (16 MB of float64)
_WINDOW_CELLS = 1 << 21


class _KeepsWindows:
    """``transform`` and ``fit_transform`` of :class:`GroupScaler`, outside its class body.

    scikit-learn's ``set_output`` wraps the ``transform`` a class defines itself into
    a DataFrame; lag windows (:class:`~skrnn.windows.PanelWindows`) must come out as
    windows, so these methods wrap only what is not windows themselves.
    """

    def transform(self, X, groups=None):
        """Scale each row with the statistics of its series.

        Parameters
        ----------
        X : DataFrame, Series, array-like of shape (n_samples, n_features) or \
                PanelWindows
            Rows to scale, same layout as in ``fit``.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        X_scaled : ndarray of shape (n_samples, n_scaled_features), DataFrame or \
                PanelWindows
            Scaled values (a group column is dropped); a DataFrame with
            ``set_output(transform="pandas")``; windows for windows (see
            :meth:`_transform_windows`).
        """
        if isinstance(X, PanelWindows):
            return self._transform_windows(X, groups)
        return _wrap_data_with_container("transform", self._transform(X, groups), X, self)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y, **fit_params).transform(X)``; windows give windows."""
        if isinstance(X, PanelWindows):
            return self.fit(X, y, **fit_params).transform(X, fit_params.get("groups"))
        return super().fit_transform(X, y, **fit_params)


class GroupScaler(_KeepsWindows, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standard or min-max scaling with one set of statistics per series.

    Where the groups come from:

    - ``group`` names a column or index level of a DataFrame (or an index level of a
      Series). A group *column* is only read, never scaled, and is left out of the output;
      an index level survives in pandas output (``set_output(transform="pandas")``), which
      is how groups travel through a Pipeline.
    - ``groups=`` passed to ``fit``, ``transform`` and ``inverse_transform`` (arrays).
    - Otherwise all rows are one group: a plain global scaler.

    Inside :class:`~sklearn.compose.TransformedTargetRegressor` the transformer only ever
    sees ``y`` converted to a NumPy array, so the group index is lost there and GroupScaler
    scales the target globally. For per-series target scaling use
    :class:`GroupTargetRegressor`, or scale ``y`` yourself
    (``GroupScaler(group=...).fit(y_train)``) and undo it on the predictions with
    ``inverse_transform(pred, groups=...)``.

    Lag windows as views (a labelled :class:`~skrnn.windows.PanelWindows`, as
    ``make_supervised(..., as_windows=True)`` gives, with ``n_step_features`` set to
    theirs) are scaled without building the window matrix: the statistics are gathered a
    chunk of series at a time, and ``transform`` returns the same windows over each
    series' scaled values (O(panel) memory), equal to the scaled DataFrame bit for bit.
    The group comes from the windows' ``index``.

    Series whose values are constant (a district with only zeros; a spread within 1e-12 of
    the level, :func:`spread_or_one`, as every scaler of this module) get a scale of 1
    instead of a division by zero: they map to 0 (standard) or to ``feature_range[0]``
    (min-max).
    Missing values are ignored when fitting and kept as NaN by ``transform``.

    Parameters
    ----------
    method : {"standard", "minmax"}, default="standard"
        ``(x - mean) / std`` or ``(x - min) / (max - min)`` mapped onto ``feature_range``.
    group : str, default=None
        Column or index level naming the series of each row.
    feature_range : tuple (min, max), default=(0, 1)
        Target range of the min-max scaling.
    n_step_features : int, default=None
        None: statistics per column (like scikit-learn's scalers). An int ``F`` reads the
        columns as a step-major lag window with ``F`` features per step (the layout of
        :class:`~skrnn.LagFeatures`) and shares one statistic per feature across all steps,
        so a window keeps its shape after scaling.
    handle_unknown : {"error", "global"}, default="error"
        Rows of a group not seen in ``fit``: raise, or use the statistics of all training
        rows together.
    pooled_features : array-like of int, default=None
        Step features (indices in ``[0, n_step_features)``; without ``n_step_features``,
        columns) scaled with one set of statistics pooled over all series (those of all
        training rows together) instead of each series' own. For features that describe
        a series rather than vary within it: a static covariate or a one-hot of the
        series is constant within each series, so per-series statistics would map every
        series to 0 and erase what tells them apart; pooled, the differences between
        series survive. None: every feature per series.
    passthrough_features : array-like of int, default=None
        Step features (or columns, as for ``pooled_features``) left as they are (center
        0, scale 1): for a one-hot, already on a unit scale, which standardising would
        blow up to about ``sqrt(n_categories)`` for the rare category.

    Attributes
    ----------
    groups_ : ndarray of shape (n_groups,)
        Group labels seen in ``fit`` (``[None]`` for one global group).
    center_ : ndarray of shape (n_groups, n_scaled_features)
        Mean (standard) or minimum (min-max) per group and scaled column (the pooled
        one, the same in every row, for ``pooled_features``; 0 for
        ``passthrough_features``).
    scale_ : ndarray of shape (n_groups, n_scaled_features)
        Divisor per group and scaled column; 1 where the series is constant.
    global_center_ : ndarray of shape (n_scaled_features,)
        Center over all training rows, used by ``handle_unknown="global"``.
    global_scale_ : ndarray of shape (n_scaled_features,)
        Scale over all training rows.
    n_features_in_ : int
        Number of input columns (including a group column).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Input column names, when they are all strings.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrnn import GroupScaler
    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [0.0, 2.0, 5.0, 5.0]})
    >>> GroupScaler("minmax", group="g").fit_transform(df).ravel()
    array([0., 1., 0., 0.])
    """

    _parameter_constraints = {
        "method": [StrOptions({"standard", "minmax"})],
        "group": [None, str, Integral],
        "feature_range": [tuple],
        "n_step_features": [None, Interval(Integral, 1, None, closed="left")],
        "handle_unknown": [StrOptions({"error", "global"})],
        "pooled_features": [None, "array-like"],
        "passthrough_features": [None, "array-like"],
    }

    def __init__(self, method="standard", *, group=None, feature_range=(0, 1),
                 n_step_features=None, handle_unknown="error", pooled_features=None,
                 passthrough_features=None):
        self.method = method
        self.group = group
        self.feature_range = feature_range
        self.n_step_features = n_step_features
        self.handle_unknown = handle_unknown
        self.pooled_features = pooled_features
        self.passthrough_features = passthrough_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _read(self, X, groups, reset):
        """Numeric values (n, p) and group labels (n,) or None."""
        labels = None
        if isinstance(X, pd.Series):  # one column; its index may carry the group level
            X = X.to_frame()
        if isinstance(X, pd.DataFrame) and self.group is not None:
            validate_data(self, X, skip_check_array=True, reset=reset)
            labels, where = lookup_key(X, self.group, "group")
            if where == "column":
                X = X.drop(columns=[self.group])
            values = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan",
                                 input_name="X")
            if reset:
                self._kept_columns = np.asarray(X.columns, dtype=object)
        else:
            if self.group is not None:
                raise ValueError(
                    f"group={self.group!r} names a column or index level, so X must be a "
                    f"pandas DataFrame or Series; got {type(X).__name__}. For arrays pass "
                    "groups= instead; in a Pipeline, set_output(transform='pandas') lets the "
                    "index (and its group level) reach this step."
                )
            values = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                                   ensure_all_finite="allow-nan")
            if reset:
                self._kept_columns = None
        if groups is not None:
            if labels is not None:
                raise ValueError(f"Pass either group={self.group!r} or groups=, not both.")
            labels = np.asarray(groups)
            if labels.ndim != 1 or labels.shape[0] != values.shape[0]:
                raise ValueError(
                    f"groups must have shape ({values.shape[0]},) like X's rows, got "
                    f"{labels.shape}."
                )
        return values, labels

    def _steps(self, p):
        """Columns -> shared statistic index, for n_step_features."""
        if self.n_step_features is None:
            return np.arange(p)
        if p % self.n_step_features:
            raise ValueError(
                f"n_step_features={self.n_step_features} must divide the number of scaled "
                f"columns, got {p} columns."
            )
        return np.arange(p) % self.n_step_features

    def _listed(self, param, p):
        """Mask of the scaled columns of the step features (or columns) ``param`` lists."""
        given = getattr(self, param)
        if given is None:
            return np.zeros(p, dtype=bool)
        n = self.n_step_features if self.n_step_features is not None else p
        what = "step features" if self.n_step_features is not None else "columns"
        idx = np.asarray(given)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)) or (
                idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise ValueError(
                f"{param} must list {what} by their index in [0, {n}), got {given!r}."
            )
        return np.isin(self._steps(p), idx)

    def _stats(self, values, codes, n_groups):
        """Center and scale per group (rows) and statistic (columns)."""
        share = self._steps(values.shape[1])
        return self._finish(*self._raw_stats(values, codes, n_groups), share)

    def _raw_stats(self, values, codes, n_groups):
        """Center and spread (n_groups, n_stats) before constant series are fixed."""
        p = values.shape[1]
        share = self._steps(p)
        n_stats = share.max() + 1 if p else 0
        # Stack the steps under each other so each shared statistic is one long column.
        long = np.full((values.shape[0] * (p // max(n_stats, 1)), n_stats), np.nan)
        for j in range(n_stats):
            cols = np.flatnonzero(share == j)
            long[:, j] = values[:, cols].T.ravel()
        long_codes = np.tile(codes, p // max(n_stats, 1))
        frame = pd.DataFrame(long).groupby(long_codes)
        def per_group(stat):
            # np.array copies: pandas' copy-on-write hands out read-only arrays
            return np.array(stat.reindex(range(n_groups)), dtype=np.float64)

        if self.method == "standard":
            return per_group(frame.mean()), per_group(frame.std(ddof=0))
        lo, hi = self.feature_range
        center = per_group(frame.min())
        return center, (per_group(frame.max()) - center) / (hi - lo)

    @staticmethod
    def _finish(center, scale, share):
        scale = spread_or_one(scale, center)  # constant or empty series
        center[~np.isfinite(center)] = 0.0
        return center[:, share], scale[:, share]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Learn the statistics of each series from the training rows.

        Parameters
        ----------
        X : DataFrame, Series or array-like of shape (n_samples, n_features)
            Training rows.
        y : None
            Ignored.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        self : GroupScaler
            Fitted scaler.
        """
        if len(self.feature_range) != 2 or not self.feature_range[0] < self.feature_range[1]:
            raise ValueError(
                f"feature_range must be (min, max) with min < max, got {self.feature_range!r}."
            )
        if isinstance(X, PanelWindows):
            return self._fit_windows(X, groups)
        values, labels = self._read(X, groups, reset=True)
        if labels is None:
            codes, self.groups_ = np.zeros(values.shape[0], dtype=np.intp), np.array([None])
        else:
            codes, uniques = group_codes(labels, "group" if groups is None else "groups")
            self.groups_ = np.asarray(uniques)
        self.center_, self.scale_ = self._stats(values, codes, len(self.groups_))
        g_center, g_scale = self._stats(values, np.zeros(values.shape[0], dtype=np.intp), 1)
        self.global_center_, self.global_scale_ = g_center[0], g_scale[0]
        return self._pool_and_pass(values.shape[1])

    def _pool_and_pass(self, p):
        """Give ``pooled_features`` the global statistics and leave
        ``passthrough_features`` as they are, in every group; return self."""
        pooled = self._listed("pooled_features", p)
        kept = self._listed("passthrough_features", p)
        if (pooled & kept).any():
            raise ValueError("pooled_features and passthrough_features must not share a "
                             f"feature; got {self.pooled_features!r} and "
                             f"{self.passthrough_features!r}.")
        self.center_ = np.array(self.center_)  # own rows, not views of the global ones
        self.scale_ = np.array(self.scale_)
        self.center_[:, pooled] = self.global_center_[pooled]
        self.scale_[:, pooled] = self.global_scale_[pooled]
        # min-max maps onto feature_range by adding its low end: take it off again
        for stats in (self.center_, self.global_center_):
            stats[..., kept] = self._offset()
        self.scale_[:, kept] = self.global_scale_[kept] = 1.0
        return self

    def _row_stats(self, labels, n):
        if labels is None:
            if len(self.groups_) != 1 or self.groups_[0] is not None:
                if self.handle_unknown == "global":
                    return self.global_center_, self.global_scale_
                raise ValueError(
                    "This GroupScaler was fitted per group; pass the data with its group "
                    "column/level or groups=, or set handle_unknown='global'."
                )
            return self.center_[0], self.scale_[0]
        if self.groups_[0] is None and len(self.groups_) == 1:
            raise ValueError(
                "This GroupScaler was fitted without groups; do not pass groups now."
            )
        idx = pd.Index(self.groups_).get_indexer(pd.Index(labels))
        unknown = idx < 0
        if unknown.any():
            if self.handle_unknown == "error":
                new = pd.unique(np.asarray(labels)[unknown])[:5].tolist()
                raise ValueError(
                    f"{int(unknown.sum())} row(s) belong to group(s) not seen in fit, e.g. "
                    f"{new}. Fit on data covering them or set handle_unknown='global'."
                )
        center = np.where(unknown[:, None], self.global_center_, self.center_[idx])
        scale = np.where(unknown[:, None], self.global_scale_, self.scale_[idx])
        return center, scale

    def _offset(self):
        return float(self.feature_range[0]) if self.method == "minmax" else 0.0

    def _transform(self, X, groups=None):
        check_is_fitted(self)
        values, labels = self._read(X, groups, reset=False)
        center, scale = self._row_stats(labels, values.shape[0])
        return ((values - center) / scale + self._offset()).astype(values.dtype, copy=False)

    # -- lag windows as views (skrnn.windows.PanelWindows) ------------------------------

    def _window_labels(self, W, groups, reset):
        """Check the windows' layout and names; the group label of each window."""
        if self.n_step_features is None or self.n_step_features != W.n_step_features:
            raise ValueError(
                f"windows of {W.n_step_features} features per step are scaled with one "
                "statistic per step feature: set n_step_features="
                f"{W.n_step_features} (got {self.n_step_features}).")
        validate_data(self, W.head(), skip_check_array=True, reset=reset)
        if reset:
            self._kept_columns = None if W.columns is None else np.asarray(W.columns,
                                                                            dtype=object)
        labels = None
        if self.group is not None:
            if W.index is None:
                raise ValueError(
                    f"group={self.group!r} names an index level, but these windows carry no "
                    "index; label them (PanelWindows.labelled) or pass groups=.")
            labels, _ = lookup_key(W, self.group, "group")
        if groups is not None:
            if labels is not None:
                raise ValueError(f"Pass either group={self.group!r} or groups=, not both.")
            labels = np.asarray(groups)
            if labels.shape != (len(W),):
                raise ValueError(f"groups must have shape ({len(W)},) like X's rows, got "
                                 f"{labels.shape}.")
        return labels

    def _fit_windows(self, W, groups, cells=None):
        """``fit`` on lag windows, a chunk of series at a time.

        Each series' statistics are computed by the same code, over the same values in
        the same order, as on the dense window matrix, so they are equal bit for bit;
        only about ``cells`` window cells are gathered at once. The statistics pooled
        over all rows (one global group, and ``handle_unknown="global"``) are equal too
        when the windows hold at most ``cells`` cells; beyond that they are combined
        from chunks (Chan's pairwise update) and may differ from the dense ones in the
        last bits (relative 1e-12 at most in practice).
        """
        labels = self._window_labels(W, groups, reset=True)
        cells = _WINDOW_CELLS if cells is None else cells
        p, F = W.shape[1], W.n_step_features
        share = self._steps(p)
        per_chunk = max(1, cells // max(p, 1))
        if len(W) <= per_chunk:  # small enough to be pooled exactly as on the dense X
            g_center, g_scale = (x[0] for x in self._raw_stats(
                W[:], np.zeros(len(W), dtype=np.intp), 1))
        else:
            g_center, g_scale = self._pooled_window_stats(W, per_chunk)
        self.global_center_, self.global_scale_ = (x[0] for x in self._finish(
            g_center[None], g_scale[None], share))
        if labels is None:
            self.groups_ = np.array([None])
            self.center_, self.scale_ = self.global_center_[None], self.global_scale_[None]
            return self._pool_and_pass(p)
        codes, uniques = group_codes(labels, "group" if groups is None else "groups")
        self.groups_ = np.asarray(uniques)
        G = len(self.groups_)
        order = np.argsort(codes, kind="stable")  # each group's rows in their own order
        ends = np.cumsum(np.bincount(codes, minlength=G))
        center, scale = np.empty((G, F)), np.empty((G, F))
        g = 0
        while g < G:
            lo = ends[g - 1] if g else 0
            # whole groups, about per_chunk rows (at least one group)
            h = max(g + 1, int(np.searchsorted(ends, lo + per_chunk, side="right")))
            rows = order[lo:ends[h - 1]]
            c, s = self._raw_stats(W[rows], codes[rows] - g, h - g)
            center[g:h], scale[g:h] = c, s
            g = h
        self.center_, self.scale_ = self._finish(center, scale, share)
        return self._pool_and_pass(p)

    def _pooled_window_stats(self, W, per_chunk):
        """Center and spread of each step feature over every cell of every window."""
        F = W.n_step_features
        n, mean, m2 = np.zeros(F), np.zeros(F), np.zeros(F)
        lo, hi = np.full(F, np.inf), np.full(F, -np.inf)
        for s in range(0, len(W), per_chunk):
            cells = W.sequences(slice(s, s + per_chunk)).reshape(-1, F)
            ok = ~np.isnan(cells)
            k = ok.sum(axis=0)
            if not k.any():
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                mu = np.where(ok, cells, 0).sum(axis=0) / k
                q = np.where(ok, (cells - mu) ** 2, 0).sum(axis=0)
                total = n + k
                delta = mu - mean
                mean = np.where(k > 0, mean + delta * k / total, mean)
                m2 = np.where(k > 0, m2 + q + delta ** 2 * n * k / total, m2)
            n = total
            lo = np.fmin(lo, np.nanmin(np.where(ok, cells, np.inf), axis=0))
            hi = np.fmax(hi, np.nanmax(np.where(ok, cells, -np.inf), axis=0))
        empty = n == 0
        if self.method == "standard":
            with np.errstate(invalid="ignore", divide="ignore"):
                std = np.sqrt(m2 / n)
            return np.where(empty, np.nan, mean), np.where(empty, np.nan, std)
        a, b = self.feature_range
        center = np.where(empty, np.nan, lo)
        return center, (np.where(empty, np.nan, hi) - center) / (b - a)

    def _transform_windows(self, W, groups=None):
        """Scaled windows: the same windows over the scaled values of each series.

        A window reads only its own series' values, and one statistic per step feature
        is shared by every step, so scaling each series' values once is exactly the
        scaling of every window cell (bit for bit): O(panel) memory, no window matrix.
        """
        check_is_fitted(self)
        labels = self._window_labels(W, groups, reset=False)
        F = W.n_step_features
        present, first = np.unique(W.series, return_index=True)
        if labels is None:
            center, scale = self._row_stats(None, len(W))
            center = np.broadcast_to(center[:F], (len(present), F))
            scale = np.broadcast_to(scale[:F], (len(present), F))
        else:
            labels = pd.Index(labels)
            center, scale = self._row_stats(labels[first], len(present))
            center, scale = center[:, :F], scale[:, :F]
            where = np.searchsorted(present, W.series)
            if not (labels[first][where] == labels).all():
                raise ValueError("the windows of one series carry several group labels; "
                                 "each series must belong to one group.")
        # values of series no window reads are never gathered: NaN marks them
        n_series = len(W.lengths)
        full_c, full_s = np.full((n_series, F), np.nan), np.ones((n_series, F))
        full_c[present], full_s[present] = center, scale
        of = W.value_series()
        # in place after the first copy: the same operations, one panel-sized temporary
        out = W.values - full_c[of]
        out /= full_s[of]
        out += self._offset()
        return W.with_values(out.astype(W.values.dtype, copy=False))

    def inverse_transform(self, X, groups=None):
        """Undo the scaling.

        Parameters
        ----------
        X : DataFrame, Series or array-like of shape (n_samples, n_scaled_features)
            Scaled values. With ``group`` set, a DataFrame or Series carrying the group
            column or index level; otherwise pass ``groups``.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_scaled_features)
            Values on the original scale.
        """
        check_is_fitted(self)
        labels = None
        if self.group is not None and isinstance(X, (pd.DataFrame, pd.Series)):
            labels, where = lookup_key(X, self.group, "group")
            if where == "column":
                X = X.drop(columns=[self.group])
        if groups is not None:
            if labels is not None:
                raise ValueError(f"Pass either group={self.group!r} or groups=, not both.")
            labels = np.asarray(groups)
        values = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan",
                             ensure_2d=False, input_name="X")
        one_d = values.ndim == 1
        values = values.reshape(-1, 1) if one_d else values
        if values.shape[1] != self.center_.shape[1]:
            raise ValueError(
                f"X has {values.shape[1]} columns, but this GroupScaler scaled "
                f"{self.center_.shape[1]}."
            )
        if labels is not None and len(labels) != values.shape[0]:
            raise ValueError(
                f"groups must have shape ({values.shape[0]},) like X's rows, got "
                f"({len(labels)},)."
            )
        center, scale = self._row_stats(labels, values.shape[0])
        out = ((values - self._offset()) * scale + center).astype(values.dtype, copy=False)
        return out.ravel() if one_d else out

    def get_feature_names_out(self, input_features=None):
        """Names of the scaled columns (a group column is left out).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input names, used when the scaler was fitted on an array.

        Returns
        -------
        feature_names_out : ndarray of str objects
            Output column names.
        """
        check_is_fitted(self)
        if getattr(self, "_kept_columns", None) is not None:
            return np.asarray([str(c) for c in self._kept_columns], dtype=object)
        return super().get_feature_names_out(input_features)


class GroupTargetRegressor(RegressorMixin, BaseEstimator):
    """Fit a regressor on a target scaled per series; invert its predictions per series.

    The per-series counterpart of :class:`~sklearn.compose.TransformedTargetRegressor` with
    a :class:`GroupScaler`: ``fit`` learns one center and scale of ``y`` per series (from the
    rows it is given, i.e. the training dates only), fits ``regressor`` on the scaled target,
    and ``predict`` maps the regressor's output back with the statistics of each row's
    series: ``pred = center[g] + scale[g] * regressor.predict(X)`` (standard scaling).

    The series of each row come from ``group`` (a column or index level of ``X``; a column is
    dropped before ``X`` reaches the regressor, an index level stays) or from ``groups=``.
    In a :class:`~sklearn.pipeline.Pipeline`, use ``set_output(transform="pandas")`` on the
    steps before it so the index carrying the group level reaches it.

    Parameters
    ----------
    regressor : estimator
        Any scikit-learn regressor; cloned in ``fit``.
    group : str, default=None
        Column or index level of ``X`` naming the series of each row. None: pass
        ``groups=`` to ``fit`` and ``predict``.
    method : {"standard", "minmax"}, default="standard"
        Scaling of the target, as in :class:`GroupScaler`.
    handle_unknown : {"error", "global"}, default="error"
        Rows of a series not seen in ``fit``: raise, or use the statistics of all training
        rows.

    Attributes
    ----------
    regressor_ : estimator
        The fitted clone of ``regressor`` (on the scaled target).
    scaler_ : GroupScaler
        The target's per-series statistics.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> from skrnn.scaling import GroupTargetRegressor
    >>> X = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [0.0, 1.0, 0.0, 1.0]})
    >>> y = np.array([10.0, 12.0, 100.0, 120.0])
    >>> model = GroupTargetRegressor(LinearRegression(), group="g").fit(X, y)
    >>> model.predict(X).round(6)
    array([ 10.,  12., 100., 120.])
    """

    _parameter_constraints = {
        "regressor": [HasMethods(["fit", "predict"])],
        "group": [None, str, Integral],
        "method": [StrOptions({"standard", "minmax"})],
        "handle_unknown": [StrOptions({"error", "global"})],
    }

    def __init__(self, regressor, *, group=None, method="standard", handle_unknown="error"):
        self.regressor = regressor
        self.group = group
        self.method = method
        self.handle_unknown = handle_unknown

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = get_tags(self.regressor).input_tags.allow_nan
        return tags

    def _split(self, X, groups):
        """The regressor's X and the series label of each row."""
        labels = None
        if self.group is not None:
            # labelled lag windows carry their rows' index (PanelWindows.index)
            if not (isinstance(X, (pd.DataFrame, pd.Series))
                    or isinstance(X, PanelWindows) and X.index is not None):
                raise ValueError(
                    f"group={self.group!r} names a column or index level, so X must be a "
                    f"pandas DataFrame; got {type(X).__name__}. Pass groups= for arrays."
                )
            labels, where = lookup_key(X, self.group, "group")
            if where == "column":
                X = X.drop(columns=[self.group])
        if groups is not None:
            if labels is not None:
                raise ValueError(f"Pass either group={self.group!r} or groups=, not both.")
            labels = np.asarray(groups)
        if labels is None:
            raise ValueError(
                "GroupTargetRegressor needs the series of each row: set group=<column or "
                "index level> or pass groups=."
            )
        if len(labels) != len(X):
            raise ValueError(
                f"groups must have shape ({len(X)},) like X's rows, got ({len(labels)},)."
            )
        return X, np.asarray(labels)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None, **fit_params):
        """Scale ``y`` per series with the rows given, then fit the regressor.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Training inputs (with the group column or index level when ``group`` is set).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target.
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.
        **fit_params : dict
            Passed to the regressor's ``fit``.

        Returns
        -------
        self : GroupTargetRegressor
            Fitted estimator.
        """
        X_in, labels = self._split(X, groups)
        self.n_features_in_ = X.shape[1] if hasattr(X, "shape") and len(X.shape) == 2 else 1
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if y2.shape[0] != len(labels):
            raise ValueError(f"y has {y2.shape[0]} rows but X has {len(labels)}.")
        self.scaler_ = GroupScaler(self.method, handle_unknown=self.handle_unknown)
        scaled = self.scaler_.fit(y2, groups=labels).transform(y2, groups=labels)
        self._y_1d = y.ndim == 1
        self.regressor_ = clone(self.regressor).fit(
            X_in, scaled.ravel() if self._y_1d else scaled, **fit_params)
        return self

    def predict(self, X, groups=None):
        """Predictions of the regressor, mapped back to each series' own scale.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Inputs, with their series (``group`` or ``groups``).
        groups : array-like of shape (n_samples,), default=None
            Series label of each row, when not given by ``group``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions on the original scale.
        """
        check_is_fitted(self)
        X_in, labels = self._split(X, groups)
        pred = np.asarray(self.regressor_.predict(X_in), dtype=np.float64)
        out = self.scaler_.inverse_transform(pred.reshape(len(labels), -1), groups=labels)
        return out.ravel() if self._y_1d else out


# -- per-series and window-relative scaling (RecurrentForecaster) ----------------------


def _real_spread(spread, level):
    with np.errstate(invalid="ignore"):
        return np.isfinite(spread) & (spread > 1e-12 * np.maximum(1.0, np.abs(level)))


def spread_or_one(spread, level):
    """``spread`` where it is a real spread, else 1: the divisor of every scaler here.

    A constant (or empty, NaN) series or column must not be divided by zero or by the
    rounding noise of its constant: a spread within 1e-12 of its ``level``'s size (at
    least 1) counts as none.
    """
    spread = np.asarray(spread, dtype=np.float64)
    return np.where(_real_spread(spread, level), spread, 1.0)


def series_scales(series, method):
    """Location and scale of each series for ``method``, fitted on its values.

    Parameters
    ----------
    series : sequence of 1D arrays
        The series' (training) values.
    method : {"standard", "mean", "window_last", "window_mean", "none"}
        ``"standard"``: mean and standard deviation; ``"mean"``: location 0 and the mean
        absolute value (keeps counts non-negative); ``"window_last"`` /
        ``"window_mean"``: mean and the standard deviation of the series' *changes*
        (each window is then taken relative to its own level, so a trend must not
        inflate the scale; the level's deviation when the changes are constant);
        ``"none"``: 0 and 1.

    Returns
    -------
    loc, scale : ndarray of shape (n_series,)
        ``(values - loc) / scale`` is the scaled series. A constant series gets scale 1
        (no division by zero).
    """
    loc = np.zeros(len(series))
    scale = np.ones(len(series))
    for i, v in enumerate(series):
        if method == "standard":
            loc[i] = v.mean()
            scale[i] = spread_or_one(v.std(), loc[i])
        elif method == "mean":
            scale[i] = spread_or_one(np.abs(v).mean(), 0.0)
        elif method in ("window_last", "window_mean"):
            loc[i] = v.mean()
            sd = np.diff(v).std() if len(v) > 2 else 0.0
            if not _real_spread(sd, loc[i]):
                sd = v.std()
            scale[i] = spread_or_one(sd, loc[i])
    return loc, scale


def pooled_scales(values):
    """Column means and standard deviations of ``values`` ``(n, p)``, ignoring NaN.

    The standardisation of exogenous columns pooled over all series; a constant column
    gets scale 1.
    """
    loc = np.nanmean(values, axis=0)
    return loc, spread_or_one(np.nanstd(values, axis=0), loc)
