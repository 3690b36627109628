"""ONNX export: onnxruntime predicts what skrnn predicts, for every cell variant."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cell_variants import IDS, VARIANTS
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skrnn import GRURegressor, LSTMRegressor

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
from skrnn.onnx import to_onnx

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.RandomState(0)
X3 = RNG.normal(size=(64, 5, 3)).astype(np.float32)  # 64 sequences, 5 steps, 3 features
X2 = X3.reshape(64, 15)
Y = np.c_[X3[:, -1, 0] + X3[:, 0, 1], X3[:, :, 2].mean(axis=1)]


def _fit(cls, kw, X, y, **params):
    args = {"units": (6, 4), "max_iter": 3, "random_state": 0, "dtype": "float32"}
    args.update(params)
    model = cls(**kw, **args).fit(X, y)
    # move away from the initial zeros (biases, peepholes) so every weight matters
    rng = np.random.RandomState(1)
    model._net.theta += rng.normal(scale=0.3, size=model._net.size).astype(np.float32)
    return model


def _run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"X": np.asarray(X, dtype=np.float32)})


@pytest.mark.parametrize("cls,kw", VARIANTS, ids=IDS)
@pytest.mark.parametrize("layout", ["2d-one-feature", "2d-step-features", "3d"])
def test_onnxruntime_predicts_like_skrnn(cls, kw, layout):
    if layout == "2d-one-feature":
        X, params = X2, {}
    elif layout == "2d-step-features":
        X, params = X2, {"n_step_features": 3}
    else:
        X, params = X3, {}
    model = _fit(cls, kw, X, Y, **params)  # stacked layers, two outputs
    onx = to_onnx(model, X[:1])
    (out,) = _run(onx, X)
    assert out.shape == (64, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, model.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls,kw", VARIANTS, ids=IDS)
def test_one_layer_one_output_float64_model(cls, kw):
    model = _fit(cls, kw, X2, Y[:, 0], units=5, dtype="float64")
    (out,) = _run(to_onnx(model, X2[:1]), X2)
    assert out.shape == (64, 1)  # skl2onnx's regressor convention
    # the graph computes in float32: the float64 model agrees to float32 rounding
    np.testing.assert_allclose(out[:, 0], model.predict(X2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("params", [
    {"output_activation": "relu"},
    {"output_activation": "softplus"},
    {"loss": "poisson"},
], ids=str)
def test_output_link(params):
    model = _fit(LSTMRegressor, {}, X2, np.abs(Y), **params)
    if params.get("output_activation") == "relu":  # put half the rows below the kink
        Z, _ = model._net.forward(np.ascontiguousarray(X2.T[:, :, None]), store=False)
        model._net.head_params["b"] -= np.median(Z, axis=0)
    (out,) = _run(to_onnx(model, X2[:1]), X2)
    pred = model.predict(X2)
    np.testing.assert_allclose(out, pred, rtol=1e-5, atol=1e-5)
    if params.get("output_activation") == "relu":
        assert (pred == 0).any() and (pred > 0).any()  # both sides of the kink ran


def test_per_step_target_model_predicts_its_last_step():
    Y3 = np.repeat(Y[:, None, :], 5, axis=1)
    model = _fit(GRURegressor, {}, X3, Y3)
    (out,) = _run(to_onnx(model, X3[:1]), X3)
    np.testing.assert_allclose(out, model.predict(X3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("y,levels", [(Y[:, 0], {"quantiles": [0.1, 0.5, 0.9]}),
                                      (Y, {"quantiles": [0.2, 0.4, 0.9]}),
                                      (Y, {"quantile": 0.7})],
                         ids=["one-target", "two-targets-no-median", "one-level"])
def test_quantile_head_is_sorted_like_predict_quantiles(y, levels):
    model = _fit(LSTMRegressor, {}, X2, y, loss="quantile", **levels)
    # a head whose raw levels cross, so that the graph's sort matters
    sd = model.get_weights()
    sd["head.weight"] = sd["head.weight"][::-1] * np.linspace(-2, 2, len(sd["head.bias"]))[:, None]
    model.set_weights(sd)
    point, quantiles = _run(to_onnx(model, X2[:1]), X2)
    expected = model.predict_quantiles(X2)
    assert quantiles.shape == expected.shape
    np.testing.assert_allclose(quantiles, expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    np.testing.assert_allclose(point.reshape(model.predict(X2).shape), model.predict(X2),
                               rtol=1e-5, atol=1e-5)


def test_pipeline_with_standard_scaler():
    X = X2 * 10 + 3
    pipe = make_pipeline(StandardScaler(), MinMaxScaler(),
                         GRURegressor(units=(5, 4), max_iter=3, random_state=0,
                                      dtype="float32")).fit(X, Y)
    onx = to_onnx(pipe, X[:1])
    (out,) = _run(onx, X)
    np.testing.assert_allclose(out, pipe.predict(X), rtol=1e-5, atol=1e-5)
    assert {"LSTM", "GRU", "RNN"} & {n.op_type for n in onx.graph.node} == {"GRU"}


def test_exported_model_runs_in_a_fresh_process_without_skrnn(tmp_path):
    model = _fit(LSTMRegressor, {"peephole": True}, X2, Y)
    pipe = Pipeline([("scale", StandardScaler()), ("lstm", model)]).fit(X2, Y)
    (tmp_path / "model.onnx").write_bytes(to_onnx(pipe, X2[:1]).SerializeToString())
    np.save(tmp_path / "X.npy", X2)
    np.save(tmp_path / "expected.npy", pipe.predict(X2))
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import onnxruntime as ort
        folder = {str(tmp_path)!r}
        session = ort.InferenceSession(folder + "/model.onnx",
                                       providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {{"X": np.load(folder + "/X.npy")}})
        assert "skrnn" not in sys.modules, "skrnn was imported"
        err = np.abs(out - np.load(folder + "/expected.npy")).max()
        print("max error", err)
        assert err < 1e-5, err
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max error" in run.stdout


# -- bad input ------------------------------------------------------------------------------


class _Doubler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2


def test_unfitted_models_are_refused():
    with pytest.raises(NotFittedError):
        to_onnx(LSTMRegressor(), X2[:1])
    with pytest.raises(NotFittedError):
        to_onnx(make_pipeline(StandardScaler(), GRURegressor()), X2[:1])
    fitted = _fit(GRURegressor, {}, X2, Y)
    with pytest.raises(NotFittedError):
        to_onnx(make_pipeline(StandardScaler(), fitted), X2[:1])


def test_step_without_converter_is_named():
    pipe = Pipeline([("scale", StandardScaler()), ("double", _Doubler()),
                     ("gru", GRURegressor(units=3, max_iter=1))]).fit(X2, Y)
    with pytest.raises(TypeError, match=r"Pipeline step 'double' \(_Doubler\) has no ONNX "
                                        "converter"):
        to_onnx(pipe, X2[:1])


def test_not_a_skrnn_model_and_bad_samples():
    with pytest.raises(TypeError, match="ends with one; got Pipeline ending with Ridge"):
        to_onnx(make_pipeline(StandardScaler(), Ridge()).fit(X2, Y), X2[:1])
    model = _fit(GRURegressor, {}, X2, Y)
    with pytest.raises(ValueError, match="X_sample must be 2D"):
        to_onnx(model, X2[0])
    pipe = make_pipeline(StandardScaler(), model).fit(X2, Y)
    with pytest.raises(ValueError, match="Pipeline's steps take 2D input"):
        to_onnx(pipe, X3[:1])


def test_benchmark_script_prints_its_table():
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "onnx_predict.py"), "--T", "4", "--H", "3",
         "--batch", "8", "--calls", "2", "--repeats", "1", "--no-torch", "--cell", "gru",
         "lstm"],
        capture_output=True, text=True, timeout=300, check=False, cwd=root,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines()
            if line.startswith(("| lstm |", "| gru |", "| rnn |"))]
    assert len(rows) == 2, run.stdout
    for row in rows:
        cols = [c.strip() for c in row.strip("|").split("|")]
        assert float(cols[1]) > 0 and float(cols[2]) > 0  # skrnn and onnxruntime, 1 row
        assert float(cols[7]) < 1e-5  # onnxruntime agrees with skrnn
