"""No private attribute of an estimator is read outside the modules that make it up.

An estimator's modules are those of the classes in its MRO (its mixins included:
``_training.py`` for the regressors, ``_forecast_selection.py`` for the forecaster).
Other modules reach a fitted estimator through its public, trailing-underscore
attributes; a module that itself defines or assigns a name of the same spelling (a
method of its own class) is not reading the estimator's.
"""

import inspect
import re
from pathlib import Path

import pytest

import skrnn
from skrnn import baselines, ensemble, lags, scaling, windows

SKRNN = Path(skrnn.__file__).resolve().parent


def _estimators():
    mods = [skrnn, lags, scaling, ensemble, baselines, windows]
    try:
        from skrnn import forecasting
        mods.append(forecasting)
    except ImportError:  # sktime is an extra
        pass
    found = {obj for mod in mods for obj in vars(mod).values()
             if inspect.isclass(obj) and obj.__module__.startswith("skrnn")
             and hasattr(obj, "get_params")}
    return sorted(found, key=lambda c: c.__qualname__)


def _private_names(cls):
    names = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("skrnn"):
            names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
            names |= set(re.findall(r"self\.(_[a-z]\w*)\s*=", inspect.getsource(klass)))
    # scikit-learn's own protocol and callback plumbing, on every estimator
    return {n for n in names if n != "_parameter_constraints" and not n.startswith("_skl")
            and "callback" not in n}


def _owned(text):
    """Private names a module defines or assigns itself."""
    return (set(re.findall(r"def (_\w+)\(", text))
            | set(re.findall(r"\b\w+\.(_[a-z]\w*)\s*(?:,\s*\w+\.\w+\s*)*=[^=]", text)))


def test_the_estimators_are_found():
    names = {c.__name__ for c in _estimators()}
    assert {"LSTMRegressor", "LagFeatures", "GroupScaler", "AveragingRegressor"} <= names


@pytest.mark.parametrize("cls", _estimators(), ids=lambda c: c.__name__)
def test_no_private_attribute_is_read_outside_the_estimators_modules(cls):
    own = {Path(inspect.getfile(k)).resolve() for k in cls.__mro__
           if k.__module__.startswith("skrnn")}
    private = _private_names(cls)
    if not private:
        return
    pattern = re.compile(r"\b(?!self\b|cls\b)\w+\.(" + "|".join(sorted(private)) + r")\b")
    bad = []
    for path in sorted(SKRNN.rglob("*.py")):
        if path.resolve() in own:
            continue
        text = path.read_text()
        owned = _owned(text)
        for i, line in enumerate(text.splitlines(), 1):
            for m in pattern.finditer(line.split("#")[0]):
                if m.group(1) not in owned:
                    bad.append(f"{path.relative_to(SKRNN)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)
