"""Naive forecasts as scikit-learn regressors on the lag matrix.

A recurrent model is only worth its training time if it beats these. They read the same
lag windows as the recurrent regressors (step-major, oldest step first; see
:class:`~skrnn.LagFeatures`), so they drop into the same Pipelines and searches, and they
learn nothing from ``y`` except its number of columns: with ``h`` target columns (direct
multi-output, as built by :func:`~skrnn.make_supervised`) they forecast ``h`` steps ahead.

Step ``k`` (1-based) of the forecast is the value ``k`` steps after the last value of the
window. With a window ``y_lagT, ..., y_lag1`` (``y_lag1`` the most recent value):

- last value: ``y_lag1`` for every step;
- seasonal naive with period ``sp``: the value one season earlier, ``y_lag<sp - ((k-1) mod sp)>``;
- window mean: mean of the last ``window`` values for every step;
- drift: ``y_lag1 + k * (y_lag1 - y_lag<w>) / (w - 1)``, the line through the first and last
  of the last ``w`` values, extrapolated.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skrnn import _layout
from skrnn.windows import PanelWindows

__all__ = [
    "LastValueRegressor",
    "SeasonalNaiveRegressor",
    "WindowMeanRegressor",
    "DriftRegressor",
]

_COMMON_PARAMS_DOC = """n_step_features : int, default=1
        Features per time step: the columns are read as ``n_features_in_ / n_step_features``
        steps, oldest first.
    feature_index : int, default=0
        Which feature within each step is the forecast variable.
    columns : list of str or list of int, default=None
        Explicit window columns, oldest first, as names (X must then be a DataFrame at fit)
        or positions; overrides the positional layout (leave ``n_step_features`` and
        ``feature_index`` at their defaults). Lets X carry other columns too."""


class _NaiveRegressor(RegressorMixin, BaseEstimator):
    """Shared plumbing: find the target's window in X, forecast ``n_outputs_`` steps."""

    _parameter_constraints = {
        "n_step_features": [Interval(Integral, 1, None, closed="left")],
        "feature_index": [Interval(Integral, 0, None, closed="left")],
        "columns": [None, "array-like"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # Naive forecasts are not meant to fit arbitrary regression data well.
        tags.regressor_tags.poor_score = True
        return tags

    def _min_steps(self):
        return 1

    def _window_indices(self, n_features):
        if self.columns is not None:
            if self.n_step_features != 1 or self.feature_index != 0:
                raise ValueError(
                    "columns= gives the window explicitly; leave n_step_features and "
                    f"feature_index at their defaults (got {self.n_step_features}, "
                    f"{self.feature_index})."
                )
            cols = np.atleast_1d(np.asarray(self.columns))
            if cols.size == 0:
                raise ValueError("columns must name at least one column, got [].")
            if np.issubdtype(cols.dtype, np.integer):
                if ((cols < 0) | (cols >= n_features)).any():
                    raise ValueError(
                        f"columns positions must lie in [0, {n_features - 1}], got "
                        f"{cols.tolist()}."
                    )
                return cols.astype(np.intp)
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    f"columns={cols.tolist()} are names, so X must be a DataFrame with string "
                    "column names at fit; pass positions for arrays."
                )
            missing = [c for c in cols if c not in names]
            if missing:
                raise ValueError(f"columns {missing} are not in X; X has {list(names)}.")
            lookup = {c: i for i, c in enumerate(names)}
            return np.array([lookup[c] for c in cols], dtype=np.intp)
        F = self.n_step_features
        _layout.n_steps(n_features, F, "X has n_features={n_columns} columns, which is not a "
                        "multiple of n_step_features={n_step_features}.")
        if self.feature_index >= F:
            raise ValueError(
                f"feature_index={self.feature_index} must be < n_step_features={F}."
            )
        return np.arange(self.feature_index, n_features, F)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Check the window layout and remember the number of forecast steps.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or PanelWindows
            Lag windows, step-major, oldest step first. Windows
            (:class:`~skrnn.windows.PanelWindows`) stay views: only their first row is
            checked against the layout.
        y : array-like of shape (n_samples,) or (n_samples, h)
            Targets; ``h`` columns mean ``h`` forecast steps. Only the shape is used.

        Returns
        -------
        self : object
            Fitted regressor.
        """
        if isinstance(X, PanelWindows):  # check the first row; the windows stay views
            if len(X) != len(y):
                raise ValueError(f"X holds {len(X)} windows but y has {len(y)} targets.")
            if X.nonfinite_rows().any():
                raise ValueError("Input X contains NaN or infinity.")
            y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
            validate_data(self, X.head(), y[:1], multi_output=True, y_numeric=True)
        else:
            X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self._y_1d = y.ndim == 1
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.window_indices_ = self._window_indices(X.shape[1])
        n_steps = self.window_indices_.shape[0]
        need = self._min_steps()
        if n_steps < need:
            raise ValueError(
                f"{type(self).__name__} needs a window of at least {need} steps, but X has "
                f"n_features={X.shape[1]} column(s) giving {n_steps} step(s) "
                f"(n_step_features={self.n_step_features}). Use more lags."
            )
        return self

    def predict(self, X):
        """Naive forecast for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or PanelWindows
            Lag windows, laid out as in ``fit``. Of windows, only the steps the
            forecast reads are gathered (``PanelWindows.take``).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs_)
            Forecasts, one column per step ahead.
        """
        check_is_fitted(self)
        if isinstance(X, PanelWindows):
            # gather only the steps read, never the window matrix
            validate_data(self, X.head(), reset=False)
            if X.nonfinite_rows().any():
                raise ValueError("Input X contains NaN or infinity.")
            window = np.asarray(X.take(self.window_indices_), dtype=np.float64)
        else:
            X = validate_data(self, X, reset=False)
            window = np.asarray(X[:, self.window_indices_], dtype=np.float64)
        steps = np.arange(1, self.n_outputs_ + 1)
        pred = self._forecast(window, steps)
        return pred[:, 0] if self._y_1d else pred


class LastValueRegressor(_NaiveRegressor):
    __doc__ = f"""Naive forecast: the most recent value, repeated for every step ahead.

    On the one-step lag matrix of a panel this is exactly
    ``df.groupby(group)[value].shift(1)``.

    Parameters
    ----------
    {_COMMON_PARAMS_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of forecast steps (columns of ``y`` at fit).
    window_indices_ : ndarray of int
        Columns of X forming the target's window, oldest first.
    n_features_in_ : int
        Number of columns of X.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import LastValueRegressor
    >>> X = np.array([[1.0, 2.0, 3.0], [5.0, 4.0, 6.0]])
    >>> LastValueRegressor().fit(X, np.zeros((2, 2))).predict(X)
    array([[3., 3.],
           [6., 6.]])
    """

    def __init__(self, *, n_step_features=1, feature_index=0, columns=None):
        self.n_step_features = n_step_features
        self.feature_index = feature_index
        self.columns = columns

    def _forecast(self, window, steps):
        return np.repeat(window[:, -1:], steps.size, axis=1)


class SeasonalNaiveRegressor(_NaiveRegressor):
    __doc__ = f"""Seasonal naive forecast: the value one season (``sp`` steps) earlier.

    Step ``k`` of the forecast repeats lag ``sp - ((k - 1) mod sp)`` of the window, i.e. the
    last observed season is repeated as often as the horizon needs. ``sp=1`` is the last
    value.

    Parameters
    ----------
    sp : int, default=1
        Seasonal period in steps (e.g. 7 for daily data with a weekly pattern). The window
        must hold at least ``sp`` steps.
    {_COMMON_PARAMS_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of forecast steps (columns of ``y`` at fit).
    window_indices_ : ndarray of int
        Columns of X forming the target's window, oldest first.
    n_features_in_ : int
        Number of columns of X.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import SeasonalNaiveRegressor
    >>> X = np.array([[1.0, 2.0, 3.0, 4.0]])  # y_lag4 .. y_lag1
    >>> SeasonalNaiveRegressor(sp=3).fit(X, np.zeros((1, 4))).predict(X)
    array([[2., 3., 4., 2.]])
    """

    _parameter_constraints = {
        **_NaiveRegressor._parameter_constraints,
        "sp": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, sp=1, *, n_step_features=1, feature_index=0, columns=None):
        self.sp = sp
        self.n_step_features = n_step_features
        self.feature_index = feature_index
        self.columns = columns

    def _min_steps(self):
        return self.sp

    def _forecast(self, window, steps):
        lag = self.sp - (steps - 1) % self.sp
        return window[:, window.shape[1] - lag]


class WindowMeanRegressor(_NaiveRegressor):
    __doc__ = f"""Mean of the last ``window`` values, repeated for every step ahead.

    Parameters
    ----------
    window : int, default=None
        Number of most recent steps averaged; None uses the whole window.
    {_COMMON_PARAMS_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of forecast steps (columns of ``y`` at fit).
    window_indices_ : ndarray of int
        Columns of X forming the target's window, oldest first.
    n_features_in_ : int
        Number of columns of X.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import WindowMeanRegressor
    >>> X = np.array([[1.0, 2.0, 3.0, 6.0]])
    >>> WindowMeanRegressor(window=2).fit(X, [0.0]).predict(X)
    array([4.5])
    """

    _parameter_constraints = {
        **_NaiveRegressor._parameter_constraints,
        "window": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, window=None, *, n_step_features=1, feature_index=0, columns=None):
        self.window = window
        self.n_step_features = n_step_features
        self.feature_index = feature_index
        self.columns = columns

    def _min_steps(self):
        return 1 if self.window is None else self.window

    def _forecast(self, window, steps):
        w = window.shape[1] if self.window is None else self.window
        return np.repeat(window[:, -w:].mean(axis=1, keepdims=True), steps.size, axis=1)


class DriftRegressor(_NaiveRegressor):
    __doc__ = f"""Drift forecast: extrapolate the line through the first and last value.

    With ``w`` steps in the window, step ``k`` is ``last + k * (last - first) / (w - 1)``,
    the random-walk-with-drift forecast of Hyndman & Athanasopoulos (FPP, section 5.2).

    Parameters
    ----------
    window : int, default=None
        Number of most recent steps the slope is taken over (at least 2); None uses the
        whole window.
    {_COMMON_PARAMS_DOC}

    Attributes
    ----------
    n_outputs_ : int
        Number of forecast steps (columns of ``y`` at fit).
    window_indices_ : ndarray of int
        Columns of X forming the target's window, oldest first.
    n_features_in_ : int
        Number of columns of X.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when they are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import DriftRegressor
    >>> X = np.array([[1.0, 5.0, 3.0]])  # slope (3 - 1) / 2 = 1
    >>> DriftRegressor().fit(X, np.zeros((1, 3))).predict(X)
    array([[4., 5., 6.]])
    """

    _parameter_constraints = {
        **_NaiveRegressor._parameter_constraints,
        "window": [None, Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, window=None, *, n_step_features=1, feature_index=0, columns=None):
        self.window = window
        self.n_step_features = n_step_features
        self.feature_index = feature_index
        self.columns = columns

    def _min_steps(self):
        return 2 if self.window is None else self.window

    def _forecast(self, window, steps):
        w = window.shape[1] if self.window is None else self.window
        last, first = window[:, -1:], window[:, -w, None]
        slope = (last - first) / (w - 1)
        return last + slope * steps
