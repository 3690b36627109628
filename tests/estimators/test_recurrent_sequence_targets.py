"""Per-step (sequence-to-sequence) targets: a 3D y trains a dense head on every step."""

import numpy as np
import pytest

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

H = 10  # the teaching notebook's 10-ahead setup


def ten_ahead(n, n_steps=50, seed=0):
    """Sine series of ``n_steps + H`` points; ``Y[:, t, :]`` = the H values after step t."""
    rng = np.random.RandomState(seed)
    f1, f2, o1, o2 = rng.rand(4, n, 1)
    t = np.linspace(0, 1, n_steps + H)
    s = (0.5 * np.sin((t - o1) * (f1 * 10 + 10)) + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
         + 0.1 * (rng.rand(n, n_steps + H) - 0.5))
    X = s[:, :n_steps, None]
    Y = np.stack([s[:, t + 1 : t + 1 + H] for t in range(n_steps)], axis=1)
    return X, Y


@pytest.fixture(scope="module")
def data():
    return ten_ahead(64, n_steps=12, seed=1)


def _fast(cls=LSTMRegressor, **kw):
    return cls(**{"units": 6, "max_iter": 3, "batch_size": 16, "random_state": 0, **kw})


def test_shapes_and_last_step_prediction(data):
    X, Y = data
    model = _fast().fit(X, Y)
    assert model.n_outputs_ == H and model.n_timesteps_ == 12
    assert model.predict(X).shape == (64, H)
    # 2D step-major X is the same data
    np.testing.assert_array_equal(model.predict(X.reshape(64, -1)), model.predict(X))
    # one output per step still comes back 2D: (n_samples, 1)
    assert _fast().fit(X, Y[:, :, :1]).predict(X).shape == (64, 1)
    # predict is the last step of the per-step head: rebuild it from states and weights
    h = model.get_states(X)[-1]["h"]  # (n, T, units)
    w = model.get_weights()
    full = h @ w["head.weight"].T + w["head.bias"]
    np.testing.assert_allclose(model.predict(X), full[:, -1], rtol=1e-12)


@pytest.mark.parametrize("cls", [LSTMRegressor, GRURegressor])
def test_per_step_training_learns_ten_ahead(cls):
    X, Y = ten_ahead(600, seed=0)
    Xt, Yt = ten_ahead(200, seed=1)
    model = cls(units=16, max_iter=8, batch_size=32, learning_rate_init=0.01,
                random_state=0, dtype="float32").fit(X, Y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    pred = model.predict(Xt)
    mse = np.mean((pred - Yt[:, -1]) ** 2)
    naive = np.mean((Xt[:, -1] - Yt[:, -1]) ** 2)  # repeat the last value 10 times
    assert mse < 0.25 * naive
    assert model.score(Xt, Yt) == pytest.approx(model.score(Xt, Yt[:, -1]))
    assert model.score(Xt, Yt) > 0.7


def test_single_step_sequence_head_equals_last_step_head(data):
    """With one time step the per-step head *is* the last-step head: same fit."""
    X, Y = data
    X1, Y1 = X[:, -1:, :], Y[:, -1:, :]  # (n, 1, 1) and (n, 1, H)
    kw = dict(max_iter=4, dropout=0.1, shuffle=True)
    seq = _fast(GRURegressor, **kw).fit(X1, Y1)
    last = _fast(GRURegressor, **kw).fit(X1, Y1[:, 0, :])
    np.testing.assert_allclose(seq.loss_curve_, last.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(seq.predict(X1), last.predict(X1), rtol=1e-9, atol=1e-12)


def test_loss_averages_over_every_step(data):
    """The training loss is the mean over sequences, steps and outputs."""
    X, Y = data
    model = _fast(SimpleRNNRegressor, alpha=0.0, learning_rate_init=1e-12, max_iter=1,
                  batch_size=64, shuffle=False).fit(X, Y)
    h = model.get_states(X)[-1]["h"]
    w = model.get_weights()
    Z = h @ w["head.weight"].T + w["head.bias"]
    np.testing.assert_allclose(model.loss_, 0.5 * np.mean((Z - Y) ** 2), rtol=1e-6)


def test_early_stopping_validates_on_all_steps_of_the_last_sequences(data):
    X, Y = data
    model = _fast(early_stopping=True, validation_fraction=0.25, max_iter=12,
                  n_iter_no_change=3, learning_rate_init=0.05).fit(X, Y)
    n_val = 16
    best = model.best_iteration_
    assert best == 1 + int(np.argmin(model.validation_loss_curve_))
    # the restored weights give exactly the best validation loss, over all steps
    h = model.get_states(X[-n_val:])[-1]["h"]
    w = model.get_weights()
    Z = h @ w["head.weight"].T + w["head.bias"]
    np.testing.assert_allclose(0.5 * np.mean((Z - Y[-n_val:]) ** 2),
                               model.validation_loss_curve_[best - 1], rtol=1e-10)
    assert np.isfinite(model.best_validation_score_)


def test_partial_fit_sample_weight_and_poisson(data):
    X, Y = data
    model = _fast()
    model.partial_fit(X, Y).partial_fit(X, Y)
    assert model.n_iter_ == 2 and model.predict(X).shape == (64, H)
    with pytest.raises(ValueError, match="per-step"):
        model.partial_fit(X, Y[:, -1, :])  # a last-step y on a per-step network
    sw = np.ones(64)
    sw[::2] = 0
    kw = dict(batch_size=64, shuffle=False)
    a = _fast(**kw).fit(X, Y, sample_weight=sw)
    b = _fast(**{**kw, "batch_size": 32}).fit(X[sw > 0], Y[sw > 0])
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)
    with pytest.raises(ValueError, match="non-negative"):
        _fast(loss="poisson").fit(X, Y)
    counts = _fast(loss="poisson").fit(X, np.abs(Y) * 3)
    assert np.all(counts.predict(X) > 0)


@pytest.mark.parametrize(
    "make_y,match",
    [
        (lambda Y: Y[:, :-1], "per time step of X: X has 12 time steps, y has 11"),
        (lambda Y: Y[:-1], "hold 63 sequences, but X holds 64"),
        (lambda Y: np.where(Y > 0.5, np.nan, Y), "NaN or infinite"),
        (lambda Y: Y.astype(str).astype(object) + "x", "must be numeric"),
        (lambda Y: Y[:, :, :0], "at least one output"),
        (lambda Y: Y[..., None], "4D"),
    ],
)
def test_invalid_per_step_targets_raise_clear_errors(data, make_y, match):
    X, Y = data
    with pytest.raises(ValueError, match=match):
        _fast().fit(X, make_y(Y))
