"""Prediction latency of one fitted model in skrnn, onnxruntime and PyTorch (issue 18).

For every cell it fits a skrnn regressor (float32, one epoch: the weights only need
to be some weights), exports it with :func:`skrnn.onnx.to_onnx`, loads the same
weights into ``torch.nn.LSTM/GRU/RNN(batch_first=True)`` + ``torch.nn.Linear``, checks
that the three agree, and times, with the same number of threads for all three:

* **single row**: one window per call, the median of ``--calls`` calls (what a
  service answering one request at a time sees), in microseconds;
* **batch**: ``--batch`` windows in one call, the best of ``--repeats`` calls, in
  milliseconds.

skrnn's time is ``model.predict(X)`` (input validation included, as a user calls
it); onnxruntime's is ``session.run`` with a float32 array; PyTorch's is the forward
pass under ``torch.inference_mode()`` on a ready tensor (``torch.from_numpy``
included).

Examples::

    python benchmarks/onnx_predict.py
    python benchmarks/onnx_predict.py --cell lstm --T 50 --H 64 --batch 10000

Output is Markdown on stdout.
"""

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np


def _median_us(fn, calls):
    fn()  # warm-up (allocations, first-call paths)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def _best_ms(fn, repeats):
    fn()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def _torch_model(torch, cell, model):
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.get_weights().items()}
    F = sd["weight_ih_l0"].shape[1]
    H = sd["weight_hh_l0"].shape[1]
    layers = sum(1 for k in sd if k.startswith("weight_ih_l"))
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn = cls(F, H, num_layers=layers, batch_first=True)
    rnn.load_state_dict({k: v for k, v in sd.items() if not k.startswith("head.")})
    head = torch.nn.Linear(H, sd["head.weight"].shape[0])
    head.load_state_dict({"weight": sd["head.weight"], "bias": sd["head.bias"]})
    rnn.eval()
    head.eval()

    def forward(x):
        with torch.inference_mode():
            out, _ = rnn(torch.from_numpy(x))
            return head(out[:, -1]).numpy()

    return forward


def _time_all(model, session, forward, one, one3, Xb, X3, args):
    """Single-row (us) and batch (ms) times of the three runtimes."""
    from threadpoolctl import threadpool_limits

    row = {}
    with threadpool_limits(args.threads):
        row["skrnn1"] = _median_us(lambda: model.predict(one), args.calls)
        row["skrnnB"] = _best_ms(lambda: model.predict(Xb), args.repeats)
    row["ort1"] = _median_us(lambda: session.run(None, {"X": one}), args.calls)
    row["ortB"] = _best_ms(lambda: session.run(None, {"X": Xb}), args.repeats)
    if forward is not None:
        row["torch1"] = _median_us(lambda: forward(one3), args.calls)
        row["torchB"] = _best_ms(lambda: forward(X3), args.repeats)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", nargs="+", default=["lstm", "gru", "rnn"],
                        choices=["lstm", "gru", "rnn"])
    parser.add_argument("--T", type=int, default=20, help="window length (steps)")
    parser.add_argument("--H", type=int, default=32, help="hidden units")
    parser.add_argument("--batch", type=int, default=1000, help="rows of the batch call")
    parser.add_argument("--calls", type=int, default=300, help="single-row calls timed")
    parser.add_argument("--repeats", type=int, default=10, help="batch calls timed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import sklearn

    import skrnn
    from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor
    from skrnn.nn._cells import get_engine
    from skrnn.onnx import to_onnx

    torch = None
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads)
    classes = {"lstm": LSTMRegressor, "gru": GRURegressor, "rnn": SimpleRNNRegressor}
    rng = np.random.RandomState(0)
    X = rng.normal(size=(max(args.batch, 64), args.T)).astype(np.float32)
    y = X[:, -1] + 0.1 * rng.normal(size=len(X))
    X3 = X[: args.batch, :, None].copy()  # torch's (batch, steps, features)
    one, one3 = X[:1].copy(), X3[:1].copy()

    print("# Prediction latency: skrnn vs onnxruntime vs PyTorch (CPU)\n")
    print(f"- machine: {platform.machine()}, {platform.platform()}")
    print(f"- python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
          f"{sklearn.__version__}, skrnn {skrnn.__version__} (engine: {get_engine()}), "
          f"onnxruntime {ort.__version__}"
          + ("" if torch is None else f", torch {torch.__version__}"))
    if hasattr(os, "getloadavg"):
        print("- load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"- threads: {args.threads} for all (threadpool_limits, intra_op_num_threads, "
          "torch.set_num_threads)")
    print(f"- model: 1 layer, units={args.H}, T={args.T} steps of 1 feature, float32; "
          f"single row: median of {args.calls} calls (us); batch of {args.batch}: best of "
          f"{args.repeats} calls (ms)\n")
    print("| cell | skrnn 1 row (us) | onnxruntime 1 row (us) | torch 1 row (us) | "
          "skrnn batch (ms) | onnxruntime batch (ms) | torch batch (ms) | "
          "max abs diff onnx / torch |")
    print("|---|---|---|---|---|---|---|---|")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    for cell in args.cell:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            model = classes[cell](units=args.H, max_iter=1, dtype="float32",
                                  random_state=0).fit(X, y)
        session = ort.InferenceSession(to_onnx(model, one).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        Xb = X[: args.batch]
        ref = model.predict(Xb)
        diff_onnx = np.abs(session.run(None, {"X": Xb})[0][:, 0] - ref).max()
        forward = None if torch is None else _torch_model(torch, cell, model)
        row = _time_all(model, session, forward, one, one3, Xb, X3, args)
        diff_torch = None if forward is None else np.abs(forward(X3)[:, 0] - ref).max()
        torch1 = "-" if torch is None else f"{row['torch1']:.0f}"
        torchB = "-" if torch is None else f"{row['torchB']:.2f}"
        diffs = f"{diff_onnx:.1e}" + ("" if torch is None else f" / {diff_torch:.1e}")
        print(f"| {cell} | {row['skrnn1']:.0f} | {row['ort1']:.0f} | {torch1} | "
              f"{row['skrnnB']:.2f} | {row['ortB']:.2f} | {torchB} | {diffs} |")


if __name__ == "__main__":
    main()
