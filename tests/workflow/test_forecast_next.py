"""``forecast_next`` in process: the forecast is the model's prediction on each series'
latest window, computed here independently of the function.

(The ``skrnn predict`` command around it is tested end to end in ``tests/workflow/test_cli.py``.)
"""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from skrnn import persistence
from skrnn.experiment import MANIFEST, forecast_next


def _finish(run_dir):
    """The manifest a finished run ends with (forecast_next refuses a run without one)."""
    files = {p.relative_to(run_dir).as_posix(): p.stat().st_size
             for p in sorted(run_dir.rglob("*")) if p.is_file()}
    (run_dir / MANIFEST).write_text(json.dumps({"format": 1, "files": files}))


def test_forecast_uses_each_series_latest_window(tmp_path):
    L = 3
    rng = np.random.RandomState(0)
    names = [f"crimes_lag{k}" for k in range(L, 0, -1)]
    model = Ridge().fit(pd.DataFrame(rng.normal(size=(40, L)), columns=names),
                        rng.normal(size=40))
    models = tmp_path / "models"
    models.mkdir()
    persistence.save(model, models / "ridge.skops")
    (models / "windows.json").write_text(json.dumps(
        {"max_lags": L, "date": "date", "group": "district", "value": "crimes"}))
    series = {"b": rng.normal(size=9), "a": rng.normal(size=6)}
    rows = [{"date": d, "district": g, "crimes": v}
            for g, values in series.items()
            for d, v in zip(pd.date_range("2021-03-01", periods=len(values)), values)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # rows out of order
    frame.to_csv(tmp_path / "data.csv", index=False)
    _finish(tmp_path)

    out = forecast_next(models / "ridge.skops", tmp_path / "data.csv")

    assert list(out["district"]) == ["a", "b"]
    for _, row in out.iterrows():
        values = series[row["district"]]
        window = pd.DataFrame([values[-L:]], columns=names)  # oldest lag first
        assert row["forecast"] == pytest.approx(model.predict(window)[0], rel=1e-12)
        last = pd.Timestamp("2021-03-01") + pd.Timedelta(days=len(values) - 1)
        assert row["date"] == last + pd.Timedelta(days=1)
    assert out["forecast"].nunique() == 2


# forecast_next names the window's columns even for a model fitted without names
@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")
def test_weekly_series_unnamed_features_and_a_too_short_series(tmp_path):
    L = 2
    rng = np.random.RandomState(1)
    model = Ridge().fit(rng.normal(size=(20, L)), rng.normal(size=20))  # no feature names
    models = tmp_path / "models"
    models.mkdir()
    persistence.save(model, models / "m.skops")
    (models / "windows.json").write_text(json.dumps(
        {"max_lags": L, "date": "week", "group": None, "value": "sales"}))
    values = rng.normal(size=5)
    weeks = pd.date_range("2021-01-03", periods=5, freq="W-SUN")
    pd.DataFrame({"week": weeks, "sales": values}).to_csv(tmp_path / "d.csv", index=False)
    _finish(tmp_path)
    out = forecast_next(models / "m.skops", tmp_path / "d.csv")
    assert out["week"].tolist() == [weeks[-1] + pd.Timedelta(days=7)]
    assert out["forecast"].iloc[0] == pytest.approx(model.predict(values[None, -L:])[0],
                                                    rel=1e-12)
    pd.DataFrame({"week": weeks[:1], "sales": values[:1]}).to_csv(tmp_path / "s.csv",
                                                                  index=False)
    with pytest.raises(ValueError, match=r"^the series has 1 dates; the model needs "
                                         r"the last 2$"):
        forecast_next(models / "m.skops", tmp_path / "s.csv")


@pytest.mark.parametrize("fill", ["interpolate", "ffill", 0.0])
def test_filled_gaps_near_the_latest_window_come_out_as_in_the_run(tmp_path, fill):
    """Gaps inside, at the start of and just before the latest window are filled as the
    run fills them: the forecast equals the model on make_supervised's last window of
    the whole history (the run's windows), here with a future-known covariate too."""
    from skrnn.lags import make_supervised

    L = 4
    rng = np.random.RandomState(2)
    dates = pd.date_range("2022-01-01", periods=30)
    frame = pd.DataFrame({"date": dates, "y": rng.normal(size=30).round(3),
                          "temp": rng.normal(size=30).round(3)})
    history = frame.drop(index=[22, 25, 26]).reset_index(drop=True)  # 30 is forecast
    X, _ = make_supervised(history.set_index("date"), "y", lags=L, date="date",
                           fill_gaps=fill, future_covariates=["temp"])
    model = Ridge().fit(X.to_numpy(), rng.normal(size=len(X)))  # no feature names
    models = tmp_path / "models"
    models.mkdir()
    persistence.save(model, models / "m.skops")
    (models / "windows.json").write_text(json.dumps(
        {"max_lags": L, "n_step_features": 2, "date": "date", "group": None, "value": "y",
         "freq": "D", "fill_gaps": fill, "known_future": ["temp"]}))
    target = pd.DataFrame({"date": [dates[-1] + pd.Timedelta(days=1)], "temp": [0.5]})
    pd.concat([history, target]).to_csv(tmp_path / "d.csv", index=False)
    _finish(tmp_path)
    with pytest.warns(UserWarning, match="feature names"):
        out = forecast_next(models / "m.skops", tmp_path / "d.csv")
    full = pd.concat([history, target.assign(y=np.nan)], ignore_index=True)
    Xall, _ = make_supervised(full.set_index("date"), "y", lags=L, date="date",
                              fill_gaps=fill, future_covariates=["temp"], dropna=False)
    window = Xall.to_numpy()[-1:]
    assert window[0, -1] == 0.5 and not np.isnan(window).any()
    assert out["forecast"].iloc[0] == pytest.approx(model.predict(window)[0], rel=1e-12)


def test_a_run_that_did_not_record_its_step_features_is_refused(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    persistence.save(Ridge().fit(np.eye(6), np.arange(6.0)), models / "m.skops")
    (models / "windows.json").write_text(json.dumps(  # as written before the features were
        {"max_lags": 2, "n_step_features": 3, "date": "date", "group": None, "value": "y"}))
    pd.DataFrame({"date": pd.date_range("2022-01-01", periods=5),
                  "y": np.arange(5.0)}).to_csv(tmp_path / "d.csv", index=False)
    _finish(tmp_path)
    with pytest.raises(ValueError, match=r"m.skops reads windows with 3 features per step, "
                                         r"and its run did not record which"):
        forecast_next(models / "m.skops", tmp_path / "d.csv")
