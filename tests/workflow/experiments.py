"""The small generated-panel experiments the command-line tests run.

:func:`experiment` writes one TOML template (``{out}`` is filled in by the test, so
literal braces are doubled): two generated districts, a split, lag windows, the
models given and tracking on or off.
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
    return f"""
name = "{name}"
seed = 0
baselines = false
output = "{{out}}"

[data]
source = "generated"
params = {{{{ n_groups = 2, periods = {periods}, start = "2020-01-01" }}}}
date = "date"
group = "district"
value = "crimes"

[split]
test_periods = {test_periods}

[features]
max_lags = {max_lags}
lags = {lags}

{models}
{extra}[tracking]
enabled = {"true" if tracking else "false"}
"""
