"""Recurrent regressors: the scikit-learn face of the NumPy engine in ``skrnn.nn``.

The estimator is thin, as scikit-learn's ``neural_network`` is over its private
modules: each job lives in its own module, as a mixin of
:class:`BaseRecurrentRegressor` (docs/architecture.md, "Where each idea lives"):

- ``_input.py``: ``X``, ``y`` and ``sample_weight`` checked and laid out as sequences;
- ``_training.py``: the training loop (``fit``, ``partial_fit``, ``warm_start``, early
  stopping, divergence, interrupts), over one ``_training_state.TrainingState``;
- ``_quantile_head.py``: quantile heads and ``predict_quantiles``;
- ``_torch_weights.py``: ``get_weights``/``set_weights`` in PyTorch's layout;
- ``_attributions.py``: ``input_gradients``.

This module keeps the parameters, ``fit``/``predict`` and the three regressors.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.callback import CallbackSupportMixin, with_callbacks
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skrnn._attributions import _AttributionsMixin
from skrnn._input import DTYPES, _SequenceInputMixin, sequence_targets
from skrnn._quantile_head import _QuantileHeadMixin
from skrnn._torch_weights import _TorchWeightsMixin
from skrnn._training import _TrainingMixin
from skrnn._training_state import TrainingState
from skrnn.windows import map_row_blocks, time_major


class BaseRecurrentRegressor(
    _SequenceInputMixin, _TrainingMixin, _QuantileHeadMixin, _TorchWeightsMixin,
    _AttributionsMixin, CallbackSupportMixin, RegressorMixin, BaseEstimator,
):
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
        "dtype": [StrOptions(set(DTYPES))],
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

    # -- prediction --------------------------------------------------------------------

    def _check_fitted_net(self):
        check_is_fitted(self, "n_step_features_")

    # read-only views of the fitted model for code outside this estimator (exporters)
    @property
    def network_(self):
        """The fitted network (see the class docstring); read-only."""
        self._check_fitted_net()
        return self._net

    @property
    def y_ndim_(self):
        """Dimensions of the ``y`` seen in ``fit`` (see the class docstring)."""
        self._check_fitted_net()
        return self._y_ndim

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
        y_seq = sequence_targets(y)
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
        # windows as views are gathered a block of rows at a time (map_row_blocks)
        return map_row_blocks(
            lambda block, rows: self._net.states(
                np.ascontiguousarray(block.transpose(1, 0, 2))), X3)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def __setstate__(self, state):
        # a model pickled before the training state was one object holds its fields
        # as loose attributes: gather them, so that it trains on where it stopped
        state = dict(state)
        if "_training" not in state and "_net" in state:
            legacy = TrainingState.pop_legacy(state)
            if legacy is not None:  # else training starts it afresh, as for any file
                state["_training"] = legacy
        super().__setstate__(state)


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
    y_ndim_ : int
        Dimensions of the ``y`` seen in ``fit``: 1 (``predict`` returns
        ``(n_samples,)``), 2, or 3 (per-step targets; ``predict`` returns the last
        step, ``(n_samples, n_outputs)``).
    network_ : skrnn.nn._network.RecurrentNetwork
        The fitted engine network: its layers (``layers``, ``units``, ``cell``), their
        weights in the engine's internal layout (``params``, ``head_params``, views
        into one flat vector ``theta``). Exporters read it (``skrnn.onnx``); use
        :meth:`get_weights` for PyTorch's layout. Treat it as read-only.

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
