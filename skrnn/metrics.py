"""Forecast skill relative to a naive forecast."""

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, root_mean_squared_error
from sklearn.utils.validation import check_array, check_consistent_length

__all__ = ["skill_score"]

_METRICS = {
    "mae": mean_absolute_error,
    "mse": mean_squared_error,
    "rmse": root_mean_squared_error,
}


def skill_score(y_true, y_pred, y_naive, *, metric="mae", multioutput="uniform_average"):
    """Skill of a forecast over a naive one: ``1 - error(model) / error(naive)``.

    Both errors are taken on the same rows, so pass the naive forecast for exactly the rows
    of ``y_pred`` (e.g. :class:`~skrnn.LastValueRegressor` on the same lag matrix). A score
    of 1 is a perfect forecast, 0 is no better than the naive one, negative is worse. With
    ``metric="mse"`` and the last-value forecast this is the usual "skill score"; with
    ``"mae"`` it equals ``1 - MASE`` computed on the evaluation rows.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Observed values.
    y_pred : array-like, same shape as ``y_true``
        Forecasts of the model.
    y_naive : array-like, same shape as ``y_true``
        Naive forecasts for the same rows.
    metric : {"mae", "mse", "rmse"} or callable, default="mae"
        Error measure; a callable is called as ``metric(y_true, y_pred)`` and must return a
        non-negative float (``multioutput`` is then ignored).
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        With several outputs (forecast steps): one score on the averaged errors, or one
        score per output.

    Returns
    -------
    score : float or ndarray of shape (n_outputs,)
        Skill score(s).

    Raises
    ------
    ValueError
        If the shapes differ, an input has NaN/inf, or the naive error is 0 (the skill of
        any forecast against a perfect naive forecast is undefined).

    Examples
    --------
    >>> from skrnn import skill_score
    >>> skill_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], [0.0, 1.0, 2.0])
    0.6666666666666667
    """
    arrays = []
    for name, a in (("y_true", y_true), ("y_pred", y_pred), ("y_naive", y_naive)):
        arrays.append(check_array(a, ensure_2d=False, dtype=np.float64, input_name=name))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            "y_true, y_pred and y_naive must have the same shape (the same rows), got "
            f"{arrays[0].shape}, {arrays[1].shape} and {arrays[2].shape}."
        )
    check_consistent_length(*arrays)
    y_true, y_pred, y_naive = arrays
    if callable(metric):
        err_model, err_naive = float(metric(y_true, y_pred)), float(metric(y_true, y_naive))
    elif metric in _METRICS:
        if multioutput not in ("uniform_average", "raw_values"):
            raise ValueError(
                "multioutput must be 'uniform_average' or 'raw_values', got "
                f"{multioutput!r}."
            )
        fn = _METRICS[metric]
        err_model = np.asarray(fn(y_true, y_pred, multioutput=multioutput), dtype=np.float64)
        err_naive = np.asarray(fn(y_true, y_naive, multioutput=multioutput), dtype=np.float64)
    else:
        raise ValueError(
            f"metric must be one of {sorted(_METRICS)} or a callable, got {metric!r}."
        )
    if np.any(np.asarray(err_naive) == 0):
        raise ValueError(
            "The naive forecast has zero error on these rows (y_naive == y_true), so the "
            "skill score is undefined; evaluate on more rows or a different naive forecast."
        )
    score = 1.0 - np.asarray(err_model) / np.asarray(err_naive)
    return float(score) if np.ndim(score) == 0 else score
