"""The benchmark scripts still run (tiny configurations; timings are not checked)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from skrnn.nn import _cells

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(*args):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=600, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _rows(out, first):
    return [line for line in out.splitlines() if line.startswith(f"| {first} |")]


def test_bench_training_prints_its_tables():
    out = _run(str(BENCH / "bench_training.py"), "--cell", "lstm", "gru", "rnn", "--T", "5",
               "--H", "8", "--B", "16", "--n-samples", "64", "--repeats", "1",
               "--small-B", "2", "--small-H", "8", "--small-n", "8", "--memory", "5,8,16",
               "--no-torch", "--peak-size", "128")
    rows = _rows(out, 5)  # fit rows and memory rows start with T = 5
    assert len(rows) == 6, out
    for row in rows:
        cols = [c.strip() for c in row.strip("|").split("|")]
        assert float(cols[3]) > 0  # skrnn's time (fit) or resident set (memory)
    assert len(_rows(out, 8)) == 3  # small batches: one row per cell


@pytest.mark.skipif(not _cells.compiled_available(), reason="compiled engine not built")
def test_ab_builds_times_one_build_against_itself():
    from skrnn.nn import _fastrnn

    so = _fastrnn.__file__
    out = _run(str(BENCH / "ab_builds.py"), so, so, "--cell", "lstm", "gru", "rnn",
               "--configs", "3,20,8", "--rounds", "1")
    rows = [r for r in out.splitlines() if re.match(r"\| (lstm|gru|rnn) \| 3 \|", r)]
    assert len(rows) == 3, out
    for row in rows:
        cols = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(v) > 0 for v in cols[4:])


def test_scale_runner_reports_a_run_and_refuses_a_dense_one_too_large():
    out = _run(str(BENCH / "scale_runner.py"), "--series", "2", "--days", "120",
               "--before", str(BENCH.parent), "--max-dense-gb", "0")
    windows, = _rows(out, "windows")[-1:]
    cols = [c.strip() for c in windows.strip("|").split("|")]
    assert cols[1] == "2" and float(cols[3].replace(",", "")) > 0  # peak RSS
    assert int(cols[8]) == 1 and float(cols[9]) >= 0  # one epoch, its time
    assert "not run: the window DataFrame alone is" in _rows(out, "dense")[-1]
