"""SIGKILL ``skrnn run`` at several points, including during its final writes.

Afterwards ``show`` and ``predict`` present either the previous run or the new one,
complete (every file as its manifest lists it), never a mix; and a rerun completes.
The kill points are hooks in the runner (``_SKRNN_KILL_AT``) that SIGKILL the process
itself, so each point is hit exactly, without timing races.
"""

import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from test_cli import FAST

from skrnn.cli import main
from skrnn.experiment import check_run


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An old run (20 test dates), the new run it should become (10), and a history."""
    base = tmp_path_factory.mktemp("kill")
    for name, periods in (("old", 20), ("new", 10)):
        path = base / f"{name}.toml"
        path.write_text(FAST.format(out=(base / name).as_posix()))
        invoke("run", path, "--quiet", "--test-periods", periods)
    from skrnn.datasets import make_count_panel

    make_count_panel(n_groups=2, periods=40, start="2021-01-01", random_state=3).to_csv(
        base / "history.csv", index=False)
    for name in ("old", "new"):
        invoke("predict", "--model", base / name / "models" / "ridge.skops", "--data",
               base / "history.csv", "--output", base / f"{name}_forecasts.csv")
    return base


# after the data, after tuning, during the final writes (results.csv written, the first
# model file written, the manifest written) and between the two renames
STAGES = [("data", "old"), ("tuned", "old"), ("results", "old"), ("model-saved", "old"),
          ("manifest", "old"), ("moved-aside", "new")]


@pytest.mark.parametrize("stage, expected", STAGES, ids=[s for s, _ in STAGES])
def test_a_killed_run_leaves_the_old_run_or_the_new_one(runs, tmp_path, stage, expected):
    out = tmp_path / "out"
    shutil.copytree(runs / "old", out)
    path = tmp_path / "fast.toml"
    path.write_text(FAST.format(out=out.as_posix()))
    proc = subprocess.run(
        [sys.executable, "-m", "skrnn", "run", str(path), "--quiet", "--test-periods", "10"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "_SKRNN_KILL_AT": stage})
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    shown = invoke("show", out)  # finishes an interrupted rename, if any
    check_run(out)  # every file is the one the manifest lists
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns="fit_s"),
                                  pd.read_csv(runs / expected / "results.csv").drop(
                                      columns="fit_s"))
    assert "ridge" in shown.stdout
    invoke("predict", "--model", out / "models" / "ridge.skops", "--data",
           runs / "history.csv", "--output", tmp_path / "f.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "f.csv"),
                                  pd.read_csv(runs / f"{expected}_forecasts.csv"))

    rerun = invoke("run", path, "--quiet", "--test-periods", "10")
    if stage in ("tuned", "results", "model-saved", "manifest"):
        # the killed run's finished trials were kept for the rerun
        assert "resumed: 2/2 trials done" in rerun.stdout
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns="fit_s"),
                                  pd.read_csv(runs / "new" / "results.csv").drop(
                                      columns="fit_s"))
    check_run(out)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert left == []
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.previous-")]
    assert aside and all((p / "manifest.json").exists() for p in aside)
