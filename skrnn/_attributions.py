"""Input attributions: exact gradients of ``predict`` with respect to every time step
and step feature, and integrated gradients over them (``input_gradients``)."""

from numbers import Integral

import numpy as np

from skrnn.nn._losses import predict_from_raw
from skrnn.windows import map_row_blocks


class _AttributionsMixin:
    """``input_gradients`` of :class:`~skrnn.recurrent.BaseRecurrentRegressor`."""

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
        base = None
        if method == "integrated" and baseline is not None:
            base = np.asarray(baseline, dtype=X3.dtype)
            target = (len(X3),) + layout
            try:
                # a view: one sample's baseline is not copied to every row
                B3 = np.broadcast_to(base, target).reshape(X3.shape)
            except ValueError:
                raise ValueError(
                    f"baseline must have the shape of X, {target}, or of one "
                    f"sample, {layout}; got {base.shape}."
                ) from None
            if not np.all(np.isfinite(base)):
                raise ValueError("baseline contains NaN or infinite values.")
            base = B3

        def block_gradients(Xb, rows):
            if method == "gradient":
                return self._input_gradients(Xb)
            Bb = np.zeros_like(Xb) if base is None else np.asarray(base[rows])
            nodes, weights = np.polynomial.legendre.leggauss(n_steps)
            nodes, weights = (nodes + 1) / 2, weights / 2  # on [0, 1], summing to 1
            delta = Xb - Bb
            grads = 0.0
            for a, w in zip(nodes, weights):
                grads = grads + w * self._input_gradients(Bb + a * delta)
            return grads * delta[:, None]

        # windows as views are gathered a block of rows at a time (map_row_blocks),
        # and the attributions of a block are all computed before the next one
        grads = map_row_blocks(block_gradients, X3)
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

