"""Recurrent layers: forward over a whole batch of sequences and exact BPTT.

Arrays are time-major inside the engine: a layer input is ``(T, B, F)`` and its
output sequence ``(T, B, H)``, so that the per-step slice ``x[t]`` is contiguous.

Python work per time step is one recurrent matrix product plus a few fused
element-wise NumPy calls; everything that does not depend on the previous step is
done for all steps at once:

* the input projection of all steps is one product ``X @ W_ih`` before the loop;
* the loop overwrites the pre-activations with the activated gates;
* the backward pass first computes the gate derivatives of all steps in a few large
  operations, and its loop only chains them;
* the gate-gradients of every step land in one buffer, and the weight gradients are
  single products over all steps (``X.T @ dA`` and ``H_prev.T @ dA``).

Sigmoids are computed as ``0.5 * tanh(a / 2) + 0.5``: the ``1/2`` is folded into a
copy of the weights of the sigmoid gates (a power-of-two scale, so exact), which
lets one ``tanh`` call activate all gates of a step. NumPy's ``tanh`` is also several
times faster than ``scipy.special.expit``.

Weight layout (internal): ``W_ih`` is ``(F, G*H)``, ``W_hh`` is ``(H, G*H)``, gate
blocks ordered so the sigmoid gates are contiguous: LSTM ``i, f, o, g``, GRU
``r, z, n``. ``TORCH_ORDER`` maps them to PyTorch's order at the export boundary.

Recurrent dropout multiplies the previous hidden state by one mask per sequence
before it enters the recurrent product (the Gal & Ghahramani / Keras form); the
state itself, and the GRU's direct ``z * h_prev`` path, are not masked.

Two engines run the layers: the NumPy code below is the reference; the compiled
loops replace it when built. Which one runs, its threads and the calls into the
compiled module belong to ``_engine.py``.
"""

import numpy as np

from skrnn.nn import _engine
from skrnn.nn._engine import (  # noqa: F401 - the engine switch, long imported from here
    Cell,
    compiled_available,
    engine,
    get_engine,
    runs_compiled,
    set_engine,
)
from skrnn.nn._workspace import empty


def _fast(X, p):
    """Whether this call runs the compiled loops (see ``_engine.runs_compiled``)."""
    return runs_compiled(X, p["W_hh"])


def _c(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` (None stays None)."""
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def _states0(n, B, H, dtype, ws=None, key=None):
    """State buffer of ``n`` steps whose first step (the initial state) is zero.

    The compiled loops write every later step, so the rest need not be zeroed.
    """
    out = empty(ws, key, (n, B, H), dtype)
    out[0] = 0
    return out


def _fast_states(T, B, H, dtype, ring, ws, layer):
    """``Hs`` for the compiled forward loop: every state ``(T + 1, B, H)`` with the
    initial one zeroed, or with ``ring`` only the last one ``(1, B, H)`` (the loops
    keep the steps before it in their own scratch)."""
    if ring:
        return empty(ws, (layer, "H"), (1, B, H), dtype)
    return _states0(T + 1, B, H, dtype, ws, (layer, "H"))


def _outputs(Hs, ring):
    """The output sequence ``Hs[1:]``; with a ring, only the last state."""
    return Hs if ring else Hs[1:]


def _wT(p, dX):
    """``W_ih.T``, contiguous, when the input gradient ``dX`` is wanted."""
    return None if dX is None else np.ascontiguousarray(p["W_ih"].T)


class _Layer:
    """Shared structure of the three recurrent layers.

    Subclasses define ``n_gates``, ``n_sigmoid`` (leading gate blocks that are
    sigmoids), ``forward`` and ``backward``. Parameters come as a dict of views into
    the network's flat parameter vector, gradients likewise.
    """

    n_gates = 1
    n_sigmoid = 0
    # names whose entries the L2 penalty applies to
    decayed = ("W_ih", "W_hh")

    def __init__(self, n_inputs, units):
        self.n_inputs = n_inputs
        self.units = units

    def param_shapes(self):
        F, H, G = self.n_inputs, self.units, self.n_gates
        return {"W_ih": (F, G * H), "W_hh": (H, G * H), "b": (G * H,)}

    def _scaled(self, p):
        """``W_ih``, ``W_hh`` and ``b`` with the sigmoid-gate columns halved."""
        k = self.n_sigmoid * self.units
        if k == 0:
            return p["W_ih"], p["W_hh"], p["b"]
        out = []
        for name in ("W_ih", "W_hh", "b"):
            w = p[name].copy()
            w[..., :k] *= 0.5
            out.append(w)
        return out

    def _project_inputs(self, X, W_ih, b):
        T, B, F = X.shape
        if F == 1:  # an outer product: BLAS is several times slower than broadcasting
            A = np.multiply(X.reshape(T * B, 1), W_ih)
        else:
            A = X.reshape(T * B, F) @ W_ih
        A += b
        return A.reshape(T, B, -1)

    def _activate(self, a):
        """tanh over all gates, then turn the sigmoid block's tanh(a/2) into sigmoid(a)."""
        np.tanh(a, out=a)
        s = a[:, : self.n_sigmoid * self.units]
        s *= 0.5
        s += 0.5

    def _input_grads(self, cache, dA, g, dA_rest=None, need_dX=True):
        """Gradients of ``W_ih``, ``b`` and the layer input: products over all steps.

        ``dA_rest``, when given, replaces the last gate block of ``dA`` (the GRU keeps
        the input-side gradient of its ``n`` gate apart). Without ``need_dX`` (the
        first layer: nothing needs the gradient of the data) the input gradient is
        not computed and None is returned.
        """
        X, W_ih = cache["X"], cache["p"]["W_ih"]
        T, B, F = X.shape
        X2 = X.reshape(T * B, F)
        dA2 = dA.reshape(T * B, -1)
        if dA_rest is None:
            np.matmul(X2.T, dA2, out=g["W_ih"])
            np.sum(dA2, axis=0, out=g["b"])
            return (dA2 @ W_ih.T).reshape(T, B, F) if need_dX else None
        k = dA2.shape[1] - dA_rest.shape[-1]
        R2 = dA_rest.reshape(T * B, -1)
        np.matmul(X2.T, dA2[:, :k], out=g["W_ih"][:, :k])
        np.matmul(X2.T, R2, out=g["W_ih"][:, k:])
        np.sum(dA2[:, :k], axis=0, out=g["b"][:k])
        np.sum(R2, axis=0, out=g["b"][k:])
        if not need_dX:
            return None
        dX = dA2[:, :k] @ W_ih[:, :k].T
        dX += R2 @ W_ih[:, k:].T
        return dX.reshape(T, B, F)

    @staticmethod
    def _recurrent_grad(Hs, mask, dA, out):
        """``W_hh`` gradient: one product of the (masked) previous states and ``dA``."""
        T, B, H = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
        H_prev = Hs[:-1] if mask is None else Hs[:-1] * mask
        np.matmul(H_prev.reshape(T * B, H).T, dA.reshape(T * B, -1), out=out)

    @staticmethod
    def _seed(dH_out, dh_last, t, T):
        """Gradient reaching step ``t``'s output from above (head or next layer)."""
        if dH_out is not None:
            return dH_out[t]
        return dh_last if t == T - 1 else None


class SimpleRNNLayer(_Layer):
    """Elman RNN: ``h_t = act(x_t W_ih + h_{t-1} W_hh + b)``."""

    TORCH_ORDER = (0,)

    def __init__(self, n_inputs, units, activation="tanh"):
        super().__init__(n_inputs, units)
        self.activation = activation

    def forward(self, X, p, mask=None, store=True, seq=True, ws=None):
        T, B, F = X.shape
        H = self.units
        W_hh = p["W_hh"]
        if _fast(X, p):
            ring = not (store or seq)
            Hs = _fast_states(T, B, H, X.dtype, ring, ws, self)
            _engine.forward(Cell.RNN, T=T, B=B, F=F, H=H, X=_c(X, X.dtype), W_ih=p["W_ih"],
                            b=p["b"], W_hh=W_hh, Hs=Hs, mask=_c(mask, X.dtype),
                            relu=self.activation == "relu", store=store, ring=ring)
            cache = {"X": X, "H": Hs, "p": p, "mask": mask} if store else None
            return _outputs(Hs, ring), cache
        Hs = np.zeros((T + 1, B, H), dtype=X.dtype)
        A = self._project_inputs(X, p["W_ih"], p["b"])
        buf = np.empty((B, H), dtype=X.dtype)
        tanh = self.activation == "tanh"
        for t in range(T):
            h_prev = Hs[t] if mask is None else Hs[t] * mask
            a = A[t]
            np.matmul(h_prev, W_hh, out=buf)
            a += buf
            if tanh:
                np.tanh(a, out=Hs[t + 1])
            else:
                np.maximum(a, 0, out=Hs[t + 1])
        cache = {"X": X, "H": Hs, "p": p, "mask": mask} if store else None
        return Hs[1:], cache

    def backward(self, dH_out, cache, g, dh_last=None, need_dX=True, ws=None):
        Hs, p, mask = cache["H"], cache["p"], cache["mask"]
        T, B, H = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
        W_hhT = np.ascontiguousarray(p["W_hh"].T)
        if _fast(Hs, p):
            X, dt = cache["X"], Hs.dtype
            F = X.shape[2]
            dX = empty(ws, (self, "dX"), (T, B, F), dt) if need_dX else None
            _engine.backward(Cell.RNN, T=T, B=B, F=F, H=H, X=_c(X, dt), W_ihT=_wT(p, dX),
                             W_hhT=W_hhT, Hs=Hs, mask=_c(mask, dt), dH=_c(dH_out, dt),
                             dh_last=_c(dh_last, dt), dX=dX, grad_W_ih=g["W_ih"],
                             grad_W_hh=g["W_hh"], grad_b=g["b"],
                             relu=self.activation == "relu")
            return dX
        # activation derivative of every step, then chained backwards in place
        dA = Hs[1:] * Hs[1:] if self.activation == "tanh" else (Hs[1:] > 0).astype(Hs.dtype)
        if self.activation == "tanh":
            np.subtract(1.0, dA, out=dA)
        dh = np.zeros((B, H), dtype=Hs.dtype)
        for t in range(T - 1, -1, -1):
            seed = self._seed(dH_out, dh_last, t, T)
            if seed is not None:
                dh += seed
            d = dA[t]
            d *= dh
            np.matmul(d, W_hhT, out=dh)
            if mask is not None:
                dh *= mask
        self._recurrent_grad(Hs, mask, dA, g["W_hh"])
        return self._input_grads(cache, dA, g, need_dX=need_dX)


class LSTMLayer(_Layer):
    """LSTM (internal gate order ``i, f, o, g``), optionally with peepholes.

    Peephole connections (Gers & Schmidhuber) add ``w_ci * c_{t-1}`` to the input
    gate, ``w_cf * c_{t-1}`` to the forget gate and ``w_co * c_t`` to the output gate.
    """

    n_gates = 4
    n_sigmoid = 3
    TORCH_ORDER = (0, 1, 3, 2)  # internal block of each PyTorch gate i, f, g, o

    def __init__(self, n_inputs, units, peephole=False):
        super().__init__(n_inputs, units)
        self.peephole = peephole

    def param_shapes(self):
        shapes = super().param_shapes()
        if self.peephole:
            shapes["w_peep"] = (3, self.units)
        return shapes

    def forward(self, X, p, mask=None, store=True, seq=True, ws=None):
        T, B, F = X.shape
        H = self.units
        W_ih, W_hh, b = self._scaled(p)
        dt = X.dtype
        peep = p.get("w_peep")
        half_peep = None if peep is None else 0.5 * peep
        if _fast(X, p):
            # without store, gates, c and tanh(c) stay in the loops' scratch
            ring = not (store or seq)
            Hs = _fast_states(T, B, H, dt, ring, ws, self)
            Cs = _states0(T + 1, B, H, dt, ws, (self, "C")) if store else None
            TC = empty(ws, (self, "TC"), (T, B, H), dt) if store else None
            G = empty(ws, (self, "G"), (T, B, 4 * H), dt) if store else None
            _engine.forward(Cell.LSTM, T=T, B=B, F=F, H=H, X=_c(X, dt), W_ih=W_ih, b=b,
                            W_hh=W_hh, Hs=Hs, extra=half_peep, Cs=Cs, TC=TC, gates=G,
                            mask=_c(mask, dt), store=store, ring=ring)
            cache = (
                {"X": X, "H": Hs, "C": Cs, "TC": TC, "G": G, "p": p, "mask": mask}
                if store
                else None
            )
            return _outputs(Hs, ring), cache
        A = self._project_inputs(X, W_ih, b)  # becomes the activated gates in place
        Hs = np.zeros((T + 1, B, H), dtype=dt)
        Cs = np.zeros((T + 1, B, H), dtype=dt)
        TC = np.empty((T, B, H), dtype=dt) if store else np.empty((1, B, H), dtype=dt)
        buf = np.empty((B, 4 * H), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        for t in range(T):
            h_prev = Hs[t] if mask is None else Hs[t] * mask
            c_prev, c = Cs[t], Cs[t + 1]
            a = A[t]
            np.matmul(h_prev, W_hh, out=buf)
            a += buf
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            if peep is None:
                self._activate(a)
            else:
                # i and f see c_{t-1}; o sees c_t, so it is activated after c
                a[:, :H] += half_peep[0] * c_prev
                a[:, H : 2 * H] += half_peep[1] * c_prev
                np.tanh(a[:, : 2 * H], out=a[:, : 2 * H])
                a[:, : 2 * H] *= 0.5
                a[:, : 2 * H] += 0.5
                np.tanh(g, out=g)
            np.multiply(f, c_prev, out=c)
            np.multiply(i, g, out=tmp)
            c += tmp
            if peep is not None:
                o += half_peep[2] * c
                np.tanh(o, out=o)
                o *= 0.5
                o += 0.5
            tc = TC[t] if store else TC[0]
            np.tanh(c, out=tc)
            np.multiply(o, tc, out=Hs[t + 1])
        cache = (
            {"X": X, "H": Hs, "C": Cs, "TC": TC, "G": A, "p": p, "mask": mask}
            if store
            else None
        )
        return Hs[1:], cache

    def backward(self, dH_out, cache, g, dh_last=None, need_dX=True, ws=None):
        Hs, Cs, TC, G, p, mask = (cache[k] for k in ("H", "C", "TC", "G", "p", "mask"))
        T, B, H = TC.shape
        dt = TC.dtype
        W_hhT = np.ascontiguousarray(p["W_hh"].T)
        peep = p.get("w_peep")
        if _fast(TC, p):
            X = cache["X"]
            F = X.shape[2]
            dX = empty(ws, (self, "dX"), (T, B, F), dt) if need_dX else None
            _engine.backward(Cell.LSTM, T=T, B=B, F=F, H=H, X=_c(X, dt), W_ihT=_wT(p, dX),
                             W_hhT=W_hhT, Hs=Hs, extra=_c(peep, dt), Cs=Cs, TC=TC, gates=G,
                             mask=_c(mask, dt), dH=_c(dH_out, dt), dh_last=_c(dh_last, dt),
                             dX=dX, grad_W_ih=g["W_ih"], grad_W_hh=g["W_hh"], grad_b=g["b"],
                             grad_extra=g.get("w_peep"))
            return dX
        # derivatives of every step at once: s(1-s) for i, f, o; 1-g^2 for g
        DG = np.subtract(1.0, G, dtype=dt)
        DG[..., : 3 * H] *= G[..., : 3 * H]
        DG[..., 3 * H :] *= np.add(1.0, G[..., 3 * H :])
        # o * (1 - tanh(c)^2): how h reaches c
        OTC = np.multiply(TC, TC)
        np.subtract(1.0, OTC, out=OTC)
        OTC *= G[..., 2 * H : 3 * H]
        dA = np.empty((T, B, 4 * H), dtype=dt)
        dh = np.zeros((B, H), dtype=dt)
        dc = np.zeros((B, H), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        for t in range(T - 1, -1, -1):
            seed = self._seed(dH_out, dh_last, t, T)
            if seed is not None:
                dh += seed
            gt, d = G[t], dA[t]
            i, f, g_ = gt[:, :H], gt[:, H : 2 * H], gt[:, 3 * H :]
            np.multiply(dh, OTC[t], out=tmp)
            dc += tmp
            np.multiply(dh, TC[t], out=d[:, 2 * H : 3 * H])
            if peep is not None:
                d[:, 2 * H : 3 * H] *= DG[t, :, 2 * H : 3 * H]
                dc += d[:, 2 * H : 3 * H] * peep[2]
            np.multiply(dc, g_, out=d[:, :H])
            np.multiply(dc, Cs[t], out=d[:, H : 2 * H])
            np.multiply(dc, i, out=d[:, 3 * H :])
            if peep is None:
                d *= DG[t]
            else:
                d[:, : 2 * H] *= DG[t, :, : 2 * H]
                d[:, 3 * H :] *= DG[t, :, 3 * H :]
            dc *= f
            if peep is not None:
                dc += d[:, :H] * peep[0]
                dc += d[:, H : 2 * H] * peep[1]
            np.matmul(d, W_hhT, out=dh)
            if mask is not None:
                dh *= mask
        return self._lstm_grads(cache, dA, g, need_dX)

    def _lstm_grads(self, cache, dA, g, need_dX):
        """Weight gradients from the gate gradients of all steps."""
        Hs, Cs, p, mask = cache["H"], cache["C"], cache["p"], cache["mask"]
        H = self.units
        self._recurrent_grad(Hs, mask, dA, g["W_hh"])
        if p.get("w_peep") is not None:
            gp = g["w_peep"]
            gp[0] = np.einsum("tbh,tbh->h", dA[..., :H], Cs[:-1])
            gp[1] = np.einsum("tbh,tbh->h", dA[..., H : 2 * H], Cs[:-1])
            gp[2] = np.einsum("tbh,tbh->h", dA[..., 2 * H : 3 * H], Cs[1:])
        return self._input_grads(cache, dA, g, need_dX=need_dX)


class GRULayer(_Layer):
    """GRU with gate order ``r, z, n`` and ``h = (1 - z) * n + z * h_prev``.

    ``reset_after=True`` is the cuDNN/PyTorch form: ``n = tanh(x W_in + b_in +
    r * (h W_hn + b_hn))``; its recurrent ``n`` bias ``b_hn`` sits inside the reset
    product and so is kept apart. ``reset_after=False`` is the original Cho form:
    ``n = tanh(x W_in + b_in + (r * h) W_hn)``; it needs a second, smaller recurrent
    product per step.
    """

    n_gates = 3
    n_sigmoid = 2
    TORCH_ORDER = (0, 1, 2)

    def __init__(self, n_inputs, units, reset_after=True):
        super().__init__(n_inputs, units)
        self.reset_after = reset_after

    def param_shapes(self):
        shapes = super().param_shapes()
        if self.reset_after:
            shapes["b_hn"] = (self.units,)
        return shapes

    def forward(self, X, p, mask=None, store=True, seq=True, ws=None):
        T, B, F = X.shape
        H = self.units
        dt = X.dtype
        W_ih, W_hh, b = self._scaled(p)
        if _fast(X, p):
            ring = not (store or seq)
            Hs = _fast_states(T, B, H, dt, ring, ws, self)
            S = empty(ws, (self, "S"), (T, B, H), dt) if store else None
            G = empty(ws, (self, "G"), (T, B, 3 * H), dt) if store else None
            b_hn = _c(p.get("b_hn"), dt) if self.reset_after else None
            _engine.forward(Cell.GRU, T=T, B=B, F=F, H=H, X=_c(X, dt), W_ih=W_ih, b=b,
                            W_hh=W_hh, Hs=Hs, extra=b_hn, gates=G, S=S, mask=_c(mask, dt),
                            reset_after=self.reset_after, store=store, ring=ring)
            cache = {"X": X, "H": Hs, "S": S, "G": G, "p": p, "mask": mask} if store else None
            return _outputs(Hs, ring), cache
        Hs = np.zeros((T + 1, B, H), dtype=dt)
        A = self._project_inputs(X, W_ih, b)  # becomes [r, z, n] in place
        # reset_after: h W_hn + b_hn of each step; Cho form: r * h of each step
        S = np.empty((T, B, H), dtype=dt) if store else np.empty((1, B, H), dtype=dt)
        W_rz, W_n = W_hh[:, : 2 * H], W_hh[:, 2 * H :]
        b_hn = p.get("b_hn")
        gh = np.empty((B, 3 * H), dtype=dt)
        grz = np.empty((B, 2 * H), dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        for t in range(T):
            h_prev = Hs[t]
            hm = h_prev if mask is None else h_prev * mask
            a = A[t]
            rz, n = a[:, : 2 * H], a[:, 2 * H :]
            s = S[t] if store else S[0]
            if self.reset_after:
                np.matmul(hm, W_hh, out=gh)
                rz += gh[:, : 2 * H]
                self._activate(rz)
                np.add(gh[:, 2 * H :], b_hn, out=s)
                np.multiply(rz[:, :H], s, out=tmp)
            else:
                np.matmul(hm, W_rz, out=grz)
                rz += grz
                self._activate(rz)
                np.multiply(rz[:, :H], hm, out=s)
                np.matmul(s, W_n, out=tmp)
            n += tmp
            np.tanh(n, out=n)
            h = Hs[t + 1]
            np.subtract(h_prev, n, out=h)
            h *= rz[:, H:]
            h += n
        cache = {"X": X, "H": Hs, "S": S, "G": A, "p": p, "mask": mask} if store else None
        return Hs[1:], cache

    def backward(self, dH_out, cache, g, dh_last=None, need_dX=True, ws=None):
        Hs, S, G, p, mask = (cache[k] for k in ("H", "S", "G", "p", "mask"))
        T, B, H = S.shape
        dt = S.dtype
        W_hh = p["W_hh"]
        W_hhT = np.ascontiguousarray(W_hh.T)
        if _fast(S, p):
            X = cache["X"]
            F = X.shape[2]
            dX = empty(ws, (self, "dX"), (T, B, F), dt) if need_dX else None
            _engine.backward(Cell.GRU, T=T, B=B, F=F, H=H, X=_c(X, dt), W_ihT=_wT(p, dX),
                             W_hhT=W_hhT, Hs=Hs, gates=G, S=S, mask=_c(mask, dt),
                             dH=_c(dH_out, dt), dh_last=_c(dh_last, dt), dX=dX,
                             grad_W_ih=g["W_ih"], grad_W_hh=g["W_hh"], grad_b=g["b"],
                             grad_extra=g["b_hn"] if self.reset_after else None,
                             reset_after=self.reset_after)
            return dX
        W_rzT, W_nT = W_hhT[: 2 * H], W_hhT[2 * H :]
        # per-step factors, all steps at once
        DG = np.subtract(1.0, G, dtype=dt)  # 1 - r, 1 - z, 1 - n
        ONE_MINUS_Z = DG[..., H : 2 * H].copy()
        DG[..., : 2 * H] *= G[..., : 2 * H]  # r(1-r), z(1-z)
        DG[..., 2 * H :] *= np.add(1.0, G[..., 2 * H :])  # 1 - n^2
        HMN = np.subtract(Hs[:-1], G[..., 2 * H :])  # h_prev - n
        if mask is not None and not self.reset_after:
            HM = Hs[:-1] * mask
        # DR: gradients of the recurrent products; DN: of the n gate's input side
        DR = np.empty((T, B, 3 * H), dtype=dt)
        DN = np.empty((T, B, H), dtype=dt)
        dh = np.zeros((B, H), dtype=dt)
        dh_new = np.empty((B, H), dtype=dt)
        d_rh = np.empty((B, H), dtype=dt)
        for t in range(T - 1, -1, -1):
            seed = self._seed(dH_out, dh_last, t, T)
            if seed is not None:
                dh += seed
            gt, d, dn = G[t], DR[t], DN[t]
            r, z = gt[:, :H], gt[:, H : 2 * H]
            dr, dz = d[:, :H], d[:, H : 2 * H]
            np.multiply(dh, ONE_MINUS_Z[t], out=dn)
            dn *= DG[t, :, 2 * H :]
            np.multiply(dh, HMN[t], out=dz)
            dz *= DG[t, :, H : 2 * H]
            np.multiply(dh, z, out=dh_new)
            if self.reset_after:
                np.multiply(dn, S[t], out=dr)
                dr *= DG[t, :, :H]
                np.multiply(dn, r, out=d[:, 2 * H :])
                np.matmul(d, W_hhT, out=dh)
            else:
                np.matmul(dn, W_nT, out=d_rh)
                np.multiply(d_rh, Hs[t] if mask is None else HM[t], out=dr)
                dr *= DG[t, :, :H]
                np.matmul(d[:, : 2 * H], W_rzT, out=dh)
                d_rh *= r
                dh += d_rh
            if mask is not None:
                dh *= mask
            dh += dh_new
        return self._gru_grads(cache, DR, DN, g, need_dX)

    def _gru_grads(self, cache, DR, DN, g, need_dX):
        """Weight gradients from the gate gradients of all steps."""
        Hs, S, mask = cache["H"], cache["S"], cache["mask"]
        T, B, H = S.shape
        gW = g["W_hh"]
        if self.reset_after:
            self._recurrent_grad(Hs, mask, DR, gW)
            np.sum(DR[..., 2 * H :].reshape(T * B, H), axis=0, out=g["b_hn"])
        else:
            self._recurrent_grad(Hs, mask, DR[..., : 2 * H], gW[:, : 2 * H])
            np.matmul(S.reshape(T * B, H).T, DN.reshape(T * B, H), out=gW[:, 2 * H :])
        return self._input_grads(cache, DR, g, dA_rest=DN, need_dX=need_dX)
