"""The engine boundary: which time loops run, with how many threads, and how they are called.

Two engines run the recurrent layers (``_cells.py``). Its NumPy code is the reference.
When the optional compiled module ``skrnn.nn._fastrnn`` is built (``pip install``
compiles it with any C compiler; see ``setup.py``), its loops run instead (sources in
``skrnn/nn/csrc/``): per step, the input side, the product with ``W_hh`` (its own
register-blocked kernel, which unlike BLAS does not re-pack the weights on every small
product) and one fused, vectorised pass over the gates instead of a dozen NumPy
calls; the backward pass sums the weight gradients as it goes instead of keeping the
gate gradients of all steps. Blocks of sequences of a batch (16 to 128, by batch
size) are shared between threads (:func:`plan`, within the limit ``_threads.py``
sets); results do not depend on the number of threads.

Its ``tanh`` is its own (within 3 ulp) and its sums run in another order, so the two
engines agree to rounding (float64: ~1e-12), not bit for bit; each one is
deterministic. The buffers kept for the backward pass (states, gates) are the same,
so ``states`` and the caches look alike. :func:`set_engine` switches engines;
``SKRNN_ENGINE=numpy`` selects the reference at import.

The compiled entry points take their arguments by position (21 for the forward loop,
25 for the backward one) and a numeric cell code; :func:`forward`, :func:`backward`
and :func:`adam` are the one place that knows that order, so the layers call them
with keywords and a :class:`Cell`.
"""

import os
from contextlib import contextmanager
from enum import IntEnum

import numpy as np

from skrnn.nn._threads import blas_limit

try:  # the compiled time loops are optional
    from skrnn.nn import _fastrnn
except ImportError:  # pragma: no cover - depends on the build
    _fastrnn = None


class Cell(IntEnum):
    """The compiled loops' cell codes (``cell`` in ``csrc/fastrnn.c``)."""

    RNN = 0
    LSTM = 1
    GRU = 2


CELL_RNN, CELL_LSTM, CELL_GRU = Cell.RNN, Cell.LSTM, Cell.GRU
_N_GATES = {Cell.RNN: 1, Cell.LSTM: 4, Cell.GRU: 3}

_ENGINE = {"name": "compiled" if _fastrnn is not None else "numpy", "threads": None}
if os.environ.get("SKRNN_ENGINE", "").lower() == "numpy":
    _ENGINE["name"] = "numpy"


def compiled_available():
    """Whether the compiled time loops were built and can be used."""
    return _fastrnn is not None


def get_engine():
    """The engine the layers use now: ``"compiled"`` or ``"numpy"``."""
    return _ENGINE["name"]


def set_engine(name, threads=None):
    """Select the engine of the time loops; returns the previous ``(name, threads)``.

    ``"numpy"`` is the reference implementation; ``"compiled"`` needs the built
    extension (``compiled_available()``). The environment variable
    ``SKRNN_ENGINE=numpy`` selects the reference at import time. ``threads`` fixes
    the number of threads of the compiled loops (for tests and benchmarks; by
    default it follows the BLAS limit and the size of the call).
    """
    if name not in ("numpy", "compiled"):
        raise ValueError(f"engine must be 'numpy' or 'compiled', got {name!r}")
    if name == "compiled" and _fastrnn is None:
        raise RuntimeError("the compiled engine (skrnn.nn._fastrnn) is not built")
    previous = (_ENGINE["name"], _ENGINE["threads"])
    _ENGINE["name"], _ENGINE["threads"] = name, threads
    return previous


@contextmanager
def engine(name, threads=None):
    """Context manager form of :func:`set_engine`."""
    previous = set_engine(name, threads)
    try:
        yield
    finally:
        _ENGINE["name"], _ENGINE["threads"] = previous


def runs_compiled(X, W_hh):
    """Whether a layer call on ``X`` runs the compiled loops (same float dtype everywhere)."""
    return (
        _ENGINE["name"] == "compiled"
        and X.dtype in (np.float32, np.float64)
        and W_hh.dtype == X.dtype
    )


# -- thread planning ---------------------------------------------------------------------


def block_size(B):
    """Sequences per block of the compiled loops: a function of the batch size only.

    The loops run the blocks of a batch independently and add their gradients in
    block order, so the results depend on the block size but not on the number of
    threads. Blocks of 16 let a batch of 32 keep two cores busy; bigger batches get
    bigger blocks (up to 128, aiming at 8 blocks), because every block streams the
    recurrent weights once per step.
    """
    return int(min(128, max(16, 16 * -(-B // 128))))


def plan(T, B, F, H, G):
    """(block size, threads) of a compiled time loop over ``G`` gate columns.

    Threads: at most the BLAS limit in force (see ``_threads.py``), at most one per
    block, and one when the call is too small for a thread's start-up (tens of
    microseconds) to pay.
    """
    block = block_size(B)
    if _ENGINE["threads"] is not None:
        return block, _ENGINE["threads"]
    limit = blas_limit()
    if limit <= 1 or not _fastrnn.HAS_THREADS:
        return block, 1
    flops = 2.0 * T * B * G * (H + F)  # the products of one pass
    blocks = -(-B // block)
    return block, max(1, min(limit, blocks, int(flops // 8e6)))


# -- the compiled entry points, by keyword -----------------------------------------------


def _flag(cell, relu, reset_after):
    """The loops' one per-cell flag: relu (SimpleRNN) or reset_after (GRU)."""
    return bool(relu) if cell == Cell.RNN else bool(reset_after) if cell == Cell.GRU else False


def forward(cell, *, T, B, F, H, X, W_ih, b, W_hh, Hs, extra=None, Cs=None, TC=None,
            gates=None, S=None, mask=None, relu=False, reset_after=False, store=True,
            ring=False):
    """Run the compiled forward time loop of one layer, writing into the given buffers.

    Parameters
    ----------
    cell : Cell
    T, B, F, H : int
        Steps, sequences, input features and units.
    X : ndarray of shape (T, B, F), C-contiguous
    W_ih, b, W_hh : ndarray
        Internal layout (``_cells.py``), the sigmoid-gate columns halved.
    Hs : ndarray
        States ``(T + 1, B, H)`` with the initial one zeroed, or with ``ring`` only
        the last one ``(1, B, H)``.
    extra : ndarray or None
        LSTM: the halved peepholes ``(3, H)``; GRU with ``reset_after``: ``b_hn``.
    Cs, TC, gates, S : ndarray or None
        What the backward pass needs, given exactly when ``store``: LSTM cells ``Cs``
        ``(T + 1, B, H)``, ``tanh(c)`` ``TC`` and ``gates`` ``(T, B, 4 H)``; GRU
        ``S`` ``(T, B, H)`` and ``gates`` ``(T, B, 3 H)``.
    mask : ndarray of shape (B, H) or None
        Recurrent dropout mask.
    relu, reset_after : bool
        SimpleRNN activation; GRU form.
    store, ring : bool
        Keep every step for the backward pass; keep only the last state.
    """
    block, threads = plan(T, B, F, H, _N_GATES[cell] * H)
    _fastrnn.forward(int(cell), T, B, F, H, X, W_ih, b, W_hh, extra, Hs, Cs, TC, gates, S,
                     mask, _flag(cell, relu, reset_after), store, ring, block, threads)


def backward(cell, *, T, B, F, H, X, W_ihT, W_hhT, Hs, grad_W_ih, grad_W_hh, grad_b,
             extra=None, Cs=None, TC=None, gates=None, S=None, mask=None, dH=None,
             dh_last=None, dX=None, grad_extra=None, relu=False, reset_after=False):
    """Run the compiled backward time loop of one layer; the gradients are overwritten.

    ``W_ihT`` (``W_ih.T``, contiguous) is needed only with ``dX``, the input gradient
    ``(T, B, F)`` to fill. ``extra`` is the raw peepholes (LSTM) or None;
    ``grad_extra`` their gradient (LSTM) or ``b_hn``'s (GRU with ``reset_after``).
    ``dH`` is the gradient reaching every step's output ``(T, B, H)`` or None,
    ``dh_last`` the one reaching the last state only. The buffers are those the
    forward pass filled with ``store``.
    """
    block, threads = plan(T, B, F, H, _N_GATES[cell] * H)
    _fastrnn.backward(int(cell), T, B, F, H, X, W_ihT, W_hhT, extra, Hs, Cs, TC, gates, S,
                      mask, dH, dh_last, dX, grad_W_ih, grad_W_hh, grad_b, grad_extra,
                      _flag(cell, relu, reset_after), block, threads)


def adam(theta, grad, m, v, *, beta_1, beta_2, epsilon, learning_rate):
    """One compiled Adam step in place (same roundings as the NumPy update).

    ``learning_rate`` is the step size with the bias correction already folded in.
    """
    _fastrnn.adam(theta, grad, m, v, beta_1, beta_2, epsilon, float(learning_rate))
