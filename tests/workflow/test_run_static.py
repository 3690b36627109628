"""``features.static`` in an experiment: a series' constant columns or a one-hot of the
series reach the model as step features, through ``skrnn run``."""

import numpy as np
from click.testing import CliRunner

from skrnn._meta import fitted_recurrent_regressor
from skrnn.cli import main
from skrnn.datasets import make_count_panel
from skrnn.experiment import load_model

TOML = """
name = "static"
seed = 0
output = "{out}"
baselines = false

[data]
source = "csv"
path = "{csv}"
date = "date"
group = "district"
value = "crimes"

[split]
test_periods = 10

[features]
max_lags = 5
{features}

[[models]]
name = "gru"
kind = "gru"
params = {{ units = 3, max_iter = 1, batch_size = 32, dtype = "float32" }}

[tracking]
enabled = false
"""


def _run(tmp_path, features, name):
    frame = make_count_panel(n_groups=3, periods=60, start="2020-01-01", random_state=1)
    codes = frame["district"].astype("category").cat.codes.to_numpy()
    frame["area"] = np.array([12.5, 30.0, 7.25])[codes]  # one value per district
    frame["temp"] = np.linspace(0.0, 1.0, len(frame))  # varies within each district
    frame.to_csv(tmp_path / "panel.csv", index=False)
    out = tmp_path / name
    toml = tmp_path / f"{name}.toml"
    toml.write_text(TOML.format(out=out.as_posix(), csv=(tmp_path / "panel.csv").as_posix(),
                                features=features))
    result = CliRunner().invoke(main, ["run", str(toml), "--quiet"])
    return result, out


def test_static_columns_and_group_one_hot_reach_the_model(tmp_path):
    result, out = _run(tmp_path, 'static = ["area"]\nscaling = "global"', "cols")
    assert result.exit_code == 0, result.output
    reg = fitted_recurrent_regressor(load_model(out / "models" / "gru.skops"))
    assert reg.n_step_features == 2  # value, area
    # skrnn predict does not build static features yet: it says so, it does not guess
    predicted = CliRunner().invoke(main, ["predict", "--model", str(out / "models" / "gru.skops"),
                                          "--data", str(tmp_path / "panel.csv")])
    assert predicted.exit_code == 2
    assert "reads static covariates (features.static = ['area'])" in predicted.output
    result, out = _run(tmp_path, 'static = "group"\nscaling = "none"', "onehot")
    assert result.exit_code == 0, result.output
    reg = fitted_recurrent_regressor(load_model(out / "models" / "gru.skops"))
    assert reg.n_step_features == 1 + 3  # value, one column per district


def test_static_settings_are_checked(tmp_path):
    result, _ = _run(tmp_path, 'static = ["area"]', "per_series")
    assert result.exit_code == 2
    assert "features.static needs features.scaling" in result.output
    result, _ = _run(tmp_path, 'static = ["crimes_x"]\nscaling = "global"', "unknown")
    assert result.exit_code == 2 and "['crimes_x'] not in" in result.output
    result, _ = _run(tmp_path, 'static = ["temp"]\nscaling = "global"', "varying")
    assert result.exit_code == 2
    assert "features: static: column 'temp' is not constant within the series" in result.output
    result, _ = _run(tmp_path, 'static = "groups"', "typo")
    assert result.exit_code == 2 and "static" in result.output
