"""The small experiments the command-line tests run.

:func:`experiment` writes one TOML template (``{out}`` is filled in by the test, so
literal braces are doubled): two generated districts, a split, lag windows, the
models given and tracking on or off. :func:`csv_experiment` writes the same shape of
template on a CSV panel the test wrote (``date``, ``district``, ``crimes`` columns and
any covariates), with free ``[features]`` keys.
"""

LAST_VALUE = """[[models]]
name = "last_value"
kind = "last_value"
"""


def experiment(name, models, *, periods, test_periods, lags, max_lags=7, tracking=False,
               extra=""):
    """A TOML template of an experiment on a generated panel of 2 series.

    ``models`` are the ``[[models]]`` tables, ``extra`` tables placed before
    ``[tracking]`` (e.g. ``[tuning]``).
    """
    data = f"""source = "generated"
params = {{{{ n_groups = 2, periods = {periods}, start = "2020-01-01" }}}}"""
    return _template(name, data, test_periods, f"max_lags = {max_lags}\nlags = {lags}",
                     models, extra, tracking)


def csv_experiment(name, models, *, path, test_periods, max_lags, features="",
                   baselines=False, tracking=False, extra=""):
    """A TOML template of an experiment on the CSV panel at ``path``.

    ``features`` are extra ``[features]`` keys (lines of TOML) after ``max_lags``;
    ``baselines`` adds the default baselines; ``models`` and ``extra`` as in
    :func:`experiment`.
    """
    data = f'source = "csv"\npath = "{path}"'
    return _template(name, data, test_periods, f"max_lags = {max_lags}\n{features}", models,
                     extra, tracking, baselines)


def _template(name, data, test_periods, features, models, extra, tracking, baselines=False):
    return f"""
name = "{name}"
seed = 0
baselines = {"true" if baselines else "false"}
output = "{{out}}"

[data]
{data}
date = "date"
group = "district"
value = "crimes"

[split]
test_periods = {test_periods}

[features]
{features}

{models}
{extra}[tracking]
enabled = {"true" if tracking else "false"}
"""
