"""RecurrentForecaster(pooling="local"): the per-series loop runs through joblib (issue 21).

sktime loops over the series of a panel; the forecaster sends that loop through
``joblib.Parallel`` with neither backend nor jobs fixed, so ``n_jobs`` or the active
``joblib.parallel_config`` (processes, threads, a Dask cluster) decides where each series
is fitted and forecast, and the forecasts are bit-identical to the sequential run.
"""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sktime")

from joblib import parallel_config, register_parallel_backend  # noqa: E402
from joblib._parallel_backends import ThreadingBackend  # noqa: E402

from skrnn import GRURegressor  # noqa: E402
from skrnn.forecasting import RecurrentForecaster  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skrnn.forecasting.CalibrationWarning"),
    pytest.mark.filterwarnings("ignore::skrnn.forecasting.SkillWarning"),
]

FH = [1, 2, 3]


def _panel(keys=("a", "b", "c"), n=40):
    rng = np.random.default_rng(0)
    parts = {k: 10.0 * i + np.cumsum(rng.normal(size=n)) for i, k in enumerate("abc")}
    idx = pd.MultiIndex.from_product([list(keys), pd.RangeIndex(n)], names=["unit", "time"])
    return pd.DataFrame({"y": np.concatenate([parts[k] for k in keys])}, index=idx)


def _local(random_state=0, **kw):
    # fallback=None: the models' own forecasts, which differ per seed (a baseline
    # would hide a seeding difference)
    return RecurrentForecaster(
        GRURegressor(units=3, max_iter=3, random_state=random_state), window_length=5,
        pooling="local", calibration_folds=1, fallback=None, **kw)


def _forecasts(f, y):
    f.fit(y, fh=FH)
    return f.predict(), f.predict_interval(coverage=0.8)


class _CountingThreads(ThreadingBackend):
    """Threads that count the tasks joblib hands them."""

    tasks = 0

    def submit(self, func, callback=None):
        type(self).tasks += 1
        return super().submit(func, callback=callback)


def test_default_route_is_joblib_with_nothing_fixed():
    f = RecurrentForecaster(pooling="local")
    assert f.get_config()["backend:parallel"] == "joblib"
    assert f.get_config()["backend:parallel:params"] == {"backend": None, "n_jobs": None}
    # another sktime backend set alone gets its own defaults, before and after a reset
    f.set_config(**{"backend:parallel": "dask"})
    assert f.get_config()["backend:parallel:params"] is None
    assert f.reset().get_config()["backend:parallel:params"] is None
    assert f.clone().get_config()["backend:parallel"] == "dask"


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_bad_n_jobs_is_a_clear_error(n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero int"):
        _local(n_jobs=n_jobs).fit(_panel(), fh=FH)


def test_active_joblib_backend_runs_the_series_bit_for_bit():
    y = _panel()
    seq_point, seq_int = _forecasts(_local(), y)
    register_parallel_backend("skrnn_counting_threads", _CountingThreads)
    _CountingThreads.tasks = 0
    with parallel_config(backend="skrnn_counting_threads", n_jobs=2):
        par_point, par_int = _forecasts(_local(), y)
    # clones, fits, predicts and interval predicts of 3 series went through the backend
    assert _CountingThreads.tasks >= 4 * 3
    pd.testing.assert_frame_equal(seq_point, par_point, check_exact=True)
    pd.testing.assert_frame_equal(seq_int, par_int, check_exact=True)
    # n_jobs joins the active config and keeps its backend
    _CountingThreads.tasks = 0
    with parallel_config(backend="skrnn_counting_threads"):
        point, interval = _forecasts(_local(n_jobs=2), y)
    assert _CountingThreads.tasks >= 4 * 3
    pd.testing.assert_frame_equal(seq_point, point, check_exact=True)
    pd.testing.assert_frame_equal(seq_int, interval, check_exact=True)


@pytest.mark.slow
def test_n_jobs_alone_runs_loky_processes_bit_for_bit():
    # 10-16 s on the shared 2-core machine: two fresh processes import sktime
    y = _panel()
    seq_point, seq_int = _forecasts(_local(), y)
    point, interval = _forecasts(_local(n_jobs=2), y)
    pd.testing.assert_frame_equal(seq_point, point, check_exact=True)
    pd.testing.assert_frame_equal(seq_int, interval, check_exact=True)


def test_each_series_is_seeded_alike_whatever_the_order():
    # a RandomState instance is copied into every series' clone, never shared: a
    # series' model is the same fitted first, last, alone or on another thread
    def make():
        return _local(random_state=np.random.RandomState(7))

    y = _panel()
    point, interval = _forecasts(make(), y)
    rev_point, rev_interval = _forecasts(make(), _panel(keys=("c", "b", "a")))
    pd.testing.assert_frame_equal(point, rev_point.loc[point.index], check_exact=True)
    pd.testing.assert_frame_equal(interval, rev_interval.loc[interval.index],
                                  check_exact=True)
    with parallel_config(backend="threading", n_jobs=2):
        thr_point, _ = _forecasts(make(), y)
    pd.testing.assert_frame_equal(point, thr_point, check_exact=True)
    alone, _ = _forecasts(make(), _panel(keys=("b",)))
    pd.testing.assert_frame_equal(point.loc[["b"]], alone, check_exact=True)


def _transitions(dask_scheduler):
    return dask_scheduler.transition_counter


@pytest.mark.parametrize("processes", [
    False,  # two workers in this process: the scheduler and the pickling are real
    # two worker processes, one thread each (18-27 s here: each imports sktime)
    pytest.param(True, marks=pytest.mark.slow),
])
def test_local_forecaster_on_a_two_worker_dask_cluster_equals_sequential(processes):
    distributed = pytest.importorskip("dask.distributed")
    y = _panel()
    seq_point, seq_int = _forecasts(_local(), y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        before = client.run_on_scheduler(_transitions)
        with parallel_config(backend="dask"):
            par_point, par_int = _forecasts(_local(), y)
        assert client.run_on_scheduler(_transitions) > before
    pd.testing.assert_frame_equal(seq_point, par_point, check_exact=True)
    pd.testing.assert_frame_equal(seq_int, par_int, check_exact=True)
