"""The estimator's lifecycle: interrupts, failed refits, warm starts, loaded weights.

Each test compares against an independent reference (a fit of exactly the reported
epochs, the model as it was before the call, a hand computation), so that a fault
in the plumbing cannot leave it green.
"""

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor
from skrnn.exceptions import DivergenceError, NonNumericInputError
from skrnn.nn import _network
from skrnn.nn._losses import loss_and_grad

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.RandomState(0)
X = np.cumsum(rng.normal(size=(120, 8)), axis=1) / 4
Y = X[:, -1] * 0.8 - X[:, 0] * 0.3


def _fast(cls=LSTMRegressor, **kw):
    params = {"units": 6, "max_iter": 4, "batch_size": 16, "random_state": 0}
    params.update(kw)
    return cls(**params)


class _Hook:
    """Callback that runs ``action(estimator)`` at one point of one epoch."""

    def __init__(self, when, at_n_iter, action):
        self.when, self.at_n_iter, self.action, self.armed = when, at_n_iter, action, True

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def _maybe(self, when, estimator, context):
        if (self.armed and when == self.when and context.task_name == "epoch"
                and estimator.n_iter_ == self.at_n_iter):
            self.action(estimator)

    def on_fit_task_begin(self, estimator, context, **kw):
        self._maybe("begin", estimator, context)

    def on_fit_task_end(self, estimator, context, **kw):
        self._maybe("end", estimator, context)


def _interrupt(estimator):
    raise KeyboardInterrupt


def _blow_up(estimator):
    estimator._net.theta[:] = np.inf


def _interrupted_fit(model, *args):
    """Fit until the KeyboardInterrupt; return the interrupt warnings' texts.

    (``pytest.warns`` does not check its match while an exception passes through.)
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyboardInterrupt):
            model.fit(*(args or (X, Y)))
    return [str(w.message) for w in caught if "interrupted" in str(w.message)]


# -- Ctrl-C: the weights of exactly the epochs reported ------------------------------------


@pytest.mark.parametrize("cls", [LSTMRegressor, GRURegressor])
@pytest.mark.parametrize("where", ["begin of epoch 3", "inside epoch 3", "end of epoch 2"])
def test_interrupted_fit_equals_a_fit_of_the_reported_epochs(cls, where, monkeypatch):
    model = _fast(cls, max_iter=10)
    if where == "inside epoch 3":  # the third batch of the third epoch (8 batches each)
        calls = []
        original = _network.RecurrentNetwork.loss_and_gradient

        def counting(self, *args, **kw):
            calls.append(1)
            if len(calls) == 2 * 8 + 3:
                raise KeyboardInterrupt
            return original(self, *args, **kw)

        monkeypatch.setattr(_network.RecurrentNetwork, "loss_and_gradient", counting)
    else:
        model.set_callbacks(_Hook("begin" if "begin" in where else "end", 2, _interrupt))
    assert _interrupted_fit(model) == [
        ("fit was interrupted; the estimator keeps the weights of its last complete epoch "
        "(2 epochs done).")]
    monkeypatch.undo()
    assert model.n_iter_ == 2
    reference = _fast(cls, max_iter=2).fit(X, Y)
    np.testing.assert_array_equal(model._net.theta, reference._net.theta)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    assert model.loss_curve_ == reference.loss_curve_
    assert model.t_ == reference.t_


def test_interrupt_with_early_stopping_keeps_the_best_epoch_as_a_full_fit_would():
    kw = {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 50,
              "learning_rate_init": 0.05}
    model = _fast(GRURegressor, max_iter=10, **kw).set_callbacks(_Hook("begin", 4, _interrupt))
    assert _interrupted_fit(model) == [
        "fit was interrupted; the estimator keeps the weights of its best epoch (4 epochs done)."]
    reference = _fast(GRURegressor, max_iter=4, **kw).fit(X, Y)
    assert model.n_iter_ == 4 and model.best_iteration_ == reference.best_iteration_
    np.testing.assert_array_equal(model._net.theta, reference._net.theta)


def test_interrupt_in_the_first_epoch_of_a_warm_start_keeps_the_previous_fit():
    model = _fast(GRURegressor, max_iter=2, warm_start=True).fit(X, Y)
    before = model._net.theta.copy()
    model.set_callbacks(_Hook("begin", 2, _interrupt))
    assert len(_interrupted_fit(model)) == 1
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    np.testing.assert_array_equal(model._net.theta, before)


def test_interrupt_before_any_epoch_leaves_an_unfitted_estimator_unfitted():
    model = _fast(max_iter=3).set_callbacks(_Hook("begin", 0, _interrupt))
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y)
    assert not hasattr(model, "n_iter_")
    with pytest.raises(NotFittedError):
        model.predict(X)


# -- a failed refit leaves the fitted model as it was ---------------------------------------


def _fitted_state(model):
    return (model._net.theta.copy(), model.predict(X), list(model.loss_curve_),
            model.n_iter_, model.t_)


def _assert_same_state(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]


def test_diverging_refit_leaves_the_fitted_estimator_predicting_as_before():
    model = _fast(SimpleRNNRegressor).fit(X, Y)
    before = _fitted_state(model)
    model.set_params(solver="sgd", learning_rate_init=1e6, max_iter=20)
    with pytest.raises(DivergenceError, match="left as it was before this call"):
        model.fit(X, Y * 1e3)
    _assert_same_state(_fitted_state(model), before)
    assert model.n_outputs_ == 1 and model.n_timesteps_ == 8


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_diverging_continued_training_restores_everything_it_touched(how):
    """The optimizer moments, the random stream and the curves come back too: training
    on afterwards is bit-identical to a twin that never saw the failed call."""
    kw = {"warm_start": True, "max_iter": 2, "dropout": 0.2} if how == "warm_start" else {}
    model, twin = _fast(GRURegressor, **kw), _fast(GRURegressor, **kw)
    for m in (model, twin):
        m.fit(X, Y) if how == "warm_start" else m.partial_fit(X, Y)
    before = _fitted_state(model)
    hook = _Hook("begin", model.n_iter_, _blow_up)
    model.set_callbacks(hook)
    with pytest.raises(DivergenceError):
        model.fit(X, Y) if how == "warm_start" else model.partial_fit(X, Y)
    _assert_same_state(_fitted_state(model), before)
    hook.armed = False
    for m in (model, twin):
        m.fit(X, Y) if how == "warm_start" else m.partial_fit(X, Y)
    np.testing.assert_array_equal(model._net.theta, twin._net.theta)
    assert model.loss_curve_ == twin.loss_curve_


# -- warm start and partial_fit refuse a changed architecture -------------------------------


@pytest.mark.parametrize("cls, change", [
    (LSTMRegressor, {"units": 5}),
    (LSTMRegressor, {"units": (6, 2)}),
    (LSTMRegressor, {"peephole": True}),
    (GRURegressor, {"reset_after": False}),
    (SimpleRNNRegressor, {"activation": "relu"}),
    (GRURegressor, {"dtype": "float32"}),
    (GRURegressor, {"n_step_features": 2}),
])
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_continued_training_refuses_changed_architecture(cls, change, how):
    model = _fast(cls, max_iter=2, warm_start=how == "warm_start").fit(X, Y)
    before = _fitted_state(model)
    model.set_params(**change)
    key = next(iter(change))
    with pytest.raises(ValueError, match=(
            rf"{key}=.* \(fitted: .*\): warm_start=True and partial_fit continue training "
            r"the fitted network, whose architecture cannot change\. Set warm_start=False")):
        model.fit(X, Y) if how == "warm_start" else model.partial_fit(X, Y)
    model.set_params(**{k: clone(_fast(cls)).get_params()[k] for k in change})
    _assert_same_state(_fitted_state(model), before)
    # a fresh fit takes the new architecture
    fresh = model.set_params(warm_start=False, **change).fit(X, Y)
    assert fresh.n_iter_ == 2


def test_changed_n_step_features_after_fit_is_refused_at_predict():
    model = _fast(GRURegressor).fit(X, Y)
    model.set_params(n_step_features=2)
    with pytest.raises(ValueError, match="n_step_features=2, but this GRURegressor was "
                                         "fitted with 1 features per step"):
        model.predict(X)
    model.set_params(n_step_features=1)  # the fitted value itself is fine
    assert model.predict(X).shape == (120,)


# -- set_weights checks the whole state dict first ------------------------------------------


def _edit(sd, drop=(), add=None, change=None):
    sd = {k: v.copy() for k, v in sd.items() if k not in drop}
    sd.update(add or {})
    for k, f in (change or {}).items():
        sd[k] = f(sd[k])
    return sd


def _nan_at_0(a):
    a = a.astype(float)
    a.flat[0] = np.nan
    return a


SD_CASES = [
    ("missing head.bias", {"drop": ["head.bias"]}, r"state_dict lacks \['head.bias'\]\."),
    ("one bias of a pair", {"drop": ["bias_hh_l1"]}, r"lacks \['bias_hh_l1'\]"),
    ("missing layer", {"drop": ["weight_hh_l1"]}, r"lacks \['weight_hh_l1'\]"),
    ("extra key", {"add": {"foo": np.zeros(1)}}, r"has unexpected key\(s\) \['foo'\]"),
    ("peephole of another variant", {"add": {"weight_peephole_l0": np.zeros((3, 4))}},
     r"has unexpected key\(s\) \['weight_peephole_l0'\]"),
    ("wrong shape", {"change": {"weight_hh_l0": lambda a: a[:, :3]}},
     r"does not match the weights' \(3, 3\)"),
    ("wrong input width", {"change": {"weight_ih_l0": lambda a: np.hstack([a, a])}},
     r"weight_ih_l0 has shape \(16, 2\), expected \(16, 1\)"),
    ("short bias", {"change": {"bias_ih_l1": lambda a: a[:-1]}},
     r"bias_ih_l1 has shape \(11,\), expected \(12,\)"),
    ("NaN", {"change": {"weight_hh_l0": _nan_at_0}},
     r"NaN or infinite values \(weight_hh_l0: 1\); weights must be finite"),
    ("inf", {"change": {"head.bias": lambda a: a + np.inf}},
     r"NaN or infinite values \(head.bias: 1\)"),
    ("strings", {"change": {"head.bias": lambda a: np.array(["x"])}},
     r"state_dict\['head.bias'\] must be numeric"),
]


@pytest.mark.parametrize("edit, match", [c[1:] for c in SD_CASES], ids=[c[0] for c in SD_CASES])
def test_set_weights_refuses_bad_state_dicts_before_loading_anything(edit, match):
    source = _fast(LSTMRegressor, units=(4, 3)).fit(X, Y)
    sd = _edit(source.get_weights(), **edit)
    target = _fast(LSTMRegressor, units=(4, 3), random_state=1).fit(X, Y)
    before = _fitted_state(target)
    with pytest.raises(ValueError, match=match):
        target.set_weights(sd)
    _assert_same_state(_fitted_state(target), before)
    unfitted = LSTMRegressor(units=(4, 3))
    if r"expected \(16, 1\)" in match:  # an unfitted estimator takes any width: it loads
        assert unfitted.set_weights(sd).n_step_features_ == 2
        return
    with pytest.raises(ValueError, match=match):
        unfitted.set_weights(sd)
    assert not hasattr(unfitted, "n_iter_")
    with pytest.raises(NotFittedError):
        unfitted.predict(X)


def test_set_weights_without_biases_loads_zero_biases():
    source = _fast(GRURegressor).fit(X, Y)
    sd = source.get_weights()
    no_bias = {k: v for k, v in sd.items() if not k.startswith("bias_")}
    zero_bias = {k: (np.zeros_like(v) if k.startswith("bias_") else v) for k, v in sd.items()}
    a = GRURegressor(units=6).set_weights(no_bias)
    b = GRURegressor(units=6).set_weights(zero_bias)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), source.predict(X))


def test_set_weights_needs_the_variant_keys_of_the_estimator():
    sd = _fast(GRURegressor, units=3).fit(X, Y).get_weights()
    with pytest.raises(ValueError, match=r"lacks \['reset_before_l0'\]"):
        GRURegressor(units=3, reset_after=False).set_weights(sd)
    sd = _fast(LSTMRegressor, units=3).fit(X, Y).get_weights()
    with pytest.raises(ValueError, match=r"lacks \['weight_peephole_l0'\]"):
        LSTMRegressor(units=3, peephole=True).set_weights(sd)


# -- empty input ----------------------------------------------------------------------------


def test_predict_on_zero_rows_returns_an_empty_array():
    model = _fast(GRURegressor).fit(X, Y)
    for empty in (np.empty((0, 8)), np.empty((0, 8, 1))):
        pred = model.predict(empty)
        assert pred.shape == (0,) and pred.dtype == np.float64
    multi = _fast(GRURegressor).fit(X, np.column_stack([Y, -Y]))
    assert multi.predict(np.empty((0, 8, 1))).shape == (0, 2)
    with pytest.raises(ValueError, match="0 sample"):  # training still needs a sample
        multi.partial_fit(np.empty((0, 8)), np.empty((0, 2)))


# -- non-numeric input gets skrnn's own message ---------------------------------------------


@pytest.mark.parametrize("Xbad, ybad, words", [
    (np.array([["a"] * 8] * 10), np.zeros(10), "X must be numeric: it holds 'a' (of type str)"),
    (np.array([["a"] * 8] * 10).reshape(10, 4, 2), np.zeros(10), "X must be numeric"),
    (np.zeros((10, 8)), np.array(["x"] * 10), "y must be numeric: it holds 'x' (of type str)"),
])
def test_strings_get_a_message_naming_the_argument(Xbad, ybad, words):
    with pytest.raises(NonNumericInputError) as info:
        GRURegressor().fit(Xbad, ybad)
    assert words in str(info.value)
    assert "could not convert" not in str(info.value)
    assert "encode categorical values" in str(info.value)
    model = _fast(GRURegressor).fit(X, Y)
    with pytest.raises(NonNumericInputError, match="X must be numeric"):
        model.predict(np.array([["b"] * 8] * 3))


# -- states, losses and initialisation against hand computations ------------------------------


def _random_weights(cls, units, F, seed=0, **kw):
    """A state dict with every weight and both biases non-zero."""
    r = np.random.RandomState(seed)
    template = cls(units=units, **kw).set_weights(
        _fast(cls, units=units, max_iter=1, batch_size=4, **kw)
        .fit(np.zeros((4, 3 * F)).reshape(4, 3, F), np.zeros(4)).get_weights())
    return {k: r.uniform(-0.8, 0.8, size=v.shape) if not k.startswith("reset_before")
            else v for k, v in template.get_weights().items()}


def _hand_states(cls, sd, X3, n_layers, **kw):
    """Every layer's per-step states from the textbook equations (PyTorch layout)."""
    out, inputs = [], X3
    for k in range(n_layers):
        W, U = sd[f"weight_ih_l{k}"], sd[f"weight_hh_l{k}"]
        b, bh = sd[f"bias_ih_l{k}"], sd[f"bias_hh_l{k}"]
        n, T = inputs.shape[:2]
        H = U.shape[1]
        h, c = np.zeros((n, H)), np.zeros((n, H))
        rec = {}
        for t in range(T):
            x = inputs[:, t]
            gi, gh = x @ W.T + b, h @ U.T + bh
            if cls is LSTMRegressor:
                i, f = expit(gi[:, :H] + gh[:, :H]), expit(gi[:, H:2 * H] + gh[:, H:2 * H])
                g = np.tanh(gi[:, 2 * H:3 * H] + gh[:, 2 * H:3 * H])
                o = expit(gi[:, 3 * H:] + gh[:, 3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                step = {"input_gate": i, "forget_gate": f, "candidate": g, "output_gate": o,
                        "c": c, "h": h}
            elif cls is GRURegressor:
                r = expit(gi[:, :H] + gh[:, :H])
                z = expit(gi[:, H:2 * H] + gh[:, H:2 * H])
                nn_ = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                h = (1 - z) * nn_ + z * h
                step = {"reset_gate": r, "update_gate": z, "candidate": nn_, "h": h}
            else:
                h = np.tanh(gi + gh)
                step = {"h": h}
            for key, v in step.items():
                rec.setdefault(key, []).append(v)
        rec = {key: np.stack(v, axis=1) for key, v in rec.items()}
        out.append(rec)
        inputs = rec["h"]
    return out


@pytest.mark.parametrize("cls", [LSTMRegressor, GRURegressor, SimpleRNNRegressor])
def test_get_states_each_gate_matches_the_equations(cls):
    sd = _random_weights(cls, (4, 3), F=2)
    model = cls(units=(4, 3)).set_weights(sd)
    X3 = np.random.RandomState(1).normal(size=(5, 4, 2))
    got = model.get_states(X3)
    want = _hand_states(cls, sd, X3, 2)
    assert len(got) == 2
    for layer_got, layer_want in zip(got, want):
        assert set(layer_got) == set(layer_want)
        for key in layer_want:
            np.testing.assert_allclose(layer_got[key], layer_want[key], atol=1e-12,
                                       err_msg=key)
    head = want[-1]["h"][:, -1] @ sd["head.weight"].T + sd["head.bias"]
    np.testing.assert_allclose(model.predict(X3), head.ravel(), atol=1e-12)


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * a - 0.5 * delta**2)


def test_huber_value_and_gradient_follow_the_formula():
    r = np.array([-3.0, -1.2, -0.5, 0.0, 0.3, 0.69, 0.71, 1.5, 4.0])
    Z, y, delta = (r + 2.0)[:, None], np.full((len(r), 1), 2.0), 0.7
    value, grad = loss_and_grad(Z, y, None, "huber", "identity", huber_delta=delta)
    assert value == pytest.approx(np.mean(_huber(r, delta)), rel=1e-14)
    np.testing.assert_allclose(grad.ravel(), np.clip(r, -delta, delta) / len(r), rtol=1e-14)
    sw = np.arange(1.0, len(r) + 1)
    value, grad = loss_and_grad(Z, y, sw, "huber", "identity", huber_delta=delta)
    assert value == pytest.approx(sw @ _huber(r, delta) / sw.sum(), rel=1e-14)
    np.testing.assert_allclose(grad.ravel(), sw * np.clip(r, -delta, delta) / sw.sum())


def test_estimator_reports_the_huber_loss_of_its_delta():
    # the validation loss at the best epoch is the Huber loss of the restored weights
    model = _fast(GRURegressor, loss="huber", huber_delta=0.3, early_stopping=True,
                  validation_fraction=0.25, max_iter=6, n_iter_no_change=20).fit(X, Y * 3)
    n_val = int(np.ceil(0.25 * len(X)))
    r = model.predict(X[-n_val:]) - Y[-n_val:] * 3
    assert np.abs(r).max() > 0.6  # both branches are reached
    np.testing.assert_allclose(model.validation_loss_curve_[model.best_iteration_ - 1],
                               np.mean(_huber(r, 0.3)), rtol=1e-10)


@pytest.mark.parametrize("cls, G", [(LSTMRegressor, 4), (GRURegressor, 3),
                                    (SimpleRNNRegressor, 1)])
def test_initial_weights_have_the_documented_statistics(cls, G):
    """Seen by a callback before the first step: Glorot-uniform input and head weights,
    orthogonal recurrent blocks, zero biases but the LSTM forget gate (1) and the
    head bias (the mean target)."""
    seen = {}
    H, F = 32, 4
    X3 = np.random.RandomState(0).normal(size=(40, 5, F))
    y = np.random.RandomState(1).normal(loc=3.0, size=40)
    model = cls(units=H, max_iter=1, random_state=0)
    model.set_callbacks(_Hook("begin", 0, lambda est: seen.update(est.get_weights())))
    model.fit(X3, y)
    lim_ih = np.sqrt(6 / (F + G * H))
    W = seen["weight_ih_l0"]
    assert np.abs(W).max() <= lim_ih
    assert np.std(W) == pytest.approx(lim_ih / np.sqrt(3), rel=0.1)  # uniform's std
    assert abs(np.mean(W)) < 0.1 * lim_ih
    U = seen["weight_hh_l0"]
    for g in range(G):  # each gate's block is its own orthogonal matrix
        block = U[g * H:(g + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    if G > 1:
        assert not np.allclose(U[:H], U[H:2 * H])
    bias = seen["bias_ih_l0"] + seen["bias_hh_l0"]
    expected = np.zeros(G * H)
    if cls is LSTMRegressor:
        expected[H:2 * H] = 1.0  # forget gate, PyTorch order i, f, g, o
    np.testing.assert_array_equal(bias, expected)
    lim_head = np.sqrt(6 / (H + 1))
    assert np.abs(seen["head.weight"]).max() <= lim_head
    assert np.std(seen["head.weight"]) > 0.3 * lim_head
    np.testing.assert_allclose(seen["head.bias"], [y.mean()], rtol=1e-12)


# -- every invalid hyperparameter is refused before any training --------------------------------


BAD_PARAMS = [
    ("units", 0), ("units", "many"), ("n_step_features", 0), ("dropout", 1.0),
    ("recurrent_dropout", -0.1), ("loss", "mse"), ("huber_delta", 0.0),
    ("output_activation", "tanh"), ("solver", "lbfgs"), ("alpha", -1.0),
    ("batch_size", 0), ("batch_size", "all"), ("learning_rate", "cosine"),
    ("learning_rate_init", 0.0), ("power_t", -0.5), ("max_iter", 0), ("shuffle", "yes"),
    ("random_state", "seed"), ("tol", -1.0), ("warm_start", "no"), ("momentum", 1.5),
    ("nesterovs_momentum", 1), ("rho", 1.0), ("early_stopping", "yes"),
    ("validation_fraction", 1.0), ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0),
    ("n_iter_no_change", 0), ("clipnorm", 0.0), ("clipvalue", -1.0), ("dtype", "float16"),
    ("peephole", "yes"),
]


@pytest.mark.parametrize("name, value", BAD_PARAMS, ids=[f"{n}={v!r}" for n, v in BAD_PARAMS])
def test_each_invalid_hyperparameter_raises_before_training(name, value, monkeypatch):
    def no_training(*args, **kw):
        raise AssertionError("training started before the parameters were checked")

    monkeypatch.setattr(_network.RecurrentNetwork, "__init__", no_training)
    with pytest.raises(InvalidParameterError,
                       match=rf"^The '{name}' parameter of LSTMRegressor must be .* Got "):
        LSTMRegressor(**{name: value}).fit(X, Y)


@pytest.mark.parametrize("cls, name, value", [(SimpleRNNRegressor, "activation", "sigmoid"),
                                              (GRURegressor, "reset_after", "yes")])
def test_cell_parameters_are_checked_too(cls, name, value):
    with pytest.raises(InvalidParameterError, match=rf"^The '{name}' parameter of {cls.__name__}"):
        cls(**{name: value}).fit(X, Y)


# -- what mutation testing found unchecked (benchmarks/mutation.py) -------------------------


def test_interrupt_with_early_stopping_restores_an_earlier_best_epoch():
    """The best epoch is not the last one here, so keeping the last would differ."""
    kw = {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 50,
              "learning_rate_init": 0.3, "solver": "sgd", "momentum": 0.0}
    stop_at = 8
    reference = _fast(GRURegressor, max_iter=stop_at, **kw).fit(X, Y)
    assert reference.best_iteration_ < stop_at  # the setup this test needs
    model = _fast(GRURegressor, max_iter=20, **kw).set_callbacks(
        _Hook("begin", stop_at, _interrupt))
    assert _interrupted_fit(model) == [
        "fit was interrupted; the estimator keeps the weights of its best epoch (8 epochs done)."]
    np.testing.assert_array_equal(model._net.theta, reference._net.theta)


def test_interrupt_in_the_fit_task_before_any_epoch_keeps_the_previous_fit():
    class FitBegin:
        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context, **kw):
            if context.task_name != "epoch":
                raise KeyboardInterrupt

        def on_fit_task_end(self, estimator, context, **kw):
            pass

    model = _fast(GRURegressor, max_iter=2).fit(X, Y)
    before = _fitted_state(model)
    with pytest.raises(KeyboardInterrupt):
        model.set_callbacks(FitBegin()).fit(X, Y * 2)
    _assert_same_state(_fitted_state(model), before)


def test_a_callback_error_during_a_refit_leaves_the_previous_fit():
    def fail(estimator):
        raise RuntimeError("callback failed")

    model = _fast(GRURegressor, max_iter=2).fit(X, Y)
    before = _fitted_state(model)
    with pytest.raises(RuntimeError, match="callback failed"):
        model.set_callbacks(_Hook("begin", 1, fail)).fit(X, Y * 2)
    _assert_same_state(_fitted_state(model), before)


def test_divergence_messages_name_the_epoch():
    with pytest.raises(DivergenceError, match=(
            r"^Training diverged: the loss exploded \(non-finite, or a million times its "
            r"best\) at epoch 3\. Lower learning_rate_init \(now 0\.001\), set clipnorm, or "
            r"scale X and y\. The estimator was left as it was before this call\.$")):
        _fast(GRURegressor, max_iter=5).set_callbacks(_Hook("begin", 2, _blow_up)).fit(X, Y)
    model = _fast(GRURegressor, max_iter=5, early_stopping=True, n_iter_no_change=50)
    from skrnn.exceptions import DivergenceWarning

    with pytest.warns(DivergenceWarning, match=(
            r"^Training diverged \(the loss exploded\) at epoch 3; the weights of the best "
            r"epoch \([12]\) were restored\. Lower learning_rate_init or set clipnorm\.$")):
        model.set_callbacks(_Hook("begin", 2, _blow_up)).fit(X, Y)


def test_diverging_fit_raises_no_numpy_overflow_warning():
    import warnings

    model = _fast(SimpleRNNRegressor, solver="sgd", learning_rate_init=1e6, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DivergenceError):
            model.fit(X, Y * 1e3)


def test_architecture_message_lists_every_change():
    model = _fast(GRURegressor, max_iter=1, warm_start=True).fit(X, Y)
    model.set_params(units=5, dtype="float32")
    with pytest.raises(ValueError, match=(
            r"^units=\(5,\) \(fitted: \(6,\)\), dtype='float32' \(fitted: 'float64'\): ")):
        model.fit(X, Y)


def test_set_weights_messages_list_every_problem():
    sd = _fast(GRURegressor, units=3).fit(X, Y).get_weights()
    bad = _edit(sd, drop=["head.bias"], add={"foo": np.zeros(1)})
    with pytest.raises(ValueError, match=(
            r"^state_dict lacks \['head.bias'\] and has unexpected key\(s\) \['foo'\]\. This "
            r"GRURegressor with 1 layer\(s\) takes exactly \[.*\] \(the two biases of a layer "
            r"may be left out together\)\.$")):
        GRURegressor(units=3).set_weights(bad)
    bad = _edit(sd, change={"bias_ih_l0": lambda a: a[:-1], "head.weight": lambda a: a.T})
    with pytest.raises(ValueError, match=(
            r"bias_ih_l0 has shape \(8,\), expected \(9,\); head.weight has shape \(3, 1\), "
            r"expected \(1, 3\)")):
        _fast(GRURegressor, units=3).fit(X, Y).set_weights(bad)
    with pytest.raises(ValueError) as info:  # unfitted: no word about a fitted network
        GRURegressor(units=5).set_weights(sd)
    assert str(info.value) == ("units=5 does not match the weights' (3,) (the second "
                               "dimension of each weight_hh_l{k}).")


def test_set_weights_on_an_unfitted_estimator_sets_the_fitted_attributes():
    sd = _fast(GRURegressor, units=3).fit(X, np.column_stack([Y, -Y])).get_weights()
    model = GRURegressor(units=3).set_weights(sd)
    assert (model.n_outputs_, model.n_step_features_, model.n_iter_) == (2, 1, 0)
    assert model.n_timesteps_ is None and model.predict(X[:4, :5]).shape == (4, 2)
    # trained further from there: the training state starts afresh and counts on
    model.set_params(early_stopping=True, random_state=0).partial_fit(X, Y[:, None] * [1, -1])
    model.partial_fit(X, Y[:, None] * [1, -1])
    assert model.n_iter_ == 2 and model.t_ == 2 * int(len(X) * 0.9)
    assert len(model.loss_curve_) == len(model.grad_norm_curve_) == 2
    assert len(model.validation_loss_curve_) == len(model.validation_scores_) == 2
    assert model.best_loss_ is None and model.best_iteration_ in (1, 2)


def test_callbacks_receive_X_y_and_sample_weight():
    seen = []

    class Recorder:
        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None):
            seen.append(("begin", context.task_name, {"X": X, "y": y, "metadata": metadata}))

        def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None):
            seen.append(("end", context.task_name, {"X": X, "y": y, "metadata": metadata}))

    sw = np.linspace(0.5, 1.5, len(X))
    _fast(GRURegressor, max_iter=2).set_callbacks(Recorder()).fit(X, Y, sample_weight=sw)
    assert [(w, t) for w, t, _ in seen] == [("begin", "fit"), ("begin", "epoch"), ("end", "epoch"),
                                            ("begin", "epoch"), ("end", "epoch"), ("end", "fit")]
    for _, _, kw in seen:
        assert kw["X"] is X and kw["y"] is Y
        assert kw["metadata"]["sample_weight"] is sw


def test_grad_norm_curve_is_the_mean_of_the_batch_norms(monkeypatch):
    from skrnn import _training

    norms = []
    original = _training.clip_gradient

    def recording(*args, **kw):
        norms.append(original(*args, **kw))
        return norms[-1]

    monkeypatch.setattr(_training, "clip_gradient", recording)
    model = _fast(GRURegressor, max_iter=2, batch_size=50).fit(X, Y)  # 3 batches per epoch
    assert len(norms) == 6
    np.testing.assert_allclose(model.grad_norm_curve_, [np.mean(norms[:3]), np.mean(norms[3:])],
                               rtol=1e-12)


def test_shuffle_changes_the_batches_and_early_stopping_fits_one_training_sample():
    a = _fast(GRURegressor, shuffle=True).fit(X, Y)
    b = _fast(GRURegressor, shuffle=False).fit(X, Y)
    assert not np.array_equal(a._net.theta, b._net.theta)
    one = _fast(GRURegressor, early_stopping=True, validation_fraction=0.5).fit(X[:2], Y[:2])
    assert len(one.validation_loss_curve_) == one.n_iter_
    plain = _fast(GRURegressor).fit(X, Y)
    assert plain.best_validation_score_ is None and plain.validation_scores_ is None


def test_partial_fit_keeps_the_last_epoch_not_the_best(recwarn):
    """With early stopping, partial_fit tracks the best epoch but does not roll back."""
    model = _fast(GRURegressor, early_stopping=True, validation_fraction=0.25,
                  learning_rate_init=0.3, solver="sgd", momentum=0.0, max_iter=1)
    ends = []

    class EpochEnd(_Hook):
        def on_fit_task_end(self, estimator, context, **kw):
            if context.task_name == "epoch":
                ends.append(estimator._net.theta.copy())

    model.set_callbacks(EpochEnd(None, None, None))
    behind = 0
    for _ in range(10):
        model.partial_fit(X, Y)
        np.testing.assert_array_equal(model._net.theta, ends[-1])
        behind += model.best_iteration_ < model.n_iter_
    assert behind  # some epochs were worse than the best: the check above had teeth
    assert not any(issubclass(w.category, Warning) and "Maximum iterations" in str(w.message)
                   for w in recwarn)


def test_per_step_and_last_step_targets_cannot_be_mixed_when_training_on():
    X3 = X.reshape(120, 8, 1)
    Y3 = np.repeat(Y[:, None, None], 8, axis=1)
    last = _fast(GRURegressor, max_iter=1).fit(X3, Y)
    with pytest.raises(ValueError, match=(
            r"^y is 3D, but this GRURegressor was fitted with last-step \(1D/2D\) targets; "
            r"per-step and last-step targets need different networks\. Fit from scratch "
            r"\(warm_start=False\) to change\.$")):
        last.partial_fit(X3, Y3)
    per_step = _fast(GRURegressor, max_iter=1).fit(X3, Y3)
    with pytest.raises(ValueError, match=r"^y is 1D, but this GRURegressor was fitted with "
                                         r"per-step \(3D\) targets"):
        per_step.partial_fit(X3, Y)


def test_convergence_warning_text_and_verbose_messages(capsys):
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match=(
            r"^Stochastic Optimizer: Maximum iterations \(2\) reached and the optimization "
            r"hasn't converged yet\.$")):
        _fast(GRURegressor, max_iter=2).fit(X, Y)
    _fast(SimpleRNNRegressor, solver="sgd", learning_rate="adaptive", learning_rate_init=0.01,
          tol=10.0, n_iter_no_change=1, max_iter=3, verbose=True).fit(X, Y)
    assert "Setting learning rate to 0.002000" in capsys.readouterr().out
    _fast(SimpleRNNRegressor, tol=10.0, n_iter_no_change=1, verbose=True).fit(X, Y)
    assert ("Training loss did not improve more than tol=10.0 for 1 consecutive epochs. "
            "Stopping.") in capsys.readouterr().out
    _fast(SimpleRNNRegressor, tol=10.0, n_iter_no_change=1, verbose=True,
          early_stopping=True).fit(X, Y)
    assert "Validation loss did not improve more than tol=10.0" in capsys.readouterr().out


def test_validation_score_weighs_the_samples():
    from sklearn.metrics import r2_score

    sw = np.linspace(0.1, 3.0, len(X))
    model = _fast(GRURegressor, early_stopping=True, validation_fraction=0.25, max_iter=5,
                  n_iter_no_change=50).fit(X, Y, sample_weight=sw)
    n_val = int(np.ceil(0.25 * len(X)))
    want = r2_score(Y[-n_val:], model.predict(X[-n_val:]), sample_weight=sw[-n_val:])
    assert model.best_validation_score_ == pytest.approx(want, rel=1e-10)
    assert model.best_validation_score_ != pytest.approx(
        r2_score(Y[-n_val:], model.predict(X[-n_val:])), rel=1e-6)


@pytest.mark.parametrize("batch_size", [200, 50])
def test_divergence_names_the_epoch_that_exploded(batch_size):
    # the epoch that explodes is found independently: the first max_iter whose fit
    # raises (the fits before it are the same training, stopped earlier); the message
    # must name that epoch, whether the explosion shows inside a batch (non-finite
    # gradient) or at the epoch's end (a million times the best loss)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 10)), rng.normal(size=(200, 10)).sum(1)
    params = dict(units=4, random_state=0, solver="sgd", learning_rate_init=5.0,
                  activation="relu", batch_size=batch_size)
    for k in range(1, 9):
        try:
            SimpleRNNRegressor(max_iter=k, **params).fit(X, y)
        except DivergenceError as exc:
            message = str(exc)
            break
    else:
        pytest.fail("the setup did not diverge")
    assert k > 1
    assert f" at epoch {k}. " in message
