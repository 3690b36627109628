"""``skrnn run`` on a large generated panel: peak memory and time per epoch.

Writes an experiment on a generated daily count panel (``data.source = "generated"``,
:func:`skrnn.datasets.make_count_panel` with ``n_groups`` series of ``periods`` days),
windows of ``max_lags = 56`` steps cut to the model's 28, per-series scaling, and three
models: a global GRU with no search (``max_iter`` epochs, early stopping on), the last
value and the seasonal naive. Ridge and HistGradientBoosting are left out: they need
the dense window matrix (they gather it after the cut to 28 steps, n_windows x 28 x 8
bytes, 4.5 GB at 30k series x 730 days) and add nothing to a measurement of the
runner's data path. Each run is a fresh child process; its peak resident set comes
from ``os.wait4`` (the child's own ``ru_maxrss``). "s / epoch" is the GRU's own epoch
time (its ``verbose`` line: the batches and the validation loss), "windows/s" the
training-period windows (hold-out included) per second of it; "GRU refit" is the
whole ``fit`` of its pipeline (per-series scaling of the windows and of the target,
the cut to 28 steps, the epochs, the early-stopping hold-out gathered dense).

``--before PATH`` runs the same experiment with another checkout of skrnn (e.g. the
commit before the runner used windows: ``git archive <commit> | tar -x -C PATH``),
whose runner builds the dense window DataFrame. It refuses to start when the
arithmetic says that DataFrame alone exceeds ``--max-dense-gb`` (default 1 GB: the
machine is shared, and the dense run peaked at 7.3 times its DataFrame at 3,000
series), and reports the estimate instead.

Examples::

    python benchmarks/scale_runner.py --series 1000 3000 --before /tmp/skrnn-before
    python benchmarks/scale_runner.py --series 30000 --out benchmarks/results/x.md

Output: a Markdown table on stdout (and in ``--out``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_LAGS, LAGS, TEST_DAYS = 56, 28, 28

TOML = """
name = "scale_runner"
seed = 0
baselines = false
output = "{out}"

[data]
source = "generated"
params = {{ n_groups = {series}, periods = {days}, start = "2020-01-01" }}
date = "date"
group = "district"
value = "crimes"

[split]
test_periods = {test}

[features]
max_lags = {max_lags}
lags = {lags}

[[models]]
name = "gru"
kind = "gru"
params = {{ units = 32, max_iter = {epochs}, batch_size = 256, dtype = "float32", verbose = true }}

[[models]]
name = "last_value"
kind = "last_value"

[[models]]
name = "seasonal_naive"
kind = "seasonal_naive"
params = {{ sp = 7 }}

[tracking]
enabled = false
"""


def dense_gb(series, days):
    """The float64 window DataFrame the dense runner builds (before its train copy)."""
    return series * (days - MAX_LAGS) * MAX_LAGS * 8 / 1e9


def run_case(case, skrnn_path, series, days, epochs, workdir):
    out = Path(workdir) / f"{case}_{series}"
    toml = Path(workdir) / f"{case}_{series}.toml"
    toml.write_text(TOML.format(out=out.as_posix(), series=series, days=days,
                                test=TEST_DAYS, max_lags=MAX_LAGS, lags=LAGS,
                                epochs=epochs))
    env = {**os.environ, "PYTHONPATH": str(skrnn_path)}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "skrnn", "run", str(toml), "--quiet"],
                            env=env, cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    row = {"case": case, "series": series, "days": days,
           "windows": series * (days - MAX_LAGS), "wall_s": wall,
           "peak_rss_mb": usage.ru_maxrss / 1024, "status": os.waitstatus_to_exitcode(status)}
    if row["status"] != 0:
        row["note"] = log.strip().splitlines()[-1][:120] if log.strip() else "failed"
        return row
    timings = json.loads((out / "timings.json").read_text())
    gru = timings["models"]["gru"]
    # the GRU's verbose lines: "Iteration k, loss = ..., validation loss = ..., 12.34s"
    epochs = [float(m) for m in re.findall(r"^Iteration \d+, .*, ([0-9.]+)s$", log, re.M)]
    row.update({
        "data_s": timings["data_s"], "windows_s": timings["features_s"],
        "gru_fit_s": gru["refit_s"], "epochs": len(epochs),
        "epoch_s": sum(epochs) / max(len(epochs), 1),
        "outputs_s": timings["outputs_s"],
        "mae": _mae(out / "results.csv"),
    })
    return row


def _mae(path):
    import csv

    with open(path) as f:
        return {r["model"]: float(r["MAE"]) for r in csv.DictReader(f)}


def table(rows):
    head = ["case", "series", "windows", "peak RSS (MB)", "wall (s)", "data (s)",
            "windows (s)", "GRU refit (s)", "epochs", "s / epoch", "windows/s", "outputs (s)",
            "MAE gru / last / seasonal", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "gru_fit_s" in r:
            train = r["windows"] - r["series"] * TEST_DAYS
            speed = f"{train / r['epoch_s']:,.0f}" if r["epoch_s"] > 0 else ""
            mae = " / ".join(f"{r['mae'][m]:.3f}" for m in ("gru", "last_value",
                                                             "seasonal_naive"))
            cells = [f"{r['data_s']:.1f}", f"{r['windows_s']:.1f}", f"{r['gru_fit_s']:.1f}",
                     str(r["epochs"]), f"{r['epoch_s']:.2f}", speed, f"{r['outputs_s']:.1f}",
                     mae]
        else:
            cells = [""] * 8
        peak = f"{r['peak_rss_mb']:,.0f}" if r.get("peak_rss_mb") else ""
        wall = f"{r['wall_s']:.0f}" if r.get("wall_s") else ""
        lines.append("| " + " | ".join([r["case"], f"{r['series']:,}", f"{r['windows']:,}",
                                        peak, wall, *cells, r.get("note", "")]) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1000])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout of skrnn whose runner builds the dense windows")
    parser.add_argument("--max-dense-gb", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for series in args.series:
            rows.append(run_case("windows", here, series, args.days, args.epochs, workdir))
            print(table(rows[-1:]), flush=True)
            if args.before is None:
                continue
            gb = dense_gb(series, args.days)
            if gb > args.max_dense_gb:
                rows.append({"case": "dense", "series": series,
                             "windows": series * (args.days - MAX_LAGS),
                             "note": f"not run: the window DataFrame alone is {gb:.1f} GB "
                                     f"(> --max-dense-gb {args.max_dense_gb})"})
            else:
                rows.append(run_case("dense", args.before, series, args.days, args.epochs,
                                     workdir))
            print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
