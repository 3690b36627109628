"""Training a global GRU on a large panel: the dense window matrix against windows as views.

For each number of windows N it builds a synthetic daily count panel (Poisson counts
with a weekly cycle, series of ``--length`` days) and trains one epoch of
``GRURegressor(units=32, batch_size=256, dtype="float32", max_iter=1)`` on windows of
T = 28 steps, one step ahead, in two ways, each in a fresh subprocess:

* ``before``: the window matrix as :func:`skrnn.lags.make_supervised` builds it (a
  float64 DataFrame of N x 28 lag columns), converted to float32, then ``fit``;
* ``after``: :class:`skrnn.windows.PanelWindows` over the panel's values (float32),
  then ``fit``, which gathers each batch's rows;
* ``supervised``: ``make_supervised(..., as_windows=True)`` on the same long frame as
  ``before`` (a PanelWindows over one padded float64 copy of the panel), then ``fit``:
  the user's path from a table to a fit without the window matrix.

Reported per case: the time to build the windows, the time of the epoch, windows/s,
and the peak resident set of the child process (``ru_maxrss``), next to its resident
set after the imports. ``--fraction f`` trains on the first ``f`` of the windows only
(the data are still built in full, so the memory of building is measured, but the
fit's own copies cover only that fraction); the epoch time is then extrapolated to
all N windows and the row says so.

Examples::

    python benchmarks/scale.py --windows 10000 100000          # quick
    python benchmarks/scale.py --windows 10000 100000 1000000 --out benchmarks/results/x.md
    python benchmarks/scale.py --windows 10000000 --fraction 0.05 --cases after

Output is a Markdown table on stdout (and in ``--out``). Timings on a shared machine
are noisy.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

T = 28


def _panel(n_windows, length, seed=0):
    import numpy as np

    n_series = max(1, -(-n_windows // (length - T)))
    rng = np.random.default_rng(seed)
    level = rng.gamma(2.0, 2.0, size=(n_series, 1))
    week = 1.0 + 0.3 * np.sin(2 * np.pi * np.arange(length) / 7)
    counts = rng.poisson(level * week).astype(np.float32)  # (n_series, length)
    return counts, n_series


def _child(args):
    import numpy as np

    from skrnn import GRURegressor

    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts, n_series = _panel(args.windows, args.length)
    t0 = time.perf_counter()
    if args.case in ("before", "supervised"):
        import pandas as pd

        from skrnn.lags import make_supervised

        frame = pd.DataFrame({
            "series": np.repeat(np.arange(n_series), args.length),
            "day": np.tile(np.arange(args.length), n_series),
            "sales": counts.ravel().astype(np.float64),
        })
        del counts
        X, y = make_supervised(frame, "sales", lags=T, group="series", date="day",
                               as_windows=args.case == "supervised")
        del frame
        if args.case == "before":
            X = X.to_numpy(dtype=np.float32)
        y = y.to_numpy(dtype=np.float32)
    else:
        from skrnn.windows import PanelWindows

        X = PanelWindows(counts.ravel(), np.full(n_series, args.length), window=T)
        y = X.y
        del counts
    t_build = time.perf_counter() - t0
    n = len(y)
    m = n if args.fraction >= 1 else max(256, int(args.fraction * n))
    Xf = X[:m] if args.case == "before" else X.subset(slice(0, m))
    reg = GRURegressor(units=32, batch_size=256, dtype="float32", max_iter=1,
                       random_state=0, shuffle=True)
    import warnings

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(Xf, y[:m])
    t_fit = time.perf_counter() - t0
    print(json.dumps({
        "case": args.case, "windows": n, "fitted": m, "series": n_series,
        "build_s": t_build, "fit_s": t_fit,
        "rss_imports_mb": rss_imports / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": float(reg.loss_),
    }))


def _run_case(case, n, args):
    cmd = [sys.executable, __file__, "--child", "--case", case, "--windows", str(n),
           "--length", str(args.length), "--fraction", str(args.fraction)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True,
                          timeout=args.timeout)
    if proc.returncode != 0:
        return {"case": case, "windows": n, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--cases", nargs="+", default=["before", "after"],
                   choices=["before", "after", "supervised"])
    p.add_argument("--length", type=int, default=1000, help="days per series")
    p.add_argument("--fraction", type=float, default=1.0,
                   help="train on this fraction of the windows; extrapolate the epoch")
    p.add_argument("--timeout", type=int, default=3600)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", default="after", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.windows = args.windows[0]
        _child(args)
        return
    lines = [
        (f"GRU units=32, T={T}, batch_size=256, float32, 1 epoch; series of {args.length} "
         "days; peak RSS = ru_maxrss of the child process."),
        "",
        ("| windows | case | series | build (s) | epoch (s) | windows/s | peak RSS (MB) "
         "| RSS after imports (MB) | window matrix float32 (MB) | note |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for n in args.windows:
        for case in args.cases:
            r = _run_case(case, n, args)
            if "error" in r:
                row = f"| {n} | {case} | | | | | | | | failed: {r['error']} |"
            else:
                rate = r["fitted"] / r["fit_s"]
                epoch = r["windows"] / rate
                note = ("" if r["fitted"] == r["windows"] else
                        f"fit on {r['fitted']} windows ({r['fitted'] / r['windows']:.0%}); "
                        "epoch extrapolated")
                row = (f"| {r['windows']} | {case} | {r['series']} | {r['build_s']:.2f} | "
                       f"{epoch:.1f} | {rate:,.0f} | {r['peak_rss_mb']:,.0f} | "
                       f"{r['rss_imports_mb']:,.0f} | {r['windows'] * T * 4 / 2**20:,.0f} | "
                       f"{note} |")
            lines.append(row)
            print(row, flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
