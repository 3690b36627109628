"""Quantile heads: one head output per target and level, their pinball loss's levels,
the median ``predict`` reads off them and the sorted quantiles ``predict_quantiles``
returns (``loss="quantile"``)."""

import numpy as np

from skrnn.windows import map_row_blocks


def check_levels(levels, name):
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




def point_weights(levels):
    """Weights over the sorted ``levels`` that give ``predict``'s value.

    The 0.5 level when fitted; else linear interpolation in the level between the
    two fitted levels around 0.5, or the nearest level when all lie on one side.
    """
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


class _QuantileHeadMixin:
    """The quantile-head side of :class:`~skrnn.recurrent.BaseRecurrentRegressor`."""

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
            levels = check_levels(self.quantiles, "quantiles")
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
        """:func:`point_weights` of the fitted levels."""
        return point_weights(self._levels())

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
        # windows as views are gathered a block of rows at a time (map_row_blocks)
        pred = map_row_blocks(lambda block, rows: self._net.predict(
            np.ascontiguousarray(block.transpose(1, 0, 2)), loss=self.loss,
            output_activation=self.output_activation,
        ), X3).astype(np.float64, copy=False)
        if self._y_ndim == 3:
            pred = pred[:, -1, :]
        out = self._sorted_levels(pred)[..., cols]
        return np.ascontiguousarray(out[:, 0] if self._y_ndim == 1 else out)

