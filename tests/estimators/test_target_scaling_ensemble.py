"""Per-series target scaling (GroupTargetRegressor) and averaging ensembles."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import GroupScaler, GRURegressor
from skrnn.ensemble import AveragingRegressor
from skrnn.scaling import GroupTargetRegressor


def _panel(n=40, seed=0):
    rng = np.random.default_rng(seed)
    levels = {"quiet": (2.0, 0.5), "busy": (500.0, 80.0), "mid": (40.0, 3.0)}
    frames = []
    for g, (mu, sd) in levels.items():
        frames.append(pd.DataFrame({"g": g, "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                                    "y": mu + sd * rng.normal(size=n)}))
    return pd.concat(frames, ignore_index=True).sample(frac=1, random_state=seed)


def test_target_scaled_per_series_and_inverted_exactly():
    df = _panel()
    X, y = df[["g", "x1", "x2"]], df["y"].to_numpy()
    # 1-NN on distinct inputs returns the scaled training target itself
    model = GroupTargetRegressor(KNeighborsRegressor(n_neighbors=1), group="g").fit(X, y)
    np.testing.assert_allclose(model.predict(X), y, rtol=1e-14, atol=1e-12)
    inner_y = model.regressor_.predict(X[["x1", "x2"]])
    for g in df["g"].unique():  # what the regressor saw: each series standardised alone
        sel = (df["g"] == g).to_numpy()
        assert abs(inner_y[sel].mean()) < 1e-12 and abs(inner_y[sel].std() - 1) < 1e-12
        scale = y[sel].std()
        np.testing.assert_allclose(model.predict(X)[sel], y[sel].mean() + scale * inner_y[sel])


def test_target_statistics_come_from_the_training_rows_only():
    df = _panel()
    train, test = df.iloc[:80], df.iloc[80:]
    model = GroupTargetRegressor(Ridge(), group="g").fit(train[["g", "x1", "x2"]], train["y"])
    for i, g in enumerate(model.scaler_.groups_):
        ys = train.loc[train["g"] == g, "y"]
        assert model.scaler_.center_[i, 0] == pytest.approx(ys.mean(), rel=1e-14)
        assert model.scaler_.scale_[i, 0] == pytest.approx(ys.std(ddof=0), rel=1e-14)
    model.predict(test[["g", "x1", "x2"]])  # test rows do not change the statistics
    assert model.scaler_.center_.shape == (3, 1)


def test_in_a_pipeline_with_per_series_inputs_matches_manual_scaling():
    df = _panel().set_index("g")
    X, y = df[["x1", "x2"]], df["y"]
    pipe = make_pipeline(GroupScaler(group="g").set_output(transform="pandas"),
                         GroupTargetRegressor(Ridge(alpha=0.3), group="g"))
    pred = pipe.fit(X, y).predict(X)
    g = df.index.to_numpy()
    xs = GroupScaler().fit(X.to_numpy(), groups=g).transform(X.to_numpy(), groups=g)
    ysc = GroupScaler().fit(y.to_numpy()[:, None], groups=g)
    ridge = Ridge(alpha=0.3).fit(xs, ysc.transform(y.to_numpy()[:, None], groups=g).ravel())
    manual = ysc.inverse_transform(ridge.predict(xs)[:, None], groups=g).ravel()
    np.testing.assert_allclose(pred, manual, rtol=1e-12)


def test_groups_argument_and_errors():
    df = _panel()
    X, y, g = df[["x1", "x2"]].to_numpy(), df["y"].to_numpy(), df["g"].to_numpy()
    model = GroupTargetRegressor(Ridge()).fit(X, y, groups=g)
    assert model.predict(X, groups=g).shape == (len(y),)
    with pytest.raises(ValueError, match="needs the series of each row"):
        GroupTargetRegressor(Ridge()).fit(X, y)
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        GroupTargetRegressor(Ridge(), group="g").fit(X, y)
    with pytest.raises(ValueError, match="not seen in fit"):
        model.predict(X[:2], groups=["new", "new"])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_seed_ensemble_equals_mean_of_members():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6)), rng.normal(size=60)
    base = make_pipeline(GroupScaler(), GRURegressor(units=4, max_iter=3, n_step_features=2))
    ens = AveragingRegressor(base, n_estimators=3, random_state=1).fit(X, y)
    assert len(set(ens.seeds_.tolist())) == 3
    seeds = [m[-1].random_state for m in ens.estimators_]
    assert seeds == ens.seeds_.tolist()
    members = np.stack([m.predict(X) for m in ens.estimators_])
    assert not np.allclose(members[0], members[1])  # the seeds made different models
    np.testing.assert_array_equal(ens.predict(X), members.mean(axis=0))
    # refitting a member alone with its seed gives the same model (reproducible)
    alone = make_pipeline(GroupScaler(), GRURegressor(units=4, max_iter=3, n_step_features=2,
                                                      random_state=seeds[2])).fit(X, y)
    np.testing.assert_array_equal(alone.predict(X), members[2])


def test_given_estimators_ensemble_and_errors():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    ens = AveragingRegressor(estimators=[Ridge(alpha=1.0), Ridge(alpha=10.0)]).fit(X, y)
    expected = (Ridge(alpha=1.0).fit(X, y).predict(X) + Ridge(alpha=10.0).fit(X, y).predict(X))
    np.testing.assert_allclose(ens.predict(X), expected / 2, rtol=1e-15)
    with pytest.raises(ValueError, match="has no random_state"):
        AveragingRegressor(LinearRegression()).fit(X, y)
    with pytest.raises(ValueError, match="exactly one of"):
        AveragingRegressor().fit(X, y)
    with pytest.raises(ValueError, match="non-empty"):
        AveragingRegressor(estimators=[]).fit(X, y)


@parametrize_with_checks([AveragingRegressor(Ridge(), n_estimators=2, random_state=0),
                          AveragingRegressor(estimators=[Ridge(), Ridge(alpha=3.0)])])
def test_averaging_regressor_is_sklearn_compatible(estimator, check):
    check(estimator)
