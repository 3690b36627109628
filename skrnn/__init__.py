"""skrnn: recurrent neural networks as scikit-learn estimators.

SimpleRNN, LSTM and GRU regressors written in NumPy with exact backpropagation
through time, and the forecasting workflow around them.

Importing ``skrnn`` is light: MLflow, Optuna and sktime are only imported by the
submodules that use them.
"""

import importlib

from skrnn._version import __version__

# Public names and the submodule that defines each; resolved on first access so that
# ``import skrnn`` does not pay for (or require) the heavier parts.
_LAZY = {
    "SimpleRNNRegressor": "skrnn.recurrent",
    "LSTMRegressor": "skrnn.recurrent",
    "GRURegressor": "skrnn.recurrent",
    "LagFeatures": "skrnn.lags",
    "make_supervised": "skrnn.lags",
    "LastSteps": "skrnn.lags",
    "GroupScaler": "skrnn.scaling",
    "GroupTargetRegressor": "skrnn.scaling",
    "AveragingRegressor": "skrnn.ensemble",
    "LastValueRegressor": "skrnn.baselines",
    "SeasonalNaiveRegressor": "skrnn.baselines",
    "WindowMeanRegressor": "skrnn.baselines",
    "DriftRegressor": "skrnn.baselines",
    "skill_score": "skrnn.metrics",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
