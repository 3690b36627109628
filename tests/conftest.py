import os

# scikit-learn's estimator checks include an array-API input check that is skipped
# unless SciPy's array API support is switched on; switch it on so the check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
