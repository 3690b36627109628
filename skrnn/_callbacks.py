"""The base of skrnn's epoch callbacks (scikit-learn's callback protocol).

A skrnn regressor's ``fit`` opens one callback task for the whole fit (task name
``"fit"``, scikit-learn's default) and one subtask per epoch (``EPOCH_TASK``); see
``docs/architecture.md`` (training loop and callbacks). :class:`EpochCallback` sorts
the protocol's calls into the two hooks skrnn's callbacks need --
:meth:`~EpochCallback.on_epoch_end` and :meth:`~EpochCallback.on_fit_end` -- so that
no callback string-matches task names or reads the estimator's private state: what an
epoch produced is in the estimator's public fitted attributes (``n_iter_``,
``loss_curve_``, ``validation_loss_curve_``, ``grad_norm_curve_``,
``learning_rate_curve_``, ...).

This module imports nothing from skrnn, so the estimators can import it.
"""

__all__ = ["EPOCH_TASK", "FIT_TASK", "EpochCallback", "add_callbacks", "callbacks_of"]

# the task names a skrnn regressor gives its callback contexts
EPOCH_TASK = "epoch"
FIT_TASK = "fit"


class EpochCallback:
    """Base class for callbacks that act at the end of each epoch of a skrnn fit.

    Subclasses override :meth:`on_epoch_end` (return True to stop training after this
    epoch), and when needed :meth:`on_fit_end`, :meth:`setup` and :meth:`teardown`.
    Every protocol hook has an empty default, so a subclass writes only what it uses.
    One instance may serve several estimators at once (clones in a search share their
    callbacks): keep per-fit state keyed by the estimator, as
    :class:`skrnn.tracking.MLflowCallback` does.
    """

    def setup(self, estimator, context):
        """Called when ``estimator``'s fit begins."""

    def teardown(self, estimator, context):
        """Called when ``estimator``'s fit is over, normally or by an exception."""

    def on_fit_task_begin(self, estimator, context, **kwargs):
        """Protocol hook; skrnn's callbacks act at the end of tasks only."""

    def on_fit_task_end(self, estimator, context, **kwargs):
        """Protocol hook: dispatch to :meth:`on_epoch_end` or :meth:`on_fit_end`."""
        if context.task_name == EPOCH_TASK:
            return bool(self.on_epoch_end(estimator))
        if context.task_name == FIT_TASK and context.estimator_name == type(estimator).__name__:
            self.on_fit_end(estimator)
        return False

    def on_epoch_end(self, estimator):
        """An epoch ended (``estimator.n_iter_`` counts it). Return True to stop."""
        return False

    def on_fit_end(self, estimator):
        """The estimator's fit ended normally (not called when it raised)."""


def callbacks_of(estimator):
    """The callbacks set on ``estimator`` (a new list; empty when none or unsupported)."""
    # sklearn keeps them in this attribute (sklearn.callback.CallbackSupportMixin), which
    # clone() passes on by reference; this is the one place skrnn reads it
    return list(getattr(estimator, "_skl_callbacks", []))


def add_callbacks(estimator, *callbacks):
    """Set ``callbacks`` on ``estimator`` after those it has (each object once).

    ``set_callbacks`` replaces an estimator's callbacks; this adds to them.

    Parameters
    ----------
    estimator : estimator supporting callbacks
    *callbacks : callback objects

    Returns
    -------
    estimator
    """
    kept = [c for c in callbacks_of(estimator) if all(c is not new for new in callbacks)]
    return estimator.set_callbacks(*kept, *callbacks)
