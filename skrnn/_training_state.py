"""The state a recurrent regressor's training carries beyond the fitted model.

One object, its fields listed once (here): the estimator holds it as one attribute,
``partial_fit`` and ``warm_start`` train on with it, a failed or interrupted call
restores it, and ``skrnn.persistence`` leaves it out of model files (prediction
needs only the network and the fitted attributes).
"""

import copy
from dataclasses import dataclass, fields

import numpy as np


@dataclass
class TrainingState:
    """What training needs between epochs and calls, and prediction never reads.

    Attributes
    ----------
    optimizer : skrnn.nn._optimizers optimizer
        Its moments, step count and learning rate.
    rng : numpy.random.RandomState
        The generator of shuffling and dropout; taken from ``random_state`` at the
        start of a fit (docs/architecture.md, contract 4).
    best_theta : ndarray or None
        The weights of the best validation epoch (early stopping), restored at the
        end of ``fit``, on divergence and on an interrupt.
    best_val_loss : float
        The best validation loss so far.
    no_improvement_count : int
        Epochs since the monitored loss last improved by ``tol``.
    epoch_theta : tuple of (int, ndarray) or None
        ``(n_iter_, weights)`` taken before the running epoch began: what an
        interrupt inside that epoch rolls back to. None between calls.
    """

    optimizer: object
    rng: np.random.RandomState
    best_theta: np.ndarray = None
    best_val_loss: float = np.inf
    no_improvement_count: int = 0
    epoch_theta: tuple = None

    def copy(self):
        """A copy that owns its arrays, optimizer and generator (for a rollback)."""
        return copy.deepcopy(self)

    @classmethod
    def pop_legacy(cls, state):
        """Take the loose attributes of a model saved before this object out of
        ``state`` (an estimator's ``__dict__``); a TrainingState when the optimizer
        and generator were saved, else None (training then starts them afresh).

        They were named ``"_" + field``; the snapshots of a model file written by
        ``skrnn.persistence`` were already left out.
        """
        found = {f.name: state.pop("_" + f.name) for f in fields(cls) if "_" + f.name in state}
        if "optimizer" not in found or "rng" not in found:
            return None
        return cls(**found)
