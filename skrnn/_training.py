"""The recurrent regressors' training loop: epochs over batches, early stopping on a
time-ordered hold-out, divergence, interrupts, and the callback hooks of each epoch
(docs/architecture.md, contract 5).

``fit``, ``partial_fit`` and ``warm_start`` all come here (``_fit``). The state that
training carries between epochs and calls is one
:class:`~skrnn._training_state.TrainingState`, held as ``_training``.
"""

import copy
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state

from skrnn._callbacks import EPOCH_TASK
from skrnn._input import DTYPES, check_units
from skrnn._training_state import TrainingState
from skrnn.exceptions import DivergenceError, DivergenceWarning
from skrnn.nn._losses import loss_and_grad, predict_from_raw
from skrnn.nn._network import RecurrentNetwork
from skrnn.nn._optimizers import clip_gradient, make_optimizer
from skrnn.nn._workspace import Workspace
from skrnn.windows import map_row_blocks, time_major

# the private attributes a fit sets; with the public fitted ones (a trailing underscore)
# they are what a failed call puts back as they were
_FITTED_PRIVATE = ("_net", "_y_ndim", "_training")


def _is_fitted_attribute(name):
    return name.endswith("_") and not name.startswith("_") or name in _FITTED_PRIVATE


class _TrainingMixin:
    """The training side of :class:`~skrnn.recurrent.BaseRecurrentRegressor`."""

    def _fit(self, X, y, sample_weight, incremental):
        units = check_units(self.units)
        fitted = hasattr(self, "_net")
        keep = fitted and (incremental or self.warm_start)
        if keep:
            self._check_architecture(units)
            self._ensure_training_state()
        X3, y2, y_ndim, sw = self._as_sequences(X, y, sample_weight, reset=not keep)
        n, T, F = X3.shape
        dtype = DTYPES[self.dtype]
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
        previous = {k: v for k, v in vars(self).items() if _is_fitted_attribute(k)
                    } if fitted else None
        if keep and previous is not None:
            # training goes on in place (the network, the training state and the
            # curves are updated, not replaced), so the snapshot must own copies
            previous = {k: v.copy() if k in ("_net", "_training") else copy.deepcopy(v)
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
            self._training = TrainingState(self._make_optimizer(), rng)
            self.loss_curve_ = []
            self.grad_norm_curve_ = []
            self.learning_rate_curve_ = []
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = None
            self.best_loss_ = None if self.early_stopping else np.inf
            self.best_iteration_ = None
            self.n_iter_ = 0
            self.t_ = 0
        else:
            if not incremental:
                self._training.rng = check_random_state(self.random_state)
            if self.early_stopping and self.validation_loss_curve_ is None:
                self.validation_loss_curve_, self.validation_scores_ = [], []
                self._training.best_val_loss = np.inf

        # a PanelWindows or strided view stays lazy: each batch gathers its rows
        Xtr = time_major(X3[:n_train])
        ytr, swtr = y2[:n_train], None if sw is None else sw[:n_train]
        val = None
        if n_val:  # gathered chunk by chunk at each epoch's end (_holdout_output)
            val = (X3[n_train:], y2[n_train:], None if sw is None else sw[n_train:])

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
        state = self._training
        state.epoch_theta = None
        if self.early_stopping and not incremental and state.best_theta is not None:
            self._net.theta[...] = state.best_theta
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
        if getattr(self, "_training", None) is not None:
            return
        self._training = TrainingState(self._make_optimizer(),
                                       check_random_state(self.random_state))
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
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")
                     or a in _FITTED_PRIVATE]:
            delattr(self, attr)
        if previous:
            for k, v in previous.items():
                setattr(self, k, v)

    def _after_interrupt(self, previous):
        """Keep the last complete epoch (or the best one with early stopping).

        The weights are then those of a fit of exactly ``n_iter_`` epochs: an
        interrupt inside an epoch (or in its begin hook) rolls back to the snapshot
        taken before that epoch began; one after the epoch was counted keeps it.
        """
        state = self._training
        n_done, theta = state.epoch_theta or (0, None)
        state.epoch_theta = None
        if self.n_iter_ == 0 or theta is None:
            self._restore(previous)
            return
        best = state.best_theta if self.early_stopping else None
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
        net, state = self._net, self._training
        opt, rng = state.optimizer, state.rng
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
            state.epoch_theta = (self.n_iter_, net.theta.copy())
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

    def _holdout_output(self, Xv, ws):
        """Raw head output for the hold-out ``Xv`` ``(n, T, F)``, a block at a time.

        Windows as views (``skrnn/windows.py``) are gathered block by block
        (:func:`~skrnn.windows.map_row_blocks`), never whole; a dense hold-out goes
        through the same blocks, so both give the same bits. Blocks of a power of two
        rows start where the kernels' row blocks of one pass over the whole hold-out
        start: a hold-out of several blocks gave the bits of one pass in every case
        measured (both engines, both dtypes, the three cells); blocks of 7 or 100 rows
        did not. A hold-out of at most one block is one forward pass, as it always was.
        """
        return map_row_blocks(
            lambda block, rows: self._net.forward(np.asarray(time_major(block)), store=False,
                                                  ws=ws)[0], Xv)

    def _end_epoch(self, val, kw, ws=None):
        """Track the monitored loss; return True when training should stop."""
        state = self._training
        if val is not None:
            Xv, yv, swv = val
            Z = self._holdout_output(Xv, ws)
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
            monitored, best = float(vloss), state.best_val_loss
            if monitored < best:
                state.best_val_loss = monitored
                state.best_theta = self._net.theta.copy()
                self.best_iteration_ = self.n_iter_
                self.best_validation_score_ = score
        else:
            monitored, best = self.loss_, self.best_loss_
            if monitored < best:
                self.best_loss_ = monitored
                self.best_iteration_ = self.n_iter_
        if monitored > best - self.tol:
            state.no_improvement_count += 1
        else:
            state.no_improvement_count = 0
        if state.no_improvement_count > self.n_iter_no_change:
            opt = state.optimizer
            if opt.on_plateau(self.learning_rate):
                state.no_improvement_count = 0
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
        best = self._training.best_theta
        if self.early_stopping and best is not None:
            self._net.theta[...] = best
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

