"""The time budget of the default panel experiment (issue 15): a daily panel of 24 series
x 16 years (about 140k windows) through ``pipelines/chicago_districts.toml``, tuning
included, with the wall time of each phase and the accuracy table of the same run.

The panel is made from Chicago's daily totals (``../shared/data/crime_total.csv``, only
read when present): the last 16 years split into 24 pseudo-districts with fixed random
shares (Dirichlet, seed 0) and Poisson noise around each share. It is written as a CSV
to a temporary folder and the built-in experiment runs on it through the runner API,
exactly as ``skrnn run chicago_districts --data <csv>`` would (tracking to a temporary
MLflow store, so nothing lands in the working directory).

    PYTHONPATH=. python benchmarks/budget.py                       # the default experiment
    PYTHONPATH=. python benchmarks/budget.py --trials 2 --years 4  # a quick look
    PYTHONPATH=. python benchmarks/budget.py --out benchmarks/results/budget.md

Times are wall-clock on whatever else the machine runs: on a shared machine they are an
upper bound of the experiment's own cost.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CRIME = HERE.parent.parent / "shared" / "data" / "crime_total.csv"
if not CRIME.exists():  # the checkout layout of the engineers' worktrees
    CRIME = Path("/work/shared/data/crime_total.csv")


def make_panel(n_series=24, years=16, seed=0):
    """``Date, District, Incidents``: the daily total split into ``n_series`` districts."""
    total = pd.read_csv(CRIME, parse_dates=["date"])
    total = total[total["date"] > total["date"].max() - pd.DateOffset(years=years)]
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(n_series, 4.0))
    counts = rng.poisson(np.outer(total["crimes_total"].to_numpy(float), shares))
    names = [f"{k + 1:03d}" for k in range(n_series)]
    return pd.DataFrame({
        "Date": np.repeat(total["date"].dt.strftime("%Y-%m-%d").to_numpy(), n_series),
        "District": np.tile(names, len(total)),
        "Incidents": counts.ravel(),
    })


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=24)
    p.add_argument("--years", type=int, default=16)
    p.add_argument("--trials", type=int, default=None,
                   help="override every search's n_trials (default: the experiment's)")
    p.add_argument("--no-track", action="store_true", help="tracking off")
    p.add_argument("--experiment", default="chicago_districts")
    p.add_argument("--models", nargs="*", default=None,
                   help="run only these models of the experiment (a probe of some phases)")
    p.add_argument("--out", default=None, help="write the markdown report here")
    args = p.parse_args()

    from skrnn.experiment import load_experiment, override_experiment, run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clock = time.perf_counter()
        panel = make_panel(args.series, args.years)
        csv = tmp / "districts.csv"
        panel.to_csv(csv, index=False)
        make_s = time.perf_counter() - clock
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
        exp = override_experiment(load_experiment(args.experiment),
                                  data={"path": str(csv)})
        if args.models is not None:
            exp.models = [m for m in exp.models if m.name in args.models]
        print(f"panel: {args.series} series x {panel['Date'].nunique()} days "
              f"({len(panel)} rows), made in {make_s:.1f}s", flush=True)
        clock = time.perf_counter()
        table = run_experiment(exp, output=tmp / "run", track=False if args.no_track else None,
                               progress=False, n_trials=args.trials)
        wall = time.perf_counter() - clock
        timings = json.loads((tmp / "run" / "timings.json").read_text())
        trials = {}
        for path in sorted((tmp / "run" / "tuning").glob("*/trials.csv")):
            t = pd.read_csv(path)
            trials[path.parent.name] = t["state"].value_counts().to_dict()
    report = _report(args, panel, table, timings, trials, wall)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


def _report(args, panel, table, timings, trials, wall):
    load = os.getloadavg()
    lines = [
        f"# Budget: `{args.experiment}` on {args.series} series x {args.years} years",
        "",
        "Command: `PYTHONPATH=. python benchmarks/budget.py"
        + (f" --trials {args.trials}" if args.trials else "")
        + (" --no-track" if args.no_track else "")
        + (f" --models {' '.join(args.models)}" if args.models is not None else "") + "`",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (a shared "
        "machine: the times are an upper bound).",
        f"Panel: {len(panel)} rows, {panel['Date'].min()} to {panel['Date'].max()}.",
        "",
        f"**Wall time of the run: {wall / 60:.1f} min** ({wall:.0f} s).",
        "",
        "| phase | seconds |",
        "|---|---|",
    ]
    for key in ("data_s", "features_s", "outputs_s", "tracking_s"):
        if key in timings:
            lines.append(f"| {key[:-2]} | {timings[key]:.1f} |")
    for name, spent in timings["models"].items():
        for key, value in spent.items():
            lines.append(f"| {name}: {key[:-2].replace('_', ' ')} | {value:.1f} |")
    lines += ["", "Trials by state: " + ", ".join(
        f"{name} {dict(states)}" for name, states in trials.items()), "",
        "Accuracy on the holdout (the last 365 days, one step ahead), ranked by MAE:", "",
        *_markdown(table), ""]
    return "\n".join(lines)


def _markdown(table):
    """A DataFrame as a markdown table (no tabulate needed)."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [list(table.columns), ["---"] * table.shape[1]]
    rows += [[cell(v) for v in row] for row in table.itertuples(index=False)]
    return ["| " + " | ".join(r) + " |" for r in rows]


if __name__ == "__main__":
    main()
