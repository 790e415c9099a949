"""Run the market: both venues' order flow in time order, their feeds publishing as they go."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.binance import BinanceFeed
from simulator.book import ASK, BID, VenueBook
from simulator.coinbase import CoinbaseFeed
from simulator.config import Instrument, MarketModel, VenueModel
from simulator.draws import Draws
from simulator.fair import references
from simulator.faults import FaultPlan
from simulator.flow import OrderFlow
from simulator.session import Session

SEED_ORDERS = 600
PRUNE_EVERY_S = 1.0


class Venue:
    def __init__(self, model: VenueModel, rng: np.random.Generator) -> None:
        self.model = model
        self.book = VenueBook()
        self.draws = Draws(rng)
        self.flow = OrderFlow(model, self.book, self.draws)
        self.next_s = 0.0
        self.next_prune_s = 0.0


def run(
    model: MarketModel,
    instrument: Instrument,
    seed: int,
    start_ns: int,
    duration_s: float,
    faults: bool,
    suffix: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[BinanceFeed, CoinbaseFeed]:
    """Simulate ``duration_s`` seconds from ``start_ns``; returns the two venues' feeds."""
    price_rng, leader_rng, follower_rng, network_rng, fault_rng, ids_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    refs = references(model, price_rng, -model.burn_in_s, duration_s)
    first_ids = tuple(int(base + ids_rng.integers(10**8)) for base in (40 * 10**9, 3 * 10**9, 6 * 10**8))
    session = Session(
        model,
        start_ns,
        suffix,
        FaultPlan(fault_rng if faults else None, duration_s),
        fault_rng,
        first_ids,
        checkpoint_ns=max(int(duration_s * 1e9) // 25, 1),
    )
    leader, follower = Venue(model.leader, leader_rng), Venue(model.follower, follower_rng)
    network = Draws(network_rng)
    binance = BinanceFeed(instrument.binance_symbol, leader.book, model.leader.size_decimals, network, session)
    coinbase = CoinbaseFeed(instrument.coinbase_product, follower.book, model.follower.size_decimals, network, session)
    t = -model.burn_in_s
    for venue, reference in zip((leader, follower), refs.at(t), strict=True):
        venue.flow.seed(reference, SEED_ORDERS)
        venue.book.changes.clear()
        venue.next_s = venue.next_prune_s = t
    margin_leader, margin_follower = model.leader.pull_margin_ticks, model.follower.pull_margin_ticks
    arbitrage = model.arbitrage_margin_ticks
    reported = 0
    while True:
        venue, feed = (leader, binance) if leader.next_s <= follower.next_s else (follower, coinbase)
        t = venue.next_s
        if t >= duration_s:
            break
        now_ns = start_ns + int(t * 1e9)
        binance.advance(now_ns)
        coinbase.advance(now_ns)
        fair, lagged = refs.at(t)
        reference = fair if venue is leader else lagged
        if t >= venue.next_prune_s:
            reach = venue.model.max_depth_ticks
            venue.book.prune(round(reference - reach), round(reference + reach))
            venue.next_prune_s = t + PRUNE_EVERY_S
        flow = venue.flow
        if venue is leader:
            total = flow.step(fair, fair - margin_leader, fair + margin_leader)
        else:
            bid, ask = leader.book.best(BID)[0], leader.book.best(ASK)[0]
            ask_floor = max(lagged - margin_follower, bid - arbitrage)
            total = flow.step(lagged, ask_floor, min(lagged + margin_follower, ask + arbitrage))
        feed.record(now_ns, flow.trades)
        flow.trades.clear()
        venue.next_s = t + venue.draws.exponential() / total
        if progress is not None and t >= reported + 1:
            progress(int(t) - reported)
            reported = int(t)
    end_ns = start_ns + int(duration_s * 1e9)
    binance.finish(end_ns)
    coinbase.finish(end_ns)
    if progress is not None:
        progress(round(duration_s) - reported)
    return binance, coinbase
