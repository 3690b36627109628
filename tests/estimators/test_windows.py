"""Windows as views (skrnn/windows.py): bit-identical fits, O(panel) memory, local fits."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from skrnn import GRURegressor, LSTMRegressor
from skrnn.lags import make_supervised
from skrnn.windows import (
    PanelWindows,
    fit_local,
    lazy_source,
    predict_local,
    predict_to_file,
    series_windows,
    step_levels,
    window_levels,
)


def _panel(n_series=12, seed=0, dtype=float):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 50, size=n_series)
    return rng.poisson(3.0, size=lengths.sum()).astype(dtype), lengths


def test_series_windows_is_a_view_of_the_values():
    v = np.arange(10.0)
    W = series_windows(v, 4)
    assert W.shape == (7, 4) and np.shares_memory(W, v)
    np.testing.assert_array_equal(W[2], v[2:6])
    V = np.arange(20.0).reshape(10, 2)  # two features per step
    W2 = series_windows(V, 3)
    assert W2.shape == (8, 3, 2) and np.shares_memory(W2, V)
    np.testing.assert_array_equal(W2[1], V[1:4])
    with pytest.raises(ValueError, match="no window of 11"):
        series_windows(v, 11)


def test_panel_windows_match_make_supervised():
    values, lengths = _panel(5)
    keys = np.repeat(np.arange(5), lengths)
    frame = pd.DataFrame({"g": keys, "t": np.concatenate([np.arange(n) for n in lengths]),
                          "v": values})
    X, y = make_supervised(frame, "v", lags=6, horizon=2, group="g", date="t")
    W = PanelWindows(values, lengths, window=6, horizon=2)
    # make_supervised's row t holds lags 6..1 of t and targets t, t+1
    np.testing.assert_array_equal(np.asarray(W), X.to_numpy())
    np.testing.assert_array_equal(W.y, y.to_numpy())
    assert W.shape == X.shape and len(W) == len(X)
    np.testing.assert_array_equal(W[[3, 0]], X.to_numpy()[[3, 0]])
    np.testing.assert_array_equal(W[4], X.to_numpy()[4])


def test_panel_windows_with_covariates_and_time_order():
    values, lengths = _panel(4)
    cov = np.arange(len(values), dtype=float)
    W = PanelWindows(np.column_stack([values, cov]), lengths, window=3, order="time")
    assert W.shape == (len(W), 6) and W.n_step_features == 2
    row = W[0]  # step-major: value, covariate of the oldest step first
    s = W.starts[0]
    np.testing.assert_array_equal(row, np.column_stack([values, cov])[s : s + 3].ravel())
    assert W.y[0] == values[s + 3]
    # time order: windows aligned on their series' end, oldest first
    ends = W.starts + 3 - np.cumsum(lengths)[W.series]
    assert np.all(np.diff(ends) >= 0)
    last = PanelWindows(values, lengths, window=3, horizon=0)
    assert len(last) == len(lengths)
    np.testing.assert_array_equal(last[0], values[lengths[0] - 3 : lengths[0]])


def test_panel_windows_bad_input():
    with pytest.raises(ValueError, match="summing to the 5 values"):
        PanelWindows(np.arange(5.0), [2, 2], window=1)
    with pytest.raises(ValueError, match="No window fits"):
        PanelWindows(np.arange(5.0), [3, 2], window=3, horizon=1)
    with pytest.raises(ValueError, match="window must be an int"):
        PanelWindows(np.arange(5.0), window=0)
    with pytest.raises(TypeError, match="rows only"):
        PanelWindows(np.arange(5.0), window=2)[:, 0]


def test_window_relative_levels_and_windows_at_chosen_starts():
    w = np.array([[1.0, 2.0, 6.0], [4.0, 4.0, 1.0]])
    np.testing.assert_array_equal(window_levels(w, "last"), [6.0, 1.0])
    np.testing.assert_array_equal(window_levels(w, "first"), [1.0, 4.0])
    np.testing.assert_array_equal(window_levels(w, "mean"), [3.0, 3.0])
    np.testing.assert_array_equal(window_levels(w, "mean", 2), [4.0, 2.5])  # last 2
    np.testing.assert_array_equal(step_levels(w, "last"), w)
    np.testing.assert_array_equal(step_levels(w, "mean"), [[1, 1.5, 3], [4, 4, 3]])
    with pytest.raises(ValueError, match="how must be"):
        window_levels(w, "median")
    # level: the target column of every gathered window (and its targets) relative to
    # the window's level; the covariate column untouched
    values, lengths = _panel(3)
    cov = np.sin(np.arange(len(values), dtype=float))
    V = np.column_stack([values, cov])
    for level in ("last", "mean", "first"):
        W = PanelWindows(V, lengths, window=4, horizon=2, level=level)
        plain = PanelWindows(V, lengths, window=4, horizon=2)
        seqs, raw = W.sequences(), plain.sequences()
        ref = window_levels(raw[:, :, 0], level)
        np.testing.assert_array_equal(seqs[:, :, 0], raw[:, :, 0] - ref[:, None])
        np.testing.assert_array_equal(seqs[:, :, 1], raw[:, :, 1])
        np.testing.assert_array_equal(W.y, plain.y - ref[:, None])
        np.testing.assert_array_equal(np.asarray(W), seqs.reshape(len(W), -1))
    with pytest.raises(ValueError, match="level must be"):
        PanelWindows(values, window=3, level="median")
    # windows at starts a caller picks (in its order), without targets
    W = PanelWindows.at(V, [5, 0, 9], np.arange(3), level="last")
    assert len(W) == 3 and W.shape == (3, 6)
    np.testing.assert_array_equal(W.sequences()[1], V[0:3] - [[V[2, 0], 0.0]])
    with pytest.raises(AttributeError, match="no targets"):
        _ = W.y
    with pytest.raises(ValueError, match="level must be"):
        PanelWindows.at(V, [0], np.arange(3), level="median")


def test_cross_validation_keeps_windows_lazy():
    from sklearn.model_selection import TimeSeriesSplit, cross_val_score

    values, lengths = _panel(6)
    W = PanelWindows(values, lengths, window=5, order="time")
    part = W[np.arange(10), ...]
    assert isinstance(part, PanelWindows) and np.array_equal(np.asarray(part), W[:10])
    np.testing.assert_array_equal(part.y, W.y[:10])
    est = GRURegressor(units=3, max_iter=2, random_state=0)
    cv = TimeSeriesSplit(3)
    np.testing.assert_array_equal(cross_val_score(est, W, W.y, cv=cv),
                                  cross_val_score(est, np.asarray(W), W.y, cv=cv))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("Est", [GRURegressor, LSTMRegressor])
def test_view_backed_fit_equals_copied_fit_bit_for_bit(Est, dtype):
    values, lengths = _panel()
    W = PanelWindows(values, lengths, window=7, horizon=2, order="time")
    X, y = np.asarray(W), W.y
    kw = {"units": 5, "max_iter": 3, "batch_size": 16, "random_state": 0, "dtype": dtype,
          "shuffle": True, "early_stopping": True, "validation_fraction": 0.2,
          "n_iter_no_change": 10}
    dense = Est(**kw).fit(X, y)
    lazy = Est(**kw).fit(W, y)
    assert dense._net.theta.dtype == lazy._net.theta.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dense._net.theta, lazy._net.theta)
    assert dense.loss_curve_ == lazy.loss_curve_
    assert dense.validation_loss_curve_ == lazy.validation_loss_curve_
    np.testing.assert_array_equal(dense.predict(X), lazy.predict(W))
    np.testing.assert_array_equal(dense.predict(X), lazy.predict(X))
    assert lazy.n_features_in_ == X.shape[1]


def test_strided_view_fit_equals_copied_fit_and_sample_weight():
    v = _panel(1)[0]
    T = 6
    view = series_windows(v, T)[:-1]  # a strided, non-owning view: gathered per batch
    assert not view.flags.owndata and not view.flags.c_contiguous
    y = v[T:]
    sw = np.linspace(0.5, 1.5, len(y))
    kw = {"units": 4, "max_iter": 2, "batch_size": 8, "random_state": 1}
    dense = GRURegressor(**kw).fit(np.ascontiguousarray(view), y, sample_weight=sw)
    lazy = GRURegressor(**kw).fit(view, y, sample_weight=sw)
    np.testing.assert_array_equal(dense._net.theta, lazy._net.theta)
    np.testing.assert_array_equal(dense.predict(np.ascontiguousarray(view)),
                                  lazy.predict(view))


def test_window_input_is_checked_like_an_array():
    values, lengths = _panel(3)
    W = PanelWindows(values, lengths, window=5)
    reg = GRURegressor(units=3, max_iter=1, random_state=0)
    with pytest.raises(ValueError, match="y has 3 targets"):
        reg.fit(W, W.y[:3])
    bad = values.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        reg.fit(PanelWindows(bad, lengths, window=5), W.y)
    reg.fit(W, W.y)
    with pytest.raises(ValueError, match="X has 4 features, but GRURegressor is expecting 5"):
        reg.predict(PanelWindows(values, lengths, window=4))
    five = np.column_stack([values] * 5)  # 5 columns again, but 1 step of 5 features
    with pytest.raises(ValueError, match="1 time steps of 5 features, but this GRURegressor"):
        reg.predict(PanelWindows(five, lengths, window=1))
    # a plain slice of an array is not a window view: it takes the dense path
    X = np.asarray(W)
    assert lazy_source(X[:, :3]) is None and lazy_source(series_windows(values, 5)) is not None


def test_window_path_memory_stays_of_the_order_of_the_panel():
    rng = np.random.default_rng(0)
    lengths = np.full(150, 400)
    values = rng.poisson(3.0, size=lengths.sum()).astype(np.float32)
    W = PanelWindows(values, lengths, window=28)
    y = W.y
    dense_bytes = len(W) * 28 * 4  # the float32 window matrix make_supervised builds
    reg = GRURegressor(units=4, max_iter=1, batch_size=256, random_state=0,
                       dtype="float32")
    tracemalloc.start()
    try:
        reg.fit(W, y)  # predict gathers the engine's chunk of rows at a time
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a few int64 index arrays of n_windows (8 B each) and one batch, not 28 * 4 B
    # per window
    assert peak < dense_bytes / 3, (peak, dense_bytes)


@pytest.mark.parametrize("Est", [GRURegressor, LSTMRegressor])
def test_holdout_in_chunks_equals_the_dense_holdout_bit_for_bit(Est, monkeypatch):
    from skrnn import windows

    values, lengths = _panel()
    W = PanelWindows(values, lengths, window=7, order="time")
    X, y = np.asarray(W), W.y
    kw = {"units": 4, "max_iter": 3, "batch_size": 32, "random_state": 0,
          "early_stopping": True, "validation_fraction": 0.4}
    whole = Est(**kw).fit(X, y)  # the hold-out (~150 windows) in one pass
    monkeypatch.setattr(windows, "CHUNK_ROWS", 16)  # ~10 chunks, a ragged last
    assert int(np.ceil(0.4 * len(y))) % 16
    dense, lazy = Est(**kw).fit(X, y), Est(**kw).fit(W, y)
    np.testing.assert_array_equal(dense._net.theta, lazy._net.theta)
    assert dense.validation_loss_curve_ == lazy.validation_loss_curve_
    assert dense.validation_scores_ == lazy.validation_scores_
    # and the chunks give the validation losses of one pass, to rounding
    np.testing.assert_allclose(dense.validation_loss_curve_, whole.validation_loss_curve_,
                               rtol=1e-12)


def test_early_stopping_holdout_of_windows_is_not_gathered_whole():
    from skrnn import windows

    rng = np.random.default_rng(0)
    lengths = np.full(200, 500)
    values = rng.poisson(3.0, size=lengths.sum()).astype(float)
    W = PanelWindows(values, lengths, window=24)
    y = W.y
    reg = GRURegressor(units=4, max_iter=1, batch_size=256, random_state=0,
                       early_stopping=True, validation_fraction=0.8)
    n_val = int(np.ceil(0.8 * len(y)))
    holdout_bytes = n_val * 24 * 8  # the float64 hold-out, gathered whole
    assert n_val > 5 * windows.CHUNK_ROWS
    tracemalloc.start()
    try:
        reg.fit(W, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reg.validation_loss_curve_ and np.isfinite(reg.validation_loss_curve_[0])
    # one chunk of windows (and its time-major copy) and vectors of n_windows, not
    # the hold-out: 0.30 of holdout_bytes; the previous code peaked at 2.0 times
    assert peak < holdout_bytes / 2, (peak, holdout_bytes)


def _local_data(n_series=4):
    values, lengths = _panel(n_series, seed=3)
    W = PanelWindows(values, lengths, window=5)
    Xs = {f"s{i}": W[W.series == i] for i in range(n_series)}
    ys = {f"s{i}": W.y[W.series == i] for i in range(n_series)}
    return Xs, ys


def test_fit_local_joblib_processes_equal_sequential():
    Xs, ys = _local_data()
    est = GRURegressor(units=3, max_iter=2, random_state=0)
    seq = fit_local(est, Xs, ys)
    par = fit_local(est, Xs, ys, n_jobs=2)
    for k in Xs:
        np.testing.assert_array_equal(seq[k]._net.theta, par[k]._net.theta)
    preds = predict_local(par, Xs, n_jobs=2)
    for k in Xs:
        np.testing.assert_array_equal(preds[k], seq[k].predict(Xs[k]))
    with pytest.raises(ValueError, match="same series keys"):
        fit_local(est, Xs, {"s0": ys["s0"]})
    with pytest.raises(TypeError, match="both be dicts"):
        fit_local(est, Xs, list(ys.values()))


def _transitions(dask_scheduler):
    return dask_scheduler.transition_counter


def test_fit_local_on_a_dask_cluster_equals_sequential():
    distributed = pytest.importorskip("dask.distributed")
    from joblib import parallel_config

    Xs, ys = _local_data()
    est = GRURegressor(units=3, max_iter=2, random_state=0)
    seq = fit_local(est, Xs, ys)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        before = client.run_on_scheduler(_transitions)
        with parallel_config(backend="dask"):
            par = fit_local(est, Xs, ys)
        # the fits went through the cluster's scheduler
        assert client.run_on_scheduler(_transitions) > before
    for k in Xs:
        np.testing.assert_array_equal(seq[k]._net.theta, par[k]._net.theta)
        np.testing.assert_array_equal(seq[k].predict(Xs[k]), par[k].predict(Xs[k]))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_to_file_streams_chunks(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    values, lengths = _panel(7)
    W = PanelWindows(values, lengths, window=5)
    reg = GRURegressor(units=3, max_iter=1, random_state=0).fit(W, W.y)
    path = tmp_path / f"forecasts{suffix}"
    n = predict_to_file(reg, values, lengths, path, window=5, series_per_chunk=3,
                        keys=[f"k{i}" for i in range(7)], progress=False)
    out = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert n == 7 and list(out["series"]) == [f"k{i}" for i in range(7)]
    last = PanelWindows(values, lengths, window=5, horizon=0)
    np.testing.assert_allclose(out["y_pred"], reg.predict(np.asarray(last)), rtol=1e-12)
    with pytest.raises(FileExistsError, match="nothing is overwritten"):
        predict_to_file(reg, values, lengths, path, window=5, progress=False)


def test_scale_benchmark_runs_both_cases():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"
    proc = subprocess.run([sys.executable, str(script), "--windows", "1500", "--length",
                           "300"], check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [r for r in proc.stdout.splitlines() if r.startswith("| 1632 |")]
    assert [r.split("|")[2].strip() for r in rows] == ["before", "after"], proc.stdout
    for row in rows:
        cols = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
        assert float(cols[5]) > 0 and float(cols[6]) > 0  # windows/s, peak RSS


@pytest.mark.slow
def test_local_forecaster_on_a_dask_cluster_equals_sequential():
    # pooling="local": sktime loops over the series itself; its backend:parallel config
    # sends that loop to Dask, here onto the workers of a local cluster
    distributed = pytest.importorskip("dask.distributed")
    pytest.importorskip("sktime")
    from skrnn.forecasting import RecurrentForecaster

    idx = pd.MultiIndex.from_product([["a", "b", "c"], pd.RangeIndex(30)],
                                     names=["unit", "time"])
    rng = np.random.default_rng(0)
    y = pd.DataFrame({"y": rng.poisson(4.0, size=90).astype(float)}, index=idx)
    def make():
        return RecurrentForecaster(
            GRURegressor(units=3, max_iter=3, random_state=0), window_length=5, pooling="local")
    seq = make().fit(y, fh=[1, 2]).predict()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        f = make()
        f.set_config(**{"backend:parallel": "dask"})  # dask.compute: the open Client
        before = client.run_on_scheduler(_transitions)
        par = f.fit(y, fh=[1, 2]).predict()
        assert client.run_on_scheduler(_transitions) > before
    pd.testing.assert_frame_equal(seq, par, check_exact=True)
