"""The experiment definition: pydantic models of every TOML key, and reading,
validating and overriding an experiment (:func:`load_experiment`)."""

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pydantic import (  # noqa: I001
    BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator)


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
    (among dayofweek, month, dayofyear, weekofyear, dayofmonth, monthstart, holiday;
    holiday needs ``country``).
    ``scaling``: ``per_series`` scales the inputs and the target with each series' own
    statistics, ``global`` with one set for all rows, ``none`` leaves them; fit on the
    training dates only and inverted on the predictions. None (the default):
    ``per_series`` for panels, ``global`` for a single series. ``scale`` is the older
    spelling (``standard`` = ``global``). ``static``: columns constant within each series,
    or ``"group"`` (a one-hot of the series), repeated on every step (the last features
    of each step). Unless ``scaling = "none"``, static columns are standardised with
    statistics pooled over all series (per-series ones would turn each series' constant
    into 0) and a one-hot is left 0/1.
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
    _groups: tuple = PrivateAttr(default=())  # the one-hot's series, known from the data

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
        named = self.known_future + self.past_covariates + self.static_columns()
        if both or len(set(named)) != len(named):
            raise ValueError(f"a column is listed twice in known_future/past_covariates/static: "
                             f"{sorted(both) or named}")
        return self

    def static_columns(self):
        """The data columns ``static`` names (none for the group one-hot)."""
        return [] if self.static == "group" else list(self.static)

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
        return (1 + len(self.past_covariates) + len(self.known_future) + calendar
                + self.n_static_features())

    def n_static_features(self):
        """Static features per step (the last ones of each step)."""
        return len(self._groups) if self.static == "group" else len(self.static)

    def one_hot_groups(self):
        """The series of the one-hot columns, in their order (``static = "group"``)."""
        return list(self._groups) if self.static == "group" else None


#: Window length by frequency when ``features.max_lags`` is not given (several
#: seasonal cycles: 8 weeks of days, 2 years of months, ...); anything else gets 14.
DEFAULT_MAX_LAGS = {"D": 56, "B": 40, "W": 52, "M": 24, "Q": 8, "Y": 4, "h": 48, "min": 60}


def infer_max_lags(freq):
    """The default window length for a grid step (a pandas offset or None)."""
    if freq is None:
        return 14
    code = pd.tseries.frequencies.to_offset(freq).name.split("-")[0]
    return DEFAULT_MAX_LAGS.get(code.rstrip("SE") or code, 14)  # MS, ME -> M


def resolve_features(features, freq, panel, groups=()):
    """``features`` with ``max_lags``, ``lags`` and ``scaling`` filled in (``groups``: the
    series of the data, in the order of the series one-hot, when ``static = "group"``)."""
    max_lags = features.max_lags or infer_max_lags(freq)
    lags = features.lags or max_lags
    if lags > max_lags:
        raise ExperimentError(f"features.lags ({lags}) exceeds the inferred features.max_lags "
                              f"({max_lags}); set features.max_lags")
    out = features.model_copy(update={"max_lags": max_lags, "lags": lags,
                                      "scaling": features.resolved_scaling(panel),
                                      "scale": None})
    out._groups = tuple(groups)
    return out


class SearchConfig(_Strict):
    """A search: ``n_trials`` and a ``space`` of parameter → ``[low, high]``,
    ``[low, high, "log"]`` or ``{choices = [...]}``; ``lags`` and ``n_layers`` are
    understood too. An empty space uses the default one.

    ``fidelity`` (a share in (0, 1); None: off) makes the search multi-fidelity: each
    trial first trains on the most recent ``fidelity`` of the training dates (every
    series over its latest dates), and only a trial whose validation score ranks in the
    top ``promote`` share of those cheap scores so far trains on all of them (with
    per-epoch pruning) and completes; the others end pruned (``user_attrs_fidelity``
    in ``trials.csv`` says how far each got). Neither key changes a study's identity:
    a complete trial is scored on all training dates either way.
    """

    n_trials: int = Field(default=10, gt=0)
    space: dict[str, list | dict] = Field(default_factory=dict)
    fidelity: float | None = Field(default=None, gt=0, lt=1)
    promote: float = Field(default=1 / 3, gt=0, le=1)


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
