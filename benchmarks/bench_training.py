"""Training and prediction speed of skrnn against PyTorch on the CPU (issues 2 and 7).

For every cell, window length T, hidden size H and batch size B it times, in the
same process and interleaved (so both see the same machine load), the best of
``--repeats`` runs of:

* ``fit``: one epoch of skrnn's ``<Cell>Regressor(units=H, batch_size=B, max_iter=1,
  dtype="float32", solver="adam")`` on N sequence-to-one samples, setup included,
  against one epoch of ``torch.nn.LSTM/GRU/RNN(batch_first=True)`` + ``nn.Linear``
  with Adam on the same shuffled mini-batches;
* ``predict``: the N samples (skrnn's ``predict``; torch's forward in one batch
  under ``no_grad``), called 3 times after each fit, for both, the best call kept.

Both use the same number of threads: ``torch.set_num_threads(n)`` and, for skrnn,
``threadpoolctl.threadpool_limits(n)`` (which the compiled loops also follow).

Also reported: achieved GFLOP/s (the GEMM work of the model, the same count for both
frameworks: per sample, ``2*G*H*F`` for every step's input and ``2*G*H*H`` for every
recurrent step but the first, whose state is the zero initial state, forward; three
times that for forward + backward; G = 4/3/1 gates) against the float32 ``np.matmul`` peak
measured in the same run, and the machine's float32 FMA peak (``fma_peak.c``,
compiled with the system's C compiler when there is one), from which the *fit floor*
and *predict floor* columns follow: the least ratio to PyTorch's time that any
implementation doing the model's products in float32 could reach; the peak memory of
``fit`` for both, each measured in a fresh subprocess (peak resident set during the
fit minus the resident set just before it: Linux's ``VmHWM`` after resetting it
through ``/proc/self/clear_refs``, else ``ru_maxrss``; plus, for skrnn, the peak of
NumPy's allocations seen by ``tracemalloc``); and small batches (B = 1, 4, 8) on
fewer samples, scaled to N.

Examples::

    python benchmarks/bench_training.py --quick
    python benchmarks/bench_training.py                         # the issue's grid, LSTM
    python benchmarks/bench_training.py --cell lstm gru rnn --repeats 3

Output is Markdown tables on stdout. Timings on a shared machine are noisy: read the
ratios, and repeat.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


# ---- data and models ------------------------------------------------------------------


def make_data(n, T, F=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    y = (X[:, -3:, 0].sum(axis=1) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return X, y


def skrnn_model(cell, H, B):
    from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor

    cls = {"lstm": LSTMRegressor, "gru": GRURegressor, "rnn": SimpleRNNRegressor}[cell]
    return cls(units=H, batch_size=B, max_iter=1, dtype="float32", solver="adam",
               random_state=0)


class TorchModel:
    def __init__(self, cell, F, H, seed=0):
        import torch

        torch.manual_seed(seed)
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.torch = torch
        self.rnn = cls(F, H, batch_first=True)
        self.head = torch.nn.Linear(H, 1)
        params = list(self.rnn.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.Adam(params, lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self, Xt, yt, B):
        torch = self.torch
        n = Xt.shape[0]
        perm = torch.randperm(n, generator=self.gen)
        for s in range(0, n, B):
            idx = perm[s : s + B]
            self.opt.zero_grad(set_to_none=True)
            out, _ = self.rnn(Xt[idx])
            pred = self.head(out[:, -1]).squeeze(-1)
            loss = torch.nn.functional.mse_loss(pred, yt[idx])
            loss.backward()
            self.opt.step()

    def predict(self, Xt):
        with self.torch.no_grad():
            out, _ = self.rnn(Xt)
            return self.head(out[:, -1])


# ---- timing -------------------------------------------------------------------------


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# predict calls timed after each fit (best of them): the first call after a fit also
# pays one-time costs (fresh memory faulted in, for both frameworks), and a single
# call of a few milliseconds is at the mercy of the machine's noise
PREDICT_CALLS = 3


def _best_of(k, fn, *args):
    return min(_time(lambda: fn(*args)) for _ in range(k))


def time_pair(cell, T, H, B, n, repeats, threads, do_torch, do_predict, do_fit=True):
    """Best-of-repeats seconds: fit epoch and predict, skrnn and torch, interleaved.

    Without do_fit, the models are trained on 2 * B samples only (their predictions
    are timed on all n).
    """
    from threadpoolctl import threadpool_limits

    X, y = make_data(n, T)
    res = {"sk_fit": np.inf, "th_fit": np.inf, "sk_pred": np.inf, "th_pred": np.inf}
    m = n if do_fit else min(n, 2 * B)
    if do_torch:
        import torch

        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(repeats):
        with threadpool_limits(threads):
            model = skrnn_model(cell, H, B)
            t = _time(lambda model=model: model.fit(X[:m], y[:m]))
            if do_fit:
                res["sk_fit"] = min(res["sk_fit"], t)
            if do_predict:
                res["sk_pred"] = min(res["sk_pred"], _best_of(PREDICT_CALLS, model.predict, X))
        if do_torch:
            tm = TorchModel(cell, 1, H)
            t = _time(lambda tm=tm: tm.epoch(Xt[:m], yt[:m], B))
            if do_fit:
                res["th_fit"] = min(res["th_fit"], t)
            if do_predict:
                res["th_pred"] = min(res["th_pred"], _best_of(PREDICT_CALLS, tm.predict, Xt))
    return res


def gemm_peak(threads, size=2048, repeats=3):
    """GFLOP/s of a float32 size x size matmul with ``threads`` BLAS threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(0)
    a = rng.rand(size, size).astype(np.float32)
    b = rng.rand(size, size).astype(np.float32)
    c = np.empty_like(a)
    with threadpool_limits(threads):
        np.matmul(a, b, out=c)
        best = min(_time(lambda: np.matmul(a, b, out=c)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def fma_peak(threads):
    """GFLOP/s of float32 FMAs on registers (``fma_peak.c``), or None without a C compiler.

    The machine's ceiling: no float32 implementation of the model's products runs
    faster, whatever its engine, so ``FLOPs / fma_peak`` is the least time any
    predict can take, and its ratio to PyTorch's time the best ratio possible.
    """
    import shutil
    import tempfile

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not os.path.exists(src):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "fma_peak")
        flags = ["-O2", "-march=native", "-ffp-contract=fast", "-pthread"]
        build = subprocess.run([cc, *flags, src, "-o", exe], capture_output=True, text=True)
        if build.returncode != 0:
            return None
        out = subprocess.run([exe, str(threads)], capture_output=True, text=True, timeout=600)
    try:
        return float(out.stdout.split()[0])
    except (IndexError, ValueError):
        return None


def model_flops(cell, T, H, n, F=1, train=True):
    """GEMM FLOPs of one epoch (train: forward + backward = 3x forward).

    The first step's recurrent product is left out: its state is the zero initial
    state, so an implementation need not compute it (skrnn's loops do not).
    """
    G = GATES[cell]
    fwd = n * 2 * G * H * (T * F + (T - 1) * H) + n * 2 * H
    return 3 * fwd if train else fwd


# ---- memory, in fresh subprocesses ---------------------------------------------------------

_MEM_CHILD = r"""
import json, os, resource, sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {bench_dir!r})
import numpy as np
import bench_training as bt
cfg = json.loads(sys.argv[1])
cell, T, H, B, n, threads, who = (cfg[k] for k in ("cell", "T", "H", "B", "n", "threads", "who"))
from threadpoolctl import threadpool_limits
X, y = bt.make_data(n, T)
if who == "torch":
    import torch
    torch.set_num_threads(threads)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    tm = bt.TorchModel(cell, 1, H)
    run = lambda: tm.epoch(Xt, yt, B)
else:
    import skrnn
    model = bt.skrnn_model(cell, H, B)
    def run():
        with threadpool_limits(threads):
            model.fit(X, y)

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

out = {{}}
try:
    before = rss_kb()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    run()
    out["rss_mb"] = (hwm_kb() - before) / 1024
    out["method"] = "VmHWM"
except OSError:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    out["rss_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    out["method"] = "ru_maxrss"
if who == "skrnn":
    import tracemalloc
    tracemalloc.start()
    run()
    out["traced_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
print(json.dumps(out))
"""


def measure_memory(cell, T, H, B, n, threads, who):
    code = _MEM_CHILD.format(bench_dir=os.path.dirname(os.path.abspath(__file__)))
    cfg = json.dumps(dict(cell=cell, T=T, H=H, B=B, n=n, threads=threads, who=who))
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code, cfg], capture_output=True, text=True,
                          env=env, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- report -----------------------------------------------------------------------------


def _f(x, nd=3):
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _r(a, b):
    return "—" if not (np.isfinite(a) and np.isfinite(b)) or b == 0 else f"{a / b:.2f}"


def header(args, peak, fma):
    import numpy
    import scipy

    lines = [
        "# skrnn vs PyTorch (CPU) — training and prediction speed",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or ''}"
        f" {platform.platform()}",
        f"- python {platform.python_version()}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}",
    ]
    try:
        import skrnn
        from skrnn.nn import _cells

        lines.append(f"- skrnn {skrnn.__version__}, engine: **{_cells.get_engine()}**")
    except Exception as exc:  # pragma: no cover
        lines.append(f"- skrnn: {exc}")
    if not args.no_torch:
        import torch

        lines.append(f"- torch {torch.__version__}, num_threads={torch.get_num_threads()}")
    blas = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    lines.append(f"- threads: {args.threads} (torch.set_num_threads and threadpool_limits); "
                 f"BLAS/OpenMP environment: {blas or 'none set'}")
    lines.append(f"- float32 GEMM peak (np.matmul {args.peak_size}², {args.threads} threads): "
                 f"**{peak:.1f} GFLOP/s**")
    if fma:
        lines.append(f"- float32 FMA peak (benchmarks/fma_peak.c, {args.threads} threads): "
                     f"**{fma:.1f} GFLOP/s**; *fit floor* and *predict floor* = the model's "
                     f"FLOPs at that peak over torch's time: the lowest ratio any "
                     f"implementation could reach (measured again at the end: another "
                     f"job on the machine lowers it, and then the floors are too high)")
    lines.append(f"- N = {args.n_samples} samples per epoch, best of {args.repeats} "
                 f"interleaved runs (predict: best of {PREDICT_CALLS} calls after each "
                 f"fit), times in seconds")
    try:
        load = os.getloadavg()
        lines.append(f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:  # pragma: no cover
        pass
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", nargs="+", default=["lstm"], choices=sorted(GATES))
    p.add_argument("--T", nargs="+", type=int, default=[14, 50, 100])
    p.add_argument("--H", nargs="+", type=int, default=[16, 64, 128])
    p.add_argument("--B", nargs="+", type=int, default=[32, 256])
    p.add_argument("--small-B", nargs="*", type=int, default=[1, 4, 8],
                   help="small batch sizes (timed on --small-n samples, scaled to N)")
    p.add_argument("--small-T", type=int, default=50)
    p.add_argument("--small-H", nargs="+", type=int, default=[16, 64])
    p.add_argument("--small-n", type=int, default=500)
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--peak-size", type=int, default=2048)
    p.add_argument("--memory", nargs="*", default=None, metavar="T,H,B",
                   help="configurations for the memory table (default: the largest and "
                        "one middle one; give none to skip)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-predict", action="store_true")
    p.add_argument("--no-fit", action="store_true",
                   help="time predict only (the models train on 2 * B samples first)")
    p.add_argument("--engine", choices=["compiled", "numpy"], default=None,
                   help="skrnn's time-loop engine (default: compiled when built)")
    p.add_argument("--quick", action="store_true",
                   help="a small grid: T 14 50, H 16 64, B 32 256, N 2000, 1 repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.T, args.H, args.B = [14, 50], [16, 64], [32, 256]
        args.n_samples, args.repeats = 2000, 1
        args.small_B, args.small_H, args.small_n = [1, 8], [64], 200
        if args.memory is None:
            args.memory = ["50,64,32"]
    if args.memory is None:
        args.memory = [f"{max(args.T)},{max(args.H)},{max(args.B)}",
                       f"{sorted(args.T)[len(args.T) // 2]},{sorted(args.H)[len(args.H) // 2]},"
                       f"{min(args.B)}"]
    if args.engine:
        os.environ["SKRNN_ENGINE"] = args.engine  # also for the memory subprocesses
        from skrnn.nn import _cells

        _cells.set_engine(args.engine)
    warnings.filterwarnings("ignore")
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads)
    peak = gemm_peak(args.threads, args.peak_size)
    fma = fma_peak(args.threads) if not args.no_torch else None
    print(header(args, peak, fma))
    sys.stdout.flush()
    n = args.n_samples
    predict = not args.no_predict

    for cell in args.cell:
        print(f"\n## {NAMES[cell]}: fit, seconds per epoch (N={n})\n")
        print("| T | H | B | skrnn fit | torch fit | ratio | fit floor | skrnn GFLOP/s "
              "| torch GFLOP/s | skrnn % of peak | skrnn predict | torch predict | ratio "
              "| predict floor |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for T in args.T:
            for H in args.H:
                for B in args.B:
                    r = time_pair(cell, T, H, B, n, args.repeats, args.threads,
                                  not args.no_torch, predict, not args.no_fit)
                    fl = model_flops(cell, T, H, n) / 1e9
                    sk_gf = fl / r["sk_fit"] if np.isfinite(r["sk_fit"]) else np.nan
                    th_gf = fl / r["th_fit"] if np.isfinite(r["th_fit"]) else np.nan
                    floor = (_r(model_flops(cell, T, H, n, train=False) / 1e9 / fma,
                                r["th_pred"]) if fma else "—")
                    fit_floor = _r(fl / fma, r["th_fit"]) if fma else "—"
                    print(f"| {T} | {H} | {B} | {_f(r['sk_fit'])} | {_f(r['th_fit'])} | "
                          f"{_r(r['sk_fit'], r['th_fit'])} | {fit_floor} | {_f(sk_gf, 1)} | "
                          f"{_f(th_gf, 1)} | {_f(100 * sk_gf / peak, 0)} | "
                          f"{_f(r['sk_pred'])} | {_f(r['th_pred'])} | "
                          f"{_r(r['sk_pred'], r['th_pred'])} | {floor} |")
                    sys.stdout.flush()

        if args.small_B and not args.no_fit:
            m = args.small_n
            print(f"\n### {NAMES[cell]}: small batches, T={args.small_T}, timed on {m} "
                  f"samples, seconds per epoch scaled to N={n}\n")
            print("| H | B | skrnn fit | torch fit | ratio |")
            print("|---|---|---|---|---|")
            for H in args.small_H:
                for B in args.small_B:
                    r = time_pair(cell, args.small_T, H, B, m, args.repeats, args.threads,
                                  not args.no_torch, False)
                    s = n / m
                    print(f"| {H} | {B} | {_f(r['sk_fit'] * s)} | {_f(r['th_fit'] * s)} | "
                          f"{_r(r['sk_fit'], r['th_fit'])} |")
                    sys.stdout.flush()

        if args.memory and not args.no_fit:
            print(f"\n### {NAMES[cell]}: peak memory of fit, MB over the resident set before "
                  f"it (fresh subprocess each)\n")
            print("| T | H | B | skrnn RSS | skrnn NumPy (tracemalloc) | torch RSS | ratio |")
            print("|---|---|---|---|---|---|---|")
            for spec in args.memory:
                T, H, B = (int(v) for v in spec.split(","))
                sk = measure_memory(cell, T, H, B, n, args.threads, "skrnn")
                th = ({"rss_mb": np.nan} if args.no_torch
                      else measure_memory(cell, T, H, B, n, args.threads, "torch"))
                if "error" in sk or "error" in th:
                    print(f"| {T} | {H} | {B} | error: {sk.get('error') or th.get('error')} "
                          f"| | | |")
                    continue
                print(f"| {T} | {H} | {B} | {_f(sk['rss_mb'], 1)} | {_f(sk['traced_mb'], 1)} "
                      f"| {_f(th['rss_mb'], 1)} | {_r(sk['rss_mb'], th['rss_mb'])} |")
                sys.stdout.flush()

    if fma:
        again = fma_peak(args.threads)
        if again:
            print(f"\nFMA peak at the end of the run: {again:.1f} GFLOP/s (start: {fma:.1f}).")
            if again > 1.05 * fma:
                print(f"The start was low: the floors above are {again / fma:.2f}x too high; "
                      f"run again on a quieter machine.")


if __name__ == "__main__":
    main()
