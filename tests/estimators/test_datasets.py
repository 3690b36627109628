"""Generators, offline loaders and the CSV reader."""

import numpy as np
import pandas as pd
import pytest

from skrnn import LagFeatures, LastValueRegressor, make_supervised
from skrnn.datasets import (
    load_airline,
    load_lynx,
    load_sales_panel,
    load_shampoo_sales,
    make_count_panel,
    make_sine_batch,
    read_series_csv,
)


def geron_generate_time_series(batch_size, n_steps, rng):
    """The teaching notebook's generator, written out independently."""
    freq1, freq2, offsets1, offsets2 = rng.rand(4, batch_size, 1)
    time = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((time - offsets1) * (freq1 * 10 + 10))
    series += 0.2 * np.sin((time - offsets2) * (freq2 * 20 + 20))
    series += 0.1 * (rng.rand(batch_size, n_steps) - 0.5)
    return series


def test_sine_batch_is_the_teaching_generator():
    X, y = make_sine_batch(7, n_steps=50, random_state=3)
    series = geron_generate_time_series(7, 51, np.random.RandomState(3))
    np.testing.assert_array_equal(X, series[:, :50])
    np.testing.assert_array_equal(y, series[:, 50])
    X10, y10 = make_sine_batch(7, n_steps=50, n_ahead=10, random_state=3)
    series = geron_generate_time_series(7, 60, np.random.RandomState(3))
    assert X10.shape == (7, 50) and y10.shape == (7, 10)
    np.testing.assert_array_equal(np.hstack([X10, y10]), series)


def test_sine_batch_last_value_mse_is_about_0_020():
    X, y = make_sine_batch(10_000, random_state=42)
    mse = np.mean((LastValueRegressor().fit(X, y).predict(X) - y) ** 2)
    assert 0.019 < mse < 0.022, mse
    X2, y2 = make_sine_batch(10_000, random_state=42)
    np.testing.assert_array_equal(X, X2)  # seeded


def test_sine_batch_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"n_ahead must be an int >= 1, got 0"):
        make_sine_batch(3, n_ahead=0)


def test_count_panel_layout_and_seasonality():
    df = make_count_panel(n_groups=3, start="2021-01-04", periods=364, zero_group=True,
                          random_state=0)
    assert list(df.columns) == ["date", "district", "crimes"]
    assert df.shape == (3 * 364, 3) and df["crimes"].dtype == np.int64
    assert sorted(df["district"].unique()) == ["D01", "D02", "D03"]
    per = df.pivot(index="date", columns="district", values="crimes")
    assert (per.index == pd.date_range("2021-01-04", periods=364, freq="D")).all()
    assert (per["D03"] == 0).all() and (per[["D01", "D02"]] > 0).mean().min() > 0.95
    # A weekly pattern: weekday means differ far beyond Poisson noise (52 weeks per day).
    by_day = per[["D01", "D02"]].groupby(per.index.dayofweek).mean()
    assert ((by_day.max() - by_day.min()) / np.sqrt(by_day.mean() / 52) > 8).all()
    same = make_count_panel(n_groups=3, start="2021-01-04", periods=364, zero_group=True,
                            random_state=0)
    pd.testing.assert_frame_equal(df, same)
    # Regular dates: the lag tools accept it without fill_gaps.
    X, y = make_supervised(df, "crimes", lags=7, group="district", date="date")
    assert len(X) == 3 * (364 - 7)


@pytest.mark.parametrize("loader, n, first", [
    (load_airline, 144, 112.0),
    (load_lynx, 114, 269.0),
    (load_shampoo_sales, 36, 266.0),
])
def test_sktime_loaders_give_the_lag_layout(loader, n, first):
    df = loader()
    assert list(df.columns) == ["date", "value"] and len(df) == n
    assert df["value"].iloc[0] == first
    assert df["date"].is_monotonic_increasing and df.attrs["description"]
    X, y = make_supervised(df, "value", lags=3, date="date")  # monthly/yearly step inferred
    assert len(X) == n - 3
    np.testing.assert_array_equal(X["value_lag1"].to_numpy(), df["value"].to_numpy()[2:-1])


def test_sales_panel_is_a_regular_panel():
    df = load_sales_panel()
    assert list(df.columns) == ["date", "series", "value"] and df.shape == (240, 3)
    assert df.groupby("series").size().tolist() == [60, 60, 60, 60]
    out = LagFeatures(lags=12, group="series", date="date").fit_transform(df)
    assert np.isnan(out).any(axis=1).sum() == 4 * 12


def test_read_series_csv(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text(
        "day,area,count,extra\n"
        "03/01/2024,b,4,x\n"
        "01/01/2024,a,1,x\n"
        "02/01/2024,a,,x\n"
        "01/01/2024,b,3,x\n"
    )
    df = read_series_csv(path, date="day", value="count", group="area", dayfirst=True)
    assert list(df.columns) == ["day", "area", "count"]
    assert df["day"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"]
    np.testing.assert_array_equal(df["count"].to_numpy(), [1.0, np.nan, 3.0, 4.0])
    # Series b misses 2 January: the lag tools refuse it until told how to fill.
    with pytest.raises(ValueError, match="fill_gaps"):
        make_supervised(df, "count", group="area", date="day")


def test_read_series_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        read_series_csv(tmp_path / "nope.csv", date="d", value="v")
    semi = tmp_path / "semi.csv"
    semi.write_text("d;v\n2024-01-01;1\n")
    with pytest.raises(ValueError, match=r"\['d', 'v'\] not in .*sep="):
        read_series_csv(semi, date="d", value="v")
    bad_date = tmp_path / "bad_date.csv"
    bad_date.write_text("d,v\n2024-01-01,1\n2024-01-02,2\nyesterday,3\n")
    with pytest.raises(ValueError,
                       match=r"1 value\(s\) of date='d' could not be parsed.*\(4, 'yesterday'\)"):
        read_series_csv(bad_date, date="d", value="v")
    bad_value = tmp_path / "bad_value.csv"
    bad_value.write_text("d,v\n2024-01-01,1\n2024-01-02,two\n")
    with pytest.raises(ValueError, match=r"column 'v' are not numbers.*\(3, 'two'\)"):
        read_series_csv(bad_value, date="d", value="v")


@pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning")
def test_read_series_csv_reads_a_column_of_numbers_as_date_text(tmp_path):
    # pandas would take integers for nanoseconds since 1970: 20240131 is read as the text
    # it is (a date), and 1, 2, 3 are refused rather than put on a 1 ns grid
    stamps = tmp_path / "stamps.csv"
    stamps.write_text("d,v\n20240131,1\n20240201,2\n")
    df = read_series_csv(stamps, date="d", value="v")
    assert df["d"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-31", "2024-02-01"]
    counts = tmp_path / "counts.csv"
    counts.write_text("d,v\n1,1\n2,2\n3,3\n")
    with pytest.raises(ValueError, match=r"3 value\(s\) of date='d' could not be parsed.*"
                                         r"\(2, '1'\)"):
        read_series_csv(counts, date="d", value="v")
