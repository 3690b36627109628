"""benchmarks/accuracy.py on synthetic data: its scaling inverts exactly, its rows all run."""

import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
accuracy = pytest.importorskip("accuracy")


def _spec(target):
    rng = np.random.default_rng(0)
    dates = pd.date_range("2021-01-01", periods=120, freq="D")
    frames = [pd.DataFrame({"series": g, "date": dates,
                            "y": level + np.cumsum(rng.normal(size=120)),
                            "temp": rng.normal(size=120)})
              for g, level in (("a", 10.0), ("b", 1000.0))]
    return accuracy.Spec("synthetic", pd.concat(frames, ignore_index=True), "D",
                         pd.Timestamp("2021-04-01"), 14, 7, ["dayofweek"], future=["temp"],
                         scale_future=["temp"], target=target)


@pytest.mark.parametrize("target", ["level", "delta"])
def test_scaling_inverts_exactly_and_uses_training_dates_only(target):
    spec = _spec(target)
    d = accuracy.build(spec)
    test = ~d["train"]
    np.testing.assert_allclose(d["invert"](d["ys"][test]), d["y"][test], rtol=1e-13)
    # the holdout's values do not move the training rows' scaling
    spec.frame.loc[spec.frame["date"] >= spec.holdout_start, ["y", "temp"]] *= 3.0
    d2 = accuracy.build(spec)
    np.testing.assert_allclose(d2["Xs"][d2["train"]], d["Xs"][d["train"]], rtol=1e-13)
    np.testing.assert_allclose(d2["ys"][d2["train"]], d["ys"][d["train"]], rtol=1e-13)
    assert d["F"] == 1 + 1 + 7


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")  # tiny training split
@pytest.mark.parametrize("target", ["auto", "delta"])
def test_every_row_runs(target):
    args = Namespace(trials=2, max_iter=2, ensemble=2, tune_timeout=None, nf_python=None,
                     target=target)
    info, results = accuracy.run_dataset(_spec("level"), args, lambda msg: None)
    names = [r["model"] for r in results]
    assert names[:2] == ["last value", "seasonal naive (lag 7)"]
    assert "skrnn GRU, tuned" in names and "skrnn GRU, ensemble of 2" in names
    assert all(np.isfinite(r["mae"]) for r in results)
    assert info["n_test"] == 2 * 30
    if target != "auto":
        assert info["target"] == target
    assert "| model | MAE |" in accuracy.table(info, results)


@pytest.mark.parametrize("target", ["level", "delta"])
def test_invert_any_rows_and_target_override(target):
    spec = _spec("level")
    d = accuracy.build(spec, target=target)
    assert d["target"] == target
    np.testing.assert_allclose(d["invert"](d["ys"][d["train"]], d["train"]),
                               d["y"][d["train"]], rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
def test_target_is_chosen_on_training_dates_only():
    from sklearn.linear_model import Ridge

    spec = _spec("level")
    d = accuracy.build(spec)
    chosen, val = accuracy._choose_target(spec, d, Ridge())
    assert set(val) == {"level", "delta"}
    assert chosen["target"] == min(val, key=val.get)
    # the holdout's values do not move the choice or its validation scores
    spec.frame.loc[spec.frame["date"] >= spec.holdout_start, "y"] *= 3.0
    _, val2 = accuracy._choose_target(spec, accuracy.build(spec), Ridge())
    assert val2 == pytest.approx(val, rel=1e-12)
