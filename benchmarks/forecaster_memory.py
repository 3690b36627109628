"""Peak memory and time of ``RecurrentForecaster.fit`` on a panel (global model).

Builds a daily panel of ``--series`` series of ``--length`` days (a weekly cycle plus
noise, one known-future exogenous column) and fits one global ``GRURegressor`` with a
fixed window, no backtest (``calibration_fraction=None``, ``fallback=None``), so the
fit is the final model's only. Reports the fit's wall and CPU time (without tracing),
then the peak of Python's traced allocations during a second, traced fit
(``tracemalloc``: NumPy's buffers included), and the forecasts' checksum, so that two
versions of skrnn can be compared on the same data::

    PYTHONPATH=/path/to/old python benchmarks/forecaster_memory.py
    PYTHONPATH=$PWD python benchmarks/forecaster_memory.py

Timings on a shared machine are noisy.
"""

import argparse
import hashlib
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd


def _panel(n_series, length, horizon, seed=0):
    rng = np.random.default_rng(seed)
    times = pd.date_range("2020-01-06", periods=length + horizon, freq="D")
    t = np.arange(length + horizon)
    keys = [f"s{i}" for i in range(n_series)]
    level = rng.uniform(5, 50, size=n_series)
    y = level[:, None] * (1 + 0.2 * np.sin(2 * np.pi * t / 7)) + rng.normal(
        size=(n_series, length + horizon))
    x = np.cos(t / 3.0)[None, :] + 0.1 * rng.normal(size=(n_series, length + horizon))
    idx = pd.MultiIndex.from_product([keys, times], names=["unit", "time"])
    Y = pd.DataFrame({"y": y.ravel()}, index=idx)
    X = pd.DataFrame({"x": x.ravel()}, index=idx)
    in_fit = idx.get_level_values("time") < times[length]
    return Y[in_fit], X[in_fit], X


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--length", type=int, default=400)
    ap.add_argument("--window", type=int, default=28)
    ap.add_argument("--horizon", type=int, default=7)
    ap.add_argument("--strategy", default="multioutput")
    args = ap.parse_args(argv)

    import skrnn
    from skrnn import GRURegressor
    from skrnn.forecasting import RecurrentForecaster

    y, X_fit, X_all = _panel(args.series, args.length, args.horizon)
    f = RecurrentForecaster(
        GRURegressor(units=8, max_iter=1, batch_size=256, random_state=0),
        window_length=args.window, strategy=args.strategy, differences=0,
        calibration_fraction=None, fallback=None)
    fh = list(range(1, args.horizon + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        f.fit(y, X=X_fit, fh=fh)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        tracemalloc.start()
        f.fit(y, X=X_fit, fh=fh)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        pred = f.predict(X=X_all).to_numpy()
    digest = hashlib.sha256(np.ascontiguousarray(pred).tobytes()).hexdigest()[:16]
    print(f"skrnn from {skrnn.__file__}")
    print(f"{args.series} series x {args.length} days, window {args.window}, "
          f"{args.strategy} h={args.horizon}, 1 exog column: "
          f"{f.n_training_windows_} windows; fit {seconds:.2f} s ({cpu:.2f} s CPU), "
          f"peak traced {peak / 2**20:.1f} MiB; forecasts sha256 {digest}")


if __name__ == "__main__":
    main()
