"""The cell variants and losses the engine and estimator tests run over: each cell
with each of its switches (activation, peepholes, reset-gate placement), written once."""

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor

CELLS = [
    ("rnn", {"activation": "tanh"}),
    ("rnn", {"activation": "relu"}),
    ("lstm", {"peephole": False}),
    ("lstm", {"peephole": True}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
]
LOSSES = ["squared_error", "absolute_error", "huber", "poisson"]

REGRESSOR = {"rnn": SimpleRNNRegressor, "lstm": LSTMRegressor, "gru": GRURegressor}
# the same variants as estimators: (class, constructor keywords)
VARIANTS = [(REGRESSOR[cell], kwargs) for cell, kwargs in CELLS]
IDS = [f"{cls.__name__}-{kwargs}" for cls, kwargs in VARIANTS]
