"""The experiment runner's step features, per-series scaling, ensembles and default
baselines, through ``skrnn run`` on tiny experiments."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from experiments import csv_experiment

from skrnn.cli import main
from skrnn.datasets import make_count_panel
from skrnn.experiment import load_model, parse_experiment, study_fingerprint


def panel(path):
    frame = make_count_panel(n_groups=2, periods=120, start="2020-01-01", random_state=3)
    rng = np.random.default_rng(0)
    frame["temp"] = rng.normal(size=len(frame)).round(3)  # a known-future covariate
    frame["calls"] = rng.poisson(5, size=len(frame)).astype(float)  # a past covariate
    frame.to_csv(path, index=False)
    return frame


def run(tmp_path, models, features="", baselines=False, extra=()):
    csv = tmp_path / "panel.csv"
    if not csv.exists():
        panel(csv)
    out = tmp_path / "run"
    text = csv_experiment("feat", models, path=csv.as_posix(), test_periods=15, max_lags=7,
                          features=features, baselines=baselines).format(out=out.as_posix())
    (tmp_path / "feat.toml").write_text(text)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "feat.toml"), "--quiet",
                                       *extra], catch_exceptions=False)
    return result, out


GRU = """
[[models]]
name = "gru"
kind = "gru"
params = {{ units = 4, max_iter = 2, batch_size = 32, dtype = "float32" }}
"""


def test_step_features_reach_the_model(tmp_path):
    from skrnn._meta import fitted_recurrent_regressor

    features = ('calendar = ["dayofweek"]\nknown_future = ["temp"]\n'
                'past_covariates = ["calls"]\nlags = 5')
    result, out = run(tmp_path, GRU, features)
    assert result.exit_code == 0, result.output
    model = load_model(out / "models" / "gru.skops")
    reg = fitted_recurrent_regressor(model)
    F = 1 + 1 + 1 + 7  # value, calls, temp, 7 day-of-week columns
    assert reg.n_step_features == F
    window = model.regressor_.named_steps["window"]
    assert window.n_step_features == F and window.n_features_in_ == 7 * F
    assert reg.n_features_in_ == 5 * F  # LastSteps cut 5 whole steps
    _predict_with_step_features(tmp_path, out, model)


def _predict_with_step_features(tmp_path, out, model):
    """skrnn predict's forecast equals the model on each series' latest window, built here
    by hand: per step k = 7..1, the value and calls of t-k, temp and the day of week of
    t-k+1 (so the last step holds temp of the forecast date t itself)."""
    frame = pd.read_csv(tmp_path / "panel.csv", dtype={"district": str}, parse_dates=["date"])
    gru = out / "models" / "gru.skops"
    # temp of the forecast date is known in advance: without its row, a clear refusal
    refused = CliRunner().invoke(main, ["predict", "--model", str(gru),
                                        "--data", str(tmp_path / "panel.csv")])
    assert refused.exit_code == 2
    nxt = frame["date"].max() + pd.Timedelta(days=1)
    assert f"known-future column 'temp' has no value for the forecast date {nxt.date()}" \
        in " ".join(refused.output.split())
    future = pd.DataFrame({"date": [nxt, nxt], "district": sorted(frame["district"].unique()),
                           "temp": [0.25, -1.5]})  # crimes and calls left empty
    data = pd.concat([frame, future], ignore_index=True)
    data.to_csv(tmp_path / "with_future.csv", index=False)
    forecasts = tmp_path / "forecasts.csv"
    done = CliRunner().invoke(main, ["predict", "--model", str(gru), "--data",
                                     str(tmp_path / "with_future.csv"), "--output",
                                     str(forecasts)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    got = pd.read_csv(forecasts, dtype={"district": str}, parse_dates=["date"])
    assert list(got["district"]) == ["D01", "D02"] and (got["date"] == nxt).all()
    look = data.set_index(["district", "date"])
    for _, row in got.iterrows():
        window, names = [], []
        for k in range(7, 0, -1):
            past, known = nxt - pd.Timedelta(days=k), nxt - pd.Timedelta(days=k - 1)
            day = np.eye(7)[known.dayofweek]
            window += [look.loc[(row["district"], past), "crimes"],
                       look.loc[(row["district"], past), "calls"],
                       look.loc[(row["district"], known), "temp"], *day]
            names += [f"crimes_lag{k}", f"calls_lag{k}", f"temp_lag{k - 1}",
                      *[f"dayofweek_{d}_lag{k - 1}" for d in range(7)]]
        assert names == list(model.regressor_.feature_names_in_)
        X = pd.DataFrame([window], columns=names, index=pd.MultiIndex.from_tuples(
            [(nxt, row["district"])], names=["date", "district"]))
        assert X.iloc[0, -8] == future.set_index("district").loc[row["district"], "temp"]
        # float32 network: one window alone vs a batch of two agree to float32 precision
        assert row["forecast"] == pytest.approx(model.predict(X)[0], rel=1e-6)
        shifted = X.copy()
        shifted.iloc[0, -8] += 1.0  # the forecast date's temp matters far beyond that
        assert abs(model.predict(shifted)[0] - row["forecast"]) > 1e-4
    assert got["forecast"].nunique() == 2
    # a forecast from the history before a test date is the run's own prediction of it
    saved = pd.read_csv(out / "predictions.csv", dtype={"district": str},
                        parse_dates=["date"]).set_index(["date", "district"])
    day = saved.index.get_level_values("date").unique().sort_values()[-5]
    cut = frame[frame["date"] <= day].copy()
    cut.loc[cut["date"] == day, ["crimes", "calls"]] = np.nan
    cut.to_csv(tmp_path / "cut.csv", index=False)
    again = CliRunner().invoke(main, ["predict", "--model", str(gru), "--data",
                                      str(tmp_path / "cut.csv"), "--output", str(forecasts)],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    got = pd.read_csv(forecasts, dtype={"district": str}, parse_dates=["date"])
    assert (got["date"] == day).all()
    np.testing.assert_allclose(got["forecast"], saved.loc[day].loc[got["district"], "gru"],
                               rtol=1e-6)


def test_per_series_scaling_inverts_exactly(tmp_path):
    from sklearn.linear_model import Ridge

    from skrnn.lags import make_supervised

    models = '[[models]]\nname = "ridge"\nkind = "ridge"\nparams = {{ alpha = 0.5 }}\n'
    result, out = run(tmp_path, models, 'scaling = "per_series"')
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "panel.csv", dtype={"district": str},
                        parse_dates=["date"])[["date", "district", "crimes"]]
    X, y = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=7,
                           date="date", group="district")
    dates = X.index.get_level_values("date")
    start = np.sort(dates.unique())[-15]
    test = dates >= start
    groups = X.index.get_level_values("district")
    Xs, ys, mu, sd = X.to_numpy().copy(), y.to_numpy().copy(), {}, {}
    for g in groups.unique():
        tr, rows = (groups == g) & ~test, groups == g
        xm, xs = X.to_numpy()[tr].mean(), X.to_numpy()[tr].std()  # one statistic per window
        mu[g], sd[g] = y.to_numpy()[tr].mean(), y.to_numpy()[tr].std()
        Xs[rows] = (X.to_numpy()[rows] - xm) / xs
        ys[rows] = (y.to_numpy()[rows] - mu[g]) / sd[g]
    ridge = Ridge(alpha=0.5).fit(Xs[~test], ys[~test])
    by_hand = ridge.predict(Xs[test]) * np.array([sd[g] for g in groups[test]]) + np.array(
        [mu[g] for g in groups[test]])
    by_hand = pd.Series(by_hand, index=X.index[test])
    saved = pd.read_csv(out / "predictions.csv", dtype={"district": str},
                        parse_dates=["date"]).set_index(["date", "district"])
    assert len(saved) == len(by_hand) == 30
    np.testing.assert_allclose(saved["ridge"].to_numpy(), by_hand[saved.index].to_numpy(),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(saved["y"].to_numpy(), y[saved.index].to_numpy())


def test_ensemble_row_is_the_mean_of_its_members(tmp_path):
    from skrnn.lags import make_supervised

    models = GRU.replace('dtype = "float32" }}', 'dtype = "float32" }}\nensemble = 2') + (
        '[[models]]\nname = "ridge"\nkind = "ridge"\nensemble = 3\n'
        '[models.search]\nn_trials = 4\nspace = {{ alpha = [0.01, 100.0, "log"] }}\n')
    result, out = run(tmp_path, models, "lags = 4")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert {"gru_ensemble", "ridge_ensemble"} <= set(table["model"])
    frame = pd.read_csv(tmp_path / "panel.csv", dtype={"district": str}, parse_dates=["date"])
    X, _ = make_supervised(frame.set_index(["date", "district"]), "crimes", lags=7,
                           date="date", group="district")
    saved = pd.read_csv(out / "predictions.csv", dtype={"district": str}, parse_dates=["date"])
    Xte = X.loc[pd.MultiIndex.from_frame(saved[["date", "district"]])]
    for name, k in (("gru_ensemble", 2), ("ridge_ensemble", 3)):
        ens = load_model(out / "models" / f"{name}.skops")
        assert len(ens.estimators_) == k
        members = np.mean([m.predict(Xte) for m in ens.estimators_], axis=0)
        np.testing.assert_allclose(saved[name].to_numpy(), members, rtol=1e-6)
        assert not np.allclose(members, ens.estimators_[0].predict(Xte))
    alphas = {m.regressor.named_steps["model"].alpha
              for m in load_model(out / "models" / "ridge_ensemble.skops").estimators_}
    assert len(alphas) == 3  # the top three configurations, not one repeated
    spent = __import__("json").loads((out / "timings.json").read_text())["models"]
    assert set(spent["ridge"]) == {"tune_s", "refit_s", "refit_predict_s", "ensemble_s",
                                   "ensemble_predict_s"}


def test_ridge_and_hgb_rows_by_default(tmp_path):
    result, out = run(tmp_path, GRU, baselines=True)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results.csv")
    assert set(table["model"]) == {"gru", "last_value", "ridge", "hgb"}
    assert list(table["MAE"]) == sorted(table["MAE"])  # ranked by the chosen metric
    assert table.set_index("model").loc["last_value", "skill"] == 0
    timings = __import__("json").loads((out / "timings.json").read_text())
    assert {"data_s", "features_s", "outputs_s"} <= set(timings)
    assert {"refit_s", "refit_predict_s"} == set(timings["models"]["gru"])  # untuned


def test_baselines_false_runs_the_listed_models_only(tmp_path):
    result, out = run(tmp_path, GRU, baselines=False)
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out / "results.csv")["model"]) == ["gru"]


def _exp(**features):
    raw = {"name": "f", "split": {"test_periods": 5},
           "models": [{"name": "gru", "kind": "gru", "search": {"n_trials": 2}}],
           "features": {"max_lags": 7, **features}}
    return parse_experiment(raw)


@pytest.mark.parametrize("change", [
    {"calendar": ["dayofweek"]}, {"known_future": ["temp"]}, {"past_covariates": ["x"]},
    {"scaling": "global"}, {"max_lags": 8}, {"calendar": ["holiday"], "country": "US"},
    {"static": ["area"], "scaling": "global"}, {"static": "group", "scaling": "global"}])
def test_fingerprint_changes_with_the_feature_keys(change):
    base = _exp()
    other = _exp(**change)
    fp = study_fingerprint(base, base.models[0], {}, "d")
    assert study_fingerprint(other, other.models[0], {}, "d") != fp


def test_fingerprint_of_an_unchanged_experiment_survives_new_keys():
    # computed by skrnn at b21a5cb, before features.static existed: the studies of an
    # experiment that does not use a new key resume after an upgrade
    exp = _exp(calendar=["dayofweek"])
    assert study_fingerprint(exp, exp.models[0], {}, "d") == "5a2d733219e1"


def test_fingerprint_changes_with_train_start_not_with_ensemble():
    base = _exp()
    raw = base.model_dump()
    raw["split"]["train_start"] = "2020-02-01"
    later = parse_experiment(raw)
    fp = study_fingerprint(base, base.models[0], {}, "d")
    assert study_fingerprint(later, later.models[0], {}, "d") != fp
    averaged = base.models[0].model_copy(update={"ensemble": 3})
    assert study_fingerprint(base, averaged, {}, "d") == fp
