"""Logging fitted estimators as MLflow models (skops format) and loading them back.

Part of :mod:`skrnn.tracking` (import from there).
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from skrnn._tracking_base import _active_run_id
from skrnn._version import __version__


def _head(X, n=5):
    return X.iloc[:n] if hasattr(X, "iloc") else np.asarray(X)[:n]


def _default_requirements():
    import numpy
    import sklearn
    import skops

    return [f"skrnn=={__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}", f"numpy=={numpy.__version__}"]


class _SkopsFlavor:
    """``mlflow.sklearn`` whose model file is the one :mod:`skrnn.persistence` writes.

    MLflow's sklearn flavor writes an uncompressed skops archive of whatever it is
    given; this writes everything the same way, then replaces ``model.skops`` with
    skrnn's file of the same object: deflated, type-checked, with the ``skrnn.json``
    version entry. MLflow's own loader reads it as any skops file.
    """

    __name__ = "mlflow.sklearn"

    def __init__(self, data):
        self.data = data

    def save_model(self, path, mlflow_model, sk_model, **kwargs):
        import mlflow.sklearn
        from mlflow.models.model import MLMODEL_FILE_NAME

        mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
        Path(path, mlflow_model.flavors["sklearn"]["pickled_model"]).write_bytes(self.data)
        mlflow_model.model_size_bytes = sum(
            p.stat().st_size for p in Path(path).rglob("*") if p.is_file()
            and p.name != MLMODEL_FILE_NAME)
        mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def log_model(estimator, name="model", *, X_example=None, run_id=None,
              registered_model_name=None, pip_requirements=None, trusted=()):
    """Log a fitted estimator as an MLflow model: skops format, weights only.

    The MLflow sklearn flavor with ``serialization_format="skops"``: no pickle. The
    file holds :func:`skrnn.persistence.strip_training_state` of ``estimator`` and
    the skrnn version (also in the ``MLmodel`` metadata as ``skrnn_version``); the types
    skops must be told to trust (skrnn's classes, and no others) are declared as
    ``skops_trusted_types``. Load it back with ``mlflow.pyfunc.load_model`` or, safer,
    :func:`load_model`.

    Parameters
    ----------
    estimator : fitted estimator
    name : str, default="model"
    X_example : array-like, default=None
        A few input rows: the first 5 become the input example, and with the
        predictions on them the signature (``mlflow.models.infer_signature``). When
        ``estimator`` reads its series from the example's index (per-series scaling:
        it cannot predict the rows without it), the model is logged inside
        :class:`IndexColumns`: MLflow serves it a table whose index levels are
        columns (``df.reset_index()``), the example is stored that way and the
        signature lists the levels as optional columns. With unnamed levels only the
        signature is logged.
    run_id : str, default=None
        Run to log to; None: the active run.
    registered_model_name : str, default=None
        Also register the model under this name.
    pip_requirements : list of str, default=None
        None: pinned skrnn, scikit-learn, skops and NumPy (no slow inference).
    trusted : iterable of str, default=()
        Extra types to allow (see :func:`skrnn.persistence.save`).

    Returns
    -------
    model_info : mlflow.models.model.ModelInfo
        ``model_info.model_uri`` loads the model.
    """
    from mlflow.models import Model, infer_signature

    from skrnn import persistence

    run_id = _active_run_id(run_id)
    model = persistence.strip_training_state(estimator)
    signature = example = None
    if X_example is not None:
        example = _head(X_example)
        prediction = estimator.predict(example)
        signature = infer_signature(example, prediction)
        if not _predicts_without_index(estimator, example):
            # MLflow stores (and serves) input without its index; a model that reads
            # its series from the index (per-series scaling) gets it back from columns
            names = list(example.index.names)
            if None in names or set(names) & set(example.columns):
                example = None  # the levels cannot travel as columns: signature only
            else:
                model = IndexColumns(model, names)
                example = example.reset_index()
                signature = _index_columns_optional(
                    infer_signature(example, prediction), names)
    data = persistence.dumps(model, trusted=trusted)
    needed, _ = persistence.untrusted_types(data=data, trusted=trusted)
    return Model.log(
        artifact_path=None,  # deprecated in MLflow 3 in favour of name, still positional
        name=name,
        flavor=_SkopsFlavor(data),
        flavor_name="mlflow.sklearn",
        sk_model=model,
        serialization_format="skops",
        skops_trusted_types=needed,
        signature=signature,
        input_example=example,
        metadata={"skrnn_version": __version__},
        pip_requirements=pip_requirements or _default_requirements(),
        run_id=run_id,
        registered_model_name=registered_model_name,
    )

def _index_columns_optional(signature, names):
    """``signature`` with the columns ``names`` optional (the input may index by them)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec(c.type, c.name, required=c.required and c.name not in names)
                     for c in signature.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=signature.outputs, params=signature.params)


class IndexColumns:
    """A fitted model that takes its input index as columns: how MLflow serves it.

    :func:`log_model` logs a model that reads its series from the input's index (a
    per-series ``GroupScaler``, keyed by ``(date, group)``) inside this wrapper,
    because MLflow's pyfunc input is a plain table: ``predict`` moves the columns
    ``index`` into the index, in that order, and calls the model. A frame that already
    carries them as its index is passed on unchanged. :func:`load_model` returns the
    model inside.

    Parameters
    ----------
    estimator : fitted estimator
    index : list of str
        The index level names, outermost first.
    """

    __module__ = "skrnn.tracking"  # the name model files record (re-exported there)

    def __init__(self, estimator, index):
        self.estimator = estimator
        self.index = index

    def __sklearn_is_fitted__(self):
        return True

    def predict(self, X):
        """Predict ``X`` (the index levels as columns, or as its index)."""
        columns = set(getattr(X, "columns", ()))
        present = [n for n in self.index if n in columns]
        if present:
            missing = [n for n in self.index if n not in columns]
            if missing:
                raise ValueError(
                    f"The input has the index column(s) {present} but not {missing}; the "
                    f"model needs all of {self.index} as columns (or as the index)."
                )
            X = X.set_index(list(self.index))
        return self.estimator.predict(X)


def _predicts_without_index(estimator, example):
    """Whether ``estimator`` predicts ``example`` once its index is dropped."""
    if not hasattr(example, "reset_index"):
        return True
    try:
        estimator.predict(example.reset_index(drop=True))
    except Exception:
        return False
    return True


def load_model(model_uri, *, trusted=(), check_version=True):
    """Load a model logged by :func:`log_model`, under skrnn's trust policy.

    Unlike ``mlflow.pyfunc.load_model``, which trusts the types listed in the model's
    own ``MLmodel`` file, this checks every type against
    :func:`skrnn.persistence.is_trusted_type` (plus ``trusted``) and the skrnn major
    version, then returns the estimator itself (``predict``, ``get_weights``, ...).

    Parameters
    ----------
    model_uri : str
        ``models:/<model_id>``, ``runs:/<run_id>/model``, a local folder, ...
    trusted : iterable of str, default=()
    check_version : bool, default=True

    Returns
    -------
    estimator : estimator
    """
    import mlflow
    from mlflow.models import Model

    from skrnn import persistence

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        model = Model.load(local)
        flavor = model.flavors.get("sklearn")
        if flavor is None or flavor.get("serialization_format") != "skops":
            raise ValueError(
                f"{model_uri!r} is not a scikit-learn model in the skops format (flavors: "
                f"{sorted(model.flavors)}); skrnn loads only those."
            )
        data = Path(local, flavor["pickled_model"]).read_bytes()
    if check_version:
        meta = persistence.read_metadata(data) or {}
        saved = meta.get("skrnn_version") or (model.metadata or {}).get("skrnn_version")
        persistence.check_skrnn_version(saved, source=f"The model {model_uri!r}")
    model = persistence._load_checked(data, trusted=trusted, name=f"The model {model_uri!r}")
    return model.estimator if isinstance(model, IndexColumns) else model
