"""The simulated venue on small books worked out by hand: market orders walking levels, own liquidity,
queues, trade-throughs, crossing, latency, cancels, and the costs and limits around them."""

from __future__ import annotations

import pytest

from backtest.costs import Costs, Limits
from backtest.latency import ConstantLatency, FeedLatency
from backtest.orders import BUY, MAKER, SELL, TAKER, Cancel, Order
from backtest.queues import ProbQueue, QueuePosition, RiskAverseQueue
from backtest.venue import CANCELLED, EXPIRED, FILLED, REJECTED, SimulatedVenue
from operators.book import OrderBook
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, Trade

INSTRUMENT = "test:BTCUSDT"
COSTS = Costs(fixed_fee=10.0, maker_bps=0.0, taker_bps=10.0, slippage_bps=2.0)


def snapshot(ts: int, bids, asks) -> BookSnapshot:
    return BookSnapshot(INSTRUMENT, None, ts, 1, list(bids), list(asks))


def delta(ts: int, bids=(), asks=()) -> BookDelta:
    return BookDelta(INSTRUMENT, None, ts, None, None, None, list(bids), list(asks))


def trade(ts: int, price: float, size: float, side: int) -> Trade:
    return Trade(INSTRUMENT, ts - 1, ts, None, price, size, side)


def step(venue: SimulatedVenue, book: OrderBook, event) -> list:
    """What the engine does around one event: arrivals meet the book before it, then the event's effects."""
    fills = venue.before_event(event.receive_ts, book)
    if type(event) is BookSnapshot:
        book.apply_snapshot(event)
    elif type(event) is BookDelta:
        book.apply_delta(event)
    elif type(event) is BestBidOffer:
        book.apply_bbo(event)
    return fills + venue.after_event(event.receive_ts, [event], book)


def new_market(queue=None, latency_ns: int = 100, costs: Costs = COSTS):
    """Asks 100 x 1, 101 x 2, 102 x 3; bids 99 x 5, 98 x 5."""
    venue = SimulatedVenue(costs, queue or RiskAverseQueue(), ConstantLatency(latency_ns))
    book = OrderBook()
    step(venue, book, snapshot(0, [(99.0, 5.0), (98.0, 5.0)], [(100.0, 1.0), (101.0, 2.0), (102.0, 3.0)]))
    return venue, book


def test_market_order_walks_three_levels_and_a_second_one_does_not_refill_from_what_the_first_took():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 4.0, tag="entry"), now=1_000)  # arrives at 1_100
    fills = step(venue, book, trade(2_000, 50.0, 0.001, 1))  # any event after the arrival
    # 1 @ 100, 2 @ 101, 1 @ 102: VWAP (100 + 202 + 102) / 4 = 101
    assert [(f.price, f.qty, f.liquidity, f.ts, f.tag) for f in fills] == [
        (100.0, 1.0, TAKER, 1_100, "entry"),
        (101.0, 2.0, TAKER, 1_100, "entry"),
        (102.0, 1.0, TAKER, 1_100, "entry"),
    ]
    assert sum(f.price * f.qty for f in fills) / 4 == 101.0
    # taker 10 bps on 100, 202, 102 = 0.1, 0.202, 0.102; the $10 once, on the first fill
    assert [f.fee for f in fills] == pytest.approx([10.1, 0.202, 0.102])
    # slippage 2 bps on the same notionals
    assert [f.slippage for f in fills] == pytest.approx([0.02, 0.0404, 0.0204])
    assert [c.outcome for c in venue.take_closed()] == [FILLED]

    # The feed still shows 100 x 1, 101 x 2, 102 x 3 (the recording does not know of our order):
    # a second buy of 3 finds only the 2 left at 102; the last 1 expires.
    venue.submit(Order(2, BUY, 3.0), now=3_000)
    fills = step(venue, book, trade(4_000, 50.0, 0.001, 1))
    assert [(f.price, f.qty) for f in fills] == [(102.0, 2.0)]
    assert fills[0].fee == pytest.approx(10 + 0.204)  # its own first fill pays its own fixed fee
    closed = venue.take_closed()
    assert [(c.order_id, c.outcome) for c in closed] == [(2, EXPIRED)]

    # Once the feed changes the level (102 now 3.5), the feed's quantity is the truth again; 100 and
    # 101 are unchanged, so still taken.
    step(venue, book, delta(5_000, asks=[(102.0, 3.5)]))
    venue.submit(Order(3, BUY, 1.0), now=6_000)
    fills = step(venue, book, trade(7_000, 50.0, 0.001, 1))
    assert [(f.price, f.qty) for f in fills] == [(102.0, 1.0)]


def test_a_market_order_takes_the_fresher_best_bid_offer_first():
    venue, book = new_market()
    # bookTicker newer than the depth: best ask 99.5 x 0.5 (the depth's 100 is not yet updated)
    step(venue, book, BestBidOffer(INSTRUMENT, None, 500, 2, 99.0, 5.0, 99.5, 0.5))
    venue.submit(Order(1, BUY, 1.0), now=1_000)
    fills = step(venue, book, trade(2_000, 50.0, 0.001, 1))
    assert [(f.price, f.qty) for f in fills] == [(99.5, 0.5), (100.0, 0.5)]


def test_a_limit_order_joins_a_queue_of_5_and_fills_2_after_prints_of_3_then_4():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 3.0, price=99.0), now=1_000)
    assert step(venue, book, trade(2_000, 50.0, 0.001, 1)) == []  # rests behind 5
    assert venue.working[1].qty == 3.0
    assert step(venue, book, trade(3_000, 99.0, 3.0, SELL)) == []  # 5 - 3 = 2 ahead
    assert step(venue, book, delta(3_001, bids=[(99.0, 2.0)])) == []  # the print shows in the depth
    fills = step(venue, book, trade(4_000, 99.0, 4.0, SELL))  # 2 - 4: 2 went past the order
    assert [(f.price, f.qty, f.liquidity, f.ts) for f in fills] == [(99.0, 2.0, MAKER, 4_000)]
    assert fills[0].fee == 10.0 and fills[0].slippage == 0.0  # maker: 0 bps, no slippage; the fixed fee
    assert venue.working[1].qty == 1.0
    # a buyer-initiated print at 99 does not touch the bids
    assert step(venue, book, trade(5_000, 99.0, 5.0, BUY)) == []
    fills = step(venue, book, trade(6_000, 99.0, 5.0, SELL))  # ahead 0: the rest fills
    assert [(f.qty, f.fee) for f in fills] == [(1.0, 0.0)]
    assert [c.outcome for c in venue.take_closed()] == [FILLED]
    assert venue.working == {}


def test_a_print_through_a_resting_bid_fills_it_in_full():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 2.0, price=99.0), now=1_000)
    step(venue, book, trade(2_000, 50.0, 0.001, 1))
    fills = step(venue, book, trade(3_000, 98.5, 0.1, SELL))  # a sell below the bid: traded through
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [(99.0, 2.0, MAKER)]


def test_a_resting_bid_the_best_ask_reaches_fills_as_maker_at_its_price():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 1.0, price=99.0), now=1_000)
    step(venue, book, trade(2_000, 50.0, 0.001, 1))
    fills = step(venue, book, delta(3_000, bids=[(99.0, 0.0)], asks=[(99.0, 2.0)]))
    assert [(f.price, f.qty, f.liquidity, f.ts) for f in fills] == [(99.0, 1.0, MAKER, 3_000)]


def test_a_limit_order_that_crosses_takes_what_it_crosses_and_rests_the_rest_first_in_a_new_level():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 2.0, price=100.0), now=1_000)
    fills = step(venue, book, trade(2_000, 50.0, 0.001, 1))
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [(100.0, 1.0, TAKER)]
    # it rests at 100 (a new bid level: nobody ahead); the ask at 100 it took is not there for it again
    assert venue.working[1].qty == 1.0
    assert step(venue, book, delta(2_500, bids=[(98.0, 6.0)])) == []
    fills = step(venue, book, trade(3_000, 100.0, 0.4, SELL))
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [(100.0, 0.4, MAKER)]


def test_risk_averse_and_prob_queues_read_a_cancel_at_the_level_differently():
    ahead = {}
    fills = {}
    for queue in (RiskAverseQueue(), ProbQueue(3)):
        venue, book = new_market(queue)
        venue.submit(Order(1, BUY, 1.0, price=99.0), now=1_000)
        step(venue, book, trade(2_000, 50.0, 0.001, 1))  # joins behind 5
        step(venue, book, delta(3_000, bids=[(99.0, 8.0)]))  # 3 join behind it
        step(venue, book, delta(4_000, bids=[(99.0, 6.0)]))  # 2 cancelled: from where?
        ahead[queue.name] = venue._resting[1].queue.ahead
        fills[queue.name] = step(venue, book, trade(5_000, 99.0, 4.0, SELL))
    # risk-averse: cancels come from behind: still 5 ahead (min(5, 6)); a print of 4 leaves 1 ahead
    assert ahead["risk-averse"] == 5.0
    assert fills["risk-averse"] == []
    # prob, f(x) = x^3: front 5, back 8 - 5 = 3, p(behind) = 27 / (27 + 125) = 27/152;
    # ahead = 5 - (125/152) * 2 + min(3 - (27/152) * 2, 0) = 5 - 250/152 = 3.355263...
    assert ahead["prob"] == pytest.approx(5 - 250 / 152)
    # a print of 4 then goes 4 - 3.355263 = 0.644737 past the order
    assert [f.qty for f in fills["prob"]] == pytest.approx([4 - (5 - 250 / 152)])


def test_prob_queue_does_not_count_a_print_twice_when_the_depth_shows_it():
    queue, pos = ProbQueue(3), QueuePosition(5.0)
    queue.trade(pos, 3.0, 3.0)
    queue.depth(pos, 8.0, 5.0)  # the level lost 3: all of it the print
    assert pos.ahead == 2.0


def test_own_resting_orders_at_one_price_fill_in_their_arrival_order():
    venue, book = new_market()
    venue.submit(Order(1, BUY, 1.0, price=99.0), now=1_000)
    venue.submit(Order(2, BUY, 1.0, price=99.0), now=1_001)
    step(venue, book, trade(2_000, 50.0, 0.001, 1))
    # a print of 6: 5 others, then order 1; order 2 (behind it) gets nothing
    fills = step(venue, book, trade(3_000, 99.0, 6.0, SELL))
    assert [(f.order_id, f.qty) for f in fills] == [(1, 1.0)]
    assert venue._resting[2].queue.ahead == 0.0
    fills = step(venue, book, trade(4_000, 99.0, 0.5, SELL))
    assert [(f.order_id, f.qty) for f in fills] == [(2, 0.5)]


def test_an_order_that_arrives_after_a_book_change_meets_the_changed_book():
    venue, book = new_market(latency_ns=1_000)
    venue.submit(Order(1, BUY, 1.0), now=0)  # arrives at 1_000
    assert step(venue, book, delta(500, asks=[(100.0, 0.0)])) == []  # the ask at 100 goes first
    fills = step(venue, book, trade(1_500, 50.0, 0.001, 1))
    assert [(f.price, f.qty, f.ts) for f in fills] == [(101.0, 1.0, 1_000)]
    assert venue.latency_of(1) == 1_000


def test_requests_arrive_in_the_order_they_were_sent():
    venue, book = new_market(latency_ns=0)
    venue.latency = ConstantLatency(1_000)
    venue.submit(Order(1, BUY, 1.0, price=99.0), now=0)  # arrives at 1_000
    venue.latency = ConstantLatency(10)
    venue.submit(Cancel(1), now=100)  # drawn 110, but cannot overtake the order: arrives at 1_000 after it
    step(venue, book, trade(2_000, 50.0, 0.001, 1))
    assert [(c.order_id, c.outcome, c.ts, c.latency_ns) for c in venue.take_closed()] == [(1, CANCELLED, 1_000, 10)]


def test_a_cancel_racing_a_fill():
    # the print fills the order while the cancel travels: the cancel then finds it done
    venue, book = new_market(latency_ns=1_000)
    venue.submit(Order(1, BUY, 1.0, price=99.5), now=0)  # a new level: nobody ahead
    step(venue, book, trade(1_500, 50.0, 0.001, 1))
    venue.submit(Cancel(1), now=2_000)  # arrives at 3_000
    fills = step(venue, book, trade(2_500, 99.5, 1.0, SELL))
    assert [(f.qty, f.ts) for f in fills] == [(1.0, 2_500)]
    assert step(venue, book, trade(3_500, 50.0, 0.001, 1)) == []
    assert venue.rejected["cancel of an order already done"] == 1
    assert [c.outcome for c in venue.take_closed()] == [FILLED]

    # the cancel arrives first: the print finds nothing to fill
    venue, book = new_market(latency_ns=1_000)
    venue.submit(Order(1, BUY, 1.0, price=99.5), now=0)
    step(venue, book, trade(1_500, 50.0, 0.001, 1))
    venue.submit(Cancel(1), now=2_000)  # arrives at 3_000
    assert step(venue, book, trade(3_500, 99.5, 1.0, SELL)) == []
    assert [c.outcome for c in venue.take_closed()] == [CANCELLED]
    assert venue.rejected == {}


def test_orders_are_rejected_while_the_book_is_not_ready():
    venue, book = new_market(latency_ns=0)
    book.invalidate("sequence gap")
    venue.submit(Order(1, BUY, 1.0), now=10)
    assert venue.before_event(20, book) == []
    assert venue.rejected == {"book not ready: stale": 1}
    closed = venue.take_closed()
    assert [(c.outcome, c.reason) for c in closed] == [(REJECTED, "book not ready: stale")]


def test_costs_rebates_and_the_fixed_fee():
    costs = Costs(fixed_fee=1.0, maker_bps=-1.0, taker_bps=4.0, slippage_bps=2.0)
    # maker rebate 1 bp on 10_000 = -1, plus the fixed fee on a first fill; no slippage for makers
    assert costs.fill_costs(100.0, 100.0, MAKER, first_fill=True) == pytest.approx((0.0, 0.0))
    assert costs.fill_costs(100.0, 100.0, MAKER, first_fill=False) == pytest.approx((-1.0, 0.0))
    # taker 4 bps = 4, slippage 2 bps = 2
    assert costs.fill_costs(100.0, 100.0, TAKER, first_fill=False) == pytest.approx((4.0, 2.0))


def test_limits_clip_orders_to_the_position_and_capital():
    limits = Limits(max_position=2.0, capital=1_000.0, max_leverage=1.0)
    # at 100, capital allows 10, the position limit 2: long 1 with 0.5 working to buy leaves 0.5
    assert limits.allowed_qty(BUY, 1.0, 100.0, position=1.0, working_qty=0.5) == 0.5
    # selling may go through flat to short 2: 1 + 2
    assert limits.allowed_qty(SELL, 5.0, 100.0, position=1.0, working_qty=0.0) == 3.0
    assert limits.allowed_qty(BUY, 1.0, 100.0, position=2.5, working_qty=0.0) == 0.0
    # at 400 the capital allows 1_000 / 400 = 2.5 either way
    assert Limits(None, 1_000.0, 1.0).allowed_qty(BUY, 5.0, 400.0, position=0.0, working_qty=0.0) == 2.5
    assert Limits(None, 1_000.0, 2.0).allowed_qty(BUY, 9.0, 400.0, position=-1.0, working_qty=0.0) == 6.0


def test_feed_latency_draws_from_the_feed_latency_seen_so_far():
    latency = FeedLatency(seed=7, reservoir=4, fallback_ns=123)
    assert latency.draw(0) == 123  # nothing seen yet
    latency.observe(BestBidOffer(INSTRUMENT, None, 10, 1, 1.0, 1.0, 2.0, 1.0))  # no exchange time: no sample
    assert latency.draw(0) == 123
    for i in range(100):
        latency.observe(trade(1_000 + i, 1.0, 1.0, BUY)._replace(exchange_ts=1_000 + i - (i % 5) * 10))
    assert len(latency.samples) == 4 and set(latency.samples) <= {0, 10, 20, 30, 40}
    again = FeedLatency(seed=7, reservoir=4, fallback_ns=123)
    for i in range(100):
        again.observe(trade(1_000 + i, 1.0, 1.0, BUY)._replace(exchange_ts=1_000 + i - (i % 5) * 10))
    assert [latency.draw(0) for _ in range(20)] == [again.draw(0) for _ in range(20)]


def test_feed_latency_takes_the_fastest_message_as_zero_when_the_clocks_disagree():
    # the recorder's clock 1.27 s behind the venue's: every receive - exchange is negative
    latency = FeedLatency(seed=3, reservoir=100)
    for i in range(50):
        latency.observe(trade(1_000 + i, 1.0, 1.0, BUY)._replace(exchange_ts=1_000 + i + 1_270_000_000 - (i % 5) * 10))
    assert {latency.draw(0) for _ in range(200)} == {0, 10, 20, 30, 40}


def test_the_sell_side_mirrors_the_buy_side():
    venue, book = new_market()
    venue.submit(Order(1, SELL, 7.0), now=1_000)
    fills = step(venue, book, trade(2_000, 50.0, 0.001, 1))
    assert [(f.side, f.price, f.qty) for f in fills] == [(SELL, 99.0, 5.0), (SELL, 98.0, 2.0)]
    # a resting ask behind 2 at 101: a buyer's print of 3 fills 1 of it; a seller's print never touches it
    venue.submit(Order(2, SELL, 2.0, price=101.0), now=3_000)
    step(venue, book, trade(4_000, 50.0, 0.001, 1))
    assert step(venue, book, trade(4_500, 101.0, 3.0, SELL)) == []
    fills = step(venue, book, trade(5_000, 101.0, 3.0, BUY))
    assert [(f.order_id, f.price, f.qty, f.liquidity) for f in fills] == [(2, 101.0, 1.0, MAKER)]
    fills = step(venue, book, trade(6_000, 101.5, 0.1, BUY))  # a buy above the ask: traded through
    assert [(f.order_id, f.qty) for f in fills] == [(2, 1.0)]


def test_the_venue_shows_the_feed_latency_to_its_latency_model():
    venue = SimulatedVenue(COSTS, RiskAverseQueue(), FeedLatency(seed=1, fallback_ns=999))
    book = OrderBook()
    step(venue, book, snapshot(0, [(99.0, 5.0)], [(100.0, 1.0)]))
    venue.submit(Order(1, BUY, 0.1), now=10)  # nothing seen yet: the fallback
    assert venue.latency_of(1) == 999
    step(venue, book, Trade(INSTRUMENT, 1_000, 1_250, None, 50.0, 0.001, 1))  # 250 ns on the way: the fastest
    venue.submit(Order(2, BUY, 0.1), now=2_000)
    assert venue.latency_of(2) == 0
    step(venue, book, Trade(INSTRUMENT, 2_000, 2_650, None, 50.0, 0.001, 1))  # 650 ns: 400 over the fastest
    venue.submit(Order(3, BUY, 0.1), now=3_000)
    assert venue.latency_of(3) in {0, 400}
