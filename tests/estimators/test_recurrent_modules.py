"""The recurrent regressors' structure: one training-state object, public views of the
fitted model for other modules, and no private attribute read outside the estimator."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skrnn import GRURegressor, LSTMRegressor
from skrnn._training_state import TrainingState

SKRNN = Path(__file__).resolve().parents[2] / "skrnn"
X = np.sin(np.arange(120, dtype=float) / 5).reshape(20, 6)
Y = X[:, -1] * 0.9


def _fitted(**kw):
    return GRURegressor(units=3, max_iter=2, random_state=0, **kw).fit(X, Y)


def test_training_state_is_one_attribute_whose_fields_appear_nowhere_else():
    model = _fitted(early_stopping=True, validation_fraction=0.25)
    states = [k for k, v in vars(model).items() if isinstance(v, TrainingState)]
    assert states == ["_training"]
    assert model._training.epoch_theta is None  # only held while an epoch runs
    loose = {"_" + f.name for f in dataclasses.fields(TrainingState)}
    assert not loose & set(vars(model))
    # no module lists the fields again as attribute names
    for path in SKRNN.rglob("*.py"):
        text = path.read_text()
        for name in loose:
            assert not re.search(rf"[\w)\]]\.{name}\b|\"{name}\"", text), (path.name, name)


def test_public_views_of_the_fitted_model():
    unfitted = LSTMRegressor(units=3)
    for name in ("network_", "y_ndim_"):
        assert not hasattr(unfitted, name)
        with pytest.raises(NotFittedError):
            getattr(unfitted, name)
    model = _fitted()
    assert model.y_ndim_ == 1 and model.network_ is model._net
    assert GRURegressor(units=3, max_iter=1, random_state=0).fit(
        X, np.column_stack([Y, Y])).y_ndim_ == 2
    # views, not fitted attributes: vars() (sklearn's fitted check, clone) never sees them
    assert not {"network_", "y_ndim_"} & set(vars(model))


def _own_modules(cls):
    return {Path(*k.__module__.split(".")[1:]).with_suffix(".py").name
            for k in cls.__mro__ if k.__module__.startswith("skrnn")}


def test_no_private_attribute_of_a_regressor_is_read_outside_its_modules():
    model = _fitted()
    own = _own_modules(GRURegressor)
    assert {"recurrent.py", "_training.py", "_input.py", "_quantile_head.py",
            "_torch_weights.py", "_attributions.py"} <= own
    private = {k for k in vars(model) if k.startswith("_") and not k.startswith("__")
               and "callback" not in k and not k.startswith("_skl")}
    for klass in GRURegressor.__mro__:
        if klass.__module__.startswith("skrnn"):
            private |= {k for k in vars(klass) if k.startswith("_")
                        and not k.startswith("__")}
    assert {"_net", "_y_ndim", "_training", "_levels", "_point_weights"} <= private
    private -= {"_parameter_constraints"}  # scikit-learn's protocol, on every estimator
    pattern = re.compile(r"\b(?!self\b)\w+\.(" + "|".join(sorted(private)) + r")\b")
    for path in SKRNN.glob("*.py"):
        if path.name in own:
            continue
        for line in path.read_text().splitlines():
            code = line.split("#")[0]
            found = pattern.search(code)
            # a method of the same name on another class (``self._train``) is fine
            assert found is None, (path.name, line.strip())


def test_the_split_modules_stay_small():
    for name in _own_modules(GRURegressor) | {"_training_state.py"}:
        n = len((SKRNN / name).read_text().splitlines())
        assert n < 800, (name, n)
