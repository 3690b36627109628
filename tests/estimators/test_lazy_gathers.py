"""get_states, input_gradients and predict_quantiles gather windows as views a block of
rows at a time (skrnn.windows.map_row_blocks), as fit and predict do (issue 21)."""

import tracemalloc

import numpy as np
import pytest

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor, windows
from skrnn.windows import PanelWindows, map_row_blocks

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LEVELS = [0.1, 0.5, 0.9]


def _panel(n_series=12, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 50, size=n_series)
    return rng.poisson(3.0, size=lengths.sum()).astype(float), lengths


def _whole_input_results(model, X, sample):
    return {
        "states": model.get_states(X),
        "gradient": model.input_gradients(X),
        "integrated": model.input_gradients(X, method="integrated", n_steps=3),
        "integrated_sample": model.input_gradients(X, method="integrated", n_steps=3,
                                                   baseline=sample),
        "quantiles": model.predict_quantiles(X),
    }


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in _leaves(tree[k])]
    if isinstance(tree, list):
        return [leaf for v in tree for leaf in _leaves(v)]
    return [tree]


@pytest.mark.parametrize("Est, horizon", [(GRURegressor, 1), (LSTMRegressor, 2)])
def test_windows_give_the_dense_results_bit_for_bit(Est, horizon, monkeypatch):
    values, lengths = _panel()
    W = PanelWindows(values, lengths, window=7, horizon=horizon)
    X, y = np.asarray(W), W.y
    model = Est(units=(3, 2), max_iter=2, random_state=0, loss="quantile",
                quantiles=LEVELS).fit(X, y)
    sample = X.mean(axis=0)  # one sample's baseline, broadcast to every row
    whole = _whole_input_results(model, X, sample)  # one block: the code before
    lazy_whole = _whole_input_results(model, W, sample)
    for a, b in zip(_leaves(whole), _leaves(lazy_whole)):
        np.testing.assert_array_equal(a, b)
    # ragged blocks of 16 rows: the windows and the dense matrix take the same blocks
    monkeypatch.setattr(windows, "CHUNK_ROWS", 16)
    assert len(W) > 16 and len(W) % 16
    dense = _whole_input_results(model, X, sample)
    lazy = _whole_input_results(model, W, sample)
    for key in whole:
        for a, b, c in zip(_leaves(whole[key]), _leaves(dense[key]), _leaves(lazy[key])):
            assert a.shape == b.shape == c.shape and a.dtype == c.dtype, key
            np.testing.assert_array_equal(b, c, err_msg=key)
            # and the blocks give the one pass's values, to rounding
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15, err_msg=key)


def test_map_row_blocks_fills_nested_results_and_keeps_empty_input():
    X3 = np.arange(2.0 * 10 * 3).reshape(10, 2, 3)
    calls = []

    def fn(block, rows):
        calls.append(rows)
        return [{"sum": block.sum(axis=(1, 2)), "first": block[:, 0]}]

    out = map_row_blocks(fn, X3, chunk=4)
    assert calls == [slice(0, 4), slice(4, 8), slice(8, 10)]
    np.testing.assert_array_equal(out[0]["sum"], X3.sum(axis=(1, 2)))
    np.testing.assert_array_equal(out[0]["first"], X3[:, 0])
    empty = map_row_blocks(lambda block, rows: block[:, 0], X3[:0], chunk=4)
    assert empty.shape == (0, 3)


def _traced_peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", ["get_states", "gradient", "integrated",
                                    "predict_quantiles"])
def test_windows_are_not_gathered_whole(method, monkeypatch):
    rng = np.random.default_rng(0)
    lengths = np.full(60, 1524)
    values = rng.poisson(3.0, size=lengths.sum()).astype(float)
    W = PanelWindows(values, lengths, window=24)
    dense_bytes = len(W) * 24 * 8  # the float64 window matrix, 17 MB
    assert len(W) > 20 * windows.CHUNK_ROWS
    model = SimpleRNNRegressor(units=1, max_iter=1, batch_size=512, random_state=0,
                               loss="quantile", quantiles=LEVELS).fit(W, W.y)
    call = {
        "get_states": lambda: model.get_states(W),
        "gradient": lambda: model.input_gradients(W),
        "integrated": lambda: model.input_gradients(W, method="integrated", n_steps=2),
        "predict_quantiles": lambda: model.predict_quantiles(W),
    }[method]
    peak, out = _traced_peak(call)
    out_bytes = sum(a.nbytes for a in _leaves(out))  # the answer itself
    # blocks of CHUNK_ROWS windows (and their copies), not the window matrix
    assert peak - out_bytes < dense_bytes / 2, (peak, out_bytes, dense_bytes)
    # the check tells: one block of every window gathers the matrix whole
    monkeypatch.setattr(windows, "CHUNK_ROWS", len(W))
    whole_peak, _ = _traced_peak(call)
    assert whole_peak - out_bytes > dense_bytes, (whole_peak, out_bytes, dense_bytes)
