"""The volatility forecasts evaluated on recordings: every instrument's ``VolForecaster`` run online
over the training recordings and then the test ones, as one stream, as the flow would run it; the
forecasts made in the test part whose targets matured are scored (QLIKE and MSE on the variance)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from models.volatility import EWMA_HALF_LIVES_S, VOL_HORIZON_NAMES, VOL_MODELS, VolForecaster, mse, qlike
from operators.instrument import Derived


def evaluate_volatility(
    paths: Sequence[str | Path],
    test_start: int,
    feed: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, dict]:
    """Per instrument with scored forecasts: ``{"forecasts": n per horizon, "metrics": horizon ->
    model -> {"qlike", "mse"}, "ewma_half_life_s": horizon -> the half-life chosen at the end,
    "har_coefficients": horizon -> [intercept, 1 s, 10 s, 60 s]}``. ``test_start`` (receive time ns)
    splits training from test."""
    forecasters: dict[str, VolForecaster] = {}
    scored: dict[str, list[list[tuple[float, np.ndarray]]]] = {}
    for derived in derive_offline(paths, feed, on_progress=on_progress):
        if type(derived) is not Derived:
            continue
        name = derived.instrument
        if name not in forecasters:
            forecasters[name], scored[name] = VolForecaster(), [[] for _ in VOL_HORIZON_NAMES]
        _, matured = forecasters[name].on_batch(derived.frame, derived.features)
        for m in matured:
            if m.forecast.ts >= test_start:
                scored[name][m.horizon].append((m.realized, m.forecast.variance[m.horizon]))
    results = {}
    for name, by_horizon in scored.items():
        if not any(by_horizon):
            continue
        forecaster = forecasters[name]
        results[name] = {
            "forecasts": {h: len(pairs) for h, pairs in zip(VOL_HORIZON_NAMES, by_horizon, strict=True)},
            "metrics": {h: _metrics(pairs) for h, pairs in zip(VOL_HORIZON_NAMES, by_horizon, strict=True) if pairs},
            "ewma_half_life_s": {
                h: EWMA_HALF_LIVES_S[int(np.argmin(losses))]
                for h, losses in zip(VOL_HORIZON_NAMES, forecaster.ewma_losses, strict=True)
            },
            "har_coefficients": {
                h: [round(c, 4) for c in model.theta.tolist()]
                for h, model in zip(VOL_HORIZON_NAMES, forecaster.har, strict=True)
            },
        }
    return results


def _metrics(pairs: list[tuple[float, np.ndarray]]) -> dict[str, dict[str, float]]:
    realized = np.array([rv for rv, _ in pairs])
    forecasts = np.array([f for _, f in pairs])
    return {
        model: {"qlike": qlike(realized, forecasts[:, m]), "mse": mse(realized, forecasts[:, m])}
        for m, model in enumerate(VOL_MODELS)
    }
