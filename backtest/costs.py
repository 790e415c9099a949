"""What trading costs and how much may be traded: fees, slippage, position and capital limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from backtest.orders import TAKER

BPS = 1e-4


@dataclass(frozen=True)
class Costs:
    """The seed's costs by default: $10 a trade and 2 bps of slippage.

    ``fixed_fee`` is charged once per order, on its first fill (an order filled in three parts pays it
    once). ``maker_bps`` and ``taker_bps`` are fees on the fill's notional (negative: a rebate).
    ``slippage_bps`` is an extra cost on every taker fill's notional, for what the rebuilt book cannot
    show (hidden liquidity gone, the book moving while the order travels); makers pay none, since a
    resting order is filled at its own price."""

    fixed_fee: float = 10.0
    maker_bps: float = 0.0
    taker_bps: float = 0.0
    slippage_bps: float = 2.0

    def fill_costs(self, price: float, qty: float, liquidity: str, first_fill: bool) -> tuple[float, float]:
        """(fee, slippage) in money for a fill of ``qty`` at ``price``."""
        notional = price * qty
        taker = liquidity == TAKER
        fee = notional * (self.taker_bps if taker else self.maker_bps) * BPS
        if first_fill:
            fee += self.fixed_fee
        slippage = notional * self.slippage_bps * BPS if taker else 0.0
        return fee, slippage

    def params(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Limits:
    """How much may be held: at most ``max_position`` (instrument units, None: no such limit) either way,
    and a position whose notional is at most ``capital * max_leverage`` (the starting capital: the
    limit does not grow with profits)."""

    max_position: float | None = None
    capital: float = 100_000.0
    max_leverage: float = 1.0

    def allowed_qty(self, side: int, qty: float, price: float, position: float, working_qty: float) -> float:
        """The part of an order of ``qty`` on ``side`` that keeps the position within the limits if every
        working order on that side (``working_qty`` in all, positive) and this one filled: the most
        ``q <= qty`` with ``|position + side * (working_qty + q)| <= max_position`` and that position's
        notional at ``price`` (the order's, or the mid for a market order) within capital * leverage.
        0 when nothing may be added."""
        headroom = self.capital * self.max_leverage / price
        if self.max_position is not None:
            headroom = min(headroom, self.max_position)
        # side * position is what the position already holds on this side (negative: it would be reduced first)
        allowed = headroom - side * position - working_qty
        return max(0.0, min(qty, allowed))

    def params(self) -> dict:
        return asdict(self)
