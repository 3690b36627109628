"""Recurrent regressors: the scikit-learn face of the NumPy engine in ``skrnn.nn``."""

import copy
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.callback import CallbackSupportMixin, with_callbacks
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_is_fitted,
    validate_data,
)

from skrnn import _layout
from skrnn._callbacks import EPOCH_TASK
from skrnn.exceptions import DivergenceError, DivergenceWarning, NonNumericInputError
from skrnn.nn._losses import loss_and_grad, predict_from_raw
from skrnn.nn._network import RecurrentNetwork
from skrnn.nn._optimizers import clip_gradient, make_optimizer
from skrnn.nn._workspace import Workspace
from skrnn.windows import _LazySequences, lazy_source, time_major

_DTYPES = {"float32": np.float32, "float64": np.float64}

# the fitted state that ``partial_fit`` carries from call to call
_STATE_ATTRS = ("_net", "_optimizer", "_rng", "_no_improvement_count", "_best_theta")


def _check_units(units):
    units = (units,) if isinstance(units, Integral) else tuple(units)
    if not units or any(not isinstance(u, Integral) or u < 1 for u in units):
        raise ValueError(
            f"units must be a positive int or a non-empty sequence of positive ints "
            f"(one per stacked layer); got {units!r}."
        )
    return units


def _sequence_targets(y):
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


def _check_sequence_targets(y, n, T, dtype):
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


def _torch_rows(layer):
    """Row index that puts the engine's gate blocks in PyTorch's gate order."""
    H = layer.units
    return np.concatenate([np.arange(b * H, (b + 1) * H) for b in layer.TORCH_ORDER])


class BaseRecurrentRegressor(CallbackSupportMixin, RegressorMixin, BaseEstimator):
    """Shared implementation of the recurrent regressors.

    Do not use it directly: use :class:`SimpleRNNRegressor`, :class:`LSTMRegressor`
    or :class:`GRURegressor`.
    """

    _cell = None

    _parameter_constraints = {
        "units": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "n_step_features": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
        "loss": [StrOptions({"squared_error", "absolute_error", "huber", "poisson",
                             "quantile"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
        "output_activation": [StrOptions({"identity", "relu", "softplus"})],
        "solver": [StrOptions({"sgd", "adam", "rmsprop"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "clipnorm": [Interval(Real, 0, None, closed="neither"), None],
        "clipvalue": [Interval(Real, 0, None, closed="neither"), None],
        "dtype": [StrOptions(set(_DTYPES))],
        "quantile": [Interval(Real, 0, 1, closed="neither"), None],
        "quantiles": ["array-like", None],
    }

    def __init__(
        self,
        units=32,
        *,
        n_step_features=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        loss="squared_error",
        huber_delta=1.0,
        output_activation="identity",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        rho=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clipnorm=None,
        clipvalue=None,
        dtype="float64",
        quantile=None,
        quantiles=None,
    ):
        self.units = units
        self.n_step_features = n_step_features
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.loss = loss
        self.huber_delta = huber_delta
        self.output_activation = output_activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.rho = rho
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.dtype = dtype
        self.quantile = quantile
        self.quantiles = quantiles

    # -- what subclasses define ----------------------------------------------------

    def _cell_kwargs(self):
        return {}

    # -- input handling --------------------------------------------------------------

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
        dtype = _DTYPES[self.dtype]
        # training needs a sample; predicting on none gives an empty answer
        predicting = not reset and isinstance(y, str) and y == "no_validation"
        common = {"reset": reset, "dtype": dtype, "ensure_min_samples": 0 if predicting else 1}
        no_y = isinstance(y, str) and y == "no_validation"
        y_seq = None if no_y else _sequence_targets(y)
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
            y = y2 = _check_sequence_targets(y_seq, n, T, dtype)
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
        dtype = _DTYPES[self.dtype]
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
        validate_data(self, np.asarray(X[:1]).reshape(1, -1), reset=reset, dtype=dtype)
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
        y_seq = _sequence_targets(y)
        if y_seq is not None:
            y = y2 = _check_sequence_targets(y_seq, n, T, dtype)
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

    # -- fitting ---------------------------------------------------------------------

    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)
            Input sequences. A 2D ``X`` is read step-major, oldest step first.
        y : array-like of shape (n_samples,), (n_samples, n_outputs) or \
                (n_samples, timesteps, n_outputs)
            Targets; several columns give a direct multi-output (e.g. multi-step)
            model. A 3D ``y`` holds per-step targets (sequence-to-sequence
            training): the dense head is applied to every time step and the loss
            averages over all steps; ``predict`` then returns the last step's
            prediction, of shape ``(n_samples, n_outputs)``.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights in the loss (and in the validation loss).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for exactly one epoch on ``(X, y)``.

        The optimizer state (moments, step count, learning rate), the random
        generator and the early-stopping state (best validation loss, weights and
        the count of epochs without improvement) carry over between calls. Weights
        are not rolled back to the best ones here: read ``best_iteration_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)
        y : array-like of shape (n_samples,), (n_samples, n_outputs) or \
                (n_samples, timesteps, n_outputs)
            Must have the layout (and, for 3D, the steps) of the first fit.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _fit(self, X, y, sample_weight, incremental):
        units = _check_units(self.units)
        fitted = hasattr(self, "_net")
        keep = fitted and (incremental or self.warm_start)
        if keep:
            self._check_architecture(units)
            self._ensure_training_state()
        X3, y2, y_ndim, sw = self._as_sequences(X, y, sample_weight, reset=not keep)
        n, T, F = X3.shape
        dtype = _DTYPES[self.dtype]
        if keep:
            if (y_ndim == 3) != (self._y_ndim == 3):
                raise ValueError(
                    f"y is {y_ndim}D, but this {type(self).__name__} was fitted with "
                    f"{'per-step (3D)' if self._y_ndim == 3 else 'last-step (1D/2D)'} "
                    "targets; per-step and last-step targets need different networks. "
                    "Fit from scratch (warm_start=False) to change."
                )
            if y2.shape[-1] != self.n_outputs_:
                raise ValueError(
                    f"y has {y2.shape[-1]} outputs, but this {type(self).__name__} was "
                    f"fitted with {self.n_outputs_}."
                )
        levels = self._check_quantile_params(keep)
        if self.loss == "poisson" and self.output_activation != "identity":
            raise ValueError(
                "loss='poisson' uses a log link (predictions are exp of the head "
                f"output); output_activation must be 'identity', got "
                f"{self.output_activation!r}."
            )

        n_val = int(np.ceil(self.validation_fraction * n)) if self.early_stopping else 0
        if self.early_stopping and n - n_val < 1:
            raise ValueError(
                f"early_stopping holds out the last {self.validation_fraction:.0%} of "
                f"the samples for validation, which leaves no training sample out of "
                f"{n}. Provide more samples or set early_stopping=False."
            )
        n_train = n - n_val

        # what a failed call restores: every fitted attribute, public and private
        previous = {k: getattr(self, k) for k in _STATE_ATTRS + ("_y_ndim", "_best_val_loss")
                    + tuple(a for a in vars(self) if a.endswith("_") and not a.startswith("_"))
                    if hasattr(self, k)} if fitted else None
        if keep and previous is not None:
            # training goes on in place (the network, optimizer, generator and the
            # curves are updated, not replaced), so the snapshot must own copies
            previous = {k: v.copy() if k == "_net" else copy.deepcopy(v)
                        for k, v in previous.items()}

        if not keep:
            rng = check_random_state(self.random_state)
            self.n_timesteps_ = T
            self.n_step_features_ = F
            self.n_outputs_ = y2.shape[-1]
            self.quantiles_ = levels
            self._y_ndim = y_ndim
            self._net = RecurrentNetwork(
                self._cell, F, units, self.n_outputs_ * self._n_levels(),
                head="sequence" if y_ndim == 3 else "last", dtype=dtype,
                cell_kwargs=self._cell_kwargs(),
            )
            w = None if sw is None else sw[:n_train]
            y_init = y2[:n_train] if y_ndim != 3 else y2[:n_train].mean(axis=1)
            self._net.initialize(
                rng, y_mean=self._initial_level(y_init, w), loss=self.loss
            )
            self._optimizer = self._make_optimizer()
            self._rng = rng
            self.loss_curve_ = []
            self.grad_norm_curve_ = []
            self.learning_rate_curve_ = []
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = None
            self.best_loss_ = None if self.early_stopping else np.inf
            self._best_val_loss = np.inf
            self._best_theta = None
            self.best_iteration_ = None
            self._no_improvement_count = 0
            self.n_iter_ = 0
            self.t_ = 0
        else:
            if not incremental:
                self._rng = check_random_state(self.random_state)
            if self.early_stopping and self.validation_loss_curve_ is None:
                self.validation_loss_curve_, self.validation_scores_ = [], []
                self._best_val_loss = np.inf

        # a PanelWindows or strided view stays lazy: each batch gathers its rows
        Xtr = time_major(X3[:n_train])
        ytr, swtr = y2[:n_train], None if sw is None else sw[:n_train]
        val = None
        if n_val:
            val = (np.asarray(time_major(X3[n_train:])), y2[n_train:],
                   None if sw is None else sw[n_train:])

        n_epochs = 1 if incremental else self.max_iter
        ctx = self._init_callback_context(max_subtasks=n_epochs)
        metadata = {"sample_weight": sample_weight} if sample_weight is not None else None
        try:
            # inside: an interrupt or error in the fit's begin hook finds the estimator
            # already re-initialised, and must restore it like one in an epoch
            ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
            # overflow is detected (and explained) by the finiteness checks in _train
            with np.errstate(over="ignore", invalid="ignore"):
                stopped = self._train(Xtr, ytr, swtr, val, n_epochs, ctx, X, y, metadata)
        except KeyboardInterrupt:
            self._after_interrupt(previous)
            raise
        except Exception:  # DivergenceError, or a callback's own error
            self._restore(previous)
            raise
        self.__dict__.pop("_epoch_theta", None)
        if self.early_stopping and not incremental and self._best_theta is not None:
            self._net.theta[...] = self._best_theta
        if not incremental and not stopped and self.n_iter_ >= self.max_iter and (
            n_epochs == self.max_iter
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        ctx.call_on_fit_task_end(
            estimator=self, X=X, y=y, metadata=metadata,
            reconstruction_attributes=lambda: {"_net": self._net.copy()},
        )
        return self

    def _ensure_training_state(self):
        """Re-create the training state that a weights-only model lacks.

        Files written by ``skrnn.persistence`` (and MLflow models logged by
        ``skrnn.tracking``) hold the network and the fitted attributes, not the
        optimizer, the random generator or the early-stopping snapshot; ``set_weights``
        on an unfitted estimator builds only the network. Training such a model further
        (``partial_fit``, ``warm_start``) starts those afresh: new optimizer moments, a
        generator from ``random_state``, and early stopping that tracks the best epoch
        from here on.
        """
        if hasattr(self, "_optimizer"):
            return
        self._optimizer = self._make_optimizer()
        self._rng = check_random_state(self.random_state)
        self._best_theta = None
        self._best_val_loss = np.inf
        self._no_improvement_count = 0
        for name, value in (("loss_curve_", []), ("grad_norm_curve_", []),
                            ("learning_rate_curve_", []), ("t_", 0),
                            ("best_iteration_", None), ("best_validation_score_", None),
                            ("validation_loss_curve_", None), ("validation_scores_", None),
                            ("best_loss_", None if self.early_stopping else np.inf)):
            if not hasattr(self, name):
                setattr(self, name, value)

    def _make_optimizer(self):
        return make_optimizer(
            self.solver, self._net.size, self._net.dtype,
            learning_rate_init=self.learning_rate_init, momentum=self.momentum,
            nesterov=self.nesterovs_momentum, beta_1=self.beta_1, beta_2=self.beta_2,
            epsilon=self.epsilon, rho=self.rho,
        )

    def _check_architecture(self, units):
        """Refuse to continue training a network whose architecture params changed.

        ``warm_start=True`` and ``partial_fit`` train the fitted network further; a
        changed ``units``, ``n_step_features``, ``dtype`` or cell parameter
        (``activation``, ``peephole``, ``reset_after``) describes another network,
        which silently keeping the old one would ignore.
        """
        net = self._net
        now = {"units": tuple(units), "dtype": self.dtype, **self._cell_kwargs()}
        was = {"units": net.units, "dtype": net.dtype.name, **net.cell_kwargs}
        if self.n_step_features is not None:
            now["n_step_features"] = self.n_step_features
            was["n_step_features"] = self.n_step_features_
        changed = [k for k in now if now[k] != was.get(k)]
        if changed:
            what = ", ".join(f"{k}={now[k]!r} (fitted: {was.get(k)!r})" for k in changed)
            raise ValueError(
                f"{what}: warm_start=True and partial_fit continue training the fitted "
                f"network, whose architecture cannot change. Set warm_start=False (or "
                f"clone the estimator) to fit a new network with these parameters."
            )

    def _restore(self, previous):
        """Put the estimator back as it was before the failed call."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)
        for attr in _STATE_ATTRS + ("_y_ndim", "_best_val_loss", "_epoch_theta"):
            self.__dict__.pop(attr, None)
        if previous:
            for k, v in previous.items():
                setattr(self, k, v)

    def _after_interrupt(self, previous):
        """Keep the last complete epoch (or the best one with early stopping).

        The weights are then those of a fit of exactly ``n_iter_`` epochs: an
        interrupt inside an epoch (or in its begin hook) rolls back to the snapshot
        taken before that epoch began; one after the epoch was counted keeps it.
        """
        n_done, theta = self.__dict__.pop("_epoch_theta", (0, None))
        if self.n_iter_ == 0 or theta is None:
            self._restore(previous)
            return
        best = self._best_theta if self.early_stopping else None
        if best is not None:
            self._net.theta[...] = best
        elif self.n_iter_ == n_done:
            self._net.theta[...] = theta
        warnings.warn(
            f"fit was interrupted; the estimator keeps the weights of "
            f"{'its best epoch' if best is not None else 'its last complete epoch'} "
            f"({self.n_iter_} epochs done).",
            UserWarning,
        )

    def _draw_masks(self, rng, batch):
        if not (self.dropout or self.recurrent_dropout):
            return None
        dtype = self._net.dtype
        masks, n_in = [], self._net.n_features
        for H in self._net.units:
            pair = []
            for rate, width in ((self.dropout, n_in), (self.recurrent_dropout, H)):
                if rate:
                    keep = rng.uniform(size=(batch, width)) >= rate
                    pair.append((keep / (1.0 - rate)).astype(dtype))
                else:
                    pair.append(None)
            masks.append(tuple(pair))
            n_in = H
        return masks

    def _train(self, Xtr, ytr, swtr, val, n_epochs, ctx, X, y, metadata):
        net, opt, rng = self._net, self._optimizer, self._rng
        n = ytr.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    f"Got `batch_size` less than 1 or larger than sample size. It is "
                    f"going to be clipped to {n}."
                )
            bs = min(self.batch_size, n)
        total_w = float(n if swtr is None else swtr.sum())
        kw = dict(loss=self.loss, output_activation=self.output_activation,
                  alpha=self.alpha, huber_delta=self.huber_delta,
                  quantiles=self._levels())
        ws = Workspace()  # every batch of this fit reuses its activation buffers
        for _ in range(n_epochs):
            # before the begin hook: an interrupt raised there rolls back to here
            self._epoch_theta = (self.n_iter_, net.theta.copy())
            ectx = ctx.subcontext(task_name=EPOCH_TASK)
            ectx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=metadata)
            start_time = time.perf_counter()
            order = rng.permutation(n) if (self.shuffle and bs < n) else None
            acc_loss = 0.0
            acc_norm = 0.0
            n_batches = 0
            # one engine context for the whole pass over the batches: BLAS threads are
            # set once (one, for the compiled loops) for the batches and the optimizer
            # steps between them, instead of being set and restored per batch
            with net.engine_context(bs):
                for start in range(0, n, bs):
                    if order is None:
                        sl = slice(start, start + bs)
                        Xb, yb = Xtr[:, sl], ytr[sl]
                        swb = None if swtr is None else swtr[sl]
                    else:
                        idx = order[start : start + bs]
                        Xb, yb = Xtr[:, idx], ytr[idx]
                        swb = None if swtr is None else swtr[idx]
                    masks = self._draw_masks(rng, yb.shape[0])
                    batch_loss = net.loss_and_gradient(Xb, yb, swb, masks=masks, ws=ws, **kw)
                    norm = clip_gradient(net.grad, self.clipnorm, self.clipvalue)
                    if not (np.isfinite(batch_loss) and np.isfinite(norm)):
                        if self._diverged(self.n_iter_ + 1):  # inside the next epoch
                            return True
                    opt.step(net.theta, net.grad)
                    acc_loss += batch_loss * (yb.shape[0] if swb is None else float(swb.sum()))
                    acc_norm += norm
                    n_batches += 1
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = acc_loss / total_w
            self.loss_curve_.append(self.loss_)
            self.grad_norm_curve_.append(acc_norm / n_batches)
            self.learning_rate_curve_.append(float(opt.learning_rate))  # this epoch's
            if self._exploded() and self._diverged(self.n_iter_):  # the epoch just counted
                return True
            stop = self._end_epoch(val, kw, ws)
            if self.verbose:
                msg = f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}"
                if val is not None:
                    msg += f", validation loss = {self.validation_loss_curve_[-1]:.8f}"
                print(f"{msg}, {time.perf_counter() - start_time:.2f}s")
            opt.end_epoch(self.learning_rate, self.t_, self.power_t)
            stop_cb = ectx.call_on_fit_task_end(
                estimator=self, X=X, y=y, metadata=metadata,
                reconstruction_attributes=lambda: {"_net": net.copy()},
            )
            if stop or stop_cb:
                return True
        return False

    def _end_epoch(self, val, kw, ws=None):
        """Track the monitored loss; return True when training should stop."""
        if val is not None:
            Xv, yv, swv = val
            Z, _ = self._net.forward(Xv, store=False, ws=ws)
            vloss, _ = loss_and_grad(Z, yv, swv, kw["loss"], kw["output_activation"],
                                     kw["huber_delta"], kw["quantiles"])
            pred = self._point(predict_from_raw(Z, self.loss, self.output_activation))
            self.validation_loss_curve_.append(float(vloss))
            if yv.ndim == 3:  # per-step targets: R² over every step of every sequence
                T = yv.shape[1]
                yv, pred = yv.reshape(-1, yv.shape[2]), pred.reshape(-1, pred.shape[2])
                swv = None if swv is None else np.repeat(swv, T)
            score = float(r2_score(yv, pred, sample_weight=swv)) if len(yv) > 1 else np.nan
            self.validation_scores_.append(score)
            monitored, best = float(vloss), self._best_val_loss
            if monitored < best:
                self._best_val_loss = monitored
                self._best_theta = self._net.theta.copy()
                self.best_iteration_ = self.n_iter_
                self.best_validation_score_ = score
        else:
            monitored, best = self.loss_, self.best_loss_
            if monitored < best:
                self.best_loss_ = monitored
                self.best_iteration_ = self.n_iter_
        if monitored > best - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self._no_improvement_count > self.n_iter_no_change:
            opt = self._optimizer
            if opt.on_plateau(self.learning_rate):
                self._no_improvement_count = 0
                if self.verbose:
                    print(f"Setting learning rate to {opt.learning_rate:f}")
                return False
            if self.verbose:
                what = "Validation loss" if val is not None else "Training loss"
                print(f"{what} did not improve more than tol={self.tol} for "
                      f"{self.n_iter_no_change} consecutive epochs. Stopping.")
            return True
        return False

    def _exploded(self):
        """A non-finite epoch loss, or one a million times the best so far.

        The second rule catches a learning rate that makes the loss grow
        geometrically: such a run would otherwise stop on ``n_iter_no_change`` with
        finite but meaningless weights.
        """
        loss = self.loss_
        return not np.isfinite(loss) or loss > 1e6 * max(min(self.loss_curve_), 1e-12)

    def _diverged(self, epoch):
        """Handle a non-finite loss in ``epoch``: restore the best weights (True) or raise."""
        if self.early_stopping and self._best_theta is not None:
            self._net.theta[...] = self._best_theta
            warnings.warn(
                f"Training diverged (the loss exploded) at epoch {epoch}; the "
                f"weights of the best epoch ({self.best_iteration_}) were restored. "
                "Lower learning_rate_init or set clipnorm.",
                DivergenceWarning,
            )
            return True
        raise DivergenceError(
            f"Training diverged: the loss exploded (non-finite, or a million times its "
            f"best) at epoch {epoch}. Lower learning_rate_init (now "
            f"{self.learning_rate_init}), set clipnorm, or scale X and y. The "
            "estimator was left as it was before this call."
        )

    # -- prediction --------------------------------------------------------------------

    def _check_fitted_net(self):
        check_is_fitted(self, "n_step_features_")

    def predict(self, X):
        """Predict targets for sequences ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Float64 predictions, shaped like the ``y`` seen in ``fit``. A model
            fitted on per-step (3D) targets returns its last step's prediction,
            always of shape ``(n_samples, n_outputs)``.
        """
        self._check_fitted_net()
        X3 = self._as_sequences(X, reset=False)
        if len(X3) == 0:  # no sequences: an empty answer of the usual shape
            return np.empty((0,) if self._y_ndim == 1 else (0, self.n_outputs_))
        pred = self._net.predict(
            time_major(X3), loss=self.loss,
            output_activation=self.output_activation,
        ).astype(np.float64, copy=False)
        pred = self._point(pred)
        if self._y_ndim == 3:
            return np.ascontiguousarray(pred[:, -1, :])
        return pred.ravel() if self._y_ndim == 1 else pred

    def score(self, X, y, sample_weight=None):
        """R² of ``predict(X)`` against ``y``.

        A 3D ``y`` (per-step targets) is scored on its last step, the step that
        ``predict`` returns.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)
        y : array-like of shape (n_samples,), (n_samples, n_outputs) or \
                (n_samples, timesteps, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y_seq = _sequence_targets(y)
        if y_seq is not None:
            y = y_seq[:, -1, :]
        return super().score(X, y, sample_weight=sample_weight)

    def get_states(self, X):
        """Per-step hidden states, cell states and gate activations for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)

        Returns
        -------
        states : list of dict
            One dict per stacked layer, each value of shape
            ``(n_samples, timesteps, units)``: ``"h"`` (hidden state) for every cell;
            ``"c"``, ``"input_gate"``, ``"forget_gate"``, ``"candidate"``,
            ``"output_gate"`` for the LSTM; ``"reset_gate"``, ``"update_gate"``,
            ``"candidate"`` for the GRU (``h = (1 - z) * n + z * h_prev``).
        """
        self._check_fitted_net()
        X3 = self._as_sequences(X, reset=False)
        return self._net.states(np.ascontiguousarray(X3.transpose(1, 0, 2)))

    # -- weights in PyTorch layout -------------------------------------------------------

    def get_weights(self):
        """Weights in PyTorch's layout and names.

        Returns
        -------
        state_dict : dict of str to ndarray
            ``weight_ih_l{k}`` ``(G*H, F)``, ``weight_hh_l{k}`` ``(G*H, H)``,
            ``bias_ih_l{k}``, ``bias_hh_l{k}`` for each layer ``k`` (gate order LSTM
            ``i, f, g, o``, GRU ``r, z, n``), and ``head.weight`` ``(n_outputs, H)``,
            ``head.bias``. The recurrent layers load into ``torch.nn.LSTM/GRU/RNN``
            (``batch_first=True``) and the head into ``torch.nn.Linear``. LSTM and
            SimpleRNN merge the two biases: the sum is in ``bias_ih`` and ``bias_hh``
            is zero. Variants PyTorch lacks carry extra keys that make a strict
            ``load_state_dict`` fail instead of loading wrong weights:
            ``weight_peephole_l{k}`` (LSTM peepholes, rows ``i, f, o``) and
            ``reset_before_l{k}`` (GRU with ``reset_after=False``). A quantile
            head has one row per target and level, target-major (row
            ``j * n_levels + k`` is level ``k`` of target ``j``).
        """
        self._check_fitted_net()
        net = self._net
        sd = {}
        for k, (layer, p) in enumerate(zip(net.layers, net.params)):
            H = layer.units
            rows = _torch_rows(layer)
            sd[f"weight_ih_l{k}"] = p["W_ih"].T[rows].copy()
            sd[f"weight_hh_l{k}"] = p["W_hh"].T[rows].copy()
            sd[f"bias_ih_l{k}"] = p["b"][rows].copy()
            b_hh = np.zeros_like(p["b"])
            if "b_hn" in p:
                b_hh[2 * H :] = p["b_hn"]
            sd[f"bias_hh_l{k}"] = b_hh
            if "w_peep" in p:
                sd[f"weight_peephole_l{k}"] = p["w_peep"].copy()
            if self._cell == "gru" and not layer.reset_after:
                sd[f"reset_before_l{k}"] = np.ones(1, dtype=p["b"].dtype)
        sd["head.weight"] = net.head_params["W"].T.copy()
        sd["head.bias"] = net.head_params["b"].copy()
        return sd

    def set_weights(self, state_dict):
        """Load weights given in PyTorch's layout (see :meth:`get_weights`).

        On a fitted estimator the shapes must match. On an unfitted one the network
        is built from the shapes (features per step, units per layer, outputs) and
        the estimator then predicts sequences of any length; ``units`` must agree
        with the weights.

        The whole ``state_dict`` is checked before anything is loaded, so a refused
        one leaves the estimator as it was. It must hold exactly, for each layer
        ``k``: ``weight_ih_l{k}`` and ``weight_hh_l{k}``, and ``bias_ih_l{k}`` with
        ``bias_hh_l{k}`` (both, or neither for PyTorch's ``bias=False``: zeros);
        ``head.weight`` and ``head.bias``; and the keys of this estimator's variant,
        ``weight_peephole_l{k}`` (``peephole=True``) or ``reset_before_l{k}``
        (``reset_after=False``). A missing or unexpected key, a shape other than
        the expected one, a non-numeric array or a NaN or infinite value raises a
        ``ValueError`` that names the keys concerned and what was expected.

        Parameters
        ----------
        state_dict : mapping of str to array-like
            Arrays or tensors (anything ``np.asarray`` takes).

        Returns
        -------
        self : object
        """
        sd = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
              for k, v in state_dict.items()}
        fitted = hasattr(self, "_net")
        units = self._net.units if fitted else _check_units(self.units)
        n_layers = len(units)
        # the weights' own units, when their recurrent matrices say so plainly
        theirs = []
        while np.ndim(sd.get(f"weight_hh_l{len(theirs)}")) == 2:
            theirs.append(sd[f"weight_hh_l{len(theirs)}"].shape[1])
        consistent = len(theirs) == sum(k.startswith("weight_ih_l") for k in sd)
        if theirs and consistent and tuple(theirs) != tuple(units):
            raise ValueError(
                f"units={self.units!r} does not match the weights' {tuple(theirs)} "
                f"(the second dimension of each weight_hh_l{{k}})."
                + (f" This estimator is fitted with units {units}." if fitted else "")
            )
        layers = (self._net.layers if fitted else RecurrentNetwork(
            self._cell, 1, units, 1, cell_kwargs=self._cell_kwargs()).layers)
        G = layers[0].n_gates
        required = {"head.weight", "head.bias"}
        optional = set()
        for k, layer in enumerate(layers):
            required |= {f"weight_ih_l{k}", f"weight_hh_l{k}"}
            if getattr(layer, "peephole", False):
                required.add(f"weight_peephole_l{k}")
            if getattr(layer, "reset_after", True) is False:
                required.add(f"reset_before_l{k}")
            both = {f"bias_ih_l{k}", f"bias_hh_l{k}"}
            (optional if not both & set(sd) else required).update(both)
        missing, extra = sorted(required - set(sd)), sorted(set(sd) - required - optional)
        if missing or extra:
            problems = ([f"lacks {missing}"] if missing else []) + (
                [f"has unexpected key(s) {extra}"] if extra else [])
            raise ValueError(
                f"state_dict {' and '.join(problems)}. This {type(self).__name__} with "
                f"{n_layers} layer(s) takes exactly {sorted(required | optional)} "
                "(the two biases of a layer may be left out together)."
            )
        for k, a in sd.items():
            if a.dtype.kind not in "biuf":
                raise ValueError(
                    f"state_dict[{k!r}] must be numeric; got an array of dtype {a.dtype}."
                )
        F = sd["weight_ih_l0"].shape[-1] if sd["weight_ih_l0"].ndim == 2 else None
        n_out = sd["head.weight"].shape[0] if sd["head.weight"].ndim == 2 else None
        if fitted:
            F, n_out = self._net.n_features, self._net.n_outputs
        expected = {"head.weight": (n_out, units[-1]), "head.bias": (n_out,)}
        n_in = F
        for k, H in enumerate(units):
            expected.update({f"weight_ih_l{k}": (G * H, n_in), f"weight_hh_l{k}": (G * H, H),
                             f"bias_ih_l{k}": (G * H,), f"bias_hh_l{k}": (G * H,),
                             f"weight_peephole_l{k}": (3, H), f"reset_before_l{k}": (1,)})
            n_in = H
        wrong = [f"{k} has shape {sd[k].shape}, expected {expected[k]}" for k in sorted(sd)
                 if sd[k].shape != expected[k] or 0 in expected[k] or None in expected[k]]
        if wrong:
            raise ValueError(
                f"state_dict holds arrays of the wrong shape: {'; '.join(wrong)} "
                f"(G={G} gate block(s) per layer, units {units}"
                + (f", {F} features per step and {n_out} outputs as fitted)." if fitted
                   else ").")
            )
        bad = {k: int(np.sum(~np.isfinite(a))) for k, a in sd.items()}
        bad = {k: v for k, v in bad.items() if v}
        if bad:
            raise ValueError(
                "state_dict holds NaN or infinite values ("
                + ", ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
                + "); weights must be finite."
            )
        dtype = _DTYPES[self.dtype]
        if not fitted:
            self.n_step_features_ = F
            self.n_timesteps_ = None
            self.quantiles_ = self._check_quantile_params(False)
            self.n_outputs_ = self._targets_of_head(n_out)
            self._y_ndim = 1 if self.n_outputs_ == 1 else 2
            self._net = RecurrentNetwork(self._cell, F, units, n_out, dtype=dtype,
                                         cell_kwargs=self._cell_kwargs())
            self.n_iter_ = 0
        net = self._net
        for k, (layer, p) in enumerate(zip(net.layers, net.params)):
            H = layer.units
            # PyTorch row j holds gate j; the engine's block order may differ
            to_internal = np.argsort(_torch_rows(layer))
            b_ih = np.asarray(sd.get(f"bias_ih_l{k}", np.zeros(G * H)))[to_internal]
            b_hh = np.asarray(sd.get(f"bias_hh_l{k}", np.zeros(G * H)))[to_internal]
            p["W_ih"][...] = sd[f"weight_ih_l{k}"][to_internal].T
            p["W_hh"][...] = sd[f"weight_hh_l{k}"][to_internal].T
            if "b_hn" in p:
                p["b"][...] = b_ih
                p["b"][: 2 * H] += b_hh[: 2 * H]
                p["b_hn"][...] = b_hh[2 * H :]
            else:
                p["b"][...] = b_ih + b_hh
            if "w_peep" in p:
                p["w_peep"][...] = sd[f"weight_peephole_l{k}"]
        net.head_params["W"][...] = sd["head.weight"].T
        net.head_params["b"][...] = sd["head.bias"]
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # -- quantile heads --------------------------------------------------------------------

    def _levels(self):
        """The fitted quantile levels (ndarray), or None for a point-loss model."""
        return getattr(self, "quantiles_", None)

    def _n_levels(self):
        levels = self._levels()
        return 1 if levels is None else len(levels)

    def _check_quantile_params(self, keep):
        """Validate ``quantile``/``quantiles`` against ``loss``; return the levels or None.

        With ``keep`` (warm start, ``partial_fit``) the levels must be the fitted ones:
        the head has one output per level.
        """
        given = [name for name in ("quantile", "quantiles") if getattr(self, name) is not None]
        if self.loss != "quantile":
            if given:
                raise ValueError(
                    f"{given[0]}={getattr(self, given[0])!r} is only used with "
                    f"loss='quantile'; got loss={self.loss!r}. Set loss='quantile' or "
                    f"leave {given[0]}=None."
                )
            levels = None
        elif len(given) != 1:
            raise ValueError(
                "loss='quantile' needs exactly one of quantile=q (one level) and "
                "quantiles=[q1, q2, ...] (one head output per level); got "
                f"{'both' if given else 'neither'}."
            )
        elif self.quantile is not None:
            levels = np.array([float(self.quantile)])
        else:
            levels = _check_levels(self.quantiles, "quantiles")
        if keep:
            fitted = self._levels()
            if (fitted is None) != (levels is None) or (
                levels is not None and not np.array_equal(fitted, levels)
            ):
                raise ValueError(
                    f"This {type(self).__name__} was fitted with quantile levels "
                    f"{None if fitted is None else fitted.tolist()}; got "
                    f"{None if levels is None else levels.tolist()} (loss={self.loss!r}). "
                    "The head has one output per level: fit from scratch "
                    "(warm_start=False) to change them."
                )
        return levels

    def _targets_of_head(self, n_head):
        """Targets of a head with ``n_head`` outputs (one per target and level)."""
        n_q = self._n_levels()
        if n_head % n_q:
            raise ValueError(
                f"The head has {n_head} outputs, which is not a multiple of the "
                f"{n_q} quantile levels {self._levels().tolist()} (one output per target "
                "and level)."
            )
        return n_head // n_q

    def _initial_level(self, y, sample_weight):
        """Start of the head bias: the mean target, or each target's quantiles.

        For quantile heads, target-major like the head: level ``k`` of target ``j``
        is entry ``j * n_levels + k``.
        """
        levels = self._levels()
        if levels is None:
            return np.average(y, axis=0, weights=sample_weight)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        out = np.empty((y.shape[1], len(levels)))
        for j in range(y.shape[1]):
            order = np.argsort(y[:, j], kind="stable")
            cum = np.cumsum(w[order])
            idx = np.searchsorted(cum, levels * cum[-1])
            out[j] = y[order[np.minimum(idx, len(y) - 1)], j]
        return out.ravel()

    def _point_weights(self):
        """Weights over the sorted levels that give ``predict``'s value.

        The 0.5 level when fitted; else linear interpolation in the level between the
        two fitted levels around 0.5, or the nearest level when all lie on one side.
        """
        levels = self._levels()
        c = np.zeros(len(levels))
        hi = int(np.searchsorted(levels, 0.5))
        if hi < len(levels) and levels[hi] == 0.5:
            c[hi] = 1.0
        elif hi == 0:
            c[0] = 1.0
        elif hi == len(levels):
            c[-1] = 1.0
        else:
            lo_q, hi_q = levels[hi - 1], levels[hi]
            c[hi] = (0.5 - lo_q) / (hi_q - lo_q)
            c[hi - 1] = 1.0 - c[hi]
        return c

    def _sorted_levels(self, pred):
        """Head predictions ``(..., n_targets * n_levels)`` as ``(..., n_targets,
        n_levels)``, sorted along the levels so that quantiles never cross."""
        n_q = self._n_levels()
        return np.sort(pred.reshape(pred.shape[:-1] + (-1, n_q)), axis=-1)

    def _point(self, pred):
        """``predict``'s values from the head predictions (identity without quantiles)."""
        if self._levels() is None:
            return pred
        return self._sorted_levels(pred) @ self._point_weights()

    def predict_quantiles(self, X, quantiles=None):
        """Predicted quantiles of a model fitted with ``loss="quantile"``.

        The head's outputs of each target are sorted (the rearrangement of
        Chernozhukov et al., 2010), so a higher level never predicts less than a
        lower one; sorting never increases the pinball loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)
        quantiles : array-like of float, default=None
            Levels to return, each one of the fitted ``quantiles_``; None returns
            them all.

        Returns
        -------
        y_quantiles : ndarray of shape (n_samples, n_levels) or \
                (n_samples, n_outputs, n_levels)
            The first shape for a model fitted on a 1D ``y``, the second for a 2D
            (or per-step 3D, last step) ``y``; levels in increasing order along the
            last axis.
        """
        self._check_fitted_net()
        levels = self._levels()
        if levels is None:
            raise ValueError(
                f"predict_quantiles needs a model fitted with loss='quantile'; this "
                f"{type(self).__name__} was fitted with loss={self.loss!r}."
            )
        if quantiles is None:
            cols = np.arange(len(levels))
        else:
            wanted = np.atleast_1d(np.asarray(quantiles, dtype=float))
            cols = np.searchsorted(levels, wanted).clip(0, len(levels) - 1)
            unknown = wanted[~np.isclose(levels[cols], wanted, rtol=0, atol=1e-12)]
            if wanted.ndim != 1 or len(unknown):
                raise ValueError(
                    f"quantiles must be levels the model was fitted for, "
                    f"{levels.tolist()}; got {np.asarray(quantiles).tolist()!r} "
                    f"(unknown: {unknown.tolist()})."
                )
        X3 = self._as_sequences(X, reset=False)
        pred = self._net.predict(
            np.ascontiguousarray(X3.transpose(1, 0, 2)), loss=self.loss,
            output_activation=self.output_activation,
        ).astype(np.float64, copy=False)
        if self._y_ndim == 3:
            pred = pred[:, -1, :]
        out = self._sorted_levels(pred)[..., cols]
        return np.ascontiguousarray(out[:, 0] if self._y_ndim == 1 else out)

    # -- attributions ----------------------------------------------------------------------

    def input_gradients(self, X, *, method="gradient", baseline=None, n_steps=50):
        """Exact attributions of each prediction to each time step and step feature.

        ``method="gradient"`` returns the gradient of each value of :meth:`predict`
        with respect to each input value, computed by the same hand-written
        backward pass as training (exact, not a finite-difference estimate).
        ``method="integrated"`` returns integrated gradients (Sundararajan et al.,
        2017): ``(x - baseline)`` times the gradient averaged along the straight
        path from ``baseline`` to ``x``, integrated by Gauss-Legendre quadrature
        with ``n_steps`` nodes. They add up to ``predict(x) - predict(baseline)``
        (completeness), so each one reads as the share of the prediction that one
        step and feature account for. For a quantile model, the prediction is
        :meth:`predict`'s (the median).

        Parameters
        ----------
        X : array-like of shape (n_samples, timesteps * n_step_features) or \
                (n_samples, timesteps, n_step_features)
        method : {"gradient", "integrated"}, default="gradient"
        baseline : array-like, default=None
            Reference input of integrated gradients, shaped like ``X`` or like one
            of its samples (broadcast to all); None means zeros.
        n_steps : int, default=50
            Quadrature nodes of integrated gradients (one backward pass each). With
            smooth cells (tanh, LSTM, GRU) the sum matches the prediction gap to
            about 1e-6 with 50 nodes; the gradient of a relu network jumps along the
            path and needs several hundred for 1e-3.

        Returns
        -------
        attributions : ndarray
            Shaped like ``X`` (2D or 3D as given) for a model fitted on a 1D ``y``.
            For a 2D or per-step 3D ``y``, one attribution per output:
            ``(n_samples, n_outputs) + X.shape[1:]``.
        """
        self._check_fitted_net()
        if method not in ("gradient", "integrated"):
            raise ValueError(
                f"method must be 'gradient' or 'integrated'; got {method!r}."
            )
        if not isinstance(n_steps, Integral) or isinstance(n_steps, bool) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int; got {n_steps!r}.")
        X3 = self._as_sequences(X, reset=False)
        layout = np.shape(X)[1:] if np.ndim(X) == 3 else (X3.shape[1] * X3.shape[2],)
        if method == "gradient":
            grads = self._input_gradients(X3)
        else:
            if baseline is None:
                B3 = np.zeros_like(X3)
            else:
                base = np.asarray(baseline, dtype=X3.dtype)
                target = (len(X3),) + layout
                try:
                    base = np.broadcast_to(base, target)
                except ValueError:
                    raise ValueError(
                        f"baseline must have the shape of X, {target}, or of one "
                        f"sample, {layout}; got {base.shape}."
                    ) from None
                if not np.all(np.isfinite(base)):
                    raise ValueError("baseline contains NaN or infinite values.")
                B3 = base.reshape(X3.shape)
            nodes, weights = np.polynomial.legendre.leggauss(n_steps)
            nodes, weights = (nodes + 1) / 2, weights / 2  # on [0, 1], summing to 1
            delta = X3 - B3
            grads = 0.0
            for a, w in zip(nodes, weights):
                grads = grads + w * self._input_gradients(B3 + a * delta)
            grads = grads * delta[:, None]
        n = len(X3)
        grads = grads.reshape((n, grads.shape[1]) + layout)
        return grads[:, 0] if self._y_ndim == 1 else grads

    def _input_gradients(self, X3, chunk=256):
        """``d predict / d X`` of shape ``(n, n_outputs, T, F)`` (float64)."""
        from skrnn.nn._losses import _activation_derivative

        net, n_out = self._net, self.n_outputs_
        levels = self._levels()
        c = None if levels is None else self._point_weights()
        sequence = self._y_ndim == 3
        n, T, F = X3.shape
        # one row of the batch per (output, sample): each backward pass seeds one output
        rows = np.repeat(np.arange(n_out), n)
        Xt = np.tile(np.ascontiguousarray(X3.transpose(1, 0, 2)), (1, n_out, 1))
        out = np.empty((T, n_out * n, F))

        def seeds(Z, which):
            Zl = Z[:, -1] if sequence else Z
            B = len(Zl)
            if levels is None:
                dP = np.zeros((B, n_out, 1))
            else:
                P = predict_from_raw(Zl, self.loss, self.output_activation)
                rank = np.argsort(np.argsort(P.reshape(B, n_out, -1), axis=-1), axis=-1)
                dP = np.zeros(rank.shape)
            dP[np.arange(B), which] = 1.0 if levels is None else c[rank[np.arange(B), which]]
            dZ = dP.reshape(Zl.shape)
            if self.loss == "poisson":
                dZ = dZ * np.exp(Zl)
            else:
                dact = _activation_derivative(self.output_activation, Zl)
                if dact is not None:
                    dZ = dZ * dact
            if not sequence:
                return dZ
            full = np.zeros(Z.shape)
            full[:, -1] = dZ
            return full

        for s in range(0, n_out * n, chunk):
            which = rows[s : s + chunk]
            out[:, s : s + chunk] = net.input_gradient(
                np.ascontiguousarray(Xt[:, s : s + chunk]), lambda Z, w=which: seeds(Z, w)
            )
        return out.reshape(T, n_out, n, F).transpose(2, 1, 0, 3)


def _check_levels(levels, name):
    """Quantile levels as a sorted float array in (0, 1) without repeats."""
    try:
        arr = np.asarray(levels, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a list of floats in (0, 1); got {levels!r}."
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D list of floats; got {levels!r}.")
    bad = arr[~((arr > 0) & (arr < 1))]
    if bad.size:
        raise ValueError(
            f"{name} must lie strictly between 0 and 1; got {bad.tolist()} in "
            f"{arr.tolist()}."
        )
    if np.any(np.diff(arr) == 0):
        raise ValueError(f"{name} must not repeat a level; got {arr.tolist()}.")
    if np.any(np.diff(arr) < 0):
        raise ValueError(
            f"{name} must be sorted in increasing order; got {arr.tolist()} "
            f"(pass {np.sort(arr).tolist()})."
        )
    return arr




_DOC = """\
{summary}

    A scikit-learn regressor over sequences: the last step's hidden state of the
    top layer feeds a dense head. Trained with exact backpropagation through time.

    Parameters
    ----------
    units : int or tuple of int, default=32
        Hidden units; a tuple stacks one layer per entry.
    n_step_features : int or None, default=None
        Features per time step of a 2D ``X`` (columns ``[x(t-T+1)..., ..., x(t)...]``,
        oldest step first). None means one feature per step; a 3D ``X`` carries its
        own layout.
{cell_params}
    dropout : float, default=0.0
        Fraction of each layer's inputs dropped in training, one mask per sequence.
    recurrent_dropout : float, default=0.0
        Fraction of the recurrent state dropped before the recurrent product, one
        mask per sequence.
    loss : {{"squared_error", "absolute_error", "huber", "poisson", "quantile"}}, \
default="squared_error"
        ``"poisson"`` uses a log link (predictions ``exp(z)``) and needs ``y >= 0``.
        ``"quantile"`` is the pinball loss of the level(s) set by ``quantile`` or
        ``quantiles`` (exactly one of them).
    huber_delta : float, default=1.0
        Threshold of the Huber loss.
    output_activation : {{"identity", "relu", "softplus"}}, default="identity"
    solver : {{"adam", "sgd", "rmsprop"}}, default="adam"
    alpha : float, default=1e-4
        L2 penalty on the weight matrices (not the biases), divided by the batch size.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {{"constant", "invscaling", "adaptive"}}, default="constant"
        Schedule as in MLPRegressor, applied to every solver.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Number of epochs.
    shuffle : bool, default=True
        Shuffle the samples (whole sequences) each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and dropout; the same value gives
        bit-identical fits.
    tol : float, default=1e-4
    verbose : bool, default=False
        Print the loss of each epoch.
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    rho : float, default=0.9
        RMSprop decay.
    early_stopping : bool, default=False
        Hold out the **last** ``validation_fraction`` of the samples (time order),
        stop when the validation loss stops improving and restore the best weights.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam parameters (``epsilon`` is also RMSprop's).
    n_iter_no_change : int, default=10
    clipnorm : float or None, default=None
        Clip the gradient to this global norm.
    clipvalue : float or None, default=None
        Clip each gradient entry to ``[-clipvalue, clipvalue]``.
    dtype : {{"float64", "float32"}}, default="float64"
        Precision of the computation; ``"float32"`` is about twice as fast.
    quantile : float in (0, 1) or None, default=None
        With ``loss="quantile"``: the one level to fit; ``predict`` returns it.
    quantiles : array-like of float or None, default=None
        With ``loss="quantile"``: several levels, increasing, in (0, 1), fitted by
        one head with one output per target and level (target-major: output
        ``j * n_levels + k`` is level ``k`` of target ``j``). ``predict_quantiles``
        returns them sorted, so they never cross; ``predict`` returns the median
        (the 0.5 level, else interpolated between the levels around 0.5).

    Attributes
    ----------
    loss_ : float
        Training loss of the last epoch (penalty included).
    loss_curve_ : list of float
        Training loss per epoch.
    best_loss_ : float or None
        Best training loss (None with early stopping).
    validation_loss_curve_, validation_scores_ : list of float or None
        Validation loss and R² per epoch (early stopping only).
    best_validation_score_ : float or None
        R² at the best validation epoch.
    best_iteration_ : int or None
        Epoch (1-based) with the best monitored loss.
    grad_norm_curve_ : list of float
        Mean global gradient norm per epoch, measured before clipping.
    learning_rate_curve_ : list of float
        Learning rate of each epoch's steps (before Adam's bias correction); it moves
        with ``learning_rate="invscaling"`` and ``"adaptive"``.
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Columns of the flattened input (``timesteps * n_step_features``).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` is a DataFrame.
    n_timesteps_, n_step_features_ : int
        The sequence layout learned in ``fit``.
    n_outputs_ : int
        Targets (columns of ``y``); a quantile head has ``n_outputs_`` times the
        number of levels outputs.
    quantiles_ : ndarray of float or None
        The fitted quantile levels (None unless ``loss="quantile"``).

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import {name}
    >>> X = np.sin(np.arange(120, dtype=float) / 5).reshape(20, 6)  # 20 windows, 6 steps
    >>> y = X[:, -1] * 0.9
    >>> model = {name}(units=8, max_iter=5, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
"""


def _regressor_doc(name, summary, cell_params):
    """The numpydoc docstring of one regressor class: its own summary and
    parameters, the options and attributes all three share."""
    return _DOC.format(name=name, summary=summary, cell_params=cell_params.rstrip("\n"))


class SimpleRNNRegressor(BaseRecurrentRegressor):
    __doc__ = _regressor_doc(
        "SimpleRNNRegressor",
        "Elman recurrent network regressor: ``h_t = act(x_t W_ih + h_{t-1} W_hh + b)``.",
        """\
    activation : {"tanh", "relu"}, default="tanh"
        Activation of the recurrent layer.
""",
    )

    _cell = "rnn"
    _parameter_constraints = {
        **BaseRecurrentRegressor._parameter_constraints,
        "activation": [StrOptions({"tanh", "relu"})],
    }

    def __init__(
        self,
        units=32,
        *,
        activation="tanh",
        n_step_features=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        loss="squared_error",
        huber_delta=1.0,
        output_activation="identity",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        rho=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clipnorm=None,
        clipvalue=None,
        dtype="float64",
        quantile=None,
        quantiles=None,
    ):
        super().__init__(
            units,
            n_step_features=n_step_features,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            loss=loss,
            huber_delta=huber_delta,
            output_activation=output_activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            rho=rho,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            dtype=dtype,
            quantile=quantile,
            quantiles=quantiles,
        )
        self.activation = activation

    def _cell_kwargs(self):
        return {"activation": self.activation}


class LSTMRegressor(BaseRecurrentRegressor):
    __doc__ = _regressor_doc(
        "LSTMRegressor",
        "Long short-term memory regressor (PyTorch gate order ``i, f, g, o``).",
        """\
    peephole : bool, default=False
        Add peephole connections from the cell state to the gates (Gers &
        Schmidhuber); such a model has no PyTorch counterpart.
""",
    )

    _cell = "lstm"
    _parameter_constraints = {
        **BaseRecurrentRegressor._parameter_constraints,
        "peephole": ["boolean"],
    }

    def __init__(
        self,
        units=32,
        *,
        peephole=False,
        n_step_features=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        loss="squared_error",
        huber_delta=1.0,
        output_activation="identity",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        rho=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clipnorm=None,
        clipvalue=None,
        dtype="float64",
        quantile=None,
        quantiles=None,
    ):
        super().__init__(
            units,
            n_step_features=n_step_features,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            loss=loss,
            huber_delta=huber_delta,
            output_activation=output_activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            rho=rho,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            dtype=dtype,
            quantile=quantile,
            quantiles=quantiles,
        )
        self.peephole = peephole

    def _cell_kwargs(self):
        return {"peephole": self.peephole}


class GRURegressor(BaseRecurrentRegressor):
    __doc__ = _regressor_doc(
        "GRURegressor",
        "Gated recurrent unit regressor, ``h = (1 - z) * n + z * h_prev``.",
        """\
    reset_after : bool, default=True
        True: the cuDNN/PyTorch form, reset applied after the recurrent product
        (``r * (h W_hn + b_hn)``). False: the original Cho form, ``(r * h) W_hn``.
""",
    )

    _cell = "gru"
    _parameter_constraints = {
        **BaseRecurrentRegressor._parameter_constraints,
        "reset_after": ["boolean"],
    }

    def __init__(
        self,
        units=32,
        *,
        reset_after=True,
        n_step_features=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        loss="squared_error",
        huber_delta=1.0,
        output_activation="identity",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        rho=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clipnorm=None,
        clipvalue=None,
        dtype="float64",
        quantile=None,
        quantiles=None,
    ):
        super().__init__(
            units,
            n_step_features=n_step_features,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            loss=loss,
            huber_delta=huber_delta,
            output_activation=output_activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            rho=rho,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            dtype=dtype,
            quantile=quantile,
            quantiles=quantiles,
        )
        self.reset_after = reset_after

    def _cell_kwargs(self):
        return {"reset_after": self.reset_after}
