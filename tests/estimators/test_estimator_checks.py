"""scikit-learn's estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import GRURegressor, LSTMRegressor, SimpleRNNRegressor


@parametrize_with_checks(
    [SimpleRNNRegressor(), LSTMRegressor(), GRURegressor()]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
