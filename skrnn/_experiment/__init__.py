"""The parts of the experiment runner, one job per module; :mod:`skrnn.experiment` is
their public face and holds the runner itself.

- ``config``: the TOML keys as pydantic models; load, parse, override.
- ``data``: reading and checking the data, its digest, windows, the split by date.
- ``models``: each model's estimator, search space and checks; ensembles.
- ``studies``: the Optuna studies' identity, resuming, plots.
- ``run_folder``: staging, publishing, recovering and checking a run folder.
- ``outputs``: the results table, timings, plots, saved models, MLflow runs.
- ``predict``: forecasts from a saved run (``skrnn predict``).
"""

from skrnn._optional import require

require("pydantic", "optuna", "matplotlib", by="skrnn.experiment", extra="cli")
