"""PyTorch weight interop: the regressors' weights in ``torch.nn.LSTM/GRU/RNN`` layout
and names, out (``get_weights``) and in (``set_weights``); docs/architecture.md,
contract 3. The engine's own layout (fused, transposed gate blocks) stays inside."""

import numpy as np

from skrnn._input import DTYPES, check_units
from skrnn.nn._network import RecurrentNetwork


def torch_rows(layer):
    """Row index that puts the engine's gate blocks in PyTorch's gate order."""
    H = layer.units
    return np.concatenate([np.arange(b * H, (b + 1) * H) for b in layer.TORCH_ORDER])



class _TorchWeightsMixin:
    """``get_weights``/``set_weights`` of :class:`~skrnn.recurrent.BaseRecurrentRegressor`."""

    def get_weights(self):
        """Weights in PyTorch's layout and names.

        Returns
        -------
        state_dict : dict of str to ndarray
            ``weight_ih_l{k}`` ``(G*H, F)``, ``weight_hh_l{k}`` ``(G*H, H)``,
            ``bias_ih_l{k}``, ``bias_hh_l{k}`` for each layer ``k`` (gate order LSTM
            ``i, f, g, o``, GRU ``r, z, n``), and ``head.weight`` ``(n_outputs, H)``,
            ``head.bias``. The recurrent layers load into ``torch.nn.LSTM/GRU/RNN``
            (``batch_first=True``) and the head into ``torch.nn.Linear``. LSTM and
            SimpleRNN merge the two biases: the sum is in ``bias_ih`` and ``bias_hh``
            is zero. Variants PyTorch lacks carry extra keys that make a strict
            ``load_state_dict`` fail instead of loading wrong weights:
            ``weight_peephole_l{k}`` (LSTM peepholes, rows ``i, f, o``) and
            ``reset_before_l{k}`` (GRU with ``reset_after=False``). A quantile
            head has one row per target and level, target-major (row
            ``j * n_levels + k`` is level ``k`` of target ``j``).
        """
        self._check_fitted_net()
        net = self._net
        sd = {}
        for k, (layer, p) in enumerate(zip(net.layers, net.params)):
            H = layer.units
            rows = torch_rows(layer)
            sd[f"weight_ih_l{k}"] = p["W_ih"].T[rows].copy()
            sd[f"weight_hh_l{k}"] = p["W_hh"].T[rows].copy()
            sd[f"bias_ih_l{k}"] = p["b"][rows].copy()
            b_hh = np.zeros_like(p["b"])
            if "b_hn" in p:
                b_hh[2 * H :] = p["b_hn"]
            sd[f"bias_hh_l{k}"] = b_hh
            if "w_peep" in p:
                sd[f"weight_peephole_l{k}"] = p["w_peep"].copy()
            if self._cell == "gru" and not layer.reset_after:
                sd[f"reset_before_l{k}"] = np.ones(1, dtype=p["b"].dtype)
        sd["head.weight"] = net.head_params["W"].T.copy()
        sd["head.bias"] = net.head_params["b"].copy()
        return sd

    def set_weights(self, state_dict):
        """Load weights given in PyTorch's layout (see :meth:`get_weights`).

        On a fitted estimator the shapes must match. On an unfitted one the network
        is built from the shapes (features per step, units per layer, outputs) and
        the estimator then predicts sequences of any length; ``units`` must agree
        with the weights.

        The whole ``state_dict`` is checked before anything is loaded, so a refused
        one leaves the estimator as it was. It must hold exactly, for each layer
        ``k``: ``weight_ih_l{k}`` and ``weight_hh_l{k}``, and ``bias_ih_l{k}`` with
        ``bias_hh_l{k}`` (both, or neither for PyTorch's ``bias=False``: zeros);
        ``head.weight`` and ``head.bias``; and the keys of this estimator's variant,
        ``weight_peephole_l{k}`` (``peephole=True``) or ``reset_before_l{k}``
        (``reset_after=False``). A missing or unexpected key, a shape other than
        the expected one, a non-numeric array or a NaN or infinite value raises a
        ``ValueError`` that names the keys concerned and what was expected.

        Parameters
        ----------
        state_dict : mapping of str to array-like
            Arrays or tensors (anything ``np.asarray`` takes).

        Returns
        -------
        self : object
        """
        sd = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
              for k, v in state_dict.items()}
        fitted = hasattr(self, "_net")
        units = self._net.units if fitted else check_units(self.units)
        n_layers = len(units)
        # the weights' own units, when their recurrent matrices say so plainly
        theirs = []
        while np.ndim(sd.get(f"weight_hh_l{len(theirs)}")) == 2:
            theirs.append(sd[f"weight_hh_l{len(theirs)}"].shape[1])
        consistent = len(theirs) == sum(k.startswith("weight_ih_l") for k in sd)
        if theirs and consistent and tuple(theirs) != tuple(units):
            raise ValueError(
                f"units={self.units!r} does not match the weights' {tuple(theirs)} "
                f"(the second dimension of each weight_hh_l{{k}})."
                + (f" This estimator is fitted with units {units}." if fitted else "")
            )
        layers = (self._net.layers if fitted else RecurrentNetwork(
            self._cell, 1, units, 1, cell_kwargs=self._cell_kwargs()).layers)
        G = layers[0].n_gates
        required = {"head.weight", "head.bias"}
        optional = set()
        for k, layer in enumerate(layers):
            required |= {f"weight_ih_l{k}", f"weight_hh_l{k}"}
            if getattr(layer, "peephole", False):
                required.add(f"weight_peephole_l{k}")
            if getattr(layer, "reset_after", True) is False:
                required.add(f"reset_before_l{k}")
            both = {f"bias_ih_l{k}", f"bias_hh_l{k}"}
            (optional if not both & set(sd) else required).update(both)
        missing, extra = sorted(required - set(sd)), sorted(set(sd) - required - optional)
        if missing or extra:
            problems = ([f"lacks {missing}"] if missing else []) + (
                [f"has unexpected key(s) {extra}"] if extra else [])
            raise ValueError(
                f"state_dict {' and '.join(problems)}. This {type(self).__name__} with "
                f"{n_layers} layer(s) takes exactly {sorted(required | optional)} "
                "(the two biases of a layer may be left out together)."
            )
        for k, a in sd.items():
            if a.dtype.kind not in "biuf":
                raise ValueError(
                    f"state_dict[{k!r}] must be numeric; got an array of dtype {a.dtype}."
                )
        F = sd["weight_ih_l0"].shape[-1] if sd["weight_ih_l0"].ndim == 2 else None
        n_out = sd["head.weight"].shape[0] if sd["head.weight"].ndim == 2 else None
        if fitted:
            F, n_out = self._net.n_features, self._net.n_outputs
        expected = {"head.weight": (n_out, units[-1]), "head.bias": (n_out,)}
        n_in = F
        for k, H in enumerate(units):
            expected.update({f"weight_ih_l{k}": (G * H, n_in), f"weight_hh_l{k}": (G * H, H),
                             f"bias_ih_l{k}": (G * H,), f"bias_hh_l{k}": (G * H,),
                             f"weight_peephole_l{k}": (3, H), f"reset_before_l{k}": (1,)})
            n_in = H
        wrong = [f"{k} has shape {sd[k].shape}, expected {expected[k]}" for k in sorted(sd)
                 if sd[k].shape != expected[k] or 0 in expected[k] or None in expected[k]]
        if wrong:
            raise ValueError(
                f"state_dict holds arrays of the wrong shape: {'; '.join(wrong)} "
                f"(G={G} gate block(s) per layer, units {units}"
                + (f", {F} features per step and {n_out} outputs as fitted)." if fitted
                   else ").")
            )
        bad = {k: int(np.sum(~np.isfinite(a))) for k, a in sd.items()}
        bad = {k: v for k, v in bad.items() if v}
        if bad:
            raise ValueError(
                "state_dict holds NaN or infinite values ("
                + ", ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
                + "); weights must be finite."
            )
        dtype = DTYPES[self.dtype]
        if not fitted:
            self.n_step_features_ = F
            self.n_timesteps_ = None
            self.quantiles_ = self._check_quantile_params(False)
            self.n_outputs_ = self._targets_of_head(n_out)
            self._y_ndim = 1 if self.n_outputs_ == 1 else 2
            self._net = RecurrentNetwork(self._cell, F, units, n_out, dtype=dtype,
                                         cell_kwargs=self._cell_kwargs())
            self.n_iter_ = 0
        net = self._net
        for k, (layer, p) in enumerate(zip(net.layers, net.params)):
            H = layer.units
            # PyTorch row j holds gate j; the engine's block order may differ
            to_internal = np.argsort(torch_rows(layer))
            b_ih = np.asarray(sd.get(f"bias_ih_l{k}", np.zeros(G * H)))[to_internal]
            b_hh = np.asarray(sd.get(f"bias_hh_l{k}", np.zeros(G * H)))[to_internal]
            p["W_ih"][...] = sd[f"weight_ih_l{k}"][to_internal].T
            p["W_hh"][...] = sd[f"weight_hh_l{k}"][to_internal].T
            if "b_hn" in p:
                p["b"][...] = b_ih
                p["b"][: 2 * H] += b_hh[: 2 * H]
                p["b_hn"][...] = b_hh[2 * H :]
            else:
                p["b"][...] = b_ih + b_hh
            if "w_peep" in p:
                p["w_peep"][...] = sd[f"weight_peephole_l{k}"]
        net.head_params["W"][...] = sd["head.weight"].T
        net.head_params["b"][...] = sd["head.bias"]
        return self

