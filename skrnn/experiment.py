"""Experiments as data: a TOML definition, validated, and the runner that executes it.

An experiment reads a long table of dated observations (a bundled dataset, a
generator, or a user's CSV), builds lag windows inside each series (the value and, as
extra step features, calendar features and covariate columns), splits by date, tunes
and refits every model on the training dates (inputs and target scaled per series by
default, predictions inverted), averages the top configurations where asked
(``ensemble``), evaluates one-step-ahead on the holdout dates against naive baselines
and Ridge and HistGradientBoosting on the same windows, and writes a results table
ranked by the metric, predictions, plots and the time of each phase (``timings.json``;
and, with tracking on, MLflow runs). Everything is checked before the first
fit, and a run is published atomically (a staging folder renamed into place, with
``manifest.json`` written last; a previous run is moved aside). Studies live in a
SQLite file in the output folder, named by a fingerprint of the model, its search
space, the features, the split and the data: running the same experiment again
resumes its searches, a changed one starts new studies.

See ``pipelines/*.toml`` for examples; :class:`Experiment` documents every key.
"""

import json
import os
import shutil
import signal
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
from pydantic import (  # noqa: I001
    BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator)

from skrnn._meta import (
    find_recurrent_regressors,
    fitted_recurrent_regressor,
    iter_estimators,
)

__all__ = ["Experiment", "ExperimentError", "load_experiment", "run_experiment"]

RECURRENT = {"lstm": "LSTMRegressor", "gru": "GRURegressor", "rnn": "SimpleRNNRegressor"}
BASELINES = {"last_value", "seasonal_naive", "window_mean", "drift"}
SKLEARN = {"ridge", "mlp", "hgb"}


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
    shampoo_sales). ``date``, ``group`` and ``value`` name the columns; group keys are
    read as strings (``"007"`` and ``"7"`` are two series). ``fill_gaps`` (a number,
    ``"ffill"`` or ``"interpolate"``) fills missing dates and empty value cells alike;
    None refuses both. ``sep`` and ``date_format`` describe the CSV.
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
    sep: str = ","
    date_format: str | None = None

    @field_validator("fill_gaps")
    @classmethod
    def _finite_fill(cls, value):
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError("fill_gaps must be a finite number, 'ffill' or 'interpolate'")
        return value

    @model_validator(mode="after")
    def _source_needs(self):
        if self.source == "csv" and not self.path:
            raise ValueError("data.source = 'csv' needs data.path")
        if self.source == "sktime" and not self.dataset:
            raise ValueError("data.source = 'sktime' needs data.dataset")
        return self


class SplitConfig(_Strict):
    """Holdout by date: ``test_start`` (a date) or the last ``test_periods`` dates.

    Training uses the dates from ``train_start`` (default: all history) up to the
    holdout; tuning validates on the last ``validation_fraction`` of them.
    """

    train_start: str | None = None
    test_start: str | None = None
    test_periods: int | None = Field(default=None, gt=0)
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)

    @field_validator("test_start", "train_start")
    @classmethod
    def _a_date(cls, value, info):
        if value is not None:
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError):
                raise ValueError(
                    f"{info.field_name} {value!r} is not a date (e.g. 2020-06-01)") from None
        return value

    @model_validator(mode="after")
    def _one_of(self):
        if (self.test_start is None) == (self.test_periods is None):
            raise ValueError("split needs exactly one of test_start or test_periods")
        return self


class FeaturesConfig(_Strict):
    """What each window holds and how it is scaled.

    Lag windows are built once with ``max_lags`` steps per series (None: inferred from
    the data's frequency, :data:`DEFAULT_MAX_LAGS`: 56 for daily data, i.e. 8 weeks, 24
    for monthly, 8 for quarterly); ``lags`` is the default window of the learned models
    (None: ``max_lags``), tunable up to ``max_lags``. Each step holds the value and, as
    extra step features (``n_step_features`` is set on the models automatically):
    ``past_covariates`` (other CSV columns known up to the previous date, lagged like
    the value), ``known_future`` (CSV columns known in advance; a window's last step
    holds the target date's values) and ``calendar`` features of each step's date
    (among dayofweek, month, dayofyear, weekofyear, holiday; holiday needs ``country``).
    ``scaling``: ``per_series`` scales the inputs and the target with each series' own
    statistics, ``global`` with one set for all rows, ``none`` leaves them; fit on the
    training dates only and inverted on the predictions. None (the default):
    ``per_series`` for panels, ``global`` for a single series. ``scale`` is the older
    spelling (``standard`` = ``global``). ``static``: columns constant within each series,
    or ``"group"`` (a one-hot of the series), repeated on every step; they need
    ``scaling = "global"`` or ``"none"`` (per-series scaling would turn them into 0).
    """

    max_lags: int | None = Field(default=None, gt=0)
    lags: int | None = Field(default=None, gt=0)
    scaling: Literal["per_series", "global", "none"] | None = None
    scale: Literal["standard", "none"] | None = None
    calendar: list[str] = Field(default_factory=list)
    country: str | None = None
    known_future: list[str] = Field(default_factory=list)
    past_covariates: list[str] = Field(default_factory=list)
    static: list[str] | Literal["group"] = Field(default_factory=list)
    _n_groups: int = PrivateAttr(default=0)  # the one-hot's width, known from the data

    @model_validator(mode="after")
    def _fits(self):
        if self.lags is not None and self.max_lags is not None and self.lags > self.max_lags:
            raise ValueError(f"features.lags ({self.lags}) exceeds features.max_lags "
                             f"({self.max_lags})")
        if self.scale is not None and self.scaling is not None:
            raise ValueError("give features.scaling or the older features.scale, not both")
        if self.calendar:
            from skrnn.calendar import _check_features

            _check_features(self.calendar, self.country)
        elif self.country is not None:
            raise ValueError("features.country only serves calendar = [\"holiday\"]")
        both = set(self.known_future) & set(self.past_covariates)
        named = self.known_future + self.past_covariates + (
            [] if self.static == "group" else self.static)
        if both or len(set(named)) != len(named):
            raise ValueError(f"a column is listed twice in known_future/past_covariates/static: "
                             f"{sorted(both) or named}")
        return self

    def resolved_scaling(self, panel):
        if self.scaling is not None:
            return self.scaling
        if self.scale is not None:
            return "global" if self.scale == "standard" else "none"
        return "per_series" if panel else "global"

    def n_step_features(self):
        """Features per step of the windows: value, covariates, calendar columns."""
        from skrnn.calendar import calendar_feature_names

        calendar = (len(calendar_feature_names(self.calendar, self.country))
                    if self.calendar else 0)
        static = self._n_groups if self.static == "group" else len(self.static)
        return 1 + len(self.past_covariates) + len(self.known_future) + calendar + static


#: Window length by frequency when ``features.max_lags`` is not given (several
#: seasonal cycles: 8 weeks of days, 2 years of months, ...); anything else gets 14.
DEFAULT_MAX_LAGS = {"D": 56, "B": 40, "W": 52, "M": 24, "Q": 8, "Y": 4, "h": 48, "min": 60}


def infer_max_lags(freq):
    """The default window length for a grid step (a pandas offset or None)."""
    if freq is None:
        return 14
    code = pd.tseries.frequencies.to_offset(freq).name.split("-")[0]
    return DEFAULT_MAX_LAGS.get(code.rstrip("SE") or code, 14)  # MS, ME -> M


def resolve_features(features, freq, panel, n_groups=0):
    """``features`` with ``max_lags``, ``lags`` and ``scaling`` filled in."""
    max_lags = features.max_lags or infer_max_lags(freq)
    lags = features.lags or max_lags
    if lags > max_lags:
        raise ExperimentError(f"features.lags ({lags}) exceeds the inferred features.max_lags "
                              f"({max_lags}); set features.max_lags")
    if features.static and features.resolved_scaling(panel) == "per_series":
        raise ExperimentError("features.static needs features.scaling = \"global\" or "
                              "\"none\": per-series scaling turns a series' constant into 0")
    out = features.model_copy(update={"max_lags": max_lags, "lags": lags,
                                      "scaling": features.resolved_scaling(panel),
                                      "scale": None})
    out._n_groups = n_groups
    return out


class SearchConfig(_Strict):
    """A search: ``n_trials`` and a ``space`` of parameter → ``[low, high]``,
    ``[low, high, "log"]`` or ``{choices = [...]}``; ``lags`` and ``n_layers`` are
    understood too. An empty space uses the default one."""

    n_trials: int = Field(default=10, gt=0)
    space: dict[str, list | dict] = Field(default_factory=dict)


def _file_name(value, what):
    """Refuse names that could write outside the output folder (they name files)."""
    bad = (not value or value != value.strip() or value.startswith(".") or ".." in value
           or any(c in value for c in "/\\:") or any(ord(c) < 32 for c in value))
    if bad:
        raise ValueError(
            f"{what} {value!r} cannot name a file: no path separators, no '..', no leading "
            "dot or surrounding spaces"
        )
    return value


class ModelConfig(_Strict):
    """One model to compare: a baseline, a recurrent regressor or an sklearn model.

    ``name`` names its files (``models/<name>.skops``, ``fit_<name>.png``): no path
    separators, no ``..``, no leading dot.
    """

    name: str
    kind: Literal["last_value", "seasonal_naive", "window_mean", "drift", "lstm", "gru",
                  "rnn", "ridge", "mlp", "hgb"]
    params: dict[str, Any] = Field(default_factory=dict)
    lags: int | None = Field(default=None, gt=0)
    search: SearchConfig | None = None
    ensemble: int | None = Field(default=None, ge=2)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name):
        return _file_name(name, "model name")

    @model_validator(mode="after")
    def _search_only_learned(self):
        if self.search is not None and self.kind in BASELINES:
            raise ValueError(f"model {self.name!r}: a baseline has nothing to tune")
        if self.ensemble is not None and self.kind in BASELINES:
            raise ValueError(f"model {self.name!r}: a baseline has nothing to average")
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
    """A whole experiment definition (the top level of the TOML file).

    ``baselines = true`` (the default) adds, to the listed models, the strong and naive
    baselines the table must beat, each unless a listed model already has its kind:
    ``last_value``, ``ridge`` and ``hgb`` (HistGradientBoostingRegressor), on the same
    windows and scaling as the learned models. ``baselines = false`` runs the listed
    models only.
    """

    name: str
    description: str = ""
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    models: list[ModelConfig] = Field(min_length=1)
    baselines: bool = True
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: str = "results/{name}"
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name):
        return _file_name(name, "experiment name")

    @model_validator(mode="after")
    def _add_baselines(self):
        if self.baselines:
            kinds = {m.kind for m in self.models}
            names = {m.name for m in self.models}
            for kind in ("last_value", "ridge", "hgb"):
                if kind not in kinds:
                    if kind in names:
                        raise ValueError(
                            f"a model named {kind!r} is not a {kind} model, so the {kind} "
                            "baseline has no name: rename it or set baselines = false")
                    self.models.append(ModelConfig(name=kind, kind=kind))
        names = [m.name for m in self.models]
        ensembles = {f"{m.name}_ensemble" for m in self.models if m.ensemble}
        if ensembles & set(names):
            raise ValueError(f"model names {sorted(ensembles & set(names))} are taken by "
                             "ensemble rows")
        return self

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


def override_experiment(exp, *, data=None, split=None):
    """``exp`` with some ``data`` and ``split`` keys replaced, validated again."""
    raw = exp.model_dump()
    raw["data"].update(data or {})
    if split:
        raw["split"] = {**raw["split"], **split}
    return parse_experiment(raw, base_dir=exp.base_dir,
                            source=f"{exp.name} with the command line options")


# -- data -------------------------------------------------------------------------------------

# Values this large are refused as absurd: beyond 2**53 (~9e15) float64 no longer holds
# every integer, so counts and their errors are silently rounded, and squared errors of
# such values overflow float32 networks.
ABSURD = 1e15


def load_data(cfg, base_dir=Path("."), seed=0, columns=()):
    """The long frame ``(date, [group], value)`` an experiment works on, checked and sorted.

    Group keys are strings; infinite and absurd values (``|x| >= 1e15``) are refused
    with the file's line numbers; rows with an empty value are refused like missing
    dates unless ``cfg.fill_gaps`` is set, in which case they become gaps to fill.
    """
    from skrnn import datasets

    path = None
    if cfg.source == "generated":
        frame = datasets.make_count_panel(**{"random_state": seed, **cfg.params})
    elif cfg.source == "sktime":
        frame = getattr(datasets, f"load_{cfg.dataset}")()
    else:
        path = Path(cfg.path)
        if not path.is_absolute():
            path = base_dir / path
        frame = read_csv(path, cfg, columns)
    missing = [c for c in (cfg.date, cfg.group, cfg.value) if c and c not in frame.columns]
    if missing:
        raise ExperimentError(
            f"the data has no column(s) {missing}; its columns are {list(frame.columns)}. "
            "Set data.date / data.group / data.value."
        )
    if cfg.group:
        frame[cfg.group] = frame[cfg.group].astype(str)
    frame = _check_values(frame, cfg, path)
    keys = [c for c in (cfg.group, cfg.date) if c]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def read_csv(path, cfg, columns=()):
    """Read a user's CSV as ``cfg`` describes it (group keys as strings), with the
    value and the numeric ``columns`` (covariates)."""
    from skrnn.datasets import read_series_csv

    if not Path(path).is_file():
        raise ExperimentError(f"data file not found: {path}")
    kwargs = {"sep": cfg.sep}
    if cfg.group:
        kwargs["dtype"] = {cfg.group: str}
    try:
        value = [cfg.value, *[c for c in columns if c not in (cfg.value, cfg.date, cfg.group)]]
        return read_series_csv(path, date=cfg.date, value=value, group=cfg.group,
                               date_format=cfg.date_format, **kwargs)
    except ValueError as exc:
        msg = str(exc).replace("date_format=", "--date-format / data.date_format ")
        msg = msg.replace("sep=", "--sep / data.sep = ")
        raise ExperimentError(msg) from None


def _value_masks(numbers):
    return {"missing": np.isnan(numbers), "bad": np.isinf(numbers) | (
        np.isfinite(numbers) & (np.abs(numbers) >= ABSURD))}


def _check_values(frame, cfg, path=None):
    """Refuse infinite/absurd values; empty cells follow the rule of missing dates."""
    masks = _value_masks(frame[cfg.value].to_numpy(dtype=np.float64))
    refuse_missing = masks["missing"].any() and cfg.fill_gaps is None
    if not masks["bad"].any() and not refuse_missing:
        # with fill_gaps, a row without a value is a missing date of its series
        return frame[~masks["missing"]].copy()
    if path is not None:  # locate the offending cells in the file itself
        raw = pd.read_csv(path, sep=cfg.sep, usecols=[cfg.value], dtype=str,
                          keep_default_na=False)[cfg.value]
        masks = _value_masks(pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64))
        where, offset = f"{path}: line", 2  # header on line 1
    else:
        raw, where, offset = frame[cfg.value], "row", 0
    kind = "bad" if masks["bad"].any() else "missing"
    rows = np.flatnonzero(masks[kind])
    examples = ", ".join(f"{where} {r + offset} ({str(raw.iloc[r])!r})" for r in rows[:3])
    if kind == "bad":
        raise ExperimentError(
            f"{len(rows)} value(s) of {cfg.value!r} are infinite or absurd (|value| >= "
            f"{ABSURD:.0e}), e.g. {examples}; fix them or rescale the data."
        )
    raise ExperimentError(
        f"{len(rows)} empty value cell(s) in {cfg.value!r}, e.g. {examples}; an empty value "
        "is a gap in its series, like a missing date: pass --fill-gaps (a number, ffill or "
        "interpolate; data.fill_gaps in the experiment) or fix the data."
    )


def check_panel(frame, cfg, freq=None):
    """The regular per-series date grid of ``frame`` (duplicates, gaps and irregular
    dates refused unless ``cfg.fill_gaps``); ``grid.freq`` is its step."""
    from skrnn._panel import build_grid, group_codes

    codes, labels = (group_codes(frame[cfg.group], cfg.group) if cfg.group else (None, None))
    try:
        return build_grid(len(frame), codes, labels, times=frame[cfg.date], freq=freq,
                          fill_gaps=cfg.fill_gaps, param_date=cfg.date)
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("Pass fill_gaps=<number>, 'ffill' or 'interpolate'",
                               "Pass --fill-gaps <number>, ffill or interpolate (data.fill_gaps)")
        raise ExperimentError(msg.replace("pass freq= explicitly or ", "")) from None


def data_hash(frame):
    """A digest of the checked data, part of every study's identity."""
    import hashlib

    digest = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(digest + repr(list(frame.columns)).encode()).hexdigest()


def _check_covariates(frame, cfg_data, features):
    """Every covariate a numeric column of the data without gaps; refuse anything else."""
    keys = {cfg_data.date, cfg_data.group, cfg_data.value}
    for what in ("known_future", "past_covariates", "static"):
        for col in [] if getattr(features, what) == "group" else getattr(features, what):
            if col in keys:
                raise ExperimentError(
                    f"features.{what} lists {col!r}, which is the data's date, group or value "
                    "column; list other columns")
            if col not in frame.columns:
                raise ExperimentError(
                    f"features.{what} lists {col!r}, which is not a column of the data; its "
                    f"columns are {list(frame.columns)}")
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise ExperimentError(
                    f"features.{what}: column {col!r} has {int(bad.sum())} empty, non-numeric "
                    f"or infinite value(s), e.g. row {row} ({frame[col].iloc[row]!r})")
            frame[col] = values.astype(np.float64)


def _windows(frame, cfg_data, features, freq=None):
    """Lag windows of ``features.max_lags`` steps inside each series (value, covariates,
    calendar features per step), indexed by (date[, group])."""
    from skrnn.lags import make_supervised

    index = [cfg_data.date] + ([cfg_data.group] if cfg_data.group else [])
    data = frame.set_index(index)
    try:
        X, y = make_supervised(
            data, cfg_data.value, lags=features.max_lags, date=cfg_data.date,
            group=cfg_data.group, fill_gaps=cfg_data.fill_gaps, freq=freq,
            past_covariates=features.past_covariates or None,
            future_covariates=features.known_future or None,
            calendar=features.calendar or None, country=features.country,
            static=None if features.static == "group" else features.static or None,
            group_one_hot=features.static == "group")
    except (ValueError, TypeError, ImportError) as exc:
        raise ExperimentError(f"features: {exc}") from None
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


def _build(model, features, seed, group=None):
    """The estimator of one model; its parameters' prefix for set_params.

    ``features`` is resolved (:func:`resolve_features`). Learned models read the windows
    through a scaler (per series: a :class:`~skrnn.GroupScaler` on the ``group`` index
    level, one statistic per step feature) and :class:`~skrnn.lags.LastSteps`, which cuts
    whole steps of ``n_step_features`` columns; the target is scaled alike
    (:class:`~skrnn.scaling.GroupTargetRegressor` per series) and predictions come back
    in the data's units.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import skrnn
    from skrnn import baselines
    from skrnn.lags import LastSteps
    from skrnn.scaling import GroupScaler, GroupTargetRegressor

    F = features.n_step_features()
    if model.kind in BASELINES:
        cls = {"last_value": baselines.LastValueRegressor,
               "seasonal_naive": baselines.SeasonalNaiveRegressor,
               "window_mean": baselines.WindowMeanRegressor,
               "drift": baselines.DriftRegressor}[model.kind]
        return cls(**{"n_step_features": F, **model.params}), None
    if model.kind in RECURRENT:
        params = {"random_state": seed, "early_stopping": True, "n_step_features": F,
                  **model.params}
        if "units" in params and isinstance(params["units"], list):
            params["units"] = tuple(params["units"])
        est = getattr(skrnn, RECURRENT[model.kind])(**params)
    elif model.kind == "ridge":
        est = Ridge(**model.params)
    elif model.kind == "hgb":
        est = HistGradientBoostingRegressor(**{"random_state": seed, **model.params})
    else:
        est = MLPRegressor(**{"random_state": seed, "early_stopping": True, **model.params})
    scaling = features.scaling
    per_series = scaling == "per_series" and group is not None
    steps = []
    if scaling != "none":
        steps.append(("scale", GroupScaler(group=group if per_series else None,
                                           n_step_features=F).set_output(transform="pandas")))
    steps.append(("window", LastSteps(n_steps=model.lags or features.lags, n_step_features=F)))
    steps.append(("model", est))
    pipe = Pipeline(steps)
    if per_series:
        return GroupTargetRegressor(pipe, group=group), "regressor__"
    if scaling != "none":
        scaled = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
        return scaled, "regressor__"
    return pipe, ""


def _default_recurrent_space(prefix, losses):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        f"{prefix}loss": CategoricalDistribution(losses),
        f"{prefix}learning_rate_init": FloatDistribution(1e-3, 3e-2, log=True),
        f"{prefix}units": IntDistribution(8, 64, log=True),
        f"{prefix}n_layers": IntDistribution(1, 2),
        f"{prefix}dropout": FloatDistribution(0.0, 0.3),
    }


def _losses(features, nonnegative):
    """The losses of the default space; ``poisson`` for a non-negative, unscaled target
    (a scaled target has negative values, which the Poisson deviance refuses)."""
    losses = ["squared_error", "huber", "absolute_error"]
    if nonnegative and features.scaling == "none":
        losses.append("poisson")
    return losses


def _space(model, features, prefix, nonnegative=False):
    """The search space of ``model``: its ``search.space``, or the default one (for a
    recurrent model: loss, learning rate, units, layers, dropout; for every model the
    window length from 1 to ``max_lags`` steps)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    space = {}
    if not model.search.space:
        if model.kind in RECURRENT:
            space.update(_default_recurrent_space(f"{prefix}model__",
                                                  _losses(features, nonnegative)))
        space[f"{prefix}window__n_steps"] = IntDistribution(1, features.max_lags)
        return space
    for key, spec in model.search.space.items():
        name = f"{prefix}window__n_steps" if key == "lags" else f"{prefix}model__{key}"
        if isinstance(spec, dict):
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec[
                    "choices"]:
                raise ExperimentError(f"search.space.{key}: use {{choices = [...]}} (not empty) "
                                      "or a list")
            space[name] = CategoricalDistribution(spec["choices"])
        elif len(spec) in (2, 3) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                         for v in spec[:2]) and (
                len(spec) == 2 or spec[2] == "log"):
            low, high = spec[:2]
            log = len(spec) == 3
            try:
                if isinstance(low, int) and isinstance(high, int):
                    space[name] = IntDistribution(low, high, log=log)
                else:
                    space[name] = FloatDistribution(float(low), float(high), log=log)
            except ValueError as exc:
                raise ExperimentError(f"search.space.{key} = {spec!r}: {exc}") from None
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


def _validate_estimator(est, model, what):
    """sklearn's own parameter checks of every estimator nested in ``est``, now."""
    for _, leaf in iter_estimators(est):
        if hasattr(leaf, "_validate_params"):
            try:
                leaf._validate_params()
            except (ValueError, TypeError) as exc:
                raise ExperimentError(f"model {model.name!r}, {what}: {exc}") from None


def _extremes(space):
    """A few points of ``space`` that together touch every bound and every choice."""
    from optuna.distributions import CategoricalDistribution

    points = [{k: (d.choices[0] if isinstance(d, CategoricalDistribution) else d.low)
               for k, d in space.items()},
              {k: (d.choices[-1] if isinstance(d, CategoricalDistribution) else d.high)
               for k, d in space.items()}]
    for key, dist in space.items():
        for choice in getattr(dist, "choices", ())[1:-1]:
            points.append({**points[0], key: choice})
    return points


def check_model(model, features, seed, group=None, nonnegative=False):
    """Check a model's params and search space on a clone, before anything is fitted.

    Unknown parameter names, values outside the estimator's constraints and search
    bounds it would refuse are all reported here, naming the model and the key.
    """
    from sklearn.base import clone

    from skrnn.tuning import params_for_estimator

    base, prefix = _build(model.model_copy(update={"params": {}}), features, seed, group)
    inner = "" if prefix is None else f"{prefix}model__"
    est = clone(base)
    cls = type(_leaf_model(est)).__name__
    for key, value in model.params.items():
        value = tuple(value) if key == "units" and isinstance(value, list) else value
        try:
            est.set_params(**{inner + key: value})
        except ValueError:
            known = sorted(_leaf_model(est).get_params(deep=False))
            raise ExperimentError(
                f"model {model.name!r}: params.{key} is not a parameter of {cls}; its "
                f"parameters are {known}"
            ) from None
    _validate_estimator(est, model, "params")
    if model.search is None:
        return None
    try:
        space = _space(model, features, prefix or "", nonnegative)
    except ExperimentError as exc:
        raise ExperimentError(f"model {model.name!r}: {exc}") from None
    for point in _extremes(space):
        candidate = clone(est)
        for name, value in params_for_estimator(point).items():
            short = _short_name(name)
            try:
                candidate.set_params(**{name: value})
            except ValueError:
                raise ExperimentError(
                    f"model {model.name!r}: search.space.{short} is not a parameter of {cls}"
                ) from None
        _validate_estimator(candidate, model, "search.space")
    return space


def _leaf_model(est):
    """The model step of a built estimator (the estimator itself for baselines)."""
    inner = getattr(est, "regressor", est)
    return dict(getattr(inner, "steps", [])).get("model", inner)


def _short_name(param):
    """``regressor__model__units`` → ``units``; the window's ``n_steps`` → ``lags``."""
    tail = param.split("__")[-1]
    return "lags" if tail == "n_steps" else tail


# -- the run ----------------------------------------------------------------------------------

MANIFEST = "manifest.json"
# What a run folder may hold; an existing folder with anything else is not ours to move.
_RUN_ENTRIES = {"results.csv", "predictions.csv", "experiment.json", "optuna.db", "models",
                "tuning", "timings.json", MANIFEST}


def run_experiment(exp, *, output=None, track=None, progress=True, console=None, n_trials=None,
                   fresh=False):
    """Run an experiment; return the results table (a DataFrame).

    Everything that can be checked is checked before the first fit: every model's
    params and search space (on clones), the tuning storage, the output folder and
    the data. The run is written to a hidden folder beside ``output`` and renamed into
    place when complete, ``manifest.json`` last; a previous run in ``output`` is moved
    aside to ``<output>.previous-<time>``, never mixed with the new one.

    Each search's study is named after the experiment, the model and a fingerprint
    of everything that defines its trials (model config, search space, features,
    split, metric, seed and data): running the same experiment again resumes it, a
    changed one starts a new study.

    Parameters
    ----------
    exp : Experiment
    output : path, default=None
        Output folder (default: the experiment's ``output``).
    track : bool, default=None
        Override ``tracking.enabled``.
    progress : bool, default=True
        Progress bars for trials and the final fits' epochs.
    console : rich.console.Console, default=None
        Where to report; None prints.
    n_trials : int, default=None
        Override every search's ``n_trials`` (>= 1).
    fresh : bool, default=False
        Delete the matching studies first and start the searches over.
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    from skrnn.tuning import TimeHoldout, tune

    say = _sayer(console)
    out = Path(output) if output is not None else exp.output_dir
    track = exp.tracking.enabled if track is None else track
    d = exp.data
    if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 1):
        raise ExperimentError(f"the number of trials must be >= 1, got {n_trials!r}")

    # 1. everything that needs no data and no fit (window bounds are checked again
    # once the data's frequency has fixed max_lags)
    group = d.group
    draft = exp.features.model_copy(update={
        "max_lags": exp.features.max_lags or 10_000, "lags": exp.features.lags or 1,
        "scaling": exp.features.resolved_scaling(bool(group)), "scale": None})
    spaces = {m.name: check_model(m, draft, exp.seed, group) for m in exp.models}
    for m in exp.models:
        if m.ensemble and spaces[m.name] is None and m.kind in ("ridge",):
            raise ExperimentError(
                f"model {m.name!r}: ensemble = {m.ensemble} needs a search (the top "
                f"configurations) or a model with seeds; {m.kind} has none")
    study_file = _study_file(exp)
    _check_output(out, study_file)
    _recover(out, study_file)
    staging = _new_staging(out)
    parent, tuned = None, False
    timings = {}
    try:
        storage = _open_storage(exp, out, staging, study_file) if any(
            s is not None for s in spaces.values()) else None
        # 2. the data, checked like `skrnn predict` checks it
        clock = time.perf_counter()
        frame = load_data(d, exp.base_dir, exp.seed,
                          exp.features.known_future + exp.features.past_covariates + (
                              [] if exp.features.static == "group" else exp.features.static))
        _check_covariates(frame, d, exp.features)
        grid = check_panel(frame, d)
        features = resolve_features(exp.features, grid.freq, bool(group),
                                    len(grid.labels) if group else 0)
        timings["data_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        X, y = _windows(frame, d, features, freq=grid.freq)
        test, start, val_start = _split_dates(X, exp.split, d.date)
        train = ~test
        if exp.split.train_start is not None:
            train &= X.index.get_level_values(d.date) >= pd.Timestamp(exp.split.train_start)
            if not train.any() or val_start <= pd.Timestamp(exp.split.train_start):
                raise ExperimentError(
                    f"split.train_start {exp.split.train_start} leaves no training dates "
                    f"before the validation dates (from {val_start.date()})")
        Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
        nonnegative = bool((ytr >= 0).all())
        spaces = {m.name: check_model(m, features, exp.seed, group, nonnegative)
                  for m in exp.models}
        digest = data_hash(frame)
        timings["features_s"] = time.perf_counter() - clock
        F = features.n_step_features()
        say(f"[{exp.name}] {len(frame)} observations, {len(X)} windows of "
            f"{features.max_lags} steps x {F} feature(s), {features.scaling} scaling; "
            f"train {len(Xtr)} rows before {start.date()}, test {len(Xte)} rows")
        _checkpoint("data")
        if track:
            parent = _start_tracking(exp, out)

        rows, predictions, fitted = [], {}, {}
        timings["models"] = {}
        scoring = ("neg_mean_absolute_error" if exp.tuning.metric == "mae"
                   else "neg_mean_squared_error")
        for model in exp.models:
            est, _ = _build(model, features, exp.seed, group)
            began = time.perf_counter()
            spent = timings["models"][model.name] = {}
            best_params, result = {}, None
            space = spaces[model.name]
            if space is not None:
                wanted = n_trials or model.search.n_trials
                tuned = True
                name = _study(exp, model, space, digest, storage, wanted, fresh, say,
                              private=study_file is not None)
                result = tune(
                    est, Xtr, ytr, search_space=space,
                    cv=TimeHoldout(start=str(val_start), date=d.date), scoring=scoring,
                    n_trials=wanted, timeout=exp.tuning.timeout, study_name=name,
                    storage=storage, seed=exp.seed, n_jobs=exp.tuning.n_jobs, refit=False,
                    track=bool(parent), parent_run_id=parent, progress=progress,
                )
                best_params = result.best_params
                _check_in_space(model, result.study.best_params, space)
                est.set_params(**best_params)
                result.save(staging / "tuning" / model.name, plots=False)
                _tuning_plots(result.study, staging / "tuning" / model.name, exp.tuning.metric)
                _checkpoint("tuned")
            if space is not None:
                spent["tune_s"] = time.perf_counter() - began
            fits = [(model.name, model.kind, est, best_params)]
            if model.ensemble:
                fits.append((f"{model.name}_ensemble", f"{model.kind}_ensemble",
                             _ensemble(est, model, result, exp.seed), best_params))
            for row_name, kind, fit_est, params in fits:
                clock = time.perf_counter()
                _progress_bars(fit_est, progress)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=_convergence_warning())
                    fit_est.fit(Xtr, ytr)
                fit_s = time.perf_counter() - clock
                clock = time.perf_counter()
                pred = pd.Series(np.asarray(fit_est.predict(Xte)).ravel(), index=Xte.index)
                predict_s = time.perf_counter() - clock
                key = "refit" if row_name == model.name else "ensemble"
                spent[f"{key}_s"], spent[f"{key}_predict_s"] = fit_s, predict_s
                predictions[row_name] = pred
                fitted[row_name] = fit_est
                rows.append({
                    "model": row_name, "kind": kind,
                    "MAE": mean_absolute_error(yte, pred), "MSE": mean_squared_error(yte, pred),
                    "fit_s": round(spent.get("tune_s", 0) + fit_s if key == "refit" else fit_s,
                                   2),
                    "best_params": " ".join(f"{_short_name(k)}={_short(v)}"
                                            for k, v in params.items()),
                })
        table = _results_table(rows, exp, Xtr, ytr, Xte, yte, predictions, say)

        # 3. the files, into the staging folder; the manifest last, then into place
        table.to_csv(staging / "results.csv", index=False)
        _checkpoint("results")
        pd.DataFrame({"y": yte, **predictions}).to_csv(staging / "predictions.csv")
        clock = time.perf_counter()
        plots = _plots(exp, frame, Xtr, fitted, predictions, table, staging)
        _save_models(fitted, exp, staging, grid.freq, features)
        (staging / "experiment.json").write_text(exp.model_dump_json(indent=2))
        timings["outputs_s"] = time.perf_counter() - clock
        if parent:
            clock = time.perf_counter()
            _finish_tracking(parent, exp, table, fitted, plots, Xte, staging)
            timings["tracking_s"] = time.perf_counter() - clock
        (staging / "timings.json").write_text(json.dumps(_rounded(timings), indent=2))
        _say_timings(timings, say)
        del storage  # closes the studies' database before its folder moves
        _publish(staging, out, exp, fitted, study_file, say)
    except BaseException as exc:
        if parent:
            from skrnn.tracking import end_unfinished_runs

            end_unfinished_runs(parent, "KILLED" if interrupted(exc) else "FAILED")
        if (staging / MANIFEST).is_file() and not out.exists():
            os.replace(staging, out)  # interrupted between the two renames: finish
        else:
            _abandon(staging, out, study_file if tuned else None)
        raise
    return table


def interrupted(exc):
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt.

    A Ctrl-C inside a library's cleanup can surface as another error (Optuna, hit
    during a trial's final commit, raises UnboundLocalError from its ``finally``).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


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


def _ensemble(est, model, result, seed):
    """``model.ensemble`` members averaged: the top configurations of its search (distinct
    complete trials, best first) when it has that many, else seeds of ``est``."""
    from optuna.trial import TrialState
    from sklearn.base import clone

    from skrnn.ensemble import AveragingRegressor
    from skrnn.tuning import params_for_estimator

    k = model.ensemble
    if result is not None:
        study = result.study
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        sign = -1 if study.direction.name == "MAXIMIZE" else 1
        done.sort(key=lambda t: sign * t.value)
        configs = []
        for trial in done:
            params = params_for_estimator(trial.params)
            if params not in configs:
                configs.append(params)
        if len(configs) >= k:
            return AveragingRegressor(estimators=[clone(est).set_params(**p)
                                                  for p in configs[:k]])
    return AveragingRegressor(est, n_estimators=k, random_state=seed)


def _sayer(console):
    """Print without reading user text (names, values) as rich markup."""
    if console is None:
        return print
    return lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)


def _checkpoint(stage):
    """Test hook: die here, as a SIGKILL would, when ``_SKRNN_KILL_AT`` names ``stage``."""
    if os.environ.get("_SKRNN_KILL_AT") == stage:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


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


# -- studies ---------------------------------------------------------------------------------


def study_fingerprint(exp, model, space, digest):
    """A digest of everything that defines a study's trials (not their number)."""
    import hashlib

    ident = {
        "model": model.model_dump(exclude={"search", "ensemble"}),
        "space": {k: repr(v) for k, v in sorted(space.items())},
        "features": exp.features.model_dump(), "split": exp.split.model_dump(),
        "metric": exp.tuning.metric, "seed": exp.seed, "fill_gaps": exp.data.fill_gaps,
        "data": digest,
    }
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _study(exp, model, space, digest, storage, n_trials, fresh, say, private=False):
    """The study name of ``model`` in this experiment; say whether it resumes.

    In a ``private`` storage (the run's own SQLite file) no other process can be
    running a trial: one left RUNNING was interrupted, and is marked failed.
    """
    import optuna
    from optuna.trial import TrialState

    prefix = f"{exp.name}-{model.name}-"
    name = prefix + study_fingerprint(exp, model, space, digest)
    if storage is None:
        return name
    known = optuna.study.get_all_study_names(storage)
    if name in known and fresh:
        optuna.delete_study(study_name=name, storage=storage)
        say(f"{model.name}: --fresh: deleted study {name}, starting over")
    elif name in known:
        study = optuna.load_study(study_name=name, storage=storage)
        if private:
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        done = len(study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.PRUNED)))
        say(f"{model.name}: resumed: {done}/{n_trials} trials done (study {name})")
    else:
        older = [k for k in known if k.startswith(prefix) or k == prefix[:-1]]
        if older:
            say(f"{model.name}: the experiment changed (model, search space, features, "
                f"split or data) since study {older[-1]}: new study {name}")
        else:
            say(f"{model.name}: new study {name}")
    return name


def _check_in_space(model, params, space):
    """A study's best parameters must lie in this run's space (a guard, never expected)."""
    for key, value in params.items():
        dist = space.get(key)
        if dist is not None and not dist._contains(dist.to_internal_repr(value)):
            raise ExperimentError(
                f"model {model.name!r}: the study's best {_short_name(key)}={value!r} lies "
                "outside the search space; rerun with --fresh"
            )


def display_study(study):
    """The complete trials of a study run on a negated error (sklearn's ``neg_*``
    scorers), as an in-memory study of the error itself under short parameter names
    (``units``, ``lags``): what the tuning plots show."""
    import optuna

    shown = optuna.create_study(direction="minimize")
    for t in study.trials:
        if t.state.name == "COMPLETE":
            shown.add_trial(optuna.trial.create_trial(
                params={_short_name(k): v for k, v in t.params.items()},
                distributions={_short_name(k): v for k, v in t.distributions.items()},
                value=-t.value))
    return shown


def _tuning_plots(study, directory, metric):
    """Optuna's plots with short parameter names and the metric itself (not negated)."""
    shown = display_study(study)
    if shown.trials:
        _tuning_plots_files(shown, directory, metric.upper(), directory.name)


# -- the output folder ------------------------------------------------------------------------


def _study_file(exp):
    """The SQLite file of the studies, relative to the output folder (None if elsewhere)."""
    url = exp.tuning.storage
    if url and url.startswith("sqlite:///{output}/"):
        rel = Path(url[len("sqlite:///{output}/"):])
        return None if ".." in rel.parts or "{" in str(rel) else rel
    return None


def _check_output(out, study_file):
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"the output {out} exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).exists():
        allowed = _RUN_ENTRIES | ({study_file.parts[0]} if study_file else set())
        other = sorted(p.name for p in out.iterdir() if p.name not in allowed
                       and not p.name.endswith(".png") and not p.name.startswith("optuna.db"))
        if other:
            raise ExperimentError(
                f"the output folder {out} holds files that are not a skrnn run (e.g. "
                f"{other[:3]}): choose another --output"
            )


def _partials(out):
    return sorted(out.parent.glob(f".{out.name}.partial-*"), key=lambda p: p.stat().st_mtime)


def _pid_alive(path):
    try:
        pid = int(path.name.rsplit("-", 1)[1])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _recover(out, study_file=None):
    """Finish a run that was killed between its last two renames; clear dead partial runs.

    A partial folder with a manifest is complete: if ``out`` is missing it is put in
    place. The studies of incomplete partial runs of dead processes are kept (in
    ``.<output>.unfinished``) for the next run to resume.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return
    partials = [p for p in _partials(out) if not _pid_alive(p)]
    done = [p for p in partials if (p / MANIFEST).is_file()]
    if done and not out.exists():
        os.replace(done[-1], out)
        partials.remove(done[-1])
    if study_file is not None:
        for p in partials:
            _abandon(p, out, study_file)


def _new_staging(out):
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    except OSError as exc:
        why = ("a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError))
               else exc.strerror or str(exc))
        raise ExperimentError(f"cannot write the output folder {out}: {why}") from None
    return staging


def _sqlite_family(path):
    """A SQLite file and its journals."""
    return [p for p in (path, Path(f"{path}-journal"), Path(f"{path}-wal"),
                        Path(f"{path}-shm")) if p.exists()]


def _unfinished(out):
    return out.parent / f".{out.name}.unfinished"


def _open_storage(exp, out, staging, study_file):
    """The studies' storage; a SQLite file in the output folder is carried over."""
    from skrnn.tuning import _redact, make_storage

    url = exp.tuning.storage
    if study_file is not None:
        source = _unfinished(out) / study_file
        if not source.exists():
            source = out / study_file
        target = staging / study_file
        target.parent.mkdir(parents=True, exist_ok=True)
        for path in _sqlite_family(source):
            shutil.copy2(path, target.parent / path.name.replace(source.name, target.name))
        url = "sqlite:///" + target.as_posix()
    else:
        url = url.format(output=out.as_posix())
    try:
        return make_storage(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/optuna raise many kinds; all mean "unusable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ExperimentError(
            f"tuning.storage {_redact(exp.tuning.storage)!r} cannot be opened: "
            f"{type(exc).__name__}: {first}") from None


def _abandon(staging, out, study_file):
    """Drop an unfinished run's folder, keeping its studies for the next run."""
    if study_file is not None and (staging / study_file).exists():
        keep = _unfinished(out) / study_file
        keep.parent.mkdir(parents=True, exist_ok=True)
        for path in _sqlite_family(staging / study_file):
            os.replace(path, keep.parent / path.name)
    shutil.rmtree(staging, ignore_errors=True)


def _publish(staging, out, exp, fitted, study_file, say):
    """Manifest last, then rename the staging folder into place."""
    import datetime

    from skrnn import __version__

    files = {p.relative_to(staging).as_posix(): p.stat().st_size
             for p in sorted(staging.rglob("*")) if p.is_file()
             and not (study_file and p.name.startswith(study_file.name))}
    manifest = {
        "format": 1, "skrnn_version": __version__, "experiment": exp.name,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": {name: f"models/{name}.skops" for name in fitted},
        "files": files,
    }
    tmp = staging / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, staging / MANIFEST)
    _checkpoint("manifest")
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty folder holds no previous run to keep
    if out.exists():
        aside = out.parent / f"{out.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}"
        k = 1
        while aside.exists():
            k += 1
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{k}")
        os.replace(out, aside)
        _checkpoint("moved-aside")
        say(f"the previous run was moved to {aside}")
    os.replace(staging, out)
    shutil.rmtree(_unfinished(out), ignore_errors=True)


def check_run(run_dir):
    """The manifest of the finished run in ``run_dir``; refuse anything incomplete.

    Raises
    ------
    ExperimentError
        No manifest (an interrupted run, or not a run), or a listed file is missing
        or has another size than when the run finished.
    """
    run_dir = Path(run_dir)
    _recover(run_dir)
    if not run_dir.is_dir():
        raise ExperimentError(f"{run_dir} is not a folder")
    path = run_dir / MANIFEST
    if not path.is_file():
        raise ExperimentError(
            f"{run_dir} holds no finished run (no {MANIFEST}): the run was interrupted, is "
            "from an older skrnn, or the folder is not a skrnn run; run it again")
    try:
        manifest = json.loads(path.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise ExperimentError(f"{path} is not a valid run manifest") from None
    for rel, size in files.items():
        f = run_dir / rel
        if not f.is_file() or f.stat().st_size != size:
            raise ExperimentError(
                f"{run_dir} is not the run its manifest describes: {rel} is "
                f"{'missing' if not f.is_file() else 'changed'}")
    return manifest


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
    """Fit plot of every model (its test period, titled with its error), loss curves."""
    import matplotlib.pyplot as plt

    from skrnn.plotting import plot_fit, plot_loss_curves

    d = exp.data
    files = {}
    framed = frame.set_index([d.date] + ([d.group] if d.group else []))
    errors = table.set_index("model")
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


def _tuning_plots_files(study, directory, metric, model_name):
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.exceptions import ExperimentalWarning

    plots = {"history": vis.plot_optimization_history}
    if len(study.trials) >= 2 and study.best_params:
        plots["slice"] = vis.plot_slice
    if len(study.trials) >= 3 and len(study.best_params) >= 2:
        plots["importances"] = vis.plot_param_importances
    for kind, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            # a parameter that took one value so far gives matplotlib equal x limits
            warnings.filterwarnings("ignore", message="Attempting to set identical")
            ax = plot(study, target_name=metric)
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        fig.suptitle(f"{model_name}: validation {metric} by trial (lower is better)")
        fig.savefig(Path(directory) / f"tuning_{kind}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)


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
            "fill_gaps": d.fill_gaps, "sep": d.sep, "date_format": d.date_format}
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
            log_model(fitted[name], name="model", X_example=Xte.iloc[:5])
        client.set_terminated(rid)
    client.set_terminated(parent)


# -- forecasts from a saved run ---------------------------------------------------------------

_UNSET = object()


def forecast_next(model_path, data_path, *, date=None, group=None, value=None,
                  fill_gaps=_UNSET, sep=None, date_format=None):
    """Next-step forecast of every series in a CSV with a model saved by a run.

    The CSV is checked as ``skrnn run`` checks its data (group keys as strings, no
    infinite or absurd values, one row per series and date on the run's date grid;
    gaps and empty cells refused unless filled), and each forecast comes from the
    series' latest window. The window layout, the grid step and ``fill_gaps`` come
    from the run (``models/windows.json``); ``date``, ``group``, ``value``,
    ``fill_gaps``, ``sep`` and ``date_format`` override them.

    Returns
    -------
    forecasts : DataFrame
        One row per series: ``[group,] date`` (the next date) and ``forecast``.
    """
    from skrnn.lags import lag_names

    model_path = Path(model_path)
    run_dir = model_path.parent.parent
    if model_path.parent.name != "models":
        raise ExperimentError(
            f"{model_path} is not a model of a run: use <run folder>/models/<model>.skops")
    manifest = check_run(run_dir)
    if not model_path.is_file():
        raise ExperimentError(f"{model_path} does not exist; this run's models: "
                              f"{sorted(manifest.get('models', {}))}")
    meta = json.loads((model_path.parent / "windows.json").read_text())
    if meta.get("n_step_features", 1) != 1:
        raise ExperimentError(
            f"{model_path.name} reads windows with {meta['n_step_features']} features per step "
            "(calendar or covariate features): skrnn predict builds value-only windows; "
            "forecast with the model from Python (make_supervised with the same features)")
    cfg = DataConfig(
        source="csv", path=str(data_path), date=date or meta["date"],
        group=group or meta["group"], value=value or meta["value"],
        fill_gaps=meta.get("fill_gaps") if fill_gaps is _UNSET else fill_gaps,
        sep=sep or meta.get("sep") or ",", date_format=date_format or meta.get("date_format"))
    model = load_model(model_path)
    frame = read_csv(Path(data_path), cfg)
    if cfg.group:
        frame[cfg.group] = frame[cfg.group].astype(str)
    frame = _check_values(frame, cfg, Path(data_path)).reset_index(drop=True)
    grid = check_panel(frame, cfg, freq=meta.get("freq"))
    values = grid.values(frame[[cfg.value]].to_numpy(), cfg.fill_gaps)[:, 0]
    L = meta["max_lags"]
    names = list(getattr(model, "feature_names_in_",
                         lag_names([cfg.value], range(L, 0, -1))))
    step = pd.tseries.frequencies.to_offset(meta["freq"]) if meta.get("freq") else grid.freq
    labels = grid.labels if grid.labels is not None else [None]
    rows, windows = [], []
    for g, label in enumerate(labels):
        first, n = int(grid.starts[g]), int(grid.lengths[g])
        if n < L:
            raise ExperimentError(
                f"series {label!r} has {n} dates; the model needs the last {L}"
                if cfg.group else f"the series has {n} dates; the model needs the last {L}")
        windows.append(values[first + n - L: first + n])  # the latest window, oldest first
        last = pd.Timestamp(frame[cfg.date].iloc[grid.src[first + n - 1]])
        rows.append({**({cfg.group: label} if cfg.group else {}),
                     cfg.date: last + step if step is not None else pd.NaT})
    # indexed like the run's windows: (target date[, series]), which per-series scaling reads
    keys = [pd.DatetimeIndex([r[cfg.date] for r in rows])]
    keys += [pd.Index([str(r[cfg.group]) for r in rows])] if cfg.group else []
    index = pd.MultiIndex.from_arrays(keys, names=[meta["date"]] + (
        [meta["group"]] if cfg.group else []))
    X = pd.DataFrame(np.vstack(windows), columns=names, index=index)
    out = pd.DataFrame(rows)
    out["forecast"] = np.asarray(model.predict(X)).ravel()
    return out


def load_model(path):
    """A regressor saved by a run; any problem is named with the file, never its bytes."""
    from skrnn import persistence

    try:
        model = persistence.load(path)
    except (ValueError, TypeError, OSError) as exc:
        raise ExperimentError(str(exc)) from None
    if not hasattr(model, "predict"):
        raise ExperimentError(
            f"model file {str(path)!r} holds a {type(model).__name__}, not a regressor")
    return model
