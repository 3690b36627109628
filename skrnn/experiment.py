"""Experiments as data: a TOML definition, validated, and the runner that executes it.

An experiment reads a long table of dated observations (a bundled dataset, a
generator, or a user's CSV), builds lag windows inside each series, splits by date,
tunes and refits every model on the training dates, evaluates one-step-ahead on the
holdout dates against naive baselines, and writes a results table, predictions and
plots (and, with tracking on, MLflow runs). Studies live in a SQLite file under the
output directory, so running the same experiment again resumes its searches instead
of repeating finished trials.

See ``pipelines/*.toml`` for examples; :class:`Experiment` documents every key.
"""

import json
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from skrnn._optional import require

require("pydantic", "optuna", "matplotlib", by="skrnn.experiment", extra="cli")

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator  # noqa: I001

from skrnn._meta import find_recurrent_regressors, fitted_recurrent_regressor

__all__ = ["Experiment", "ExperimentError", "load_experiment", "run_experiment"]

RECURRENT = {"lstm": "LSTMRegressor", "gru": "GRURegressor", "rnn": "SimpleRNNRegressor"}
BASELINES = {"last_value", "seasonal_naive", "window_mean", "drift"}
SKLEARN = {"ridge", "mlp"}


class ExperimentError(ValueError):
    """An experiment definition or its data is not usable; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the observations come from.

    ``source="generated"`` uses ``generator`` (``count_panel``: a crime-like daily
    count panel; parameters in ``params``); ``source="csv"`` reads ``path`` (relative
    paths are resolved against the experiment file's folder); ``source="sktime"``
    loads a dataset that ships with sktime (``dataset``: airline, lynx,
    shampoo_sales). ``date``, ``group`` and ``value`` name the columns.
    """

    source: Literal["generated", "csv", "sktime"] = "generated"
    generator: Literal["count_panel"] = "count_panel"
    dataset: Literal["airline", "lynx", "shampoo_sales"] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    date: str = "date"
    group: str | None = None
    value: str = "value"
    fill_gaps: float | Literal["ffill", "interpolate"] | None = None

    @model_validator(mode="after")
    def _source_needs(self):
        if self.source == "csv" and not self.path:
            raise ValueError("data.source = 'csv' needs data.path")
        if self.source == "sktime" and not self.dataset:
            raise ValueError("data.source = 'sktime' needs data.dataset")
        return self


class SplitConfig(_Strict):
    """Holdout by date: ``test_start`` (a date) or the last ``test_periods`` dates.

    Tuning validates on the last ``validation_fraction`` of the training dates.
    """

    test_start: str | None = None
    test_periods: int | None = Field(default=None, gt=0)
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_of(self):
        if (self.test_start is None) == (self.test_periods is None):
            raise ValueError("split needs exactly one of test_start or test_periods")
        return self


class FeaturesConfig(_Strict):
    """Lag windows: built once with ``max_lags`` per series; ``lags`` is the default
    window of the learned models (tunable up to ``max_lags``)."""

    max_lags: int = Field(default=14, gt=0)
    lags: int = Field(default=7, gt=0)
    scale: Literal["standard", "none"] = "standard"

    @model_validator(mode="after")
    def _fits(self):
        if self.lags > self.max_lags:
            raise ValueError(f"features.lags ({self.lags}) exceeds features.max_lags "
                             f"({self.max_lags})")
        return self


class SearchConfig(_Strict):
    """A search: ``n_trials`` and a ``space`` of parameter → ``[low, high]``,
    ``[low, high, "log"]`` or ``{choices = [...]}``; ``lags`` and ``n_layers`` are
    understood too. An empty space uses the default one."""

    n_trials: int = Field(default=10, gt=0)
    space: dict[str, list | dict] = Field(default_factory=dict)


class ModelConfig(_Strict):
    """One model to compare: a baseline, a recurrent regressor or an sklearn model."""

    name: str
    kind: Literal["last_value", "seasonal_naive", "window_mean", "drift", "lstm", "gru",
                  "rnn", "ridge", "mlp"]
    params: dict[str, Any] = Field(default_factory=dict)
    lags: int | None = Field(default=None, gt=0)
    search: SearchConfig | None = None

    @model_validator(mode="after")
    def _search_only_learned(self):
        if self.search is not None and self.kind in BASELINES:
            raise ValueError(f"model {self.name!r}: a baseline has nothing to tune")
        return self


class TuningConfig(_Strict):
    storage: str | None = "sqlite:///{output}/optuna.db"
    metric: Literal["mae", "mse"] = "mae"
    n_jobs: int = Field(default=1, gt=0)
    timeout: float | None = None


class TrackingConfig(_Strict):
    enabled: bool = True
    experiment: str | None = None
    uri: str | None = None


class Experiment(_Strict):
    """A whole experiment definition (the top level of the TOML file)."""

    name: str
    description: str = ""
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    models: list[ModelConfig] = Field(min_length=1)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: str = "results/{name}"
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models):
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique; got {names}")
        return models

    @property
    def output_dir(self):
        return Path(self.output.format(name=self.name))


def load_experiment(path_or_name):
    """Read and validate an experiment file (a path, or a name in ``./pipelines``
    or among the built-in experiments)."""
    from skrnn._bundled import experiment_dirs

    path = Path(path_or_name)
    if not path.exists() and not path.suffix:
        dirs = experiment_dirs()
        path = next((d / f"{path_or_name}.toml" for d in dirs
                     if (d / f"{path_or_name}.toml").is_file()), path)
        if not path.exists():
            raise ExperimentError(
                f"experiment file not found: {path_or_name} (no such file; looked for "
                f"{path_or_name}.toml in {', '.join(str(d) for d in dirs)})")
    if not path.exists():
        raise ExperimentError(f"experiment file not found: {path_or_name}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from exc
    return parse_experiment(raw, base_dir=path.resolve().parent, source=str(path))


def parse_experiment(raw, *, base_dir=Path("."), source="experiment"):
    """Validate a dict as an :class:`Experiment`, with errors a user can act on."""
    try:
        exp = Experiment.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"  {where}: {msg}" + (
                f" (got {err['input']!r})" if err["type"] not in ("missing", "extra_forbidden")
                and not isinstance(err["input"], dict) else ""))
        raise ExperimentError(f"{source} is not a valid experiment:\n" + "\n".join(lines)) from None
    return exp


# -- data -------------------------------------------------------------------------------------


def load_data(cfg, base_dir=Path("."), seed=0):
    """The long frame ``(date, [group], value)`` an experiment works on, sorted."""
    from skrnn import datasets

    if cfg.source == "generated":
        frame = datasets.make_count_panel(**{"random_state": seed, **cfg.params})
    elif cfg.source == "sktime":
        frame = getattr(datasets, f"load_{cfg.dataset}")()
    else:
        path = Path(cfg.path)
        if not path.is_absolute():
            path = base_dir / path
        if not path.exists():
            raise ExperimentError(f"data file not found: {path}")
        frame = datasets.read_series_csv(path, date=cfg.date, value=cfg.value, group=cfg.group)
    missing = [c for c in (cfg.date, cfg.group, cfg.value) if c and c not in frame.columns]
    if missing:
        raise ExperimentError(
            f"the data has no column(s) {missing}; its columns are {list(frame.columns)}. "
            "Set data.date / data.group / data.value."
        )
    keys = [c for c in (cfg.group, cfg.date) if c]
    return frame.sort_values(keys).reset_index(drop=True)


def _windows(frame, cfg_data, max_lags):
    """Lag windows of ``max_lags`` inside each series, indexed by (date[, group])."""
    from skrnn.lags import make_supervised

    index = [cfg_data.date] + ([cfg_data.group] if cfg_data.group else [])
    data = frame.set_index(index)
    X, y = make_supervised(data, cfg_data.value, lags=max_lags, date=cfg_data.date,
                           group=cfg_data.group, fill_gaps=cfg_data.fill_gaps)
    return X, y


def _split_dates(X, cfg_split, date):
    dates = pd.DatetimeIndex(X.index.get_level_values(date))
    unique = dates.unique().sort_values()
    if cfg_split.test_start is not None:
        start = pd.Timestamp(cfg_split.test_start)
    else:
        if cfg_split.test_periods >= len(unique):
            raise ExperimentError(
                f"split.test_periods={cfg_split.test_periods} leaves no training dates: "
                f"the windows cover {len(unique)} dates."
            )
        start = unique[-cfg_split.test_periods]
    test = dates >= start
    if test.all() or not test.any():
        raise ExperimentError(
            f"the holdout starting {start.date()} leaves {int((~test).sum())} training and "
            f"{int(test.sum())} test rows; the windows span {unique[0].date()} to "
            f"{unique[-1].date()}."
        )
    train_dates = unique[unique < start]
    n_val = max(1, int(np.ceil(cfg_split.validation_fraction * len(train_dates))))
    if n_val >= len(train_dates):
        raise ExperimentError("split.validation_fraction leaves no dates to train on")
    return test, start, train_dates[-n_val]


# -- models -----------------------------------------------------------------------------------


def _build(model, features, seed):
    """The estimator of one model; its parameters' prefix for set_params."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import skrnn
    from skrnn import baselines
    from skrnn.lags import LastSteps

    if model.kind in BASELINES:
        cls = {"last_value": baselines.LastValueRegressor,
               "seasonal_naive": baselines.SeasonalNaiveRegressor,
               "window_mean": baselines.WindowMeanRegressor,
               "drift": baselines.DriftRegressor}[model.kind]
        return cls(**model.params), None
    if model.kind in RECURRENT:
        params = {"random_state": seed, "early_stopping": True, **model.params}
        if "units" in params and isinstance(params["units"], list):
            params["units"] = tuple(params["units"])
        est = getattr(skrnn, RECURRENT[model.kind])(**params)
    elif model.kind == "ridge":
        est = Ridge(**model.params)
    else:
        est = MLPRegressor(**{"random_state": seed, "early_stopping": True, **model.params})
    steps = [("window", LastSteps(n_steps=model.lags or features.lags))]
    if features.scale == "standard":
        steps.append(("scale", StandardScaler()))
    steps.append(("model", est))
    pipe = Pipeline(steps)
    if features.scale == "standard":
        return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler()), "regressor__"
    return pipe, ""


def _space(model, features, prefix):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from skrnn.tuning import _recurrent_space

    space = {}
    if not model.search.space:
        if model.kind in RECURRENT:
            space.update(_recurrent_space(f"{prefix}model__"))
        space[f"{prefix}window__n_steps"] = IntDistribution(1, features.max_lags)
        return space
    for key, spec in model.search.space.items():
        name = f"{prefix}window__n_steps" if key == "lags" else f"{prefix}model__{key}"
        if isinstance(spec, dict):
            if set(spec) != {"choices"}:
                raise ExperimentError(f"search.space.{key}: use {{choices = [...]}} or a list")
            space[name] = CategoricalDistribution(spec["choices"])
        elif len(spec) in (2, 3) and all(isinstance(v, (int, float)) for v in spec[:2]) and (
                len(spec) == 2 or spec[2] == "log"):
            low, high = spec[:2]
            log = len(spec) == 3
            if isinstance(low, int) and isinstance(high, int):
                space[name] = IntDistribution(low, high, log=log)
            else:
                space[name] = FloatDistribution(float(low), float(high), log=log)
        else:
            raise ExperimentError(
                f"search.space.{key} = {spec!r}: expected [low, high], [low, high, \"log\"] "
                "or {choices = [...]}"
            )
    if f"{prefix}window__n_steps" in space:
        d = space[f"{prefix}window__n_steps"]
        if getattr(d, "high", 0) > features.max_lags:
            raise ExperimentError(f"search.space.lags reaches {d.high} > features.max_lags "
                                  f"({features.max_lags})")
    return space


# -- the run ----------------------------------------------------------------------------------


def run_experiment(exp, *, output=None, track=None, progress=True, console=None, n_trials=None):
    """Run an experiment; return the results table (a DataFrame).

    Parameters
    ----------
    exp : Experiment
    output : path, default=None
        Output folder (default: the experiment's ``output``).
    track : bool, default=None
        Override ``tracking.enabled``.
    progress : bool, default=True
        Progress bars for trials and the final fits' epochs.
    n_trials : int, default=None
        Override every search's ``n_trials``.
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    from skrnn.metrics import skill_score
    from skrnn.tuning import TimeHoldout, tune

    say = console.print if console is not None else print
    out = Path(output) if output is not None else exp.output_dir
    out.mkdir(parents=True, exist_ok=True)
    track = exp.tracking.enabled if track is None else track
    d = exp.data

    frame = load_data(d, exp.base_dir, exp.seed)
    X, y = _windows(frame, d, exp.features.max_lags)
    test, start, val_start = _split_dates(X, exp.split, d.date)
    Xtr, ytr, Xte, yte = X[~test], y[~test], X[test], y[test]
    say(f"[{exp.name}] {len(frame)} observations, {len(X)} windows of {exp.features.max_lags} "
        f"lags; train {len(Xtr)} rows before {start.date()}, test {len(Xte)} rows")

    parent = None
    if track:
        parent = _start_tracking(exp, out)

    naive = None
    rows, predictions, fitted = [], {}, {}
    for model in exp.models:
        est, prefix = _build(model, exp.features, exp.seed)
        began = time.perf_counter()
        best_params = {}
        if model.search is not None:
            space = _space(model, exp.features, prefix)
            storage = exp.tuning.storage.format(output=out.as_posix()) if exp.tuning.storage else None
            result = tune(
                est, Xtr, ytr, search_space=space,
                cv=TimeHoldout(start=str(val_start), date=d.date),
                scoring="neg_mean_absolute_error" if exp.tuning.metric == "mae"
                else "neg_mean_squared_error",
                n_trials=n_trials or model.search.n_trials, timeout=exp.tuning.timeout,
                study_name=f"{exp.name}-{model.name}", storage=storage, seed=exp.seed,
                n_jobs=exp.tuning.n_jobs, refit=False, track=bool(parent),
                parent_run_id=parent, progress=progress,
            )
            best_params = result.best_params
            est.set_params(**best_params)
            result.save(out / "tuning" / model.name)
        _progress_bars(est, progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=_convergence_warning())
            est.fit(Xtr, ytr)
        seconds = time.perf_counter() - began
        pred = pd.Series(np.asarray(est.predict(Xte)).ravel(), index=Xte.index)
        predictions[model.name] = pred
        fitted[model.name] = est
        if naive is None or model.kind == "last_value":
            naive = naive if model.kind != "last_value" else pred
        rows.append({
            "model": model.name, "kind": model.kind,
            "MAE": mean_absolute_error(yte, pred), "MSE": mean_squared_error(yte, pred),
            "fit_s": round(seconds, 2),
            "best_params": " ".join(f"{k.split('__')[-1]}={_short(v)}"
                                    for k, v in best_params.items()),
        })
    if naive is None:
        from skrnn.baselines import LastValueRegressor

        naive = pd.Series(LastValueRegressor().fit(Xtr, ytr).predict(Xte), index=Xte.index)
    for row in rows:
        row["skill"] = skill_score(yte, predictions[row["model"]], naive)
    table = pd.DataFrame(rows)[["model", "kind", "MAE", "MSE", "skill", "fit_s",
                                "best_params"]]
    table.to_csv(out / "results.csv", index=False)
    preds = pd.DataFrame({"y": yte, **predictions})
    preds.to_csv(out / "predictions.csv")
    plots = _plots(exp, frame, Xtr, fitted, predictions, table, out)
    _save_models(fitted, exp, out)
    if parent:
        _finish_tracking(parent, exp, table, fitted, predictions, plots, Xte, yte, out)
    (out / "experiment.json").write_text(exp.model_dump_json(indent=2))
    return table


def _short(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value).replace(" ", "")


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
    import matplotlib.pyplot as plt

    from skrnn.plotting import plot_fit, plot_loss_curves

    d = exp.data
    files = {}
    learned = table[~table["kind"].isin(BASELINES)]
    best = (learned if len(learned) else table).sort_values("MAE")["model"].iloc[0]
    framed = frame.set_index([d.date] + ([d.group] if d.group else []))
    train_pred = pd.Series(np.asarray(fitted[best].predict(Xtr)).ravel(), index=Xtr.index)
    fig = plot_fit(framed.reset_index(), train_pred.reindex(framed.index).to_numpy(),
                   predictions[best].reindex(framed.index).to_numpy(), value=d.value,
                   date=d.date, group=d.group, max_groups=6)
    files["fit"] = out / f"fit_{best}.png"
    fig.savefig(files["fit"], dpi=90, bbox_inches="tight")
    plt.close(fig)
    for name, est in fitted.items():
        reg = fitted_recurrent_regressor(est)
        if reg is not None:
            fig = plot_loss_curves(reg)
            fig = fig if hasattr(fig, "savefig") else fig.figure
            files[f"loss_{name}"] = out / f"loss_{name}.png"
            fig.savefig(files[f"loss_{name}"], dpi=90, bbox_inches="tight")
            plt.close(fig)
    return files


def _save_models(fitted, exp, out):
    from skrnn import persistence

    models = out / "models"
    models.mkdir(exist_ok=True)
    for name, est in fitted.items():
        persistence.save(est, models / f"{name}.skops")
    meta = {"max_lags": exp.features.max_lags, "date": exp.data.date, "group": exp.data.group,
            "value": exp.data.value}
    (models / "windows.json").write_text(json.dumps(meta, indent=2))


def _start_tracking(exp, out):
    from mlflow import MlflowClient

    from skrnn.tracking import configure_tracking

    experiment_id = configure_tracking(exp.tracking.uri, exp.tracking.experiment or exp.name)
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=exp.name,
                            tags={"skrnn.role": "experiment", "skrnn.output": str(out)})
    return run.info.run_id


def _finish_tracking(parent, exp, table, fitted, predictions, plots, Xte, yte, out):
    import mlflow
    from mlflow import MlflowClient

    from skrnn.tracking import log_model

    client = MlflowClient()
    client.log_param(parent, "experiment", exp.name)
    for path in [out / "results.csv", *plots.values()]:
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
        reg = fitted_recurrent_regressor(fitted[name])
        if reg is not None:
            for step, loss in enumerate(reg.loss_curve_, start=1):
                client.log_metric(rid, "loss", float(loss), step=step)
            for step, loss in enumerate(reg.validation_loss_curve_ or [], start=1):
                client.log_metric(rid, "validation_loss", float(loss), step=step)
        with mlflow.start_run(run_id=rid):
            log_model(fitted[name], name="model", X_example=Xte.iloc[:5])
        client.set_terminated(rid)
    client.set_terminated(parent)


def forecast_next(model_path, data_path, *, date=None, group=None, value=None):
    """Next-step forecast of every series in a CSV with a model saved by a run.

    The window layout (number of lags, column names) comes from ``windows.json``
    beside the model; ``date``, ``group`` and ``value`` override its column names.

    Returns
    -------
    forecasts : DataFrame
        One row per series: ``[group,] date`` (the next date) and ``forecast``.
    """
    from skrnn import persistence
    from skrnn._panel import infer_frequency
    from skrnn.datasets import read_series_csv
    from skrnn.lags import lag_names

    model_path = Path(model_path)
    meta_path = model_path.parent / "windows.json"
    if not meta_path.exists():
        raise ExperimentError(f"{meta_path} is missing: save models with 'skrnn run'")
    meta = json.loads(meta_path.read_text())
    date, group, value = date or meta["date"], group or meta["group"], value or meta["value"]
    model = persistence.load(model_path)
    frame = read_series_csv(data_path, date=date, value=value, group=group)
    L = meta["max_lags"]
    names = list(getattr(model, "feature_names_in_", lag_names([value], range(L, 0, -1))))
    rows, windows = [], []
    for key, part in (frame.groupby(group, sort=True) if group else [(None, frame)]):
        part = part.sort_values(date)
        if len(part) < L:
            raise ExperimentError(
                f"series {key!r} has {len(part)} observations; the model needs the last {L}."
            )
        dates = pd.DatetimeIndex(part[date])
        step = infer_frequency(dates[-3:])
        step = pd.Timedelta(days=1) if step is None else step
        windows.append(part[value].to_numpy(dtype=float)[-L:])
        rows.append({**({group: key} if group else {}), date: dates[-1] + step})
    X = pd.DataFrame(np.vstack(windows), columns=names)
    out = pd.DataFrame(rows)
    out["forecast"] = np.asarray(model.predict(X)).ravel()
    return out
