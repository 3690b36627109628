"""Threads inside the engine: who parallelises, and how many threads.

The recurrent products of one time step are small (a batch of 32 sequences times a
64 x 256 weight matrix). Multi-threaded BLAS synchronises its threads on every such
product, which costs more than it gains, and on a busy machine its spinning workers
slow everything down by several times. So, inside an engine call (a fit's pass over
its batches, optimizer steps included; a prediction), BLAS runs single-threaded and
the parallel work is coarse: the compiled loops split the sequences of the batch
between threads that run from the first step to the last without waiting for each
other.

The number of threads follows the BLAS limit in force when the call starts, which is
what ``threadpoolctl.threadpool_limits``, ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``
and joblib's workers (``GridSearchCV(n_jobs=...)`` gives each worker
``cpu_count // n_jobs``) set: skrnn never uses more threads than BLAS is allowed,
so it does not oversubscribe the machine. The BLAS thread counts are put back when
the call ends.
"""

import os
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_state = {"libs": None, "depth": 0, "saved": [], "limit": None, "callers": {}}


class _Lib:
    """get/set of one BLAS library's thread count, as direct ctypes calls when possible.

    threadpoolctl's public ``get_num_threads``/``set_num_threads`` cost ~5 us each
    (its set also arbitrates between Python threads); an engine call makes up to six
    of them per training batch, so the raw symbols are used where threadpoolctl
    exposes them, and its methods otherwise.
    """

    def __init__(self, lc):
        self.lc = lc
        self._get = self._set = None
        if getattr(lc, "internal_api", None) == "openblas" and lc.threading_layer != "openmp":
            try:
                self._get = lc._get_symbol("openblas_get_num_threads")
                self._set = lc._get_symbol("openblas_set_num_threads")
            except Exception:  # pragma: no cover - other threadpoolctl versions
                self._get = self._set = None

    def get(self):
        return self._get() if self._get is not None else self.lc.get_num_threads()

    def set(self, n):
        if self._set is not None:
            self._set(n)
        else:
            self.lc.set_num_threads(n)


def _blas_libs():
    """The loaded BLAS libraries (found once, through threadpoolctl)."""
    if _state["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController

            libs = [_Lib(lc) for lc in ThreadpoolController().lib_controllers
                    if lc.user_api == "blas"]
        except Exception:  # pragma: no cover - threadpoolctl is a dependency
            libs = []
        _state["libs"] = libs
    return _state["libs"]


def _counts():
    out = []
    for lib in _blas_libs():
        try:
            out.append((lib, int(lib.get() or 0)))
        except Exception:  # pragma: no cover
            pass
    return out


def blas_limit():
    """The number of threads skrnn's own loops may use now.

    The BLAS limit in force (what threadpoolctl, the environment or joblib set);
    inside engine calls running concurrently from several Python threads (a
    threading backend), each gets its share of the limit recorded when the first
    call started.
    """
    if _state["limit"] is not None:  # inside an engine call
        return max(1, _state["limit"] // max(1, len(_state["callers"])))
    counts = [n for _, n in _counts() if n > 0]
    if not _blas_libs():
        return 1 if os.environ.get("OMP_NUM_THREADS") == "1" else (os.cpu_count() or 1)
    return max(1, min(counts)) if counts else 1


@contextmanager
def engine_call(single_blas=True):
    """Run an engine call: BLAS single-threaded (when asked) and the limit recorded.

    Re-entrant and thread-safe: the first caller records the BLAS limit and lowers
    BLAS to one thread, the last one to leave puts the counts back; Python threads
    inside engine calls at the same time share the limit (``blas_limit``).
    """
    with _lock:
        if _state["depth"] == 0:
            counts = _counts()
            positive = [n for _, n in counts if n > 0]
            if positive:
                limit = max(1, min(positive))
            else:
                _state["limit"] = None
                limit = blas_limit()
            saved = []
            if single_blas:
                for lib, n in counts:
                    if n > 1:
                        try:
                            lib.set(1)
                            saved.append((lib, n))
                        except Exception:  # pragma: no cover
                            pass
            _state["saved"] = saved
            _state["limit"] = limit
        _state["depth"] += 1
        me = threading.get_ident()
        _state["callers"][me] = _state["callers"].get(me, 0) + 1
    try:
        yield _state["limit"]
    finally:
        with _lock:
            _state["depth"] -= 1
            _state["callers"][me] -= 1
            if not _state["callers"][me]:
                del _state["callers"][me]
            if _state["depth"] == 0:
                for lib, n in _state["saved"]:
                    try:
                        lib.set(n)
                    except Exception:  # pragma: no cover
                        pass
                _state["saved"] = []
                _state["limit"] = None
