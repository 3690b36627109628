"""Ljung-Box, Chow scan, residual diagnostics and impulse responses."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from skrnn.diagnostics import chow_test, impulse_response, ljung_box, residual_diagnostics


def ar1(n, phi, seed):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_ljung_box_matches_the_formula_written_out():
    x = ar1(80, 0.3, 0)
    res = ljung_box(x, lags=5)
    n, m = len(x), x.mean()
    denom = sum((v - m) ** 2 for v in x)
    q = 0.0
    for k in range(1, 6):
        r = sum((x[t] - m) * (x[t - k] - m) for t in range(k, n)) / denom
        q += r * r / (n - k)
        assert res.loc[k, "acf"] == pytest.approx(r)
        assert res.loc[k, "lb_stat"] == pytest.approx(n * (n + 2) * q)
        assert res.loc[k, "lb_pvalue"] == pytest.approx(stats.chi2.sf(n * (n + 2) * q, k))
    # model_df removes degrees of freedom; lags without any left have no p-value.
    adj = ljung_box(x, lags=5, model_df=2)
    assert np.isnan(adj["lb_pvalue"].iloc[:2]).all()
    assert adj.loc[5, "lb_pvalue"] == pytest.approx(stats.chi2.sf(res.loc[5, "lb_stat"], 3))


def test_ljung_box_tells_noise_from_autocorrelation():
    # On white noise the test rejects at about its level...
    pvalues = [ljung_box(np.random.default_rng(s).normal(size=300), lags=10)["lb_pvalue"].iloc[-1]
               for s in range(200)]
    assert 0.02 <= np.mean(np.array(pvalues) < 0.05) <= 0.09
    # ...and always on a strongly autocorrelated series.
    assert ljung_box(ar1(300, 0.7, 1), lags=10)["lb_pvalue"].iloc[-1] < 1e-10
    with pytest.raises(ValueError, match="constant"):
        ljung_box(np.ones(20))
    with pytest.raises(ValueError, match=r"lags must be an int in \[1, 9\]"):
        ljung_box(np.arange(10.0), lags=10)


def test_chow_statistic_against_separate_fits():
    rng = np.random.default_rng(2)
    n = 120
    y = rng.normal(0, 1, n)
    y[70:] += 1.5  # level shift at position 70
    res = chow_test(y, alpha=0.05)
    assert res["break_at"].iloc[0] == 18 and res["break_at"].iloc[-1] == n - 18  # 15% trim
    t = np.arange(n, dtype=float)

    def rss(a, b):
        coef = np.polyfit(t[a:b], y[a:b], 1)
        return float(((y[a:b] - np.polyval(coef, t[a:b])) ** 2).sum())

    for b in (30, 70, 95):
        split = rss(0, b) + rss(b, n)
        f = ((rss(0, n) - split) / 2) / (split / (n - 4))
        assert res.set_index("break_at").loc[b, "F"] == pytest.approx(f, rel=1e-9)
    assert res["critical_value"].iloc[0] == pytest.approx(stats.f.ppf(0.95, 2, n - 4))
    peak = int(res.loc[res["F"].idxmax(), "break_at"])
    assert abs(peak - 70) <= 3 and res.set_index("break_at").loc[peak, "reject"]


def test_chow_on_stable_series_rarely_rejects():
    res = chow_test(np.random.default_rng(3).normal(size=200), X=np.ones((200, 1)))
    assert res["reject"].mean() < 0.2
    with pytest.raises(ValueError, match=r"X must have shape \(200, k\)"):
        chow_test(np.zeros(200), X=np.ones((10, 1)))
    with pytest.raises(ValueError, match=r"candidates must be int positions in \[3, 197\]"):
        chow_test(np.zeros(200), candidates=[1])


def test_residual_diagnostics_find_the_break_and_the_autocorrelation():
    dates = pd.date_range("2024-01-01", periods=150, freq="D")
    rng = np.random.default_rng(4)
    truth = pd.Series(10 + rng.normal(0, 1, 150), index=dates)
    truth.iloc[100:] += 3  # the world changed on 2024-04-10; the model did not notice
    pred = np.full(150, 10.0)
    diag = residual_diagnostics(truth, pred, lags=7)
    assert diag.residuals.index.equals(dates)
    assert abs(diag.break_at - dates[100]) <= pd.Timedelta(days=3)
    assert diag.autocorrelated  # the shift shows up as persistent residuals too
    clean = residual_diagnostics(truth.iloc[:100], pred[:100], lags=7)
    assert clean.break_at is None and not clean.autocorrelated
    assert not clean.chow["reject"].any()


class FakeRecurrent:
    """Linear 'RNN' h_t = a h_{t-1} + x_t, c_t = sum of x up to t; layers as a list of dicts."""

    n_step_features = 1
    n_features_in_ = 12

    def __init__(self, a=0.5):
        self.a = a

    def get_states(self, X):
        X = np.asarray(X, dtype=float)
        n, T = X.shape
        h = np.zeros((n, T, 2))
        prev = np.zeros(n)
        for t in range(T):
            prev = self.a * prev + X[:, t]
            h[:, t, 0], h[:, t, 1] = prev, -prev
        return [{"h": h, "c": np.cumsum(X, axis=1)[:, :, None]}, {"h": 2 * h}]

    def predict(self, X):
        return self.get_states(X)[0]["h"][:, -1, 0]


def test_impulse_response_with_a_fake_recurrent_model():
    est = FakeRecurrent(a=0.5)
    res = impulse_response(est, spike_at=3, magnitude=2.0, baseline=1.0)
    assert res.n_steps == 12 and res.X.shape == (1, 12)
    np.testing.assert_array_equal(res.X[0], [1, 1, 1, 3] + [1] * 8)
    assert set(res.response) == {"layer0/h", "layer0/c", "layer1/h"}
    steps = np.arange(12)
    expected = np.where(steps >= 3, 2.0 * 0.5 ** (steps - 3.0), 0.0)
    np.testing.assert_allclose(res.response["layer0/h"][:, 0], expected)
    np.testing.assert_allclose(res.response["layer0/h"][:, 1], -expected)
    np.testing.assert_allclose(res.response["layer1/h"][:, 0], 2 * expected)
    np.testing.assert_allclose(res.response["layer0/c"][:, 0], np.where(steps >= 3, 2.0, 0.0))
    assert res.prediction - res.baseline_prediction == pytest.approx(expected[-1])


def test_impulse_response_accepts_a_flat_dict_and_checks_arguments():
    class Flat:
        def get_states(self, X):
            return {"h": np.asarray(X)[:, :, None] * 3.0}

    res = impulse_response(Flat(), n_steps=5, spike_at=4)
    np.testing.assert_array_equal(res.response["h"][:, 0], [0, 0, 0, 0, 3])
    with pytest.raises(TypeError, match="get_states"):
        impulse_response(object(), n_steps=5)
    with pytest.raises(ValueError, match=r"spike_at must be an int in \[0, 4\]"):
        impulse_response(Flat(), n_steps=5, spike_at=5)
    with pytest.raises(ValueError, match="pass n_steps"):
        impulse_response(Flat())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_impulse_response_of_a_fitted_gru():
    from skrnn import GRURegressor

    X = np.random.default_rng(0).normal(size=(40, 6))
    est = GRURegressor(units=4, max_iter=2, random_state=0).fit(X, X[:, -1])
    res = impulse_response(est, spike_at=2)
    assert res.n_steps == 6
    h = res.response["layer0/h"]
    assert h.shape == (6, 4)
    # Causality: nothing moves before the spike, something moves at and after it.
    np.testing.assert_array_equal(h[:2], 0.0)
    assert np.abs(h[2]).max() > 0
