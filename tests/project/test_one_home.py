"""Ideas written once: frequency inference (skrnn._panel) and lag names (skrnn.lags)."""

import re
from pathlib import Path

import pandas as pd
import pytest

from skrnn._panel import infer_frequency
from skrnn.lags import lag_names

SKRNN = Path(__file__).resolve().parents[2] / "skrnn"


@pytest.mark.parametrize("times, expected", [
    (pd.date_range("2020-01-01", periods=5, freq="D"), pd.offsets.Day(1)),
    (pd.DatetimeIndex(["2020-01-05", "2020-01-12", "2020-01-19"]), pd.offsets.Week(weekday=6)),
    (pd.DatetimeIndex(["2020-01-31", "2020-02-29", "2020-03-31"]), pd.offsets.MonthEnd()),
    (pd.DatetimeIndex(["2020-01-01", "2020-01-02"]), None),  # too few to infer
    (pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-04"]), None),  # irregular
    (pd.date_range("2020-01-01", periods=2, freq="h"), pd.offsets.Hour(1)),  # own freq
])
def test_infer_frequency(times, expected):
    assert infer_frequency(times) == expected


def test_lag_names_are_step_major_in_the_order_given():
    assert lag_names(["a", "b"], [2, 1]) == ["a_lag2", "b_lag2", "a_lag1", "b_lag1"]


def _sources():
    return {p.name: p.read_text() for p in SKRNN.glob("*.py")}


def test_frequency_is_inferred_in_one_place():
    users = sorted(name for name, text in _sources().items() if "infer_freq(" in text)
    assert users == ["_panel.py"]


def test_lag_columns_are_named_in_one_place():
    pattern = re.compile(r"_lag\{")
    users = {name: len(pattern.findall(text)) for name, text in _sources().items()
             if pattern.search(text)}
    assert users == {"lags.py": 1}
