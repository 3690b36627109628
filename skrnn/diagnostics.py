"""Diagnostics of a fitted forecaster: residual checks and impulse responses.

Residual checks run on a time-ordered holdout (one series, oldest first): Ljung-Box tests
whether the residuals are still autocorrelated (structure left for the model to learn), the
Chow test whether their level or trend breaks at some point (the model went stale). The
impulse response feeds a single spike through a recurrent regressor and records how its
hidden states react, step by step. Plots of all three live in :mod:`skrnn.plotting`.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils import Bunch

__all__ = ["ljung_box", "chow_test", "residual_diagnostics", "impulse_response"]


def _as_1d(values, name):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one series of shape (n_samples,), got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name} has {int((~np.isfinite(arr)).sum())} NaN/inf value(s); drop those rows."
        )
    return arr


def ljung_box(residuals, lags=10, *, model_df=0):
    """Ljung-Box test of residual autocorrelation, for every lag up to ``lags``.

    ``Q(m) = n (n + 2) sum_{k=1..m} r_k^2 / (n - k)``, with ``r_k`` the sample
    autocorrelation at lag ``k``, compared with a chi-squared distribution with
    ``m - model_df`` degrees of freedom. A small p-value means the residuals are still
    autocorrelated. Matches ``statsmodels.stats.diagnostic.acorr_ljungbox``.

    Parameters
    ----------
    residuals : array-like of shape (n_samples,)
        Residuals in time order.
    lags : int, default=10
        Largest lag tested.
    model_df : int, default=0
        Degrees of freedom used by the model (e.g. ``p + q`` of an ARMA); subtracted from
        each test's degrees of freedom. Lags with no degree left get a NaN p-value.

    Returns
    -------
    result : DataFrame of shape (lags, 3)
        Index ``lag`` (1..lags); columns ``acf``, ``lb_stat`` and ``lb_pvalue``.
    """
    e = _as_1d(residuals, "residuals")
    n = e.shape[0]
    if not isinstance(lags, Integral) or not 1 <= lags < n:
        raise ValueError(f"lags must be an int in [1, {n - 1}] for {n} residuals, got {lags!r}.")
    e = e - e.mean()
    denom = float(e @ e)
    if denom == 0.0:
        raise ValueError("residuals are constant: their autocorrelation is undefined.")
    k = np.arange(1, lags + 1)
    acf = np.array([e[j:] @ e[:-j] for j in k]) / denom
    q = n * (n + 2) * np.cumsum(acf**2 / (n - k))
    df = k - model_df
    pvalue = np.full(lags, np.nan)
    pvalue[df > 0] = stats.chi2.sf(q[df > 0], df[df > 0])
    return pd.DataFrame({"acf": acf, "lb_stat": q, "lb_pvalue": pvalue},
                        index=pd.Index(k, name="lag"))


def _rss(X, y):
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ coef
    return float(r @ r)


def chow_test(y, X=None, *, candidates=None, min_size=None, alpha=0.05):
    """Chow structural-break test of a regression, at every candidate break point.

    At break point ``b`` the regression of ``y`` on ``X`` is fitted on rows ``[0, b)``,
    on ``[b, n)`` and on all rows, and ::

        F = ((RSS_all - RSS_1 - RSS_2) / k) / ((RSS_1 + RSS_2) / (n - 2k))

    is compared with the ``1 - alpha`` quantile of ``F(k, n - 2k)``. On residuals the
    default design ``[1, t]`` tests for a shift in their level or trend.

    Note that the critical value holds for one break point fixed in advance; scanning many
    points and taking the largest F (a sup-F test) rejects more often than ``alpha``. Read
    the scan as a picture of where the fit changes, as in the teaching material.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Response in time order, typically residuals on a holdout.
    X : array-like of shape (n_samples, k), default=None
        Design matrix (include a constant column yourself). None: ``[1, t]``.
    candidates : array-like of int, default=None
        Break positions ``b`` to test (row ``b`` is the first after the break). None: every
        position leaving at least ``min_size`` rows on each side.
    min_size : int, default=None
        Smallest segment; None: ``max(k + 1, 15% of n)``.
    alpha : float, default=0.05
        Level of the critical value.

    Returns
    -------
    result : DataFrame
        One row per candidate with columns ``break_at`` (position), ``label`` (the index
        label of ``y`` at that position when ``y`` is a Series), ``F``, ``critical_value``,
        ``p_value`` and ``reject``.
    """
    labels = y.index if isinstance(y, pd.Series) else None
    y = _as_1d(y, "y")
    n = y.shape[0]
    if X is None:
        X = np.column_stack([np.ones(n), np.arange(n, dtype=np.float64)])
    else:
        X = np.asarray(X, dtype=np.float64)
        X = X[:, None] if X.ndim == 1 else X
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"X must have shape ({n}, k) like y, got {X.shape}.")
    k = X.shape[1]
    if not isinstance(alpha, Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    if min_size is None:
        min_size = max(k + 1, int(np.ceil(0.15 * n)))
    if n - 2 * k < 1 or n < 2 * min_size:
        raise ValueError(
            f"chow_test needs at least 2 * min_size = {2 * min_size} rows and more than "
            f"2k = {2 * k} rows; y has n_samples={n}."
        )
    if candidates is None:
        candidates = np.arange(min_size, n - min_size + 1)
    else:
        candidates = np.asarray(candidates)
        if (not np.issubdtype(candidates.dtype, np.integer) or (candidates < k + 1).any()
                or (candidates > n - k - 1).any()):
            raise ValueError(
                f"candidates must be int positions in [{k + 1}, {n - k - 1}] (k+1 rows on "
                f"each side), got {candidates.tolist()}."
            )
    rss_all = _rss(X, y)
    f_stat = np.empty(candidates.shape[0])
    for i, b in enumerate(candidates):
        rss_split = _rss(X[:b], y[:b]) + _rss(X[b:], y[b:])
        num = max(rss_all - rss_split, 0.0) / k  # rounding can make it a hair negative
        den = rss_split / (n - 2 * k)
        f_stat[i] = num / den if den > 0 else (np.inf if num > 0 else 0.0)
    dfd = n - 2 * k
    crit = stats.f.ppf(1 - alpha, k, dfd)
    result = pd.DataFrame({
        "break_at": candidates,
        "label": (labels[candidates] if labels is not None else candidates),
        "F": f_stat,
        "critical_value": crit,
        "p_value": stats.f.sf(f_stat, k, dfd),
        "reject": f_stat > crit,
    })
    return result


def residual_diagnostics(y_true, y_pred, *, lags=10, alpha=0.05, min_size=None):
    """Ljung-Box and Chow diagnostics of forecast residuals on a time-ordered holdout.

    For a panel, call it per series (or on residuals averaged per date).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed values, oldest first.
    y_pred : array-like of shape (n_samples,)
        Forecasts for the same rows.
    lags : int, default=10
        Largest Ljung-Box lag (reduced to ``n_samples - 1`` if needed).
    alpha : float, default=0.05
        Level of the tests.
    min_size : int, default=None
        Smallest segment of the Chow scan (see :func:`chow_test`).

    Returns
    -------
    result : Bunch
        ``residuals`` (Series, ``y_true - y_pred`` keeping the index of ``y_true``),
        ``ljung_box`` and ``chow`` (DataFrames as returned by :func:`ljung_box` and
        :func:`chow_test`), ``autocorrelated`` (Ljung-Box p-value at ``lags`` below
        ``alpha``) and ``break_at`` (label of the largest significant Chow F, or None).
    """
    index = y_true.index if isinstance(y_true, pd.Series) else None
    t, p = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {t.shape} and {p.shape}."
        )
    resid = pd.Series(t - p, index=index, name="residual")
    lb = ljung_box(resid.to_numpy(), lags=min(lags, t.shape[0] - 1))
    chow = chow_test(resid, alpha=alpha, min_size=min_size)
    significant = chow[chow["reject"]]
    break_at = None
    if len(significant):
        break_at = significant.loc[significant["F"].idxmax(), "label"]
    return Bunch(
        residuals=resid,
        ljung_box=lb,
        chow=chow,
        autocorrelated=bool(lb["lb_pvalue"].iloc[-1] < alpha),
        break_at=break_at,
    )


def _flatten_states(states, prefix=""):
    """Nested dicts/lists of arrays from ``get_states`` -> {"layer/key": ndarray}."""
    out = {}
    if isinstance(states, dict):
        items = states.items()
    elif isinstance(states, (list, tuple)):
        items = ((f"layer{i}", s) for i, s in enumerate(states))
    else:
        return {prefix or "state": np.asarray(states)}
    for key, value in items:
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, (dict, list, tuple)):
            out.update(_flatten_states(value, name))
        else:
            out[name] = np.asarray(value)
    return out


def impulse_response(estimator, n_steps=None, spike_at=0, magnitude=1.0, *,
                     n_step_features=None, feature=0, baseline=0.0):
    """Feed one spike through a recurrent regressor and record its states.

    Builds two input sequences of ``n_steps`` steps -- constant ``baseline``, and the same
    with ``baseline + magnitude`` at step ``spike_at`` of feature ``feature`` -- calls
    ``estimator.get_states`` on both and returns the states and their difference, the
    response to the spike. Works with any object whose ``get_states(X)`` returns a dict (or
    nested dicts/lists) of arrays shaped ``(n_samples, timesteps, ...)``.

    Parameters
    ----------
    estimator : object
        Fitted regressor with a ``get_states(X)`` method (e.g. ``skrnn.LSTMRegressor``).
    n_steps : int, default=None
        Sequence length; None uses the estimator's ``n_timesteps_``, else
        ``n_features_in_ // n_step_features``.
    spike_at : int, default=0
        Step of the spike (0 is the oldest step).
    magnitude : float, default=1.0
        Height of the spike above the baseline.
    n_step_features : int, default=None
        Features per step; None reads ``estimator.n_step_features_`` or
        ``estimator.n_step_features`` (else 1).
    feature : int, default=0
        Feature that carries the spike.
    baseline : float, default=0.0
        Value of every other input.

    Returns
    -------
    result : Bunch
        ``X`` (the spiked input, shape ``(1, n_steps * n_step_features)``), ``X_baseline``,
        ``states`` and ``baseline_states`` (dicts ``name -> array`` of sample 0, with nested
        names flattened to ``"layer/key"``), ``response`` (``states - baseline_states`` for
        every name), ``n_steps``, ``spike_at`` and, when the estimator can ``predict``,
        ``prediction`` and ``baseline_prediction``.
    """
    if not callable(getattr(estimator, "get_states", None)):
        raise TypeError(
            f"estimator must have a get_states(X) method, got {type(estimator).__name__}."
        )
    F = n_step_features
    if F is None:  # the fitted value first: the parameter may be None ("infer")
        F = (getattr(estimator, "n_step_features_", None)
             or getattr(estimator, "n_step_features", None) or 1)
    if not isinstance(F, Integral) or F < 1:
        raise ValueError(f"n_step_features must be an int >= 1, got {F!r}.")
    if n_steps is None:
        n_steps = getattr(estimator, "n_timesteps_", None)
        n_in = getattr(estimator, "n_features_in_", None)
        if n_steps is None and n_in is None:
            raise ValueError(
                "n_steps is None and the estimator has neither n_timesteps_ nor "
                "n_features_in_; pass n_steps."
            )
        n_steps = int(n_steps) if n_steps is not None else int(n_in) // F
    if not isinstance(n_steps, Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}.")
    if not isinstance(spike_at, Integral) or not 0 <= spike_at < n_steps:
        raise ValueError(f"spike_at must be an int in [0, {n_steps - 1}], got {spike_at!r}.")
    if not isinstance(feature, Integral) or not 0 <= feature < F:
        raise ValueError(f"feature must be an int in [0, {F - 1}], got {feature!r}.")

    base = np.full((1, n_steps * F), float(baseline))
    spiked = base.copy()
    spiked[0, spike_at * F + feature] += float(magnitude)

    def states_of(X):
        flat = _flatten_states(estimator.get_states(X))
        # Keep sample 0 of every array that has a sample axis.
        return {k: (v[0] if v.ndim >= 1 and v.shape[0] == 1 else v) for k, v in flat.items()}

    states, base_states = states_of(spiked), states_of(base)
    response = {}
    for name, value in states.items():
        other = base_states.get(name)
        if other is not None and np.shape(other) == np.shape(value):
            response[name] = np.asarray(value, dtype=np.float64) - np.asarray(other, np.float64)
    result = Bunch(X=spiked, X_baseline=base, states=states, baseline_states=base_states,
                   response=response, n_steps=n_steps, spike_at=spike_at)
    if callable(getattr(estimator, "predict", None)):
        result.prediction = np.asarray(estimator.predict(spiked))[0]
        result.baseline_prediction = np.asarray(estimator.predict(base))[0]
    return result
