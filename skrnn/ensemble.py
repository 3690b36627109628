"""Averaging ensembles: k seeds of one configuration, or a list of fitted-alike models.

Recurrent networks trained from different random initialisations make partly independent
errors; the mean of a few of them is usually more accurate than any one, at k times the
training cost and no tuning. :class:`AveragingRegressor` fits the members one after another
and predicts the plain mean of their predictions.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, column_or_1d

__all__ = ["AveragingRegressor"]


def _seed_params(estimator):
    """Every ``random_state`` parameter of ``estimator``, nested ones included."""
    return [k for k in estimator.get_params(deep=True)
            if k == "random_state" or k.endswith("__random_state")]


class AveragingRegressor(RegressorMixin, BaseEstimator):
    """Mean of several regressors: ``n_estimators`` seeds of one, or the ones given.

    With ``estimator``, the members are clones of it whose ``random_state`` parameters
    (nested ones too, e.g. a Pipeline's regressor) get ``n_estimators`` different seeds drawn
    from ``random_state``. With ``estimators``, the members are clones of those (top-k
    configurations of a search, say). ``predict`` returns the mean of the members'
    predictions.

    Parameters
    ----------
    estimator : estimator, default=None
        The configuration to repeat with different seeds.
    estimators : list of estimators, default=None
        The members, instead of ``estimator``.
    n_estimators : int, default=5
        Number of seeds of ``estimator``. Ignored with ``estimators``.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds (``estimator`` mode), so the ensemble is reproducible.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    seeds_ : ndarray of shape (n_estimators,) or None
        The seed given to each member (``estimator`` mode).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> from skrnn.ensemble import AveragingRegressor
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    >>> ens = AveragingRegressor(SGDRegressor(max_iter=5, tol=None), n_estimators=3,
    ...                          random_state=0).fit(X, y)
    >>> members = np.mean([m.predict(X) for m in ens.estimators_], axis=0)
    >>> bool(np.array_equal(ens.predict(X), members))
    True
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit", "predict"])],
        "estimators": [None, list],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, estimators=None, n_estimators=5, random_state=None):
        self.estimator = estimator
        self.estimators = estimators
        self.n_estimators = n_estimators
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        members = self.estimators if self.estimators else [self.estimator]
        if all(m is not None for m in members):
            member_tags = [get_tags(m).input_tags for m in members]
            # the ensemble accepts what every member accepts
            tags.input_tags.sparse = all(t.sparse for t in member_tags)
            tags.input_tags.allow_nan = all(t.allow_nan for t in member_tags)
        return tags

    def _members(self):
        if (self.estimator is None) == (self.estimators is None):
            raise ValueError(
                "AveragingRegressor needs exactly one of estimator= (repeated with different "
                "seeds) or estimators= (a list of members)."
            )
        if self.estimators is not None:
            if not self.estimators:
                raise ValueError("estimators must be a non-empty list of regressors.")
            bad = [type(e).__name__ for e in self.estimators
                   if not (hasattr(e, "fit") and hasattr(e, "predict"))]
            if bad:
                raise TypeError(f"estimators must all have fit and predict; got {bad}.")
            self.seeds_ = None
            return [clone(e) for e in self.estimators]
        keys = _seed_params(self.estimator)
        if not keys:
            raise ValueError(
                f"estimator {type(self.estimator).__name__} has no random_state parameter, so "
                "its seeds would all fit the same model; pass estimators= instead."
            )
        rng = check_random_state(self.random_state)
        self.seeds_ = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        return [clone(self.estimator).set_params(**{k: int(seed) for k in keys})
                for seed in self.seeds_]

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit every member on ``(X, y)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target.
        **fit_params : dict
            Passed to every member's ``fit``.

        Returns
        -------
        self : AveragingRegressor
            Fitted ensemble.
        """
        shape = getattr(y, "shape", ())
        if len(shape) == 2 and shape[1] == 1:
            y = column_or_1d(y, warn=True)  # a column vector means one output, as in sklearn
        self.estimators_ = [m.fit(X, y, **fit_params) for m in self._members()]
        first = self.estimators_[0]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        return self

    def predict(self, X):
        """Mean of the members' predictions.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            ``mean([m.predict(X) for m in estimators_], axis=0)``.
        """
        check_is_fitted(self)
        return np.mean([np.asarray(m.predict(X)) for m in self.estimators_], axis=0)
