"""Safe model files: skops archives, weights only, skrnn version, trust policy."""

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor, persistence
from skrnn.persistence import IncompatibleVersionError, UntrustedTypesError

skops_io = pytest.importorskip("skops.io")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X = np.sin(np.arange(240, dtype=float) / 5).reshape(40, 6)  # 40 windows of 6 steps
Y = X[:, -1] * 0.9 + 0.1


def _fit(cls=LSTMRegressor, **kw):
    params = dict(units=8, max_iter=3, random_state=0)
    params.update(kw)
    return cls(**params).fit(X, Y)


def _training_states(estimator):
    """Names of the estimator's attributes that hold a TrainingState."""
    from skrnn._training_state import TrainingState

    return [k for k, v in vars(estimator).items() if isinstance(v, TrainingState)]


def _rewrite(data, replace=None, metadata=None):
    """Copy a skops archive, editing schema.json text and/or the skrnn.json entry."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "schema.json" and replace:
                text = content.decode()
                for old, new in replace.items():
                    assert old in text
                    text = text.replace(old, new)
                content = text.encode()
            if item.filename == persistence.METADATA_ENTRY and metadata is not None:
                content = json.dumps(metadata).encode()
            dst.writestr(item.filename, content)
    return out.getvalue()


@pytest.mark.parametrize("cls, kw", [
    (LSTMRegressor, {"early_stopping": True, "n_iter_no_change": 50}),
    (GRURegressor, {"reset_after": False, "solver": "sgd"}),
    (SimpleRNNRegressor, {"units": (4, 3), "dtype": "float32", "solver": "rmsprop"}),
])
def test_round_trip_predicts_identically_and_keeps_weights_only(tmp_path, cls, kw):
    model = _fit(cls, **kw)
    path = persistence.save(model, tmp_path / "sub" / "model.skops")
    loaded = persistence.load(path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # training-only state is left out; the original keeps it
    assert not _training_states(loaded)
    assert _training_states(model) == ["_training"]
    assert model._training.optimizer is not None and model._training.rng is not None
    # public fitted attributes and parameters survive
    assert loaded.get_params() == model.get_params()
    for attr in ("n_iter_", "loss_curve_", "grad_norm_curve_", "validation_loss_curve_",
                 "best_iteration_", "n_features_in_", "n_timesteps_", "n_outputs_"):
        assert getattr(loaded, attr) == getattr(model, attr)
    assert loaded._net.theta.dtype == model._net.theta.dtype
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(loaded.get_weights()[k], v)


def test_file_is_small_and_carries_versions(tmp_path):
    model = _fit(units=32)
    path = persistence.save(model, tmp_path / "m.skops")
    weights = model._net.theta.nbytes
    assert os.path.getsize(path) < 1.25 * weights + 8_000
    # what it would weigh with the optimizer moments and weight snapshots
    full = len(skops_io.dumps(model, compression=zipfile.ZIP_DEFLATED))
    assert os.path.getsize(path) < 0.5 * full
    meta = persistence.read_metadata(path)
    import sklearn

    import skrnn

    assert meta["skrnn_version"] == skrnn.__version__
    assert meta["sklearn_version"] == sklearn.__version__
    assert meta["estimator"] == "skrnn.recurrent.LSTMRegressor"


def test_pipeline_with_callbacks_round_trip():
    from sklearn.callback import ScoringMonitor

    reg = LSTMRegressor(units=4, max_iter=2, random_state=0)
    pipe = make_pipeline(StandardScaler(), FunctionTransformer(np.tanh), reg)
    pipe.fit(X, Y)
    reg.set_callbacks(ScoringMonitor(scoring="r2"))
    loaded = persistence.load(persistence.dumps(pipe))
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    assert not hasattr(loaded[-1], "_skl_callbacks")
    assert hasattr(reg, "_skl_callbacks") and _training_states(reg)  # untouched


def test_loaded_model_can_be_fitted_again():
    model = _fit()
    loaded = persistence.load(persistence.dumps(model))
    # a plain fit starts afresh, so it reproduces the original fit bit for bit
    np.testing.assert_array_equal(loaded.fit(X, Y).predict(X), model.predict(X))


def test_loaded_model_can_continue_training():
    loaded = persistence.load(persistence.dumps(_fit()))
    loaded.partial_fit(X, Y)
    assert loaded.n_iter_ == 4
    loaded.set_params(warm_start=True, max_iter=2).fit(X, Y)
    assert loaded.n_iter_ == 6


@pytest.mark.parametrize("early_stopping", [False, True])
def test_pickle_from_before_the_training_state_object_trains_on(early_stopping):
    """A model pickled when its training state was loose attributes (``_optimizer``,
    ``_rng``, ``_best_theta``, ``_best_val_loss``, ``_no_improvement_count``) loads
    with them gathered into one TrainingState, and trains on bit for bit."""
    import dataclasses
    import pickle

    model = _fit(GRURegressor, early_stopping=early_stopping, validation_fraction=0.2)
    state = pickle.loads(pickle.dumps(model)).__dict__
    old = {k: v for k, v in state.items() if k != "_training"}
    for field in dataclasses.fields(state["_training"]):
        if field.name != "epoch_theta":  # never kept between calls
            old["_" + field.name] = getattr(state["_training"], field.name)
    legacy = GRURegressor.__new__(GRURegressor)
    legacy.__setstate__(old)
    assert _training_states(legacy) == ["_training"]
    assert not {"_optimizer", "_rng", "_best_theta"} & set(vars(legacy))
    assert legacy._training.best_val_loss == model._training.best_val_loss
    model.partial_fit(X, Y)
    legacy.partial_fit(X, Y)
    np.testing.assert_array_equal(legacy._net.theta, model._net.theta)
    assert legacy.validation_loss_curve_ == model.validation_loss_curve_


def test_fresh_process_loads_identically(tmp_path):
    model = _fit(GRURegressor)
    path = persistence.save(model, tmp_path / "m.skops")
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import numpy as np
        from skrnn import persistence
        model = persistence.load({str(path)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "pred.npy")!r}, model.predict(X))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), model.predict(X))


# -- the trust policy -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "skrnn.recurrent.LSTMRegressor",
    "skrnn.nn._network.RecurrentNetwork",
    "skrnn.nn._cells.GRULayer",
    "numpy.dtype",
    "sklearn.preprocessing._data.StandardScaler",
])
def test_policy_trusts_classes_of_skrnn_numpy_sklearn(name):
    assert persistence.is_trusted_type(name)


@pytest.mark.parametrize("name", [
    "posix.system",                         # os.system
    "builtins.eval",
    "subprocess.Popen",
    "collections.Counter",                  # harmless, but foreign
    "numpyx.core.Thing",                    # a package that merely starts with "numpy"
    "skrnn_evil.Model",
    "numpy.load",                           # functions are never trusted by the policy
    "skrnn.recurrent.check_random_state",
    "skrnn.recurrent.np",                   # a module, not a class
    "skrnn.recurrent.Integral",             # a foreign class imported into skrnn
    "skrnn.__main__.main",                  # dunder modules are never imported
    "skrnn.recurrent.NoSuchClass",
    "skrnn",
    "",
])
def test_policy_refuses_everything_else(name):
    assert not persistence.is_trusted_type(name)


def test_crafted_file_with_os_system_is_refused(tmp_path):
    evil = FunctionTransformer(func=os.system, kw_args={"command": "echo pwned"})
    # skrnn refuses to write it ...
    with pytest.raises(UntrustedTypesError, match="posix.system"):
        persistence.save(evil, tmp_path / "evil.skops")
    # ... and to read it, even when it carries a valid skrnn.json entry
    data = skops_io.dumps(evil)
    good = persistence.dumps(_fit())
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        meta = archive.read(persistence.METADATA_ENTRY)
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(persistence.METADATA_ENTRY, meta)
    path = tmp_path / "evil.skops"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UntrustedTypesError, match=r"posix\.system.*Nothing was loaded"):
        persistence.load(path)


def test_crafted_type_in_a_skrnn_file_is_refused():
    data = persistence.dumps(_fit())
    # point the network's node at a foreign class (skops would rebuild it with __new__)
    crafted = _rewrite(data, replace={
        '"__class__": "RecurrentNetwork",\n': '"__class__": "Popen",\n',
        '"__module__": "skrnn.nn._network"': '"__module__": "subprocess"',
    })
    with pytest.raises(UntrustedTypesError, match="subprocess.Popen"):
        persistence.load(crafted)


def test_own_types_need_explicit_trust(tmp_path):
    pipe = make_pipeline(_Custom(), LSTMRegressor(units=4, max_iter=2, random_state=0))
    pipe.fit(X, Y)
    name = f"{_Custom.__module__}.{_Custom.__qualname__}"
    with pytest.raises(UntrustedTypesError, match=name):
        persistence.save(pipe, tmp_path / "p.skops")
    path = persistence.save(pipe, tmp_path / "p.skops", trusted=[name])
    with pytest.raises(UntrustedTypesError, match=name):
        persistence.load(path)
    loaded = persistence.load(path, trusted=[name])
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))


class _Custom(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


# -- versions ---------------------------------------------------------------------------------


def test_other_major_version_is_refused_same_major_loads():
    data = persistence.dumps(_fit())
    meta = persistence.read_metadata(data)
    major = int(meta["skrnn_version"].split(".")[0])
    newer = _rewrite(data, metadata={**meta, "skrnn_version": f"{major + 1}.0.0"})
    with pytest.raises(IncompatibleVersionError, match=rf"saved by skrnn {major + 1}\.0\.0.*"
                                                       rf"same major version \({major}\.x\)"):
        persistence.load(newer)
    same_major = _rewrite(data, metadata={**meta, "skrnn_version": f"{major}.999.7"})
    assert persistence.load(same_major).n_iter_ == 3


def test_file_without_version_needs_opt_out():
    model = _fit()
    plain = skops_io.dumps(persistence.strip_training_state(model))
    assert persistence.read_metadata(plain) is None
    with pytest.raises(IncompatibleVersionError, match="carries no skrnn version"):
        persistence.load(plain)
    loaded = persistence.load(plain, check_version=False)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_not_a_model_file(tmp_path):
    path = tmp_path / "junk.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a skops model file"):
        persistence.load(path)


def test_stripping_reaches_estimators_nested_in_fitted_meta_estimators():
    from sklearn.callback import ProgressBar
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skrnn import GRURegressor, LastSteps

    pipe = Pipeline([("window", LastSteps(3)), ("scale", StandardScaler()),
                     ("model", GRURegressor(units=3, max_iter=2, random_state=0))])
    pipe.set_callbacks(ProgressBar())
    model = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    model.fit(X, Y)
    stripped = persistence.strip_training_state(model)
    inner = stripped.regressor_.steps[-1][1]
    assert not _training_states(inner) and hasattr(inner, "_net")
    assert "_skl_callbacks" not in vars(stripped.regressor)
    assert _training_states(model.regressor_.steps[-1][1])  # the original is untouched
    np.testing.assert_array_equal(stripped.predict(X), model.predict(X))
