"""Cut position size when volatility is forecast to jump (the seed's risk-management use case).

``VolatilityGauge`` follows, view by view, the volatility forecast for the next 10 s (bps) and its
trailing level. The forecast is the view's ``vol_forecast`` (the flow's forecaster,
``models.volatility``) when present; before it has one, a stand-in made from the views alone: the
realized variance of mid log returns, exponentially weighted in time (time constant ``FAST_S``),
scaled to 10 s. The trailing level is the time-weighted exponential mean of that forecast over
``TRAILING_S``. ``RiskOverlay`` wraps any strategy and scales the quantity of its new orders by
``cut`` while the forecast is above ``jump_ratio`` times the trailing level; the part of an order that
reduces the position is never cut, so exits always go out whole.
"""

from __future__ import annotations

import math

from backtest.follow import QTY_EPS, expected_position
from backtest.orders import Cancel, Fill, MarketView, Order, Request
from backtest.strategy import Strategy

FORECAST_S = 10.0  # the horizon the forecasts speak for
FAST_S = 10.0  # time constant of the stand-in's realized variance
TRAILING_S = 300.0  # time constant of the trailing level the forecast is compared with
WARM_UP_S = 60.0  # no jump is called before the trailing level has seen this much time
NS = 1_000_000_000


class TrailingMean:
    """Exponential mean in time of a value that holds between updates: each value weighs by how long it
    held, older time fading with time constant ``tau_s``; normalised by the weight seen so far, so it
    does not lean towards its start while young."""

    def __init__(self, tau_s: float) -> None:
        self.tau_ns = tau_s * NS
        self.mean: float | None = None
        self._sum = self._weight = 0.0
        self._value = 0.0
        self._ts = 0

    def update(self, ts: int, value: float) -> float:
        if self.mean is None:
            self.mean = value
        else:
            fade = math.exp(-max(ts - self._ts, 0) / self.tau_ns)
            self._sum = fade * self._sum + (1 - fade) * self._value
            self._weight = fade * self._weight + (1 - fade)
            if self._weight > 0:
                self.mean = self._sum / self._weight
        self._value, self._ts = value, ts
        return self.mean


class VolatilityGauge:
    def __init__(self) -> None:
        self.trailing = TrailingMean(TRAILING_S)
        self._start: int | None = None
        self._mid = math.nan
        self._ts = 0
        self._weighted_r2 = 0.0  # sum of r^2 (bps^2), each faded by exp(-age / FAST_S)

    def see(self, view: MarketView) -> tuple[float, float | None]:
        """The forecast (bps over the next 10 s) at this view, and the trailing level it is compared
        with (None while warming up). The level is the one before this view, so a jump does not
        raise its own yardstick before it is judged."""
        if self._start is None:
            self._start = view.ts
        forecast = view.vol_forecast if view.vol_forecast is not None else self._stand_in(view)
        level = self.trailing.mean if view.ts - self._start >= WARM_UP_S * NS else None
        self.trailing.update(view.ts, forecast)
        return forecast, level

    def _stand_in(self, view: MarketView) -> float:
        self._weighted_r2 *= math.exp(-max(view.ts - self._ts, 0) / (FAST_S * NS))
        mid = view.mid
        if mid > 0 and self._mid > 0 and mid != self._mid:
            self._weighted_r2 += (1e4 * math.log(mid / self._mid)) ** 2
        if mid > 0:
            self._mid = mid
        self._ts = view.ts
        elapsed = max(view.ts - self._start, 1) / NS
        # per second, unbiased while the window is younger than FAST_S (the weights have not summed to FAST_S yet)
        rate = self._weighted_r2 / (FAST_S * (1 - math.exp(-elapsed / FAST_S)))
        return math.sqrt(rate * FORECAST_S)


class RiskOverlay:
    def __init__(self, inner: Strategy, jump_ratio: float = 2.0, cut: float = 0.5) -> None:
        if jump_ratio <= 0:
            raise ValueError(f"jump_ratio must be positive, not {jump_ratio}")
        if not 0 <= cut <= 1:
            raise ValueError(f"cut must be in [0, 1] (the fraction of size kept), not {cut}")
        self.inner = inner
        self.name = f"{inner.name}+risk"
        self.jump_ratio = float(jump_ratio)
        self.cut = float(cut)
        self.gauge = VolatilityGauge()
        self.jumping = False
        self.cut_orders = 0  # new orders whose size was cut
        self._filled: dict[int, float] = {}

    def params(self) -> dict:
        return {**self.inner.params(), "inner": self.inner.name, "jump_ratio": self.jump_ratio, "cut": self.cut}

    def on_fill(self, fill: Fill) -> None:
        self._filled[fill.order_id] = self._filled.get(fill.order_id, 0.0) + fill.qty
        self.inner.on_fill(fill)

    def on_event(self, view: MarketView) -> list[Request]:
        forecast, level = self.gauge.see(view)
        self.jumping = level is not None and forecast > self.jump_ratio * level
        requests = self.inner.on_event(view)
        if not self.jumping or self.cut == 1:
            return requests
        position = expected_position(view, self._filled)
        out: list[Request] = []
        for request in requests:
            if isinstance(request, Cancel):
                out.append(request)
                continue
            qty = self._allowed(request, position)
            if qty < request.qty:
                self.cut_orders += 1
            if qty > QTY_EPS:
                out.append(request._replace(qty=qty))
            if request.price is None:  # a market order moves the position the next ones are judged against
                position += request.side * qty
        return out

    def _allowed(self, order: Order, position: float) -> float:
        reducing = min(order.qty, abs(position)) if order.side * position < 0 else 0.0
        return reducing + self.cut * (order.qty - reducing)
