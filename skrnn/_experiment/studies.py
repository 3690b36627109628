"""An experiment's Optuna studies: their identity (a fingerprint of everything that
defines their trials), resuming them, and their plots."""

import json
import warnings
from pathlib import Path

from skrnn._experiment.config import ExperimentError
from skrnn._experiment.models import _short_name


def study_fingerprint(exp, model, space, digest):
    """A digest of everything that defines a study's trials (not their number)."""
    import hashlib

    ident = {
        "model": model.model_dump(exclude={"search", "ensemble"}),
        "space": {k: repr(v) for k, v in sorted(space.items())},
        "features": _features_identity(exp.features), "split": exp.split.model_dump(),
        "metric": exp.tuning.metric, "seed": exp.seed, "fill_gaps": exp.data.fill_gaps,
        "data": digest,
    }
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _features_identity(features):
    """The features' keys; keys added since (at their default) are left out, so that the
    studies of an unchanged experiment keep their fingerprint across skrnn versions."""
    dump = features.model_dump()
    if not dump.get("static"):
        dump.pop("static", None)
    return dump


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
