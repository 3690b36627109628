"""Recurrent layers: forward over a whole batch of sequences and exact BPTT.

Arrays are time-major inside the engine: a layer input is ``(T, B, F)`` and its
output sequence ``(T, B, H)``, so that the per-step slice ``x[t]`` is contiguous.

Every layer follows the same plan, which keeps Python work per time step to one
recurrent matrix product plus a few fused element-wise operations:

* the input projection of all steps is one product ``X @ W_ih`` before the loop;
* the loop stores the activated gates in place of the pre-activations;
* the backward loop writes the gate-gradients of every step into one buffer, and
  the weight gradients are then single products over all steps
  (``X.T @ dA`` and ``H_prev.T @ dA``).

Weight layout (internal): ``W_ih`` is ``(F, G*H)``, ``W_hh`` is ``(H, G*H)``, the
gate blocks in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``).

Recurrent dropout multiplies the previous hidden state by one mask per sequence
before it enters the recurrent product (the Gal & Ghahramani / Keras form); the
state itself, and the GRU's direct ``z * h_prev`` path, are not masked.
"""

import numpy as np
from scipy.special import expit


def _sigmoid(a, out):
    return expit(a, out=out)


class _Layer:
    """Shared structure of the three recurrent layers.

    Subclasses define ``n_gates``, the parameter spec, and ``_step_forward`` /
    ``_backward_loop``. Parameters are passed as a dict of views into the
    network's flat parameter vector, gradients likewise.
    """

    n_gates = 1

    def __init__(self, n_inputs, units):
        self.n_inputs = n_inputs
        self.units = units

    def param_shapes(self):
        F, H, G = self.n_inputs, self.units, self.n_gates
        return {"W_ih": (F, G * H), "W_hh": (H, G * H), "b": (G * H,)}

    # names whose entries the L2 penalty applies to
    decayed = ("W_ih", "W_hh")

    def _project_inputs(self, X, p):
        T, B, F = X.shape
        A = X.reshape(T * B, F) @ p["W_ih"]
        A += p["b"]
        return A.reshape(T, B, -1)

    def _weight_grads(self, cache, dA, g):
        """Gradients of ``W_ih``, ``b`` and the input, each one product over all steps."""
        X = cache["X"]
        T, B, F = X.shape
        dA2 = dA.reshape(T * B, -1)
        np.matmul(X.reshape(T * B, F).T, dA2, out=g["W_ih"])
        np.sum(dA2, axis=0, out=g["b"])
        dX = (dA2 @ cache["p"]["W_ih"].T).reshape(T, B, F)
        return dX

    @staticmethod
    def _masked(H_prev, mask):
        return H_prev if mask is None else H_prev * mask


class SimpleRNNLayer(_Layer):
    """Elman RNN: ``h_t = act(x_t W_ih + h_{t-1} W_hh + b)``."""

    n_gates = 1

    def __init__(self, n_inputs, units, activation="tanh"):
        super().__init__(n_inputs, units)
        self.activation = activation

    def forward(self, X, p, mask=None, store=True):
        T, B, _ = X.shape
        H = self.units
        A = self._project_inputs(X, p)
        Hs = np.zeros((T + 1, B, H), dtype=X.dtype)
        W_hh = p["W_hh"]
        tanh = self.activation == "tanh"
        for t in range(T):
            h_prev = Hs[t] if mask is None else Hs[t] * mask
            a = A[t]
            a += h_prev @ W_hh
            if tanh:
                np.tanh(a, out=Hs[t + 1])
            else:
                np.maximum(a, 0, out=Hs[t + 1])
        cache = {"X": X, "H": Hs, "p": p, "mask": mask} if store else None
        return Hs[1:], cache

    def backward(self, dH_out, cache, g):
        Hs, p, mask = cache["H"], cache["p"], cache["mask"]
        T, B, H = dH_out.shape
        W_hhT = p["W_hh"].T
        dA = np.empty((T, B, H), dtype=dH_out.dtype)
        dh = np.zeros((B, H), dtype=dH_out.dtype)
        tanh = self.activation == "tanh"
        for t in range(T - 1, -1, -1):
            dh += dH_out[t]
            h = Hs[t + 1]
            if tanh:
                np.multiply(h, h, out=dA[t])
                np.subtract(1.0, dA[t], out=dA[t])
                dA[t] *= dh
            else:
                np.multiply(dh, h > 0, out=dA[t])
            dh = dA[t] @ W_hhT
            if mask is not None:
                dh *= mask
        H_prev = self._masked(Hs[:-1], mask).reshape(T * B, H)
        np.matmul(H_prev.T, dA.reshape(T * B, H), out=g["W_hh"])
        return self._weight_grads(cache, dA, g)


class LSTMLayer(_Layer):
    """LSTM with PyTorch's gate order ``i, f, g, o``, optionally with peepholes.

    Peephole connections (Gers & Schmidhuber) add ``w_ci * c_{t-1}`` to the input
    gate, ``w_cf * c_{t-1}`` to the forget gate and ``w_co * c_t`` to the output gate.
    """

    n_gates = 4

    def __init__(self, n_inputs, units, peephole=False):
        super().__init__(n_inputs, units)
        self.peephole = peephole

    def param_shapes(self):
        shapes = super().param_shapes()
        if self.peephole:
            shapes["w_peep"] = (3, self.units)
        return shapes

    def forward(self, X, p, mask=None, store=True):
        T, B, _ = X.shape
        H = self.units
        A = self._project_inputs(X, p)  # becomes the activated gates in place
        Hs = np.zeros((T + 1, B, H), dtype=X.dtype)
        Cs = np.zeros((T + 1, B, H), dtype=X.dtype)
        TC = np.empty((T, B, H), dtype=X.dtype) if store else None
        tc = np.empty((B, H), dtype=X.dtype)
        W_hh = p["W_hh"]
        peep = p.get("w_peep")
        for t in range(T):
            h_prev = Hs[t] if mask is None else Hs[t] * mask
            c_prev = Cs[t]
            a = A[t]
            a += h_prev @ W_hh
            if peep is not None:
                a[:, :H] += peep[0] * c_prev
                a[:, H : 2 * H] += peep[1] * c_prev
            _sigmoid(a[:, : 2 * H], a[:, : 2 * H])
            g_ = a[:, 2 * H : 3 * H]
            np.tanh(g_, out=g_)
            c = Cs[t + 1]
            np.multiply(a[:, H : 2 * H], c_prev, out=c)
            c += a[:, :H] * g_
            o = a[:, 3 * H :]
            if peep is not None:
                o += peep[2] * c
            _sigmoid(o, o)
            tct = TC[t] if store else tc
            np.tanh(c, out=tct)
            np.multiply(o, tct, out=Hs[t + 1])
        cache = (
            {"X": X, "H": Hs, "C": Cs, "TC": TC, "G": A, "p": p, "mask": mask}
            if store
            else None
        )
        return Hs[1:], cache

    def backward(self, dH_out, cache, g):
        Hs, Cs, TC, G, p, mask = (cache[k] for k in ("H", "C", "TC", "G", "p", "mask"))
        T, B, H = dH_out.shape
        W_hhT = p["W_hh"].T
        peep = p.get("w_peep")
        dA = np.empty((T, B, 4 * H), dtype=dH_out.dtype)
        dh = np.zeros((B, H), dtype=dH_out.dtype)
        dc = np.zeros((B, H), dtype=dH_out.dtype)
        tmp = np.empty((B, H), dtype=dH_out.dtype)
        for t in range(T - 1, -1, -1):
            dh += dH_out[t]
            gt = G[t]
            i, f, gg, o = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H : 3 * H], gt[:, 3 * H :]
            tc = TC[t]
            d = dA[t]
            di, df, dg, do = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
            # output gate
            np.multiply(dh, tc, out=do)
            np.subtract(1.0, o, out=tmp)
            tmp *= o
            do *= tmp
            # cell state: through h = o * tanh(c), and the carried dc
            np.multiply(tc, tc, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            if peep is not None:
                dc += do * peep[2]
            # input, forget and candidate gates
            np.multiply(dc, gg, out=di)
            np.subtract(1.0, i, out=tmp)
            tmp *= i
            di *= tmp
            np.multiply(dc, Cs[t], out=df)
            np.subtract(1.0, f, out=tmp)
            tmp *= f
            df *= tmp
            np.multiply(dc, i, out=dg)
            np.multiply(gg, gg, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            dg *= tmp
            dc *= f
            if peep is not None:
                dc += di * peep[0]
                dc += df * peep[1]
            dh = d @ W_hhT
            if mask is not None:
                dh *= mask
        H_prev = self._masked(Hs[:-1], mask).reshape(T * B, H)
        np.matmul(H_prev.T, dA.reshape(T * B, 4 * H), out=g["W_hh"])
        if peep is not None:
            gp = g["w_peep"]
            gp[0] = np.einsum("tbh,tbh->h", dA[..., :H], Cs[:-1])
            gp[1] = np.einsum("tbh,tbh->h", dA[..., H : 2 * H], Cs[:-1])
            gp[2] = np.einsum("tbh,tbh->h", dA[..., 3 * H :], Cs[1:])
        return self._weight_grads(cache, dA, g)


class GRULayer(_Layer):
    """GRU with PyTorch's gate order ``r, z, n`` and ``h = (1 - z) * n + z * h_prev``.

    ``reset_after=True`` is the cuDNN/PyTorch form: ``n = tanh(x W_in + b_in +
    r * (h W_hn + b_hn))``; its recurrent ``n`` bias ``b_hn`` sits inside the reset
    product and so is kept apart. ``reset_after=False`` is the original Cho form:
    ``n = tanh(x W_in + b_in + (r * h) W_hn)``; it needs a second, smaller recurrent
    product per step.
    """

    n_gates = 3

    def __init__(self, n_inputs, units, reset_after=True):
        super().__init__(n_inputs, units)
        self.reset_after = reset_after

    def param_shapes(self):
        shapes = super().param_shapes()
        if self.reset_after:
            shapes["b_hn"] = (self.units,)
        return shapes

    def forward(self, X, p, mask=None, store=True):
        T, B, _ = X.shape
        H = self.units
        A = self._project_inputs(X, p)  # becomes [r, z, n] in place
        Hs = np.zeros((T + 1, B, H), dtype=X.dtype)
        # reset_after: h W_hn + b_hn of each step; Cho form: r * h of each step
        S = np.empty((T, B, H), dtype=X.dtype) if store else np.empty((1, B, H), X.dtype)
        W_hh = p["W_hh"]
        W_rz, W_n = W_hh[:, : 2 * H], W_hh[:, 2 * H :]
        b_hn = p.get("b_hn")
        for t in range(T):
            h_prev = Hs[t]
            hm = h_prev if mask is None else h_prev * mask
            a = A[t]
            s = S[t] if store else S[0]
            if self.reset_after:
                gh = hm @ W_hh
                a[:, : 2 * H] += gh[:, : 2 * H]
                _sigmoid(a[:, : 2 * H], a[:, : 2 * H])
                np.add(gh[:, 2 * H :], b_hn, out=s)
                n = a[:, 2 * H :]
                n += a[:, :H] * s
            else:
                a[:, : 2 * H] += hm @ W_rz
                _sigmoid(a[:, : 2 * H], a[:, : 2 * H])
                np.multiply(a[:, :H], hm, out=s)
                n = a[:, 2 * H :]
                n += s @ W_n
            np.tanh(n, out=n)
            h = Hs[t + 1]
            np.subtract(h_prev, n, out=h)
            h *= a[:, H : 2 * H]
            h += n
        cache = {"X": X, "H": Hs, "S": S, "G": A, "p": p, "mask": mask} if store else None
        return Hs[1:], cache

    def backward(self, dH_out, cache, g):
        Hs, S, G, p, mask = (cache[k] for k in ("H", "S", "G", "p", "mask"))
        T, B, H = dH_out.shape
        W_hh = p["W_hh"]
        W_hhT = W_hh.T
        W_rzT, W_nT = W_hh[:, : 2 * H].T, W_hh[:, 2 * H :].T
        dtype = dH_out.dtype
        dA = np.empty((T, B, 3 * H), dtype=dtype)  # gradients of the input projection
        dN_h = np.empty((T, B, H), dtype=dtype)  # of the recurrent n-product
        dh = np.zeros((B, H), dtype=dtype)
        tmp = np.empty((B, H), dtype=dtype)
        dgh = np.empty((B, 3 * H), dtype=dtype)
        for t in range(T - 1, -1, -1):
            dh += dH_out[t]
            gt = G[t]
            r, z, n = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H :]
            h_prev = Hs[t]
            d = dA[t]
            dr, dz, dn = d[:, :H], d[:, H : 2 * H], d[:, 2 * H :]
            # n pre-activation: dh * (1 - z) * (1 - n^2)
            np.subtract(1.0, z, out=dn)
            dn *= dh
            np.multiply(n, n, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            dn *= tmp
            # z pre-activation: dh * (h_prev - n) * z * (1 - z)
            np.subtract(h_prev, n, out=dz)
            dz *= dh
            np.subtract(1.0, z, out=tmp)
            tmp *= z
            dz *= tmp
            np.subtract(1.0, r, out=tmp)
            tmp *= r
            dh_new = dh * z
            if self.reset_after:
                # r pre-activation: dn * (h W_hn + b_hn) * r * (1 - r)
                np.multiply(dn, S[t], out=dr)
                dr *= tmp
                dnh = dN_h[t]
                np.multiply(dn, r, out=dnh)
                dgh[:, : 2 * H] = d[:, : 2 * H]
                dgh[:, 2 * H :] = dnh
                drec = dgh @ W_hhT
            else:
                dnh = dN_h[t]
                np.copyto(dnh, dn)
                d_rh = dn @ W_nT
                hm = h_prev if mask is None else h_prev * mask
                np.multiply(d_rh, hm, out=dr)
                dr *= tmp
                drec = d[:, : 2 * H] @ W_rzT
                drec += d_rh * r
            if mask is not None:
                drec *= mask
            dh_new += drec
            dh = dh_new
        gW = g["W_hh"]
        H_prev = self._masked(Hs[:-1], mask).reshape(T * B, H)
        dA2 = dA.reshape(T * B, 3 * H)
        np.matmul(H_prev.T, dA2[:, : 2 * H], out=gW[:, : 2 * H])
        if self.reset_after:
            np.matmul(H_prev.T, dN_h.reshape(T * B, H), out=gW[:, 2 * H :])
            np.sum(dN_h.reshape(T * B, H), axis=0, out=g["b_hn"])
        else:
            np.matmul(S.reshape(T * B, H).T, dN_h.reshape(T * B, H), out=gW[:, 2 * H :])
        return self._weight_grads(cache, dA, g)
