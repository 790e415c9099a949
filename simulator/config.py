"""The simulator's parameters: the instrument on both venues, the latent price, each venue's order flow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SYMBOL = re.compile(r"^(?P<base>[A-Z0-9]{2,10}?)(?P<quote>USDT|USDC|FDUSD|USD)$")


@dataclass(frozen=True)
class Instrument:
    """One asset as each venue names it: Binance ``BTCUSDT`` and Coinbase ``BTC-USD``."""

    binance_symbol: str
    coinbase_product: str

    @classmethod
    def from_symbol(cls, symbol: str) -> Instrument:
        match = _SYMBOL.match(symbol.upper())
        if match is None:
            raise ValueError(
                f"symbol must look like BTCUSDT (a base asset, then USDT, USDC, FDUSD or USD), got {symbol!r}"
            )
        return cls(match.group(0), f"{match['base']}-USD")


@dataclass(frozen=True)
class VenueModel:
    """One venue's order flow. Prices are in ticks of 0.01, sizes in base units (BTC) unless named lots.

    Every event is one of: a limit order (``limit_share``), a cancellation (``cancel_share``), a
    market order (``market_share``), or a stale quote pulled or picked off, whose rate grows with
    how far the best quote lags the venue's reference price (``pull_rate_per_tick``).
    """

    events_per_s: float
    half_spread_ticks: float  # makers quote the reference price +- this
    limit_share: float = 0.55
    cancel_share: float = 0.37
    market_share: float = 0.08
    touch_share: float = 0.6  # limit orders at the touch; the rest rest deeper
    join_band_ticks: int = 2  # makers join the touch when they want to quote within this of it
    reprice_size: int = 4  # further off, several makers reprice at once: orders this many times larger
    depth_scale_ticks: float = 300.0  # mean distance of the deeper ones behind the touch
    max_depth_ticks: int = 2_500  # makers keep nothing further than this from the reference
    touch_size: float = 0.05  # median limit order size at the touch; it grows with the distance
    size_growth_ticks: float = 100.0
    size_sigma: float = 1.0
    market_size: float = 0.001  # median; heavy-tailed
    market_sigma: float = 2.2
    market_cap: float = 5.0
    cancel_rank_mean: float = 1.5  # cancellations near the touch: geometric in rank from it
    level_cancel_per_s: float = 0.03  # and anywhere: each level loses an order at this rate
    signal_scale_ticks: float = 10.0  # reference - mid at which the flow is tilted most of the way
    limit_tilt: float = 0.6  # how far each kind of flow leans towards the reference price
    cancel_tilt: float = 0.6
    market_tilt: float = 0.5
    imbalance_tilt: float = 0.6  # market orders also lean the way the L1 imbalance points,
    limit_imbalance_tilt: float = 0.3  # limit orders join the longer queue more,
    cancel_imbalance_tilt: float = 0.5  # the shorter queue's makers leave sooner
    pull_rate_per_tick: float = 8.0
    pull_margin_ticks: float = 3.0
    pull_take_share: float = 0.5  # stale quotes taken by a market order rather than cancelled
    size_decimals: int = 8  # the venue's lot: 10^-size_decimals base units
    prints_per_level: float = 0.6  # extra trade prints per level a market order takes (several makers)


@dataclass(frozen=True)
class NetworkModel:
    """One-way latency from a venue to the recorder: lognormal around a median, in milliseconds."""

    median_ms: float
    sigma: float = 0.35
    spike_share: float = 0.002  # messages delayed by a congestion spike
    spike_ms: float = 25.0


def _binance() -> VenueModel:
    return VenueModel(events_per_s=130.0, half_spread_ticks=0.5, size_decimals=5)


def _coinbase() -> VenueModel:
    return VenueModel(
        events_per_s=70.0,
        half_spread_ticks=0.5,
        touch_size=0.03,
        pull_take_share=0.6,
        size_decimals=8,
    )


@dataclass(frozen=True)
class MarketModel:
    """The latent fair price both venues follow, and how closely the follower (Coinbase) follows.

    The fair price moves in jumps (Poisson arrivals, lognormal sizes in basis points, either sign),
    more often and larger in the volatile regime of a two-state Markov chain with exponential
    durations. Binance quotes around it directly; Coinbase around its value
    ``follower_lag_s`` ago, while cross-venue arbitrageurs take Coinbase quotes that cross
    Binance's by more than ``arbitrage_margin_ticks``.
    """

    price: float = 60_000.0
    calm_jumps_per_s: float = 1.5
    volatile_jumps_per_s: float = 4.0
    jump_bps: float = 0.10  # median jump size
    jump_sigma: float = 0.8
    volatile_jump_scale: float = 1.5
    calm_mean_s: float = 150.0
    volatile_mean_s: float = 40.0
    follower_lag_s: float = 0.1
    arbitrage_margin_ticks: float = 2.0
    burn_in_s: float = 30.0
    leader: VenueModel = field(default_factory=_binance)
    follower: VenueModel = field(default_factory=_coinbase)
    binance_network: NetworkModel = field(default_factory=lambda: NetworkModel(median_ms=3.0))
    coinbase_network: NetworkModel = field(default_factory=lambda: NetworkModel(median_ms=72.0, sigma=0.15))
