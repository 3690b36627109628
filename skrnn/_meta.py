"""The one walker: every skrnn recurrent regressor inside any meta-estimator.

Tuning (pruning callbacks), tracking (MLflow callbacks, final metrics), the experiment
runner (progress bars, loss plots) and anything else that needs "the skrnn regressor
in there" asks :func:`find_recurrent_regressors`, so they all reach the same places:
the parameters of any scikit-learn or sktime estimator (Pipeline steps,
TransformedTargetRegressor's ``regressor``, ColumnTransformer and FeatureUnion parts,
a search's ``estimator``, a forecaster's ``regressor`` or ``estimator``), and the
fitted copies a meta-estimator keeps in public trailing-underscore attributes
(``regressor_``, ``best_estimator_``, ``estimator_``, ``estimators_``, sktime's
``forecasters_``, :class:`~skrnn.forecasting.RecurrentForecaster`'s ``regressors_``).
"""

__all__ = ["find_recurrent_regressors", "fitted_recurrent_regressor", "iter_estimators"]


def _is_estimator(obj):
    return hasattr(obj, "get_params") and not isinstance(obj, type)


def _join(path, name):
    return f"{path}__{name}" if path else str(name)


def find_recurrent_regressors(estimator, *, fitted=True):
    """Yield ``(path, regressor)`` for every skrnn recurrent regressor in ``estimator``.

    Parameters
    ----------
    estimator : object
        A skrnn regressor (yielded itself, with path ``""``), or any estimator that
        exposes its parts through ``get_params`` (scikit-learn and sktime
        meta-estimators), or anything else (nothing is yielded).
    fitted : bool, default=True
        Also look inside the fitted copies a meta-estimator keeps in public attributes
        ending in ``_`` (``regressor_``, ``best_estimator_``, ``estimators_``, ...).
        With False only the parameters are searched: the regressors a later ``fit``
        clones, which is where callbacks must be set.

    Yields
    ------
    path : str
        Where the regressor sits, segments joined by ``"__"``. A path made of
        parameter names only is a valid ``set_params`` prefix (e.g.
        ``"regressor__model"`` for ``est.set_params(regressor__model__units=8)``).
        Fitted attributes appear by name (``"regressor___model"`` is the step
        ``model`` of ``regressor_``) and items of a fitted collection by position or
        key (``"regressors_[2]"``).
    regressor : BaseRecurrentRegressor
        Each object once, parameters before fitted attributes, in declaration order.

    Examples
    --------
    >>> from sklearn.compose import TransformedTargetRegressor
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrnn import LSTMRegressor
    >>> from skrnn._meta import find_recurrent_regressors
    >>> est = TransformedTargetRegressor(make_pipeline(StandardScaler(), LSTMRegressor()))
    >>> [path for path, _ in find_recurrent_regressors(est)]
    ['regressor__lstmregressor']
    """
    # imported here so that importing this module (from the CLI, say) stays light
    from skrnn.recurrent import BaseRecurrentRegressor

    yield from _walk(estimator, "", set(), fitted, BaseRecurrentRegressor)


def fitted_recurrent_regressor(estimator):
    """The last fitted skrnn regressor inside ``estimator`` (the one that predicts), or None.

    For a search that is the refitted ``best_estimator_``'s, for a
    TransformedTargetRegressor its ``regressor_``'s; with several (one model per
    horizon step) the last one found.
    """
    found = None
    for _, reg in find_recurrent_regressors(estimator):
        if hasattr(reg, "n_iter_"):
            found = reg
    return found


def iter_estimators(estimator, *, fitted=False):
    """Yield ``(path, estimator)`` for ``estimator`` and every estimator nested in it.

    The same reach as :func:`find_recurrent_regressors`, but every estimator is
    yielded (meta-estimators too, outermost first), e.g. to run each one's own
    parameter checks.
    """
    yield from _walk(estimator, "", set(), fitted, None)


def _walk(obj, path, seen, fitted, kind):
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if kind is None:
        if _is_estimator(obj):
            yield path, obj
    elif isinstance(obj, kind):
        yield path, obj
        return
    if not _is_estimator(obj):
        return
    params = obj.get_params(deep=False)
    for name, value in params.items():
        yield from _inside(value, path, name, seen, fitted, kind, named_items=True)
    if fitted:
        for name, value in list(vars(obj).items()):
            if name.endswith("_") and not name.startswith("_") and name not in params:
                yield from _inside(value, path, name, seen, fitted, kind, named_items=False)


def _inside(value, path, name, seen, fitted, kind, named_items):
    """The regressors in one attribute: an estimator, or a collection of them."""
    if _is_estimator(value):
        yield from _walk(value, _join(path, name), seen, fitted, kind)
        return
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    elif type(value).__name__ == "DataFrame" and hasattr(value, "to_numpy"):
        # sktime keeps one fitted forecaster per series in a DataFrame (forecasters_)
        items = list(enumerate(value.to_numpy(dtype=object).ravel()))
    else:
        return
    for key, item in items:
        if isinstance(item, tuple) and item and isinstance(item[0], str) and len(item) > 1:
            # (name, estimator, ...) as in Pipeline.steps, ColumnTransformer.transformers
            key, item = item[0], item[1]
            # in parameters, the step name is the set_params path (no attribute name)
            sub = _join(path, key) if named_items else _join(path, f"{name}[{key}]")
        else:
            sub = _join(path, f"{name}[{key}]")
        if _is_estimator(item):
            yield from _walk(item, sub, seen, fitted, kind)
