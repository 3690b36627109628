"""The ``skrnn`` command.

Until the experiment runner lands, the command runs a small demonstration: the
three recurrent regressors against the last-value baseline on the teaching
notebook's noisy sine series.
"""

import argparse
import time
import warnings

import numpy as np


def _sine_windows(n, n_steps, rng):
    f1, f2, o1, o2 = rng.rand(4, n, 1)
    t = np.linspace(0, 1, n_steps + 1)
    s = (0.5 * np.sin((t - o1) * (f1 * 10 + 10)) + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
         + 0.1 * (rng.rand(n, n_steps + 1) - 0.5))
    return s[:, :-1], s[:, -1]


def demo(n_train=2000, n_test=1000, epochs=15, seed=0):
    from sklearn.exceptions import ConvergenceWarning

    from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor

    rng = np.random.RandomState(seed)
    X, y = _sine_windows(n_train, 50, rng)
    Xt, yt = _sine_windows(n_test, 50, rng)
    naive = float(np.mean((Xt[:, -1] - yt) ** 2))
    rows = [("last value (naive)", naive, 0.0, 0.0)]
    for cls in (SimpleRNNRegressor, LSTMRegressor, GRURegressor):
        model = cls(units=16, batch_size=32, max_iter=epochs, learning_rate_init=0.01,
                    random_state=seed, dtype="float32")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        mse = float(np.mean((model.predict(Xt) - yt) ** 2))
        rows.append((cls.__name__, mse, 1 - mse / naive, time.perf_counter() - start))
    print(f"{'model':<22}{'test MSE':>10}{'skill':>8}{'fit s':>8}")
    for name, mse, skill, secs in rows:
        print(f"{name:<22}{mse:>10.5f}{skill:>8.2f}{secs:>8.1f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="skrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="recurrent regressors vs the last-value baseline")
    d.add_argument("--epochs", type=int, default=15)
    d.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        demo(epochs=getattr(args, "epochs", 15), seed=getattr(args, "seed", 0))


if __name__ == "__main__":
    main()
