"""A stack of recurrent layers with a dense head, over one flat parameter vector.

All weights live in one contiguous vector ``theta`` (and the gradient in ``grad``),
with named views for the layers. The optimizers then update everything with a few
vectorised operations, clipping by global norm is one norm, and a snapshot of the
best weights is one copy.
"""

import numpy as np

from skrnn.nn._cells import GRULayer, LSTMLayer, SimpleRNNLayer
from skrnn.nn._engine import get_engine
from skrnn.nn._losses import loss_and_grad, predict_from_raw
from skrnn.nn._threads import engine_call
from skrnn.nn._workspace import Workspace

CELLS = {"rnn": SimpleRNNLayer, "lstm": LSTMLayer, "gru": GRULayer}


class RecurrentNetwork:
    """Stacked recurrent layers and a dense head on the last step or on every step.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    n_features : int
        Features per time step of the input.
    units : tuple of int
        Hidden units of each stacked layer.
    n_outputs : int
    head : {"last", "sequence"}
        Dense head on the last step only, or on every step.
    dtype : numpy dtype
    cell_kwargs : dict
        ``activation`` (SimpleRNN), ``peephole`` (LSTM) or ``reset_after`` (GRU).
    """

    def __init__(self, cell, n_features, units, n_outputs, *, head="last",
                 dtype=np.float64, cell_kwargs=None):
        self.cell = cell
        self.n_features = int(n_features)
        self.units = tuple(int(u) for u in units)
        self.n_outputs = int(n_outputs)
        self.head = head
        self.dtype = np.dtype(dtype)
        self.cell_kwargs = dict(cell_kwargs or {})
        self._build()
        self.theta = np.zeros(self.size, dtype=self.dtype)
        self.grad = np.zeros(self.size, dtype=self.dtype)
        self._bind()

    # -- structure ---------------------------------------------------------------

    def _build(self):
        n_in = self.n_features
        self.layers = []
        for H in self.units:
            self.layers.append(CELLS[self.cell](n_in, H, **self.cell_kwargs))
            n_in = H
        self.spec = []  # (owner, name, shape, offset)
        offset = 0
        for k, layer in enumerate(self.layers):
            for name, shape in layer.param_shapes().items():
                self.spec.append((k, name, shape, offset))
                offset += int(np.prod(shape))
        for name, shape in (("W", (n_in, self.n_outputs)), ("b", (self.n_outputs,))):
            self.spec.append(("head", name, shape, offset))
            offset += int(np.prod(shape))
        self.size = offset
        self.decay_mask = np.zeros(self.size, dtype=bool)
        for owner, name, shape, off in self.spec:
            decayed = name == "W" if owner == "head" else name in self.layers[owner].decayed
            if decayed:
                self.decay_mask[off : off + int(np.prod(shape))] = True

    def _views(self, flat):
        layer_views = [dict() for _ in self.layers]
        head = {}
        for owner, name, shape, off in self.spec:
            view = flat[off : off + int(np.prod(shape))].reshape(shape)
            (head if owner == "head" else layer_views[owner])[name] = view
        return layer_views, head

    def _bind(self):
        self.params, self.head_params = self._views(self.theta)
        self.grads, self.head_grads = self._views(self.grad)

    def __getstate__(self):
        # the views alias theta/grad; pickle only the owning vector and rebuild them
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("params", "head_params", "grads", "head_grads", "grad")}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.grad = np.zeros(self.size, dtype=self.dtype)
        self._bind()

    def copy(self):
        new = object.__new__(type(self))
        new.__setstate__({**self.__getstate__(), "theta": self.theta.copy()})
        return new

    # -- initialisation ------------------------------------------------------------

    def initialize(self, rng, y_mean=None, loss="squared_error"):
        """Glorot-uniform input and head weights, orthogonal recurrent weights.

        Biases start at zero, except the LSTM forget gate (1, as in Keras and the
        Jozefowicz et al. recommendation) and the head bias, which starts at the
        mean target (through the inverse link for Poisson) so that training does not
        spend its first epochs learning the level of the series.
        """
        dt = self.dtype
        for layer, p in zip(self.layers, self.params):
            F, H, G = layer.n_inputs, layer.units, layer.n_gates
            lim = np.sqrt(6.0 / (F + G * H))
            p["W_ih"][...] = rng.uniform(-lim, lim, size=(F, G * H)).astype(dt)
            for gate in range(G):
                p["W_hh"][:, gate * H : (gate + 1) * H] = _orthogonal(rng, H).astype(dt)
            p["b"][...] = 0
            if self.cell == "lstm":
                p["b"][H : 2 * H] = 1.0
            for name in ("b_hn", "w_peep"):
                if name in p:
                    p[name][...] = 0
        H = self.units[-1]
        lim = np.sqrt(6.0 / (H + self.n_outputs))
        self.head_params["W"][...] = rng.uniform(-lim, lim, size=(H, self.n_outputs)).astype(dt)
        self.head_params["b"][...] = 0
        if y_mean is not None:
            y_mean = np.asarray(y_mean, dtype=np.float64)
            if loss == "poisson":
                y_mean = np.log(np.maximum(y_mean, 1e-8))
            self.head_params["b"][...] = y_mean.astype(dt)

    # -- forward / backward ----------------------------------------------------------

    def engine_context(self, B):
        """Context of engine calls on batches of ``B`` sequences (see ``_threads``).

        BLAS runs single-threaded inside it: the compiled loops parallelise over the
        batch themselves. The NumPy engine keeps BLAS threads only for per-step
        products big enough to gain from them (at least 256 sequences times a
        128 x 512 weight matrix); below that, one thread is faster. Re-entrant: the
        outermost context decides (a fit holds one around its pass over the batches,
        sized by its batch size, and the calls inside it find it set).
        """
        if get_engine() == "numpy":
            widest = max(layer.n_gates * layer.units * layer.units for layer in self.layers)
            return engine_call(single_blas=B * widest < 256 * 4 * 128 * 128)
        return engine_call()

    def forward(self, X, masks=None, store=True, ws=None):
        """Raw head output for time-major ``X`` of shape ``(T, B, F)``.

        Returns ``Z`` — ``(B, n_outputs)`` for the last-step head, ``(B, T,
        n_outputs)`` for the sequence head — and the caches for ``backward``. With a
        ``Workspace`` (``_workspace.py``), the caches live in its buffers and are
        valid until the next call with the same workspace.
        """
        with self.engine_context(X.shape[1]):
            return self._forward(X, masks, store, ws)

    def _forward(self, X, masks=None, store=True, ws=None):
        caches = []
        h = X
        last = len(self.layers) - 1
        for k, (layer, p) in enumerate(zip(self.layers, self.params)):
            in_mask, rec_mask = masks[k] if masks is not None else (None, None)
            if in_mask is not None:
                h = h * in_mask
            # without store, the top layer under a last-step head may keep only its
            # last state (the compiled loops then hold two steps instead of all)
            seq = store or k < last or self.head != "last"
            h, cache = layer.forward(h, p, mask=rec_mask, store=store, seq=seq, ws=ws)
            caches.append(cache)
        W, b = self.head_params["W"], self.head_params["b"]
        if self.head == "last":
            top = h[-1]
            Z = top @ W
        else:
            T, B, H = h.shape
            top = h
            Z = (h.reshape(T * B, H) @ W).reshape(T, B, -1).transpose(1, 0, 2)
        Z += b
        return Z, (caches, top)

    def backward(self, dZ, state, masks=None, ws=None, need_dX=False):
        """Fill ``self.grad`` with the gradient of the loss whose ``dLoss/dZ`` is given.

        With ``need_dX``, also return the gradient with respect to the network's
        input ``X`` (time-major, ``(T, B, F)``), which the first layer otherwise skips.
        """
        caches, top = state
        W = self.head_params["W"]
        hg = self.head_grads
        T, B = caches[-1]["X"].shape[:2]
        H = self.units[-1]
        dH, dh_last = None, None
        if self.head == "last":
            np.matmul(top.T, dZ, out=hg["W"])
            np.sum(dZ, axis=0, out=hg["b"])
            dh_last = dZ @ W.T
        else:
            dZt = np.ascontiguousarray(dZ.transpose(1, 0, 2)).reshape(T * B, -1)
            np.matmul(top.reshape(T * B, H).T, dZt, out=hg["W"])
            np.sum(dZt, axis=0, out=hg["b"])
            dH = (dZt @ W.T).reshape(T, B, H)
        for k in range(len(self.layers) - 1, -1, -1):
            dX = self.layers[k].backward(dH, caches[k], self.grads[k], dh_last=dh_last,
                                         need_dX=k > 0 or need_dX, ws=ws)
            dh_last = None
            in_mask = masks[k][0] if masks is not None else None
            if in_mask is not None and dX is not None:
                dX *= in_mask
            dH = dX
        return dH

    def loss_and_gradient(self, X, y, sw, *, loss, output_activation, alpha=0.0,
                          huber_delta=1.0, masks=None, ws=None, quantiles=None):
        """Penalised loss of one batch; leaves its gradient in ``self.grad``.

        The L2 penalty ``alpha / 2 * ||W||^2`` is divided by the batch's total
        weight, as MLPRegressor divides it by the batch size. ``ws``: a
        ``Workspace`` whose buffers the batch's activations reuse (one per fit).
        ``quantiles``: the levels of ``loss="quantile"``.
        """
        with self.engine_context(X.shape[1]):
            Z, state = self._forward(X, masks=masks, store=True, ws=ws)
            value, dZ = loss_and_grad(Z, y, sw, loss, output_activation, huber_delta,
                                      quantiles)
            self.backward(dZ.astype(self.dtype, copy=False), state, masks=masks, ws=ws)
        if alpha:
            n = len(Z) if sw is None else sw.sum()
            if n > 0:
                decayed = self.theta * self.decay_mask
                value += 0.5 * alpha * float(decayed @ decayed) / n
                self.grad += (alpha / n) * decayed
        return float(value)

    def predict(self, X, *, loss, output_activation, chunk=512):
        """Predictions for time-major ``X``; stores no activations.

        Long batches go through in chunks of ``chunk`` sequences (NumPy engine) so
        that the per-step working set stays in cache instead of streaming through
        memory. The compiled loops work on blocks of a batch and keep only the
        current step of the top layer, so they take chunks as large as keep the
        output sequences of lower layers (and the top layer's states) at about 16 MB.
        """
        T, B = X.shape[0], X.shape[1]
        if get_engine() == "compiled":
            budget = 1 << 22  # elements
            lower = max(self.units[:-1], default=0)
            chunk = max(chunk, min(budget // max(1, T * lower) if lower else budget,
                                   budget // self.units[-1]))
        ws = Workspace()  # the chunks reuse one set of state buffers
        with self.engine_context(min(B, chunk)):
            Z = np.concatenate(
                [self._forward(X[:, s : s + chunk], store=False, ws=ws)[0]
                 for s in range(0, B, chunk)]
            ) if B > chunk else self._forward(
                # lazily gathered windows (skrnn/windows.py) become an array here
                X if isinstance(X, np.ndarray) else X[:, :], store=False, ws=ws)[0]
        return predict_from_raw(Z, loss, output_activation)

    def input_gradient(self, X, seed):
        """Gradient of ``sum(seed(Z) * Z)`` with respect to time-major ``X``.

        ``seed`` maps the raw head output ``Z`` to ``dOut/dZ`` (same shape); the
        result, ``(T, B, F)``, is exact (the same backward pass as training, run down
        to the input). Leaves the weight gradient of that output in ``self.grad``.
        """
        with self.engine_context(X.shape[1]):
            Z, state = self._forward(X, store=True)
            dZ = np.asarray(seed(Z), dtype=self.dtype)
            return self.backward(dZ, state, need_dX=True)

    def states(self, X):
        """Per-layer hidden states (and cell states, gates) for time-major ``X``."""
        with self.engine_context(X.shape[1]):
            return self._states(X)

    def _states(self, X):
        out = []
        h = X
        for layer, p in zip(self.layers, self.params):
            seq, cache = layer.forward(h, p, store=True)
            H = layer.units
            entry = {"h": seq.transpose(1, 0, 2).copy()}
            if self.cell == "lstm":
                G = cache["G"]
                entry["c"] = cache["C"][1:].transpose(1, 0, 2).copy()
                names = ("input_gate", "forget_gate", "output_gate", "candidate")
                for j, name in enumerate(names):
                    entry[name] = G[..., j * H : (j + 1) * H].transpose(1, 0, 2).copy()
            elif self.cell == "gru":
                G = cache["G"]
                for j, name in enumerate(("reset_gate", "update_gate", "candidate")):
                    entry[name] = G[..., j * H : (j + 1) * H].transpose(1, 0, 2).copy()
            out.append(entry)
            h = seq
        return out


def _orthogonal(rng, n):
    a = rng.standard_normal((n, n))
    q, r = np.linalg.qr(a)
    # sign fix so the draw is uniform over orthogonal matrices (Mezzadri 2007)
    return q * np.sign(np.diag(r))
