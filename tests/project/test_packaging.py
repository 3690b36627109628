"""Packaging: core dependencies, extras, clear errors for a missing extra, shipped experiments."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from skrnn._optional import EXTRA

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = {"numpy", "scipy", "pandas", "scikit-learn", "skops", "threadpoolctl"}
# the distribution that installs each optional module
DIST = {"optuna": "optuna", "optuna_integration": "optuna-integration", "mlflow": "mlflow",
        "sktime": "sktime", "matplotlib": "matplotlib", "click": "click", "rich": "rich",
        "pydantic": "pydantic", "pyarrow": "pyarrow"}


def _name(requirement):
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def _expand(extra):
    """The distributions an extra installs, following ``skrnn[...]`` references."""
    names = set()
    for req in PROJECT["optional-dependencies"][extra]:
        if _name(req) == "skrnn":
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):
                names |= _expand(inner.strip())
        else:
            names.add(_name(req))
    return names


def test_core_dependencies_are_the_estimators_needs_only():
    assert {_name(r) for r in PROJECT["dependencies"]} == CORE


def test_each_optional_module_comes_with_the_extra_its_error_names():
    extras = PROJECT["optional-dependencies"]
    assert {"tuning", "tracking", "sktime", "cli", "all", "test", "torch"} <= set(extras)
    for module, extra in EXTRA.items():
        assert DIST[module] in _expand(extra), (module, extra)
    everything = {DIST[m] for m in EXTRA}
    assert everything <= _expand("all")
    assert everything <= _expand("test")  # the README's test command installs them all
    assert {"optuna", "mlflow", "matplotlib", "click", "rich", "pydantic"} <= _expand("cli")


# hides the optional packages from the import system, as in a plain `pip install skrnn`;
# not pyarrow: hidden as None in sys.modules, scikit-learn and pandas take it for imported
# (they test `"pyarrow" in sys.modules`), so test_parquet_names_its_extra hides it alone
BLOCK = (f"import sys\nfor _m in {sorted(set(EXTRA) - {'pyarrow'})!r}:\n"
         "    sys.modules[_m] = None\n")


def _without_extras(code, cwd=None):
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


@pytest.mark.parametrize("module, message", [
    ("skrnn.tuning", "skrnn.tuning needs optuna: pip install 'skrnn[tuning]'"),
    ("skrnn.tracking", "skrnn.tracking needs mlflow: pip install 'skrnn[tracking]'"),
    ("skrnn.forecasting", "skrnn.forecasting needs sktime: pip install 'skrnn[sktime]'"),
    ("skrnn.experiment",
     "skrnn.experiment needs pydantic, optuna, matplotlib: pip install 'skrnn[cli]'"),
    ("skrnn.cli", "the skrnn command needs click, rich, pydantic"),
])
def test_a_missing_extra_is_named(module, message):
    proc = _without_extras(f"import {module}")
    assert proc.returncode != 0
    assert f"ImportError: {message}" in proc.stderr, proc.stderr


def test_parquet_names_its_extra(tmp_path, monkeypatch):
    # in-process: hidden as None in sys.modules, pyarrow breaks scikit-learn itself
    import importlib.util

    import numpy as np
    from sklearn.linear_model import Ridge

    from skrnn._experiment.config import DataConfig
    from skrnn._experiment.data import read_table
    from skrnn.windows import predict_to_file

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else find_spec(name, *a))
    model = Ridge().fit(np.eye(3), np.arange(3.0))
    with pytest.raises(ImportError, match=re.escape(
            "Parquet output needs pyarrow: pip install 'skrnn[parquet]'")):
        predict_to_file(model, np.arange(6.0), [3, 3], tmp_path / "f.parquet", window=3)
    assert not (tmp_path / "f.parquet").exists()
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match="needs pyarrow: pip install 'skrnn\\[parquet\\]'"):
        read_table(tmp_path / "d.parquet", DataConfig(source="csv", path="d.parquet",
                                                      date="date", value="y"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_plots_name_their_extra():
    proc = _without_extras("""
        from sklearn.neural_network import MLPRegressor
        from skrnn.plotting import plot_loss_curves
        plot_loss_curves(MLPRegressor(max_iter=2).fit([[0.0], [1.0]], [0.0, 1.0]))
    """)
    assert "ImportError: skrnn.plotting needs matplotlib: pip install 'skrnn[plotting]'" \
        in proc.stderr, proc.stderr


def test_the_estimators_work_without_any_extra(tmp_path):
    proc = _without_extras("""
        import warnings
        import numpy as np
        import skrnn
        from skrnn import (GRURegressor, LagFeatures, LSTMRegressor, LastValueRegressor,
                           make_supervised, skill_score)
        from skrnn import persistence
        from skrnn.datasets import make_count_panel

        warnings.simplefilter("ignore")
        X = np.sin(np.arange(600) / 5).reshape(100, 6)
        y = X[:, -1]
        model = LSTMRegressor(units=4, max_iter=5, random_state=0).fit(X, y)
        persistence.save(model, "m.skops")
        assert np.array_equal(persistence.load("m.skops").predict(X), model.predict(X))
        panel = make_count_panel(n_groups=2, periods=60, random_state=0)
        Xw, yw = make_supervised(panel, "crimes", lags=7, group="district", date="date")
        pred = GRURegressor(units=3, max_iter=2, random_state=0).fit(Xw, yw).predict(Xw)
        print("ok", skill_score(yw, pred, LastValueRegressor().fit(Xw, yw).predict(Xw)) < 1)
    """, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok True"


def _skrnn(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "skrnn", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600, check=False)


def test_builtin_experiments_are_found_from_any_directory(tmp_path, monkeypatch):
    proc = _skrnn("list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"looked up in: {tmp_path / 'pipelines'}, {ROOT / 'pipelines'}\n" in proc.stdout
    assert re.search(r"^default\s+Generated", proc.stdout, re.MULTILINE)

    from skrnn.experiment import ExperimentError, load_experiment

    monkeypatch.chdir(tmp_path)
    assert load_experiment("default").name == "default"
    # a user's ./pipelines comes first
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "default.toml").write_text(
        (ROOT / "pipelines" / "default.toml").read_text().replace(
            'name = "default"', 'name = "mine"'))
    assert load_experiment("default").name == "mine"
    with pytest.raises(ExperimentError, match="looked for nosuch.toml in pipelines, "):
        load_experiment("nosuch")


@pytest.mark.slow
def test_a_wheel_ships_the_experiments_and_runs_default_from_an_empty_directory(tmp_path):
    # build from a copy, so that setuptools' build/ folder stays out of the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("skrnn", "pipelines"):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    wheels, target, empty = tmp_path / "wheels", tmp_path / "site", tmp_path / "empty"
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-w", str(wheels)], check=True, timeout=900)
    wheel = next(wheels.glob("skrnn-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    assert sorted(p.name for p in (target / "skrnn" / "pipelines").glob("*.toml")) == \
        sorted(p.name for p in (ROOT / "pipelines").glob("*.toml"))
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import skrnn; print(skrnn.__file__)"],
                           capture_output=True, text=True, cwd=empty, env=env, check=True)
    assert where.stdout.startswith(str(target))
    proc = _skrnn("run", "default", "--trials", "1", "--no-tracking", "--quiet", cwd=empty,
                  env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (empty / "results" / "default" / "results.csv").exists()
    assert "looked up in:" in _skrnn("list", cwd=empty, env=env).stdout


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Tests \(exactly what `\.ci/run` runs\):\s*```bash\n(.*?)\n```", readme,
                      re.DOTALL)
    command = block.group(1).strip()
    assert "'.[test,torch]'" in command  # the test extra brings every other extra
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == command
