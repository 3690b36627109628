"""What a run reports and writes: the results table, timings, plots, saved models
and their window layout, MLflow runs, progress bars."""

import json

import numpy as np
import pandas as pd

from skrnn._experiment.run_folder import _checkpoint
from skrnn._meta import find_recurrent_regressors, fitted_recurrent_regressor


def _sayer(console):
    """Print without reading user text (names, values) as rich markup."""
    if console is None:
        return print
    return lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value).replace(" ", "")


def _rounded(timings):
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 3) for k, v in timings.items()}


def _say_timings(timings, say):
    """One line per phase: the data, the windows, and each model's tuning, refit and
    predictions (also in ``timings.json``)."""
    say(f"time: data {timings['data_s']:.1f}s, features {timings['features_s']:.1f}s, "
        f"outputs {timings['outputs_s']:.1f}s"
        + (f", tracking {timings['tracking_s']:.1f}s" if "tracking_s" in timings else ""))
    for name, spent in timings["models"].items():
        say(f"time: {name}: " + ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f}s"
                                          for k, v in spent.items()))


def _results_table(rows, exp, Xtr, ytr, Xte, yte, predictions, say):
    from skrnn.baselines import LastValueRegressor
    from skrnn.metrics import skill_score

    naive = next((predictions[r["model"]] for r in rows if r["kind"] == "last_value"), None)
    if naive is None:
        naive = pd.Series(LastValueRegressor().fit(Xtr, ytr).predict(Xte), index=Xte.index)
    exact = bool(np.all(np.asarray(naive) == np.asarray(yte)))
    if exact:
        say("skill is undefined: the last-value forecast is exact on every test date "
            "(constant series?)")
    for row in rows:
        row["skill"] = (np.nan if exact
                        else skill_score(yte, predictions[row["model"]], naive))
    table = pd.DataFrame(rows)[["model", "kind", "MAE", "MSE", "skill", "fit_s", "best_params"]]
    # ranked by the chosen metric, best first (ties keep the experiment's order)
    return table.sort_values(exp.tuning.metric.upper(), kind="stable").reset_index(drop=True)


def _convergence_warning():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


def _progress_bars(est, progress):
    """Epoch bars for a model with a skrnn regressor inside.

    sklearn's ProgressBar propagates from a meta-estimator to its steps and must be
    set on the outermost estimator that supports callbacks (a Pipeline; a
    TransformedTargetRegressor does not, so its inner Pipeline).
    """
    if not progress or next(find_recurrent_regressors(est), None) is None:
        return
    try:
        from sklearn.callback import ProgressBar
    except ImportError:  # pragma: no cover - rich missing
        return
    target = est if hasattr(est, "set_callbacks") else getattr(est, "regressor", None)
    if target is not None and hasattr(target, "set_callbacks"):
        target.set_callbacks(ProgressBar())


def _plots(exp, frame, Xtr, fitted, predictions, table, out):
    """Fit plot of every model (its test period, titled with its error), loss curves."""
    import matplotlib.pyplot as plt

    from skrnn.plotting import plot_fit, plot_loss_curves

    d = exp.data
    files = {}
    framed = frame.set_index([d.date] + ([d.group] if d.group else []))
    errors = table.set_index("model")
    if d.group:  # plot_fit draws the first 6 series: predict only their training rows
        shown = pd.Index(frame[d.group].unique()).sort_values()[:6]
        keep = np.asarray(Xtr.index.get_level_values(d.group).isin(shown))
        Xtr = Xtr.subset(keep) if hasattr(Xtr, "subset") else Xtr[keep]
    for name, est in fitted.items():
        train_pred = pd.Series(np.asarray(est.predict(Xtr)).ravel(), index=Xtr.index)
        row = errors.loc[name]
        label = name if name == row["kind"] else f"{name} ({row['kind']})"
        fig = plot_fit(framed.reset_index(), train_pred.reindex(framed.index).to_numpy(),
                       predictions[name].reindex(framed.index).to_numpy(), value=d.value,
                       date=d.date, group=d.group, max_groups=6,
                       title=f"{label}: test MAE {row['MAE']:.4g}, skill {row['skill']:.3f}")
        files[f"fit_{name}"] = out / f"fit_{name}.png"
        fig.savefig(files[f"fit_{name}"], dpi=90, bbox_inches="tight")
        plt.close(fig)
        reg = fitted_recurrent_regressor(est)
        if reg is not None:
            fig = plot_loss_curves(reg)
            fig = fig if hasattr(fig, "savefig") else fig.figure
            fig.suptitle(f"{name}: loss by epoch")
            files[f"loss_{name}"] = out / f"loss_{name}.png"
            fig.savefig(files[f"loss_{name}"], dpi=90, bbox_inches="tight")
            plt.close(fig)
    return files


def _save_models(fitted, exp, out, freq, features):
    from skrnn import persistence

    models = out / "models"
    models.mkdir(exist_ok=True)
    for name, est in fitted.items():
        persistence.save(est, models / f"{name}.skops")
        _checkpoint("model-saved")
    d = exp.data
    meta = {"max_lags": features.max_lags, "n_step_features": features.n_step_features(),
            "date": d.date, "group": d.group,
            "value": d.value, "freq": None if freq is None else freq.freqstr,
            "fill_gaps": d.fill_gaps, "sep": d.sep, "date_format": d.date_format,
            # the step features, which `skrnn predict` builds again
            "calendar": features.calendar, "country": features.country,
            "known_future": features.known_future,
            "past_covariates": features.past_covariates, "static": features.static}
    if features.static == "group":  # the one-hot's columns, in order
        meta["groups"] = [str(g) for g in features.one_hot_groups()]
    (models / "windows.json").write_text(json.dumps(meta, indent=2))


def _start_tracking(exp, out):
    from mlflow import MlflowClient

    from skrnn.tracking import configure_tracking

    experiment_id = configure_tracking(exp.tracking.uri, exp.tracking.experiment or exp.name)
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=exp.name,
                            tags={"skrnn.role": "experiment", "skrnn.output": str(out)})
    return run.info.run_id


def _finish_tracking(parent, exp, table, fitted, plots, Xte, staging):
    import mlflow
    from mlflow import MlflowClient

    from skrnn.tracking import log_model, log_params

    client = MlflowClient()
    client.log_param(parent, "experiment", exp.name)
    for path in [staging / "results.csv", *plots.values()]:
        client.log_artifact(parent, str(path))
    experiment_id = client.get_run(parent).info.experiment_id
    for row in table.to_dict("records"):
        name = row["model"]
        run = client.create_run(experiment_id, run_name=name,
                                tags={"mlflow.parentRunId": parent, "skrnn.kind": row["kind"]})
        rid = run.info.run_id
        for metric in ("MAE", "MSE", "skill", "fit_s"):
            client.log_metric(rid, metric, float(row[metric]))
        client.log_param(rid, "best_params", row["best_params"][:500])
        log_params(fitted[name], run_id=rid)  # every hyperparameter, nested ones included
        reg = fitted_recurrent_regressor(fitted[name])
        if reg is not None:
            for step, loss in enumerate(reg.loss_curve_, start=1):
                client.log_metric(rid, "loss", float(loss), step=step)
            for step, loss in enumerate(reg.validation_loss_curve_ or [], start=1):
                client.log_metric(rid, "validation_loss", float(loss), step=step)
        with mlflow.start_run(run_id=rid):
            example = Xte.frame(slice(0, 5)) if hasattr(Xte, "frame") else Xte.iloc[:5]
            log_model(fitted[name], name="model", X_example=example)
        client.set_terminated(rid)
    client.set_terminated(parent)
