"""Realized-volatility forecasts per instrument, learned online from the start (no checkpoints).

Definitions (docs/models.md, "Volatility forecast"):

- *Realized variance* over (t, t + H] is the sum of r_i^2 over the instrument's book events in it,
  r_i = 1e4 * ln(m_i / m_(i-1)) the mid log return in bps (the features' ``realized_variance_*``
  use the same returns, so only mid changes count), in bps^2. The *realized volatility* is its
  square root: bps over the horizon (not annualised; divide by sqrt(H in s) for bps per sqrt-second).
- Forecasts are made on a 1 s grid of receive time: at the first book event of each second, for
  H = 10 s and 60 s (the features' windows). The target of the forecast made at t matures at the
  first event later than t + H (the rule of ``operators.labels.LabelMaker``'s time horizons); only
  matured targets are learned from, and every model learns before the next forecast is made.

Models, per horizon, all forecasting the variance:

- ``har``: HAR regression (Corsi 2009) of ln(RV_H + EPS) on ln(RV + EPS) of the last 1 s, 10 s and
  60 s (the features), fitted by recursive least squares with forgetting, starting from the
  "last 60 s scaled to H" forecast; back to the variance with the log-normal correction (the
  running variance s^2 of the log residuals, exp(s^2 / 2)) so that the log fit does not forecast
  the median.
- ``ewma``: RiskMetrics-style exponentially weighted variance per second, times H; the decay is
  chosen per horizon among ``EWMA_HALF_LIVES_S`` as the one with the lowest QLIKE on the targets
  matured so far (the training data, then everything before the forecast).
- ``last``: the realized variance of the last H (random walk).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from typing import NamedTuple

import numpy as np

from operators.features.frame import BookFrame
from quantumflow.features import FEATURE_INDEX

VOL_HORIZONS_S = (10, 60)
VOL_HORIZON_NAMES = tuple(f"{s}s" for s in VOL_HORIZONS_S)
VOL_MODELS = ("har", "ewma", "last")
SAMPLE_NS = 1_000_000_000  # one forecast per instrument per second of receive time
EPS = 0.01  # bps^2 added before logs: realized variances of 0 are common over 1 s
MIN_VARIANCE = 1e-4  # bps^2: the floor of every forecast (QLIKE needs a positive forecast)
EWMA_HALF_LIVES_S = (5, 15, 60, 180, 600)
RLS_FORGETTING = 0.9999  # per forecast: a memory of about 10,000 s
RLS_PRIOR = 0.1  # prior variance of each HAR coefficient
RESIDUAL_FORGETTING = 0.999
P_TRACE_CAP = 100.0

_MID = FEATURE_INDEX["mid"]
_RV = [FEATURE_INDEX[f"realized_variance_{s}s"] for s in (1, 10, 60)]
_LAST = [FEATURE_INDEX[f"realized_variance_{s}s"] for s in VOL_HORIZONS_S]


def qlike(realized: np.ndarray | float, forecast: np.ndarray | float) -> float:
    """Mean QLIKE loss ln F + RV / F (Patton 2011; defined for RV = 0, lower is better): robust to
    noise in the realized variance, so models rank as they would on the true variance."""
    rv, f = np.asarray(realized, dtype=float), np.asarray(forecast, dtype=float)
    return float(np.mean(np.log(f) + rv / f))


def mse(realized: np.ndarray | float, forecast: np.ndarray | float) -> float:
    """Mean squared error of the variance forecast, in bps^4."""
    rv, f = np.asarray(realized, dtype=float), np.asarray(forecast, dtype=float)
    return float(np.mean((rv - f) ** 2))


class VolForecast(NamedTuple):
    ts: int
    seq: int
    variance: np.ndarray  # (horizons, models): forecast realized variance over the horizon, bps^2


class VolMatured(NamedTuple):
    forecast: VolForecast
    horizon: int
    realized: float  # realized variance over (ts, ts + H], bps^2
    matured_ts: int


class _Har:
    """RLS on ln variance with forgetting, for one horizon."""

    __slots__ = ("p", "residual_var", "theta")

    def __init__(self, horizon_s: float) -> None:
        self.theta = np.array([math.log(horizon_s / 60), 0.0, 0.0, 1.0])  # starts as "last 60 s, scaled"
        self.p = np.eye(4) * RLS_PRIOR
        self.residual_var = 0.0  # running mean of the squared log residuals

    def forecast(self, x: np.ndarray) -> float:
        # exp(s^2 / 2): the mean of a log-normal whose log has variance s^2 (the fit is of the log's mean)
        return math.exp(float(x @ self.theta) + self.residual_var / 2) - EPS

    def learn(self, x: np.ndarray, realized: float) -> None:
        error = math.log(realized + EPS) - float(x @ self.theta)
        self.residual_var = RESIDUAL_FORGETTING * self.residual_var + (1 - RESIDUAL_FORGETTING) * error * error
        px = self.p @ x
        gain = px / (RLS_FORGETTING + float(x @ px))
        self.theta = self.theta + gain * error
        self.p = (self.p - np.outer(gain, px)) / RLS_FORGETTING
        trace = float(np.trace(self.p))
        if trace > P_TRACE_CAP:  # no wind-up while the inputs stay still (quiet markets)
            self.p *= P_TRACE_CAP / trace


class _Pending(NamedTuple):
    forecast: VolForecast
    cum: float  # the running sum of r^2 at the forecast's event
    x: np.ndarray  # the HAR regressors
    ewma: np.ndarray  # each half-life's forecast


class VolForecaster:
    """One instrument's volatility models: ``on_batch`` each batch of its book events (the flow's
    frame and feature rows), get the forecasts made and the targets that matured."""

    def __init__(self) -> None:
        self.har = [_Har(h) for h in VOL_HORIZONS_S]
        self.ewma_losses = np.zeros((len(VOL_HORIZONS_S), len(EWMA_HALF_LIVES_S)))  # summed QLIKE per half-life
        self.rate: np.ndarray | None = None  # per half-life: EWMA variance per second, bps^2/s
        self.mid = math.nan
        self.cum = 0.0  # running sum of r^2 over the instrument's book events
        self.ts: list[int] = []  # book events since the oldest pending forecast's: receive time
        self.cums: list[float] = []  # and the running sum after each
        self.pending: list[deque[_Pending]] = [deque() for _ in VOL_HORIZONS_S]
        self.last_bucket = -1
        self.last_sample: tuple[int, float] | None = None  # (ts, cum) at the previous forecast

    def online_state(self) -> dict:
        """What a restart restores: what the models learned (not the windows of the last run)."""
        return {"har": [(m.theta, m.p, m.residual_var) for m in self.har], "ewma_losses": self.ewma_losses}

    def restore(self, state: dict) -> None:
        if len(state["har"]) != len(self.har) or state["ewma_losses"].shape != self.ewma_losses.shape:
            raise ValueError("saved volatility state belongs to other horizons")
        for model, (theta, p, residual_var) in zip(self.har, state["har"], strict=True):
            model.theta, model.p, model.residual_var = theta, p, residual_var
        self.ewma_losses = state["ewma_losses"]

    def on_batch(self, frame: BookFrame, features: np.ndarray) -> tuple[list[VolForecast], list[VolMatured]]:
        n = len(frame.ts)
        if not n:
            return [], []
        cum, last, log = self.cum, self.mid, math.log
        cums = []
        for mid in features[:, _MID].tolist():  # summed event by event, in order: exact whatever the batches
            if mid > 0:
                if last > 0:
                    cum += (1e4 * log(mid / last)) ** 2
                last = mid
            cums.append(cum)
        self.cum, self.mid = cum, last
        base = len(self.ts)
        self.ts += frame.ts.tolist()
        self.cums += cums
        buckets = frame.ts // SAMPLE_NS
        first = np.empty(n, dtype=bool)  # the first event of each second: a forecast
        first[0] = buckets[0] != self.last_bucket
        first[1:] = buckets[1:] != buckets[:-1]
        self.last_bucket = int(buckets[-1])
        made: list[VolForecast] = []
        matured: list[VolMatured] = []
        seqs = frame.seq
        for j in np.flatnonzero(first).tolist():
            matured += self._mature(base + j)  # what its event makes known is learned before it is forecast
            made.append(self._forecast(self.ts[base + j], int(seqs[j]), features[j], cums[j]))
        matured += self._mature(base + n - 1)
        self._forget()
        return made, matured

    def _mature(self, up_to: int) -> list[VolMatured]:
        """Learn from the targets matured by the events up to ``up_to`` (an index into ``self.ts``), in
        event order: a target matures at the first event later than its forecast's time plus the horizon."""
        out = []
        for h, horizon_s in enumerate(VOL_HORIZONS_S):
            queue, span = self.pending[h], horizon_s * 1_000_000_000
            while queue:
                at = bisect_right(self.ts, queue[0].forecast.ts + span)  # the event that makes it known
                if at > up_to:
                    break
                pending = queue.popleft()
                realized = max(self.cums[at - 1] - pending.cum, 0.0)  # at - 1: the last event inside the window
                self._learn(h, pending, realized)
                out.append((at, h, VolMatured(pending.forecast, h, realized, self.ts[at])))
        return [m for _, _, m in sorted(out, key=lambda item: item[:2])]

    def _learn(self, h: int, pending: _Pending, realized: float) -> None:
        self.har[h].learn(pending.x, realized)
        self.ewma_losses[h] += np.log(pending.ewma) + realized / pending.ewma

    def _forecast(self, ts: int, seq: int, row: np.ndarray, cum: float) -> VolForecast:
        rv = np.nan_to_num(row[_RV], nan=0.0)
        self._update_ewma(ts, float(rv[2]), cum)
        x = np.concatenate([[1.0], np.log(np.maximum(rv, 0.0) + EPS)])
        variance = np.empty((len(VOL_HORIZONS_S), len(VOL_MODELS)))
        ewmas = []
        for h, horizon_s in enumerate(VOL_HORIZONS_S):
            ewma = np.maximum(self.rate * horizon_s, MIN_VARIANCE)
            ewmas.append(ewma)
            last = row[_LAST[h]]
            variance[h] = (
                self.har[h].forecast(x),
                ewma[int(np.argmin(self.ewma_losses[h]))],
                0.0 if math.isnan(last) else last,
            )
        forecast = VolForecast(ts, seq, np.maximum(variance, MIN_VARIANCE))
        for h in range(len(VOL_HORIZONS_S)):
            self.pending[h].append(_Pending(forecast, cum, x, ewmas[h]))
        return forecast

    def _update_ewma(self, ts: int, rv_60s: float, cum_now: float) -> None:
        if self.rate is None or self.last_sample is None:
            self.rate = np.full(len(EWMA_HALF_LIVES_S), rv_60s / 60)  # a start from the last minute
        else:
            since, cum = self.last_sample
            dt = (ts - since) / 1e9
            if dt <= 0:
                return
            decay = np.exp(-dt * math.log(2) / np.asarray(EWMA_HALF_LIVES_S, dtype=float))
            self.rate = decay * self.rate + (1 - decay) * (cum_now - cum) / dt
        self.last_sample = (ts, cum_now)

    def _forget(self) -> None:
        """Drop the events no pending forecast needs (keeping the last one)."""
        oldest = min((queue[0].forecast.ts for queue in self.pending if queue), default=None)
        drop = len(self.ts) - 1 if oldest is None else bisect_right(self.ts, oldest) - 1
        if drop >= 1024:
            del self.ts[:drop], self.cums[:drop]
