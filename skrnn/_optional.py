"""Optional dependencies: the extra that brings each, and one clear error when it is missing.

``pip install skrnn`` installs the estimators' needs only (numpy, scipy, pandas,
scikit-learn, skops, threadpoolctl). The workflow modules check for what they need
with :func:`require` when they are imported (or, for lazily used parts, when called),
so a missing package is reported with the ``pip install 'skrnn[extra]'`` command
that brings it, not as a bare ``ModuleNotFoundError`` deep in a call. The extras are
declared in ``pyproject.toml``; a test keeps this table and that file in step.
"""

import importlib.util

__all__ = ["EXTRA", "require"]

# top-level module -> the extra of pyproject.toml that installs it
EXTRA = {
    "optuna": "tuning",
    "optuna_integration": "tuning",
    "mlflow": "tracking",
    "sktime": "sktime",
    "matplotlib": "plotting",
    "click": "cli",
    "rich": "cli",
    "pydantic": "cli",
    "pyarrow": "parquet",
}


def require(*modules, by, extra=None):
    """Raise an ImportError naming the extra to install when a module is missing.

    Nothing is imported: ``importlib.util.find_spec`` only looks the modules up, so a
    check at the top of a module keeps its import as light as before.

    Parameters
    ----------
    *modules : str
        Top-level module names, keys of :data:`EXTRA`.
    by : str
        What needs them, for the message (e.g. ``"skrnn.tuning"``).
    extra : str, default=None
        The extra to recommend; by default the extras of the missing modules.

    Raises
    ------
    ImportError
        ``"<by> needs <modules>: pip install 'skrnn[<extra>]'"``, with ``name`` set to
        the first missing module.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        extras = extra or ",".join(dict.fromkeys(EXTRA[m] for m in missing))
        raise ImportError(
            f"{by} needs {', '.join(missing)}: pip install 'skrnn[{extras}]'",
            name=missing[0],
        )
