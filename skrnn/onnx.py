"""ONNX export of the recurrent regressors and of Pipelines that contain them.

:func:`to_onnx` turns a fitted :class:`~skrnn.SimpleRNNRegressor`,
:class:`~skrnn.LSTMRegressor` or :class:`~skrnn.GRURegressor` -- alone, or as the
last step of a scikit-learn :class:`~sklearn.pipeline.Pipeline` of preprocessing
steps that ``skl2onnx`` converts (scalers, imputers, column transformers, ...) --
into an ONNX model that runs with ``onnxruntime`` alone: no skrnn, no NumPy model
code, no deep-learning framework.

The recurrent layers become ONNX's own ``RNN``, ``LSTM`` and ``GRU`` operators, one
per stacked layer, with the weights re-ordered to ONNX's gate order (LSTM ``i, o, f,
c``; GRU ``z, r, h``), LSTM peepholes in ``P``, and the GRU's two forms as its
``linear_before_reset`` attribute (1 for ``reset_after=True``, the PyTorch form; 0
for the original form). The dense head is a ``MatMul`` and an ``Add``; then the
output activation (``Relu``, ``Softplus``), or ``Exp`` for ``loss="poisson"``'s log
link. A quantile model sorts each target's levels (``TopK``) as
:meth:`~skrnn.LSTMRegressor.predict_quantiles` does, and has two outputs:
``variable`` (what ``predict`` returns) and ``quantiles``.

Inputs and outputs are float32. The graph's input ``X`` is 2D ``(n_samples,
timesteps * n_step_features)`` -- the layout a Pipeline passes along -- or, for a
bare regressor exported with a 3D ``X_sample``, ``(n_samples, timesteps,
n_step_features)``. The output ``variable`` has shape ``(n_samples, n_outputs)``
(``(n_samples, 1)`` for a 1D target: the skl2onnx convention for regressors).

``onnx`` and ``skl2onnx`` are imported by :func:`to_onnx` only (``pip install
skrnn[onnx]``).
"""

import numpy as np

from skrnn._quantile_head import point_weights

__all__ = ["to_onnx"]

_REGISTERED = {"done": False}

# ONNX gate order, as the engine's internal gate blocks (see skrnn.nn._cells):
# LSTM internal i, f, o, g -> ONNX i, o, f, c; GRU internal r, z, n -> ONNX z, r, h
_ONNX_BLOCKS = {"rnn": (0,), "lstm": (0, 2, 1, 3), "gru": (1, 0, 2)}
_ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def _import_skl2onnx():
    try:
        import onnx  # noqa: F401
        import skl2onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ONNX export needs the onnx and skl2onnx packages: pip install 'skrnn[onnx]' "
            f"(missing: {exc.name})."
        ) from exc
    return skl2onnx


def _regressor_classes():
    from skrnn.recurrent import GRURegressor, LSTMRegressor, SimpleRNNRegressor

    return (SimpleRNNRegressor, LSTMRegressor, GRURegressor)


def _register():
    """Register skrnn's parser, shape calculator and converter with skl2onnx (once)."""
    if _REGISTERED["done"]:
        return
    skl2onnx = _import_skl2onnx()
    for cls in _regressor_classes():
        skl2onnx.update_registered_converter(
            cls, f"Skrnn{cls.__name__}", _shape_calculator, _converter, parser=_parser
        )
    _REGISTERED["done"] = True


# -- skl2onnx hooks ---------------------------------------------------------------------


def _parser(scope, model, inputs, custom_parsers=None):
    """One operator with output ``variable`` and, for quantile models, ``quantiles``."""
    from skl2onnx._supported_operators import _get_sklearn_operator_name
    from skl2onnx.common.data_types import FloatTensorType

    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("variable", FloatTensorType()))
    if model.quantiles_ is not None:
        operator.outputs.append(scope.declare_local_variable("quantiles", FloatTensorType()))
    return operator.outputs


def _shape_calculator(operator):
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    x_type = operator.inputs[0].type
    if not isinstance(x_type, FloatTensorType):
        raise TypeError(
            f"{type(model).__name__} exports with float32 input only; its input is "
            f"{type(x_type).__name__}. Cast X to float32."
        )
    n = x_type.shape[0] if x_type.shape else None
    operator.outputs[0].type = FloatTensorType([n, model.n_outputs_])
    if len(operator.outputs) > 1:
        n_q = len(model.quantiles_)
        shape = [n, n_q] if model.y_ndim_ == 1 else [n, model.n_outputs_, n_q]
        operator.outputs[1].type = FloatTensorType(shape)


def _const(scope, container, name, array, dtype=np.float32):
    """An initializer holding ``array``; returns its (unique) name."""
    from onnx import numpy_helper

    unique = scope.get_unique_variable_name(name)
    tensor = numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), unique)
    container.add_initializer(unique, None, None, tensor)
    return unique


def _node(scope, container, op_type, inputs, n_outputs=1, **attrs):
    """Add one node; returns the names of its outputs (one name when one output)."""
    outputs = [scope.get_unique_variable_name(f"skrnn_{op_type.lower()}")
               for _ in range(n_outputs)]
    container.add_node(op_type, inputs, outputs,
                       name=scope.get_unique_operator_name(f"Skrnn{op_type}"), **attrs)
    return outputs[0] if n_outputs == 1 else outputs


def _layer_weights(cell, layer, p):
    """``W``, ``R``, ``B`` (and ``P``) of one ONNX recurrent operator, float32."""
    H = layer.units
    rows = np.concatenate([np.arange(b * H, (b + 1) * H) for b in _ONNX_BLOCKS[cell]])
    W = p["W_ih"].T[rows][None]  # (1, G*H, F)
    R = p["W_hh"].T[rows][None]  # (1, G*H, H)
    Wb = p["b"][rows]
    Rb = np.zeros_like(Wb)
    if "b_hn" in p:  # reset-after GRU: the n gate's recurrent bias sits inside r * (...)
        Rb[2 * H :] = p["b_hn"]
    B = np.concatenate([Wb, Rb])[None]
    P = None
    if "w_peep" in p:  # internal rows i, f, o; ONNX wants i, o, f
        P = np.concatenate([p["w_peep"][0], p["w_peep"][2], p["w_peep"][1]])[None]
    return W, R, B, P


def _full_length_zero_state(scope, container, x, H):
    """``sequence_lens``, ``initial_h``, ``initial_c`` for time-major ``x``: every
    sequence full length, zero states. The LSTM's peepholes are its 8th input, and
    skl2onnx's graph sort does not accept the empty names that would skip these."""
    shape = _node(scope, container, "Shape", [x])
    T = _node(scope, container, "Gather",
              [shape, _const(scope, container, "skrnn_i0", [0], np.int64)], axis=0)
    N = _node(scope, container, "Gather",
              [shape, _const(scope, container, "skrnn_i1", [1], np.int64)], axis=0)
    lens = _node(scope, container, "Cast", [_node(scope, container, "Expand", [T, N])],
                 to=6)  # int32
    state_shape = _node(scope, container, "Concat",
                        [_const(scope, container, "skrnn_one", [1], np.int64), N,
                         _const(scope, container, "skrnn_H", [H], np.int64)], axis=0)
    zeros = _node(scope, container, "ConstantOfShape", [state_shape])  # float32 zeros
    return lens, zeros, zeros


def _converter(scope, operator, container):
    model = operator.raw_operator
    net = model.network_
    x = operator.inputs[0].full_name
    F = net.n_features
    # (n, T*F) or (n, T, F) -> (n, T, F) -> time-major (T, n, F)
    seq = _node(scope, container, "Reshape",
                [x, _const(scope, container, "skrnn_shape", [0, -1, F], np.int64)])
    h = _node(scope, container, "Transpose", [seq], perm=[1, 0, 2])
    last = len(net.layers) - 1
    for k, (layer, p) in enumerate(zip(net.layers, net.params)):
        W, R, B, P = _layer_weights(net.cell, layer, p)
        inputs = [h, _const(scope, container, f"skrnn_W{k}", W),
                  _const(scope, container, f"skrnn_R{k}", R),
                  _const(scope, container, f"skrnn_B{k}", B)]
        attrs = {"hidden_size": layer.units}
        if net.cell == "rnn":
            attrs["activations"] = ["Relu" if layer.activation == "relu" else "Tanh"]
        elif net.cell == "gru":
            attrs["linear_before_reset"] = int(layer.reset_after)
        if P is not None:
            inputs += [*_full_length_zero_state(scope, container, h, layer.units),
                       _const(scope, container, f"skrnn_P{k}", P)]
        Y, Y_h = _node(scope, container, _ONNX_OP[net.cell], inputs, n_outputs=2, **attrs)
        if k < last:  # Y: (T, 1, n, H) -> (T, n, H), the next layer's input
            h = _node(scope, container, "Squeeze",
                      [Y, _const(scope, container, "skrnn_axis1", [1], np.int64)])
        else:  # the last state (n, H); a per-step head predicts from it too
            h = _node(scope, container, "Squeeze",
                      [Y_h, _const(scope, container, "skrnn_axis0", [0], np.int64)])
    z = _node(scope, container, "MatMul",
              [h, _const(scope, container, "skrnn_head_W", net.head_params["W"])])
    z = _node(scope, container, "Add",
              [z, _const(scope, container, "skrnn_head_b", net.head_params["b"])])
    if model.loss == "poisson":
        z = _node(scope, container, "Exp", [z])
    elif model.output_activation == "relu":
        z = _node(scope, container, "Relu", [z])
    elif model.output_activation == "softplus":
        z = _node(scope, container, "Softplus", [z])
    levels = model.quantiles_
    if levels is None:
        container.add_node("Identity", [z], [operator.outputs[0].full_name],
                           name=scope.get_unique_operator_name("SkrnnOutput"))
        return
    n_t, n_q = model.n_outputs_, len(levels)
    grid = _node(scope, container, "Reshape",
                 [z, _const(scope, container, "skrnn_qshape", [0, n_t, n_q], np.int64)])
    # ascending sort of each target's levels: quantiles never cross
    ordered, _ = _node(scope, container, "TopK",
                       [grid, _const(scope, container, "skrnn_k", [n_q], np.int64)],
                       n_outputs=2, axis=-1, largest=0, sorted=1)
    point = _node(scope, container, "MatMul",
                  [ordered, _const(scope, container, "skrnn_point",
                                   point_weights(levels)[:, None])])
    container.add_node(
        "Reshape", [point, _const(scope, container, "skrnn_pshape", [0, n_t], np.int64)],
        [operator.outputs[0].full_name], name=scope.get_unique_operator_name("SkrnnOutput"))
    qshape = [0, n_q] if model.y_ndim_ == 1 else [0, n_t, n_q]
    container.add_node(
        "Reshape", [ordered, _const(scope, container, "skrnn_qout", qshape, np.int64)],
        [operator.outputs[1].full_name], name=scope.get_unique_operator_name("SkrnnQuantiles"))


# -- the public function ------------------------------------------------------------------


def _steps(estimator, prefix=""):
    """(name, estimator) of every step, nested Pipelines flattened; the top is ''."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            yield from _steps(step, f"{prefix}{name}" if not prefix else f"{prefix}__{name}")
    else:
        yield prefix, estimator


def _check_convertible(estimator):
    """Fitted, with a converter for every step, and a skrnn regressor at the end."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.utils.validation import check_is_fitted

    steps = [(n, s) for n, s in _steps(estimator) if s is not None and s != "passthrough"]
    regressors = _regressor_classes()
    if not steps or not isinstance(steps[-1][1], regressors):
        raise TypeError(
            "to_onnx exports a skrnn regressor (SimpleRNNRegressor, LSTMRegressor, "
            "GRURegressor) or a Pipeline that ends with one; got "
            f"{type(estimator).__name__}"
            + (f" ending with {type(steps[-1][1]).__name__}." if steps else ".")
        )
    for name, step in steps:
        where = f"Pipeline step {name!r} ({type(step).__name__})" if name else (
            type(step).__name__)
        if isinstance(step, regressors):
            check_is_fitted(step, "network_")
            if step is not steps[-1][1]:
                raise TypeError(f"{where}: a skrnn regressor must be the last step.")
            continue
        if type(step) not in sklearn_operator_name_map:
            raise TypeError(
                f"{where} has no ONNX converter in skl2onnx, so the pipeline cannot be "
                "exported. Replace the step with one skl2onnx supports (see "
                "skl2onnx.supported_converters()), or register a converter for it with "
                "skl2onnx.update_registered_converter."
            )
        check_is_fitted(step)


def to_onnx(estimator, X_sample, *, name=None, target_opset=None):
    """Export a fitted skrnn regressor, or a Pipeline ending with one, to ONNX.

    Parameters
    ----------
    estimator : SimpleRNNRegressor, LSTMRegressor, GRURegressor or Pipeline
        Fitted. In a Pipeline, every step before the regressor needs an skl2onnx
        converter (scikit-learn's scalers, imputers, ColumnTransformer, ...).
    X_sample : array-like of shape (n_samples, n_columns) or \
            (n_samples, timesteps, n_step_features)
        An example input: it fixes the number of columns (or, 3D, of steps and
        features) of the graph's input ``X``; the number of rows stays free. A 3D
        sample is for a bare regressor only (a Pipeline's steps take 2D input).
    name : str, default=None
        Name of the ONNX graph (default: the estimator's class name).
    target_opset : int, default=None
        ONNX opset (default: the newest one skl2onnx has tested).

    Returns
    -------
    model : onnx.ModelProto
        Input ``X`` (float32); outputs ``variable`` (``predict``'s values, shape
        ``(n_samples, n_outputs)``) and, for ``loss="quantile"``, ``quantiles``
        (``predict_quantiles``'s values). Save it with ``onnx.save(model, path)``
        or ``model.SerializeToString()``, run it with
        ``onnxruntime.InferenceSession(model.SerializeToString())``.

    Raises
    ------
    NotFittedError
        A step, or the regressor, is not fitted.
    TypeError
        A pipeline step has no ONNX converter (the message names it), or the
        estimator is not a skrnn regressor or a Pipeline ending with one.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import GRURegressor
    >>> from skrnn.onnx import to_onnx
    >>> X = np.sin(np.arange(120, dtype=float) / 5).reshape(20, 6)
    >>> model = GRURegressor(units=4, max_iter=2, random_state=0).fit(X, X[:, -1])
    >>> onx = to_onnx(model, X[:1])
    >>> [o.name for o in onx.graph.output]
    ['variable']
    """
    from sklearn.pipeline import Pipeline

    skl2onnx = _import_skl2onnx()
    from skl2onnx.common.data_types import FloatTensorType

    _check_convertible(estimator)
    _register()
    X_sample = np.asarray(X_sample, dtype=np.float32)
    if X_sample.ndim not in (2, 3):
        raise ValueError(
            f"X_sample must be 2D (n_samples, n_columns) or 3D (n_samples, timesteps, "
            f"n_step_features); got shape {X_sample.shape}."
        )
    if X_sample.ndim == 3 and isinstance(estimator, Pipeline):
        raise ValueError(
            "A Pipeline's steps take 2D input: pass X_sample as (n_samples, n_columns), "
            f"not {X_sample.shape}."
        )
    shape = [None, *X_sample.shape[1:]]
    return skl2onnx.convert_sklearn(
        estimator,
        name=name or type(estimator).__name__,
        initial_types=[("X", FloatTensorType(shape))],
        target_opset=target_opset,
    )
