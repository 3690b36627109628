"""An experiment's models: the estimator of each (scaling, window, model), its search
space, the checks of its params and space before any fit, and ensembles."""

from skrnn._experiment.config import BASELINES, RECURRENT, ExperimentError
from skrnn._meta import iter_estimators


def _build(model, features, seed, group=None):
    """The estimator of one model; its parameters' prefix for set_params.

    ``features`` is resolved (:func:`resolve_features`). Learned models read the windows
    through a scaler (per series: a :class:`~skrnn.GroupScaler` on the ``group`` index
    level, one statistic per step feature; static columns, constant within each
    series, standardised with statistics pooled over all series, a one-hot of the
    series left 0/1) and :class:`~skrnn.lags.LastSteps`, which cuts
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
        n_static = features.n_static_features()
        # static columns: standardised over all series; a one-hot: left 0/1
        how = "passthrough_features" if features.static == "group" else "pooled_features"
        static = {how: tuple(range(F - n_static, F))} if n_static else {}
        steps.append(("scale", GroupScaler(group=group if per_series else None,
                                           n_step_features=F, **static
                                           ).set_output(transform="pandas")))
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
