"""The realized-volatility forecaster: its losses by hand, HAR against the last window on a GARCH-like
series, no leakage (a cut recording forecasts the same before the cut), and the flow writing its rows."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
from pipeline_runs import replay

from dataflows.batches import derive_offline
from models.volatility import VOL_HORIZON_NAMES, VOL_MODELS, VolForecaster, mse, qlike
from operators.features.frame import BookFrame
from operators.instrument import Derived
from quantumflow.features import FEATURE_INDEX, FEATURE_NAMES
from store import open_store


def test_qlike_and_mse_by_hand():
    realized, forecast = np.array([1.0, 0.0, 4.0]), np.array([2.0, 1.0, 4.0])
    # ln F + RV / F: (ln 2 + 0.5) + (0 + 0) + (ln 4 + 1)
    assert qlike(realized, forecast) == pytest.approx((math.log(2) + 0.5 + math.log(4) + 1) / 3)
    assert mse(realized, forecast) == pytest.approx((1 + 1 + 0) / 3)
    assert qlike(2.0, 2.0) < qlike(2.0, 1.0) and qlike(2.0, 2.0) < qlike(2.0, 4.0)  # the truth scores best


def _garch_stream(seconds: int, seed: int) -> tuple[BookFrame, np.ndarray]:
    """A mid that moves 20 times a second with a GARCH(1,1)-like variance per second, as book events with the
    features the forecaster reads (mid and the trailing realized variances)."""
    rng = np.random.default_rng(seed)
    per_second, n = 20, seconds * 20
    variance, omega, alpha, beta = 1.0, 0.1, 0.3, 0.6
    returns = np.empty(n)
    for s in range(seconds):
        shocks = rng.standard_normal(per_second) * math.sqrt(variance / per_second)
        returns[s * per_second : (s + 1) * per_second] = shocks
        variance = omega + alpha * float(np.sum(shocks**2)) + beta * variance
    ts = (np.arange(n) * 50_000_000 + 1_000_000).astype(np.int64)
    mid = 60_000 * np.exp(np.cumsum(returns) / 1e4)
    features = np.full((n, len(FEATURE_NAMES)), np.nan)
    features[:, FEATURE_INDEX["mid"]] = mid
    cum = np.concatenate([[0.0], np.cumsum(returns[1:] ** 2)])
    for window in (1, 10, 60):
        start = np.searchsorted(ts, ts - window * 1_000_000_000, side="right")
        features[:, FEATURE_INDEX[f"realized_variance_{window}s"]] = cum - cum[start]
    ids = np.arange(n, dtype=np.int64)
    empty = np.zeros((n, 1))
    frame = BookFrame(ts, ids, ids, ids, *[empty] * 8)
    return frame, features


def _run(frame: BookFrame, features: np.ndarray, batch: int) -> tuple[list, list]:
    forecaster = VolForecaster()
    made, matured = [], []
    for start in range(0, len(features), batch):
        new, done = forecaster.on_batch(frame.rows(slice(start, start + batch)), features[start : start + batch])
        made += [(f.ts, f.seq, f.variance.tolist()) for f in new]
        matured += [(m.forecast.seq, m.horizon, m.realized, m.matured_ts) for m in done]
    return made, matured


def test_forecasts_do_not_depend_on_how_the_stream_is_cut_into_batches():
    frame, features = _garch_stream(400, 5)
    whole = _run(frame, features, 10**9)
    assert len(whole[0]) == 400 and len(whole[1]) > 600
    for batch in (1, 7, 997):
        assert _run(frame, features, batch) == whole


@pytest.mark.parametrize("seed", [1, 2])
def test_har_beats_the_last_window_on_a_garch_series(seed):
    frame, features = _garch_stream(3000, seed)
    forecaster = VolForecaster()
    scored = {h: [] for h in range(len(VOL_HORIZON_NAMES))}
    for start in range(0, len(features), 997):
        _, matured = forecaster.on_batch(frame.rows(slice(start, start + 997)), features[start : start + 997])
        for m in matured:
            if m.forecast.ts > 600 * 10**9:  # after the first 10 minutes
                scored[m.horizon].append((m.realized, m.forecast.variance[m.horizon]))
    for pairs in scored.values():
        realized = np.array([rv for rv, _ in pairs])
        forecasts = np.array([f for _, f in pairs])
        losses = {model: qlike(realized, forecasts[:, m]) for m, model in enumerate(VOL_MODELS)}
        assert len(pairs) > 1500 and losses["har"] < losses["last"], losses


def _cut(recording, path, messages):
    with gzip.open(recording, "rb") as full, gzip.open(path, "wb") as short:
        for _, line in zip(range(messages), full, strict=False):
            short.write(line)
    return path


def _forecasts(recording) -> dict[tuple[str, int], np.ndarray]:
    forecasters: dict[str, VolForecaster] = {}
    out = {}
    for derived in derive_offline([recording]):
        if type(derived) is Derived:
            forecaster = forecasters.setdefault(derived.instrument, VolForecaster())
            made, _ = forecaster.on_batch(derived.frame, derived.features)
            out.update({(derived.instrument, f.seq): f.variance for f in made})
    return out


def test_no_leakage_forecasts_before_a_cut_ignore_what_follows(simulated_recording, tmp_path):
    recording = simulated_recording / "binance_btcusdt.gz"
    whole = _forecasts(recording)
    part = _forecasts(_cut(recording, tmp_path / "cut.gz", 6_000))
    assert 20 < len(part) < len(whole) and set(part) <= set(whole)
    for key, variance in part.items():
        np.testing.assert_array_equal(variance, whole[key])


def test_the_flow_writes_forecasts_and_their_realized_volatility(simulated_recording, tmp_path, monkeypatch):
    monkeypatch.setenv("QF_MODELS_DIR", str(tmp_path / "no_models"))  # no direction models: forecasts all the same
    url = f"sqlite:///{tmp_path / 'vol.db'}"
    replay([simulated_recording], url, models=None, online_state=tmp_path / "state")
    with open_store(url).reader() as reader:
        rows = reader.rows("vol_forecasts")
        latest = reader.latest_vol_forecasts("binance:BTCUSDT")
    btc = [row for row in rows if row["instrument"] == "binance:BTCUSDT"]
    assert 50 * 6 <= len(btc) <= 61 * 6  # one forecast a second of a minute, per horizon and model
    assert {(row["horizon"], row["model"]) for row in latest} == {(h, m) for h in VOL_HORIZON_NAMES for m in VOL_MODELS}
    matured = [row for row in btc if row["realized"] is not None]
    assert {row["horizon"] for row in matured} == {"10s"}  # a minute is too short for a 60 s target to mature
    assert len(matured) >= 40 * 3
    assert all(row["matured_ts"] > row["ts"] + 10**10 and row["forecast"] > 0 for row in matured)
    assert sorted(path.name for path in (tmp_path / "state").iterdir() if "volatility" in path.name) == [
        "binance_BTCUSDT.volatility.pkl",
        "coinbase_BTC-USD.volatility.pkl",
    ]
