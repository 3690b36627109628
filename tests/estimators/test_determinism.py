"""Same data + random_state: bit-identical weights and predictions, everywhere."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit

from skrnn import LSTMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SCRIPT = """
import hashlib, warnings
import numpy as np
from skrnn import {cls}
warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X = rng.normal(size=(80, 6)); y = X[:, -1] + 0.1 * rng.normal(size=80)
m = {cls}(units=5, max_iter=5, batch_size=16, dropout=0.1, recurrent_dropout=0.1,
          random_state=3).fit(X, y)
print(hashlib.sha256(m._net.theta.tobytes() + m.predict(X).tobytes()).hexdigest())
"""


@pytest.mark.parametrize("cls", ["LSTMRegressor", "GRURegressor"])
def test_fits_in_separate_processes_are_bit_identical(cls):
    digests = {
        subprocess.run([sys.executable, "-c", SCRIPT.format(cls=cls)], capture_output=True,
                       text=True, check=True).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1
    # and the same in this process
    namespace = {}
    exec(SCRIPT.format(cls=cls).replace("print(", "digest = ("), namespace)
    assert namespace["digest"] in digests


def test_grid_search_with_two_jobs_matches_one_job():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(90, 5))
    y = X[:, -1] - X[:, 0]
    grids = [
        GridSearchCV(LSTMRegressor(max_iter=4, random_state=0), {"units": [3, 6]},
                     cv=TimeSeriesSplit(3), n_jobs=n_jobs).fit(X, y)
        for n_jobs in (1, 2)
    ]
    np.testing.assert_array_equal(grids[0].cv_results_["mean_test_score"],
                                  grids[1].cv_results_["mean_test_score"])
    np.testing.assert_array_equal(grids[0].predict(X), grids[1].predict(X))
