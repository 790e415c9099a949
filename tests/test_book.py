"""The order book on hand-built books."""

import math

import numpy as np

from operators.book import OrderBook
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot


def snapshot(bids, asks, sequence=10, max_depth=None):
    return BookSnapshot("x:Y", None, 0, sequence, bids, asks, max_depth)


def delta(bids=(), asks=(), sequence=11):
    return BookDelta("x:Y", None, 0, sequence, sequence, None, list(bids), list(asks))


def bbo(bid, bid_size, ask, ask_size, sequence):
    return BestBidOffer("x:Y", None, 0, sequence, bid, bid_size, ask, ask_size)


def test_new_book_waits_for_a_snapshot():
    book = OrderBook()
    assert not book.ready and book.describe() == "waiting for snapshot"
    assert book.depth_top() is None


def test_deltas_set_absolute_sizes_and_zero_removes():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.5), (102.0, 3.0)]))
    book.apply_delta(delta(bids=[(99.0, 0.0), (98.0, 5.0), (97.5, 1.0)], asks=[(100.5, 0.25)]))
    assert dict(book.bids) == {98.0: 5.0, 97.5: 1.0}
    assert dict(book.asks) == {100.5: 0.25, 101.0: 1.5, 102.0: 3.0}
    assert tuple(book.depth_top()) == (98.0, 5.0, 100.5, 0.25)
    assert book.sequence == 11 and not book.crossed()


def test_top_levels_are_best_first_and_padded():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.5)]))
    top = book.top_levels(3)
    assert np.array_equal(top.bid_prices[:2], [99.0, 98.0]) and math.isnan(top.bid_prices[2])
    assert np.array_equal(top.bid_sizes, [1.0, 2.0, 0.0])
    assert top.ask_prices[0] == 101.0 and np.isnan(top.ask_prices[1:]).all()


def test_crossed_book_is_detected():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0)], [(101.0, 1.0)]))
    book.apply_delta(delta(bids=[(101.0, 2.0)]))
    assert book.crossed()


def test_newer_best_bid_offer_overrides_the_depth_top_and_older_does_not():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.5), (102.0, 3.0)], sequence=10))
    book.apply_bbo(bbo(99.0, 0.5, 101.0, 1.5, sequence=9))  # older than the depth: ignored
    assert tuple(book.top_of_book()) == (99.0, 1.0, 101.0, 1.5)
    book.apply_bbo(bbo(98.0, 0.7, 100.0, 0.1, sequence=12))  # 99 bid gone, 100 ask new, per the ticker
    assert tuple(book.top_of_book()) == (98.0, 0.7, 100.0, 0.1)
    assert tuple(book.depth_top()) == (99.0, 1.0, 101.0, 1.5)
    top = book.top_levels(3)
    assert list(top.bid_prices[:1]) == [98.0] and list(top.bid_sizes[:1]) == [0.7]
    assert math.isnan(top.bid_prices[1])  # below 98 the depth book is used, and it has nothing there
    assert list(top.ask_prices) == [100.0, 101.0, 102.0] and list(top.ask_sizes) == [0.1, 1.5, 3.0]
    book.apply_delta(delta(bids=[(99.0, 0.0), (98.0, 0.7)], asks=[(100.0, 0.1)], sequence=12))
    assert tuple(book.top_of_book()) == tuple(book.depth_top()) == (98.0, 0.7, 100.0, 0.1)


def test_max_depth_keeps_the_best_levels():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], max_depth=2))
    book.apply_delta(delta(bids=[(99.5, 1.0)], asks=[(100.5, 1.0)]))
    assert list(book.bids) == [99.0, 99.5] and list(book.asks) == [100.5, 101.0]


def test_invalidate_forgets_every_level():
    book = OrderBook()
    book.apply_snapshot(snapshot([(99.0, 1.0)], [(101.0, 1.0)]))
    book.invalidate("sequence gap: test")
    assert not book.ready and book.describe() == "stale: sequence gap: test"
    assert book.depth_top() is None and book.top_of_book() is None
