"""The compiled time loops against the NumPy reference engine.

Both engines compute the same function with the same buffers; they differ only in
rounding (the compiled loops have their own tanh, within 3 ulp in float64 and 6 in
float32, on AVX-512 CPUs their own float32 LSTM sigmoid, fuse the input projection
into the step and sum the weight gradients step by step). So: float64
agrees to ~1e-12 relative, float32 to ~1e-5, for every cell variant, loss, head,
layer count and dropout masks, single- and multi-threaded. Each engine is
deterministic: the same call gives bit-identical results.
"""

import itertools

import numpy as np
import pytest
from cell_variants import CELLS, LOSSES

from skrnn.nn import _cells, _engine
from skrnn.nn._network import RecurrentNetwork

pytestmark = pytest.mark.skipif(
    not _cells.compiled_available(), reason="compiled engine not built (no C compiler?)"
)

T, B, F, N_OUT = 6, 19, 3, 2
TOL = {np.float64: 1e-11, np.float32: 2e-5}


def _setup(cell, kwargs, units, head, dtype=np.float64, masks=False, seed=0, batch=B,
           features=F, steps=T):
    B, F, T = batch, features, steps
    rng = np.random.RandomState(seed)
    net = RecurrentNetwork(cell, F, units, N_OUT, head=head, dtype=dtype, cell_kwargs=kwargs)
    net.initialize(rng)
    net.theta += rng.normal(scale=0.3, size=net.size).astype(dtype)
    X = rng.normal(size=(T, B, F)).astype(dtype)
    y_shape = (B, N_OUT) if head == "last" else (B, T, N_OUT)
    y = (np.abs(rng.normal(size=y_shape)) * 2).astype(dtype)
    sw = rng.uniform(0.5, 2.0, size=B).astype(dtype)
    mk = None
    if masks:
        mk, n_in = [], F
        for H in units:
            mk.append((((rng.rand(B, n_in) > 0.3) / 0.7).astype(dtype),
                       ((rng.rand(B, H) > 0.3) / 0.7).astype(dtype)))
            n_in = H
    return net, X, y, sw, mk


def _run(net, X, y, sw, masks, engine, threads=None, loss="squared_error"):
    with _cells.engine(engine, threads=threads):
        value = net.loss_and_gradient(X, y, sw, masks=masks, loss=loss,
                                      output_activation="identity", alpha=0.1,
                                      huber_delta=0.7)
        pred = net.predict(X, loss=loss, output_activation="identity", chunk=7)
        states = net.states(X)
    return value, net.grad.copy(), pred, states


def _close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(), 1e-3)
    assert np.abs(a - b).max() <= tol * scale, np.abs(a - b).max() / scale


def _compare(ref, fast, tol):
    _close(fast[0], ref[0], tol)
    _close(fast[1], ref[1], tol * 10)  # gradients: sums over steps and sequences
    _close(fast[2], ref[2], tol)
    for lr, lf in zip(ref[3], fast[3]):
        assert lr.keys() == lf.keys()
        for k in lr:
            _close(lf[k], lr[k], tol)


@pytest.mark.parametrize(
    "cell,kwargs,loss,units,head",
    [
        (c, k, loss, units, head)
        for (c, k), loss, units, head in itertools.product(
            CELLS, LOSSES, [(4,), (4, 5)], ["last", "sequence"]
        )
    ],
    ids=lambda v: str(v),
)
def test_compiled_matches_reference_float64(cell, kwargs, loss, units, head):
    net, X, y, sw, _ = _setup(cell, kwargs, units, head)
    ref = _run(net, X, y, sw, None, "numpy", loss=loss)
    for threads in (1, 3):
        _compare(ref, _run(net, X, y, sw, None, "compiled", threads, loss=loss),
                 TOL[np.float64])


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("features", [1, 12])
@pytest.mark.parametrize("head", ["last", "sequence"])
def test_compiled_input_side_variants(cell, kwargs, features, head):
    # F == 1: the input projection and its gradients are fused into the gate passes;
    # F > 8: they are matrix products (and so is the second layer's, with F = 10)
    net, X, y, sw, masks = _setup(cell, kwargs, (10, 9), head, masks=True,
                                  features=features)
    ref = _run(net, X, y, sw, masks, "numpy")
    _compare(ref, _run(net, X, y, sw, masks, "compiled", 1), TOL[np.float64])


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("head", ["last", "sequence"])
def test_compiled_matches_reference_with_masks(cell, kwargs, dtype, head):
    net, X, y, sw, masks = _setup(cell, kwargs, (4, 5), head, dtype=dtype, masks=True)
    ref = _run(net, X, y, sw, masks, "numpy")
    for threads in (1, 2):
        _compare(ref, _run(net, X, y, sw, masks, "compiled", threads), TOL[dtype])


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
def test_compiled_is_deterministic_whatever_the_threads(cell, kwargs):
    # 300 sequences: 19 blocks of the compiled loops, shared by 1, 2 or 3 threads
    net, X, y, sw, masks = _setup(cell, kwargs, (8, 3), "last", dtype=np.float32,
                                  masks=True, batch=300)
    a = _run(net, X, y, sw, masks, "compiled", 1)
    for threads in (2, 3, 2):
        b = _run(net, X, y, sw, masks, "compiled", threads)
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
    _compare(_run(net, X, y, sw, masks, "numpy"), a, TOL[np.float32])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
def test_compiled_matmul_shapes(dtype, trans_a):
    # full register blocks, leftover rows and leftover columns, both vector widths
    from skrnn.nn import _fastrnn

    rng = np.random.RandomState(5)
    for M, N, K in [(1, 1, 1), (5, 7, 3), (6, 16, 4), (8, 32, 9), (13, 40, 17),
                    (32, 256, 64), (33, 130, 65), (7, 3, 300)]:
        A = rng.normal(size=(K, M) if trans_a else (M, K)).astype(dtype)
        Bm = rng.normal(size=(K, N)).astype(dtype)
        C0 = rng.normal(size=(M, N)).astype(dtype)
        ref = (A.T if trans_a else A).astype(np.float64) @ Bm
        for accumulate in (False, True):
            C = C0.copy()
            _fastrnn.matmul(M, N, K, A, Bm, C, trans_a, accumulate)
            expected = ref + C0 if accumulate else ref
            np.testing.assert_allclose(C, expected, rtol=TOL[dtype] * 10,
                                       atol=TOL[dtype] * 10 * np.abs(expected).max())


def test_compiled_tanh_accuracy():
    from skrnn.nn import _fastrnn

    for dt, ulps in ((np.float32, 6), (np.float64, 3)):
        x = np.concatenate([np.linspace(-25, 25, 200_001), np.logspace(-40, 1.5, 2000),
                            -np.logspace(-40, 1.5, 2000)]).astype(dt)
        y = x.copy()
        _fastrnn.tanh_inplace(y)
        ref = np.tanh(x.astype(np.float64)) if dt == np.float32 else np.tanh(
            x.astype(np.longdouble))
        err = np.abs(y - ref) / np.spacing(np.abs(ref).astype(dt))
        assert float(err.max()) <= ulps
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    _fastrnn.tanh_inplace(special)
    np.testing.assert_array_equal(special[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(special[1]) and not np.signbit(special[0]) and np.isnan(special[4])


@pytest.mark.skipif(not getattr(_engine._fastrnn, "AVX512", 0),
                    reason="the AVX-512 kernels need a CPU with AVX-512")
def test_avx512_activations_accuracy():
    # the LSTM gate pass's own tanh and sigmoid (float32, H a multiple of 16); the
    # whole float32 range was checked once, outside the tests: tanh within 5.0 ulp,
    # sigmoid within 4.5 ulp where the result is a normal float
    from skrnn.nn import _fastrnn

    x = np.concatenate([np.linspace(-70, 70, 400_001), np.logspace(-40, 1.9, 4000),
                        -np.logspace(-40, 1.9, 4000)]).astype(np.float32)
    x64 = x.astype(np.float64)
    t = x.copy()
    _fastrnn.x16_inplace(t, "tanh")
    ref = np.tanh(x64)
    assert float((np.abs(t - ref) / np.spacing(np.abs(ref).astype(np.float32))).max()) <= 6
    s = x.copy()
    _fastrnn.x16_inplace(s, "sigmoid")  # sigmoid(2 x): the gates' weights are halved
    ref = 1 / (1 + np.exp(-2 * x64))
    normal = ref >= np.finfo(np.float32).tiny
    ulps = np.abs(s - ref)[normal] / np.spacing(ref[normal].astype(np.float32))
    assert float(ulps.max()) <= 5
    assert float(np.abs(s - ref)[~normal].max()) < np.finfo(np.float32).tiny
    assert (s >= 0).all() and (s <= 1).all()

    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30], np.float32)
    t, s = special.copy(), special.copy()
    _fastrnn.x16_inplace(t, "tanh")
    _fastrnn.x16_inplace(s, "sigmoid")
    assert t[0] == 0 and not np.signbit(t[0]) and np.signbit(t[1])
    np.testing.assert_allclose(t[[2, 3, 5, 6]], [1, -1, 1, -1], rtol=6 * 2.0**-24)
    np.testing.assert_array_equal(s[[0, 1, 2, 3, 5, 6]], [0.5, 0.5, 1, 0, 1, 0])
    assert np.isnan(t[4]) and np.isnan(s[4])
    # a tail shorter than one vector, and bad input
    y = np.full(5, 0.25, np.float32)
    _fastrnn.x16_inplace(y, "sigmoid")
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-0.5)), rtol=1e-6)
    with pytest.raises(TypeError, match="float32"):
        _fastrnn.x16_inplace(np.zeros(3), "tanh")
    with pytest.raises(ValueError, match="'tanh' or 'sigmoid'"):
        _fastrnn.x16_inplace(y, "relu")


@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
@pytest.mark.parametrize("units", [(16,), (32, 16)], ids=str)
@pytest.mark.parametrize("features", [1, 3])
@pytest.mark.parametrize("head", ["last", "sequence"])
def test_compiled_lstm_float32_with_vector_hidden_sizes(peephole, units, features, head):
    # float32 with H a multiple of 16: on AVX-512 CPUs the plain LSTM's gate pass runs
    # in csrc/gates_avx512.h (its own sigmoid); its results must match the reference, its
    # gradients too (the backward pass reads the stored gates)
    net, X, y, sw, masks = _setup("lstm", {"peephole": peephole}, units, head,
                                  dtype=np.float32, masks=True, features=features,
                                  batch=40)
    ref = _run(net, X, y, sw, masks, "numpy", loss="poisson")
    for threads in (1, 2):
        _compare(ref, _run(net, X, y, sw, masks, "compiled", threads, loss="poisson"),
                 TOL[np.float32])


def test_engine_switch_and_bad_input():
    from skrnn.nn import _fastrnn

    with pytest.raises(ValueError, match="engine"):
        _cells.set_engine("cuda")
    assert _cells.get_engine() in ("compiled", "numpy")
    with _cells.engine("numpy"):
        assert _cells.get_engine() == "numpy"
    x = np.zeros(4, dtype=np.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        _fastrnn.tanh_inplace(x)
    with pytest.raises(ValueError, match="elements"):  # a wrongly sized buffer
        _fastrnn.forward(0, 2, 3, 1, 4, np.zeros(5), np.zeros(4), np.zeros(4),
                         np.zeros(16), None, np.zeros(36), None, None, None, None, None,
                         False, True, False, 16, 1)


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("steps", [1, 2])
def test_compiled_matches_reference_for_one_and_two_steps(cell, kwargs, steps):
    # the loops skip the products with the (zero) initial state and its gradient,
    # which the NumPy engine computes: with one step every recurrent product is
    # skipped, with two, half of them
    for head in ("last", "sequence"):
        net, X, y, sw, masks = _setup(cell, kwargs, (4, 5), head, masks=True, steps=steps)
        ref = _run(net, X, y, sw, masks, "numpy")
        fast = _run(net, X, y, sw, masks, "compiled", 2)
        _compare(ref, fast, TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_adam_gives_the_same_bits(dtype):
    from skrnn.nn._optimizers import Adam

    rng = np.random.RandomState(3)
    theta0 = rng.normal(size=1001).astype(dtype)
    grads = [rng.normal(size=1001).astype(dtype) for _ in range(5)]
    out = {}
    for eng in ("numpy", "compiled"):
        theta = theta0.copy()
        opt = Adam(theta.size, dtype, 0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
        with _cells.engine(eng):
            for g in grads:
                opt.step(theta, g)
        out[eng] = (theta, opt.m, opt.v)
    for a, b in zip(out["numpy"], out["compiled"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_compiled_small_batches(cell, kwargs, batch):
    # batches of at most four sequences take the compiled loops' own small products
    rng = np.random.RandomState(4)
    net = RecurrentNetwork(cell, 9, (6, 5), 1, cell_kwargs=kwargs)
    net.initialize(rng)
    net.theta += rng.normal(scale=0.3, size=net.size)
    X = rng.normal(size=(4, batch, 9))
    y = rng.normal(size=(batch, 1))
    ref = _run(net, X, y, None, None, "numpy")
    _compare(ref, _run(net, X, y, None, None, "compiled", 1), TOL[np.float64])


def _kernel_threads():
    from skrnn.nn._threads import engine_call

    with engine_call():
        return _engine.plan(50, 256, 1, 64, 256)[1]


def test_threads_follow_the_blas_limit_and_joblib_workers():
    # in a process of its own, the loops take at most the BLAS limit...
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        assert _kernel_threads() == 1
    # ...and joblib's workers (GridSearchCV(n_jobs=2)) get cpu_count // n_jobs each
    import os

    from joblib import Parallel, delayed

    counts = Parallel(n_jobs=2, backend="loky")(delayed(_kernel_threads)() for _ in range(2))
    assert max(counts) <= max(1, (os.cpu_count() or 1) // 2)


def test_blas_is_single_threaded_through_the_batches_and_restored_after_fit(monkeypatch):
    # the loops parallelise themselves, so BLAS runs on one thread through the whole
    # pass over the batches (optimizer steps included), and gets its limit back after
    from threadpoolctl import threadpool_info, threadpool_limits

    from skrnn import LSTMRegressor
    from skrnn.nn._optimizers import Adam

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen = []
    step = Adam.step

    def spy(self, theta, grad):
        seen.append(blas_threads())
        return step(self, theta, grad)

    monkeypatch.setattr(Adam, "step", spy)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(24, 5, 1)), rng.normal(size=24)
    with threadpool_limits(2):
        before = blas_threads()
        LSTMRegressor(units=4, batch_size=8, max_iter=2, random_state=0).fit(X, y)
        after = blas_threads()
    assert before and len(seen) == 6  # 3 batches, 2 epochs
    assert all(counts == [1] * len(before) for counts in seen)
    assert after == before


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
def test_workspace_reuse_gives_the_same_bits(cell, kwargs):
    # one workspace across batches of changing size (a fit's last batch is shorter,
    # a validation pass has no store): every result equals a call with fresh buffers
    from skrnn.nn._workspace import Workspace

    net, X, y, sw, masks = _setup(cell, kwargs, (7, 5), "last", dtype=np.float32, batch=40)
    ws = Workspace()
    kw = dict(loss="huber", output_activation="identity", alpha=0.1, huber_delta=0.7)
    for stop in (40, 13, 40, 1, 29):
        fresh = net.loss_and_gradient(X[:, :stop], y[:stop], sw[:stop], **kw)
        g_fresh = net.grad.copy()
        z_fresh = net.forward(X[:, :stop], store=False)[0]
        reused = net.loss_and_gradient(X[:, :stop], y[:stop], sw[:stop], ws=ws, **kw)
        assert reused == fresh
        np.testing.assert_array_equal(net.grad, g_fresh)
        np.testing.assert_array_equal(net.forward(X[:, :stop], store=False, ws=ws)[0],
                                      z_fresh)
    assert ws.nbytes > 0


@pytest.mark.parametrize("cell,kwargs", CELLS, ids=str)
@pytest.mark.parametrize("units", [(9,), (6, 9), (16,), (32, 16)], ids=str)
def test_inference_pass_gives_the_training_pass_bits(cell, kwargs, units):
    # without store, the compiled loops keep states, c and gates in their own scratch
    # (the top layer only its last state): the same arithmetic as a training pass,
    # so the same bits, for several blocks with a short last one, on 1 and 2 threads
    net, X, *_ = _setup(cell, kwargs, units, "last", dtype=np.float32, batch=300)
    with _cells.engine("compiled", threads=1):
        z_train = net.forward(X, store=True)[0]
    for threads in (1, 2):
        with _cells.engine("compiled", threads=threads):
            np.testing.assert_array_equal(net.forward(X, store=False)[0], z_train)
            for chunk in (7, 300):
                np.testing.assert_array_equal(
                    net.predict(X, loss="squared_error", output_activation="identity",
                                chunk=chunk), z_train)


def test_inference_pass_takes_no_training_buffers():
    from skrnn.nn import _fastrnn

    T_, B_, H_ = 3, 5, 4
    X = np.zeros((T_, B_, 1), np.float32)
    w = [np.zeros((1, 4 * H_), np.float32), np.zeros(4 * H_, np.float32),
         np.zeros((H_, 4 * H_), np.float32)]
    Hs = np.empty((1, B_, H_), np.float32)
    Cs = np.zeros((T_ + 1, B_, H_), np.float32)
    with pytest.raises(TypeError, match="must be None when store is false"):
        _fastrnn.forward(1, T_, B_, 1, H_, X, *w, None, Hs, Cs, None, None, None, None,
                         False, False, True, 16, 1)
    with pytest.raises(TypeError, match="needed when store is true"):
        _fastrnn.forward(1, T_, B_, 1, H_, X, *w, None, np.zeros((T_ + 1, B_, H_), np.float32),
                         Cs, None, None, None, None, False, True, False, 16, 1)
    Hs[...] = np.nan  # the ring writes every element of the last state
    _fastrnn.forward(1, T_, B_, 1, H_, X, *w, None, Hs, None, None, None, None, None, False,
                     False, True, 16, 1)
    np.testing.assert_array_equal(Hs, 0)


def _predict_two_threads(args):
    net, X = args
    with _cells.engine("compiled", threads=2):
        return net.predict(X, loss="squared_error", output_activation="identity")


def test_worker_threads_survive_fork():
    # the loops' worker threads are started once and kept; a forked child (the
    # default start method of multiprocessing on Linux) has none of them and must
    # start its own instead of waiting for ever on the parent's
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    net, X, *_ = _setup("lstm", {}, (16,), "last", dtype=np.float32, batch=300)
    expected = _predict_two_threads((net, X))  # the parent's workers now exist
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map_async(_predict_two_threads, [(net, X)] * 2).get(timeout=60)
    for g in got:
        np.testing.assert_array_equal(g, expected)
    np.testing.assert_array_equal(_predict_two_threads((net, X)), expected)


def test_concurrent_engine_calls_from_python_threads():
    # the compiled loops release the GIL and keep one block of work memory for the
    # next call: calls running at the same time must each get their own
    from concurrent.futures import ThreadPoolExecutor

    nets = [_setup("lstm", {}, (16,), "last", dtype=np.float32, batch=300, seed=s)
            for s in range(4)]
    kw = dict(loss="squared_error", output_activation="identity", alpha=0.0)

    def work(k):
        net, X, y, sw, _ = nets[k % 4]
        out = []
        for _ in range(5):
            out.append(net.loss_and_gradient(X, y, sw, **kw))
            out.append(net.predict(X, loss="squared_error", output_activation="identity"))
        return out

    serial = [work(k) for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(work, range(8)))
    for k, got in enumerate(parallel):
        for a, b in zip(serial[k % 4], got):
            np.testing.assert_array_equal(a, b)
