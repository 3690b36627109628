"""Safe model files: skops archives of the weights, stamped with the skrnn version.

A fitted skrnn model is saved as a `skops <https://skops.readthedocs.io>`_ archive: a
zip of JSON and ``.npy`` files from which objects are rebuilt without :mod:`pickle`, so
loading a file never runs code chosen by whoever wrote it. skops only rebuilds the types
it is told to trust; :func:`load` trusts exactly:

* what skops trusts by default (Python containers and scalars, NumPy arrays, dtypes and
  ufuncs, scikit-learn's own estimators);
* **classes** (not functions) defined in the ``skrnn``, ``numpy`` and ``sklearn``
  packages, such as ``skrnn.recurrent.LSTMRegressor`` or ``skrnn.nn._network.RecurrentNetwork``.

Anything else -- ``os.system``, ``builtins.eval``, a class from another package, a
function that merely lives in numpy -- makes :func:`load` refuse the file with
:class:`UntrustedTypesError`, before any object is built. Pass ``trusted=[...]`` to
accept named extra types you have reviewed (a custom transformer of your own, say).
The policy lives in this code, never in the file: a file cannot widen it.

Files hold the weights and fitted attributes only ("weights only"): the optimizer's
moments, the random generator, weight snapshots kept for early stopping or interrupts,
and attached callbacks are left out (:func:`strip_training_state`). A loaded model
predicts exactly like the saved one; training it again with ``fit`` starts afresh.

Every file carries a ``skrnn.json`` entry with the skrnn version that wrote it (and the
scikit-learn, NumPy and skops versions); :func:`load` refuses a file written by another
major version of skrnn with :class:`IncompatibleVersionError`.

skops is imported inside the functions, so ``import skrnn`` stays light.
"""

import copy
import datetime
import importlib
import io
import json
import zipfile
from pathlib import Path

from skrnn._training_state import TrainingState
from skrnn._version import __version__

__all__ = [
    "save",
    "load",
    "dumps",
    "read_metadata",
    "check_skrnn_version",
    "strip_training_state",
    "is_trusted_type",
    "untrusted_types",
    "UntrustedTypesError",
    "IncompatibleVersionError",
]

METADATA_ENTRY = "skrnn.json"
FORMAT_VERSION = 1

# top-level packages whose classes a skrnn model file may hold
TRUSTED_PACKAGES = ("skrnn", "numpy", "sklearn")

# attributes of any estimator that tie it to a running fit or to callbacks
_RUNTIME_ONLY = ("_skl_callbacks", "_skl_callbacks_to_teardown", "_callback_fit_ctx",
                 "_parent_callback_ctx")


class UntrustedTypesError(TypeError):
    """A model file refers to types outside skrnn's trust policy; nothing was loaded."""


class IncompatibleVersionError(ValueError):
    """A model file was written by another major version of skrnn (or by no skrnn)."""


# -- what a file holds ----------------------------------------------------------------------


def strip_training_state(estimator):
    """A copy of ``estimator`` that holds what prediction needs and nothing more.

    Every skrnn recurrent regressor inside (alone, in a Pipeline, in any meta-estimator)
    loses its training state (one ``skrnn._training_state.TrainingState``: optimizer
    moments, random generator, early-stopping snapshots); every estimator loses its
    attached callbacks. The network (``_net``) and the public fitted attributes
    (``n_iter_``, ``loss_curve_``, ...) are kept. ``estimator`` itself is not changed;
    the copy shares the network's weight arrays with it (it is meant to be written to a
    file, not trained).

    Parameters
    ----------
    estimator : estimator
        A fitted estimator, skrnn or not.

    Returns
    -------
    stripped : estimator
    """
    return _stripped_copy(estimator, {})


def _stripped_copy(obj, memo):
    """Copy ``obj``, leaving out training- and runtime-only attributes of estimators.

    Estimators are copied attribute by attribute (so the attributes to drop are
    never copied, and estimators nested at any depth — a Pipeline inside a
    TransformedTargetRegressor's ``regressor_`` — are stripped too); everything else
    (arrays, the network, parameters) is deep-copied with the shared ``memo``, so
    objects referenced twice stay shared in the copy.
    """
    if id(obj) in memo:
        return memo[id(obj)]
    if type(obj) in (list, tuple):  # Pipeline.steps and the like
        return type(obj)(_stripped_copy(v, memo) for v in obj)
    if type(obj) is dict:
        return {k: _stripped_copy(v, memo) for k, v in obj.items()}
    state = getattr(obj, "__dict__", None)
    if not isinstance(state, dict) or not hasattr(obj, "get_params"):
        return copy.deepcopy(obj, memo)
    new = copy.copy(obj)
    memo[id(obj)] = new
    new.__dict__ = {k: _stripped_copy(v, memo) for k, v in state.items()
                    if k not in _RUNTIME_ONLY and not isinstance(v, TrainingState)}
    return new


# -- the trust policy -----------------------------------------------------------------------


def is_trusted_type(name):
    """Whether skrnn's policy trusts the type named ``name`` (as skops names types).

    True only for a **class** whose module lies in the ``skrnn``, ``numpy`` or
    ``sklearn`` package. Functions are never trusted this way (skops already trusts
    NumPy ufuncs): a function is what a crafted file would use to run code. Module
    names are compared by package (``numpyx.evil`` is not ``numpy``), and dunder
    modules such as ``skrnn.__main__`` are never imported.

    Parameters
    ----------
    name : str
        Fully qualified name, e.g. ``"skrnn.recurrent.LSTMRegressor"``.

    Returns
    -------
    trusted : bool
    """
    if not isinstance(name, str) or "." not in name:
        return False
    parts = name.split(".")
    if parts[0] not in TRUSTED_PACKAGES:
        return False
    if any(not p.isidentifier() or (p.startswith("__") and p.endswith("__")) for p in parts):
        return False
    # resolve the longest importable module prefix, then attributes (nested classes)
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return isinstance(obj, type) and (obj.__module__ or "").split(".")[0] in TRUSTED_PACKAGES
    return False


def untrusted_types(file=None, *, data=None, trusted=()):
    """The types in a skops file that neither skops nor skrnn's policy trusts.

    Parameters
    ----------
    file : str or path, default=None
    data : bytes, default=None
        The file's content instead of its path.
    trusted : iterable of str, default=()
        Extra type names to accept.

    Returns
    -------
    needed : list of str
        Types skops needs to be told to trust (all within the policy or ``trusted``).
    refused : list of str
        Types outside the policy; a non-empty list means the file must not be loaded.
    """
    import skops.io

    names = skops.io.get_untrusted_types(file=file, data=data)
    extra = set(trusted)
    refused = [n for n in names if n not in extra and not is_trusted_type(n)]
    return names, refused


def _refusal(refused, what):
    return UntrustedTypesError(
        f"{what} refers to types that skrnn does not trust: {sorted(refused)}. skrnn "
        f"only loads classes from the {', '.join(TRUSTED_PACKAGES)} packages (and what "
        "skops trusts by default). Nothing was loaded. If you wrote this file and have "
        "reviewed these types, pass them explicitly: load(path, trusted=[...])."
    )


# -- files ------------------------------------------------------------------------------------


def _metadata(estimator):
    import numpy
    import sklearn
    import skops

    cls = type(estimator)
    return {
        "skrnn_version": __version__,
        "format_version": FORMAT_VERSION,
        "estimator": f"{cls.__module__}.{cls.__qualname__}",
        "sklearn_version": sklearn.__version__,
        "numpy_version": numpy.__version__,
        "skops_version": skops.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def dumps(estimator, *, trusted=()):
    """The bytes :func:`save` writes (a skops archive with a ``skrnn.json`` entry)."""
    import skops.io

    stripped = strip_training_state(estimator)
    buffer = io.BytesIO(skops.io.dumps(stripped, compression=zipfile.ZIP_DEFLATED))
    _, refused = untrusted_types(data=buffer.getvalue(), trusted=trusted)
    if refused:
        raise _refusal(refused, f"This {type(estimator).__name__}")
    # skops reads only schema.json and the files it names; an extra entry is inert
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_ENTRY, json.dumps(_metadata(estimator), indent=2))
    return buffer.getvalue()


def save(estimator, path, *, trusted=()):
    """Write a fitted estimator (skrnn regressor, Pipeline, ...) to a skops file.

    The file holds the weights and fitted attributes only (see
    :func:`strip_training_state`) and a ``skrnn.json`` entry with the skrnn version.
    Saving refuses, with :class:`UntrustedTypesError`, an estimator that :func:`load`
    would refuse, so a file that was written can be read back.

    Parameters
    ----------
    estimator : estimator
    path : str or path
        Destination, conventionally ending in ``.skops``; parent folders are created.
    trusted : iterable of str, default=()
        Extra type names (e.g. your own transformer's class) to allow.

    Returns
    -------
    path : pathlib.Path
    """
    data = dumps(estimator, trusted=trusted)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_metadata(file):
    """The ``skrnn.json`` entry of a file written by :func:`save` (None if absent).

    Parameters
    ----------
    file : str, path or bytes
        A path, or the file's content.

    Returns
    -------
    metadata : dict or None
        ``skrnn_version``, ``format_version``, ``estimator``, ``sklearn_version``,
        ``numpy_version``, ``skops_version``, ``created``.
    """
    source = io.BytesIO(file) if isinstance(file, (bytes, bytearray)) else file
    try:
        with zipfile.ZipFile(source) as archive:
            if METADATA_ENTRY not in archive.namelist():
                return None
            return json.loads(archive.read(METADATA_ENTRY))
    except zipfile.BadZipFile as exc:
        what = "This model data" if isinstance(file, (bytes, bytearray)) else repr(file)
        raise ValueError(f"{what} is not a skops model file (not a zip archive).") from exc


def _major(version):
    return str(version).split(".")[0]


def check_skrnn_version(saved_version, *, source="This model file"):
    """Raise :class:`IncompatibleVersionError` unless ``saved_version`` has skrnn's major.

    Parameters
    ----------
    saved_version : str or None
        The skrnn version recorded at save time.
    source : str
        How to name the model in the message.
    """
    if saved_version is None:
        raise IncompatibleVersionError(
            f"{source} carries no skrnn version: it was not written by "
            "skrnn.persistence.save (or skrnn.tracking.log_model). Pass "
            "check_version=False to load it anyway; its types are still checked."
        )
    if _major(saved_version) != _major(__version__):
        raise IncompatibleVersionError(
            f"{source} was saved by skrnn {saved_version}; this is skrnn {__version__}. "
            f"Models load only within the same major version ({_major(__version__)}.x). "
            f"Load it with skrnn {_major(saved_version)}.x and re-save it, or retrain."
        )


def load(file, *, trusted=(), check_version=True):
    """Load an estimator written by :func:`save`, trusting only skrnn's policy.

    Parameters
    ----------
    file : str, path, bytes or binary file object
        A path, the file's content, or an open file.
    trusted : iterable of str, default=()
        Extra type names to accept beyond the policy (see the module docstring).
    check_version : bool, default=True
        Refuse a file written by another major skrnn version, or carrying no version.

    Returns
    -------
    estimator : estimator

    Raises
    ------
    UntrustedTypesError
        The file refers to types outside the policy and ``trusted``. Nothing is built.
    IncompatibleVersionError
        The file comes from another major version of skrnn (or has no version).
    """
    if isinstance(file, (bytes, bytearray)):
        data, name = bytes(file), "This model data"
    elif hasattr(file, "read"):
        data, name = file.read(), "This model file"
    else:
        data, name = Path(file).read_bytes(), f"Model file {str(file)!r}"
    try:
        metadata = read_metadata(data)
    except Exception:  # noqa: BLE001 - never echo the bytes: they can be megabytes
        raise ValueError(f"{name} is not a skops model file (not a zip archive, "
                         "truncated or damaged).") from None
    if check_version:
        saved = None if metadata is None else metadata.get("skrnn_version")
        check_skrnn_version(saved, source=name)
    try:
        return _load_checked(data, trusted=trusted, name=name)
    except UntrustedTypesError:
        raise
    except Exception as exc:  # noqa: BLE001 - a garbled archive fails in many ways
        raise ValueError(f"{name} is damaged and cannot be read "
                         f"({type(exc).__name__}).") from None


def _load_checked(data, *, trusted=(), name="This model file"):
    """skops-load ``data`` after checking every untrusted type against the policy."""
    import skops.io

    needed, refused = untrusted_types(data=data, trusted=trusted)
    if refused:
        raise _refusal(refused, name)
    return skops.io.loads(data, trusted=needed)
