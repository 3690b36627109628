"""The shared input layout (skrnn/_layout.py, contract 1 of docs/architecture.md)."""

import numpy as np
import pytest

from skrnn import LastSteps, LastValueRegressor, LSTMRegressor
from skrnn._layout import flatten_sequences, n_steps, to_sequences


def test_sequences_round_trip_step_major_oldest_first():
    X3 = np.arange(2 * 3 * 2).reshape(2, 3, 2)  # 2 samples, 3 steps, 2 features
    X2 = flatten_sequences(X3)
    # columns: step 0 features, step 1 features, step 2 features
    np.testing.assert_array_equal(X2[0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(to_sequences(X2, 2), X3)
    assert n_steps(6, 2) == 3 and n_steps(6, 1) == 6


def test_columns_that_do_not_divide_are_refused_with_the_callers_message():
    with pytest.raises(ValueError, match=r"7 columns, which do not divide into time steps "
                                         r"of 2 features \(n_step_features=2\)"):
        to_sequences(np.zeros((3, 7)), 2)
    with pytest.raises(ValueError, match=r"^got 7 over 3$"):
        n_steps(7, 3, "got {n_columns} over {n_step_features}")


@pytest.mark.parametrize("est, match", [
    (LSTMRegressor(n_step_features=2, max_iter=1),
     "X has 5 columns, which do not divide into time steps of 2 features"),
    (LastSteps(n_step_features=2), "X has 5 columns, which do not divide into steps of "
                                   "n_step_features=2."),
    (LastValueRegressor(n_step_features=2), "X has n_features=5 columns, which is not a "
                                            "multiple of n_step_features=2."),
])
def test_every_reader_of_windows_checks_them_through_the_layout(est, match):
    X, y = np.zeros((6, 5)), np.zeros(6)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
