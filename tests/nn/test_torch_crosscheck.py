"""Weights in PyTorch's layout: skrnn and torch.nn give the same outputs.

Needs the optional extra ``torch==2.13.0`` (``pip install -e .[torch]``); without it
these tests are skipped and the reason is printed in the summary.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is an optional extra (pip install 'torch==2.13.0')"
)

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CASES = [
    pytest.param(SimpleRNNRegressor, {"activation": "tanh"}, lambda F, H, L: torch.nn.RNN(
        F, H, num_layers=L, batch_first=True, nonlinearity="tanh"), id="rnn-tanh"),
    pytest.param(SimpleRNNRegressor, {"activation": "relu"}, lambda F, H, L: torch.nn.RNN(
        F, H, num_layers=L, batch_first=True, nonlinearity="relu"), id="rnn-relu"),
    pytest.param(LSTMRegressor, {}, lambda F, H, L: torch.nn.LSTM(
        F, H, num_layers=L, batch_first=True), id="lstm"),
    pytest.param(GRURegressor, {}, lambda F, H, L: torch.nn.GRU(
        F, H, num_layers=L, batch_first=True), id="gru"),
]


def _torch_predict(rnn, head, X):
    with torch.no_grad():
        out, _ = rnn(torch.from_numpy(X))
        return head(out[:, -1]).numpy()


@pytest.mark.parametrize("cls, kw, make", CASES)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_exported_weights_load_into_torch(cls, kw, make, n_layers):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 7, 3))
    y = np.column_stack([X[:, -1, 0], X[:, 0, 1]])
    model = cls(units=(5,) * n_layers, max_iter=3, random_state=0, **kw).fit(X, y)
    sd = model.get_weights()
    rnn = make(3, 5, n_layers).double()
    head = torch.nn.Linear(5, 2).double()
    rnn.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items() if "head" not in k})
    head.load_state_dict({"weight": torch.from_numpy(sd["head.weight"]),
                          "bias": torch.from_numpy(sd["head.bias"])})
    np.testing.assert_allclose(model.predict(X), _torch_predict(rnn, head, X), atol=1e-5)


@pytest.mark.parametrize("cls, kw, make", CASES)
def test_model_built_from_torch_weights_predicts_like_torch(cls, kw, make):
    torch.manual_seed(0)
    rnn, head = make(2, 4, 2).double(), torch.nn.Linear(4, 1).double()
    with torch.no_grad():  # non-zero biases, so the two-bias bookkeeping is exercised
        for p in rnn.parameters():
            p.uniform_(-0.6, 0.6)
    sd = {k: v.numpy() for k, v in rnn.state_dict().items()}
    sd.update({"head.weight": head.weight.detach().numpy(),
               "head.bias": head.bias.detach().numpy()})
    model = cls(units=(4, 4), **kw).set_weights(sd)
    X = np.random.RandomState(1).normal(size=(10, 9, 2))
    np.testing.assert_allclose(model.predict(X), _torch_predict(rnn, head, X).ravel(), atol=1e-5)
    # a fitted-from-weights model accepts any window length
    assert model.predict(X[:, :4]).shape == (10,)


def test_variants_without_torch_counterpart_refuse_strict_loading():
    X = np.random.RandomState(0).normal(size=(20, 5))
    sd = GRURegressor(units=3, reset_after=False, max_iter=1).fit(X, X[:, -1]).get_weights()
    with pytest.raises(RuntimeError, match="reset_before_l0"):
        torch.nn.GRU(1, 3, batch_first=True).load_state_dict(
            {k: torch.from_numpy(v) for k, v in sd.items() if "head" not in k})
