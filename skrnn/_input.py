"""The recurrent regressors' input checks: ``X`` as sequences ``(n, T, F)``, ``y`` and
``sample_weight`` as training needs them (docs/architecture.md, contract 1).

The layout itself (columns dividing into steps, 2D <-> 3D) is ``_layout.py``'s; this
module validates what a user hands ``fit``/``predict`` and says what is wrong.
"""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import _check_sample_weight, _check_y, validate_data

from skrnn import _layout
from skrnn.exceptions import NonNumericInputError
from skrnn.windows import PanelWindows, _LazySequences, lazy_source

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_units(units):
    """``units`` as a tuple of positive ints, one per stacked layer."""
    units = (units,) if isinstance(units, Integral) else tuple(units)
    if not units or any(not isinstance(u, Integral) or u < 1 for u in units):
        raise ValueError(
            f"units must be a positive int or a non-empty sequence of positive ints "
            f"(one per stacked layer); got {units!r}."
        )
    return units


def sequence_targets(y):
    """``y`` as an ndarray when it is 3D (per-step targets), else None."""
    ndim = getattr(y, "ndim", None)
    if ndim is None and isinstance(y, (list, tuple)):
        try:
            ndim = np.asarray(y).ndim
        except ValueError:  # ragged nested lists; let validate_data report it
            return None
    if ndim is not None and ndim > 3:
        raise ValueError(
            f"y must be 1D (n_samples,), 2D (n_samples, n_outputs) or 3D per-step "
            f"targets (n_samples, timesteps, n_outputs); got a {ndim}D array with "
            f"shape {np.shape(y)}."
        )
    return np.asarray(y) if ndim == 3 else None


def check_sequence_targets(y, n, T, dtype):
    """Validate per-step targets of shape ``(n, T, n_outputs)``; return them as ``dtype``."""
    if y.dtype.kind not in "biuf":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"per-step targets y must be numeric; got an array of dtype {y.dtype}."
            ) from None
    if y.shape[0] != n:
        raise ValueError(
            f"per-step targets y hold {y.shape[0]} sequences, but X holds {n}; they "
            f"must have the same n_samples."
        )
    if y.shape[1] != T:
        raise ValueError(
            f"per-step targets y of shape (n_samples, timesteps, n_outputs) need one "
            f"target row per time step of X: X has {T} time steps, y has {y.shape[1]} "
            f"(y.shape = {y.shape})."
        )
    if y.shape[2] < 1:
        raise ValueError(f"per-step targets y need at least one output; got shape {y.shape}.")
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"per-step targets y contain {int(np.sum(~np.isfinite(y)))} NaN or infinite "
            f"value(s); drop or impute them before fitting."
        )
    return y.astype(dtype, copy=False)


def _first_non_number(a):
    """The first value of ``a`` that is not a number and why, or None (numeric)."""
    try:
        arr = np.asarray(a)
    except ValueError:  # ragged: not this problem
        return None
    if arr.dtype.kind in "biufc":
        return None
    for v in arr.astype(object).ravel():
        try:
            float(v)
        except (TypeError, ValueError) as exc:
            return v, exc
    return None


def _non_numeric_error(X, y):
    """A :class:`NonNumericInputError` naming the non-numeric argument, or None."""
    x_shape = ("(n_samples, timesteps * n_step_features) or "
               "(n_samples, timesteps, n_step_features)")
    for name, a, shape in (("X", X, x_shape), ("y", y, "(n_samples,) or (n_samples, n_outputs)")):
        if a is None:
            continue
        found = _first_non_number(a)
        if found is not None:
            v, exc = found
            # Python's own words for objects ("float() argument must be a string or a
            # real number, not 'dict'"), which scikit-learn's checks expect
            why = "" if isinstance(v, str) else f" ({exc})"
            return NonNumericInputError(
                f"{name} must be numeric: it holds {str(v)[:40]!r} (of type "
                f"{type(v).__name__}), which is not a number{why}. Pass numbers of shape "
                f"{shape}; encode categorical values (e.g. with OneHotEncoder) first."
            )
    return None



class _SequenceInputMixin:
    """``_as_sequences`` and its checks, for :class:`~skrnn.recurrent.BaseRecurrentRegressor`."""

    def _as_sequences(self, X, y="no_validation", sample_weight=None, *, reset):
        """Validate ``X`` (2D step-major or 3D) and return it as ``(n, T, F)``.

        ``n_features_in_`` counts the flattened columns ``T * F`` for both layouts,
        so a model fitted on 3D input also accepts the same data flattened.
        """
        lazy = lazy_source(X)
        if lazy is not None:
            return self._as_lazy_sequences(lazy, y, sample_weight, reset=reset)
        shape3 = None
        ndim = getattr(X, "ndim", None)
        if ndim is None and isinstance(X, (list, tuple)):
            try:
                ndim = np.asarray(X).ndim
            except ValueError:  # ragged nested lists; let check_array report it
                ndim = None
        if ndim is not None and ndim > 3:
            raise ValueError(
                f"X must be 2D (n_samples, timesteps * n_step_features) or 3D "
                f"(n_samples, timesteps, n_step_features); got a {ndim}D array with "
                f"shape {np.shape(X)}."
            )
        if not reset and self.n_step_features not in (None, self.n_step_features_):
            raise ValueError(
                f"n_step_features={self.n_step_features}, but this {type(self).__name__} "
                f"was fitted with {self.n_step_features_} features per step. Fit again "
                f"(warm_start=False) to change the layout, or set n_step_features back."
            )
        if ndim == 3:
            X = np.asarray(X)
            shape3 = X.shape
            if self.n_step_features is not None and self.n_step_features != shape3[2]:
                raise ValueError(
                    f"X is 3D with {shape3[2]} features per step, but "
                    f"n_step_features={self.n_step_features}. Leave n_step_features=None "
                    f"for 3D input, or pass X with {self.n_step_features} features per step."
                )
            if not reset:
                self._check_layout(*shape3[1:])
            X = _layout.flatten_sequences(X)
        dtype = DTYPES[self.dtype]
        # training needs a sample; predicting on none gives an empty answer
        predicting = not reset and isinstance(y, str) and y == "no_validation"
        common = {"reset": reset, "dtype": dtype, "ensure_min_samples": 0 if predicting else 1}
        no_y = isinstance(y, str) and y == "no_validation"
        y_seq = None if no_y else sequence_targets(y)
        try:
            if no_y or y_seq is not None:
                X = validate_data(self, X, **common)
            else:
                X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, **common)
        except (TypeError, ValueError) as exc:
            # strings or objects fail deep inside NumPy ("could not convert string to
            # float"); say which argument holds what instead
            bad = _non_numeric_error(X, None if no_y or y_seq is not None else y)
            if bad is None:
                raise
            raise bad from exc
        n, n_cols = X.shape
        if shape3 is not None:
            T, F = shape3[1], shape3[2]
        else:
            if reset or getattr(self, "n_timesteps_", None) is None:
                F = self.n_step_features or 1
            else:
                F = self.n_step_features_
            T = _layout.n_steps(n_cols, F)
            if not reset:
                self._check_layout(T, F)
        X3 = X.reshape(n, T, F)
        if no_y:
            return X3
        if y_seq is not None:
            y = y2 = check_sequence_targets(y_seq, n, T, dtype)
        elif y.ndim == 1:
            y2 = y.reshape(-1, 1)
        else:
            y2 = y
        if y2.dtype.kind not in "biuf" and _non_numeric_error(None, y2) is not None:
            raise _non_numeric_error(None, y2)  # strings pass sklearn's y_numeric untouched
        return self._finish_targets(X, X3, y, y2, sample_weight, dtype)

    def _as_lazy_sequences(self, X, y, sample_weight, *, reset):
        """``_as_sequences`` for windows gathered per batch (``skrnn/windows.py``).

        The checks of the dense path, without copying ``X``: its column count and
        names (on its first row), finiteness (block by block), ``y`` and
        ``sample_weight`` as usual. ``X3`` gathers rows (cast to ``dtype``) on demand.
        """
        dtype = DTYPES[self.dtype]
        if X.ndim == 3:
            n, T, F = X.shape
            if self.n_step_features is not None and self.n_step_features != F:
                raise ValueError(
                    f"X is 3D with {F} features per step, but "
                    f"n_step_features={self.n_step_features}. Leave n_step_features=None "
                    f"for 3D input, or pass X with {self.n_step_features} features per step."
                )
            if not reset:
                self._check_layout(T, F)
        # n_features_in_ (set or checked) and feature names, from one row
        # (labelled windows give their column names, as the DataFrame of them would)
        head = X.head() if isinstance(X, PanelWindows) else np.asarray(X[:1]).reshape(1, -1)
        validate_data(self, head, reset=reset, dtype=dtype)
        if X.ndim == 2:
            n, n_cols = X.shape
            F = getattr(X, "n_step_features", None)
            if F is None:
                if reset or getattr(self, "n_timesteps_", None) is None:
                    F = self.n_step_features or 1
                else:
                    F = self.n_step_features_
            elif self.n_step_features is not None and self.n_step_features != F:
                raise ValueError(
                    f"X holds windows of {F} features per step, but "
                    f"n_step_features={self.n_step_features}."
                )
            if n_cols % F:
                raise ValueError(
                    f"X has {n_cols} columns, which do not divide into time steps of "
                    f"{F} features (n_step_features={F}). A 2D X must hold "
                    f"timesteps * n_step_features columns, oldest step first."
                )
            T = n_cols // F
            if not reset:
                self._check_layout(T, F)
        X3 = _LazySequences(X, T, F, dtype)
        if not X3.check_finite():
            raise ValueError(
                "Input X contains NaN or infinity; impute or drop those values first."
            )
        if isinstance(y, str) and y == "no_validation":
            return X3
        y_seq = sequence_targets(y)
        if y_seq is not None:
            y = y2 = check_sequence_targets(y_seq, n, T, dtype)
        else:
            try:
                y = _check_y(y, multi_output=True, y_numeric=True, estimator=self)
            except TypeError as exc:
                raise NonNumericInputError(
                    f"y must be numeric values of shape (n_samples,) or "
                    f"(n_samples, n_outputs). Converting it failed: {exc}"
                ) from exc
            if len(y) != n:
                raise ValueError(
                    f"X holds {n} windows but y has {len(y)} targets; they must match."
                )
            y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        return self._finish_targets(X, X3, y, y2, sample_weight, dtype)

    def _finish_targets(self, X, X3, y, y2, sample_weight, dtype):
        """The checks of the target and weights shared by the dense and lazy inputs."""
        if self.loss == "poisson" and np.any(y2 < 0):
            raise ValueError(
                f"loss='poisson' needs a non-negative target y; got a minimum of "
                f"{y2.min()}. Use another loss or shift the target."
            )
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)
            if sw.sum() <= 0:
                raise ValueError("sample_weight must have a positive sum; got all zeros.")
        return X3, y2.astype(dtype, copy=False), y.ndim, sw

    def _check_layout(self, T, F):
        fitted_T, fitted_F = getattr(self, "n_timesteps_", None), self.n_step_features_
        if F != fitted_F or (fitted_T is not None and T != fitted_T):
            raise ValueError(
                f"X has {T} time steps of {F} features, but this "
                f"{type(self).__name__} was fitted with {fitted_T} time steps of "
                f"{fitted_F} features."
            )

