"""Property tests for ``OrderBook`` against a two-dict reference model, and for ``BookSync`` with
Binance spot sequence rules on random valid update-id chains (with a gap punched in, or a repeat)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.book import OrderBook
from operators.feeds.binance import SpotRule
from operators.sync import BookSync
from quantumflow.events import BookDelta, BookSnapshot, DeadLetter, RawMessage, Resync

INSTRUMENT = "binance:TESTUSDT"
FAST = settings(max_examples=200, deadline=None)

# -- reference model ---------------------------------------------------------------------------


class Model:
    """What the book should hold: two plain dicts, price -> size, cut to the snapshot's max depth."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.max_depth: int | None = None
        self.synced = False

    def apply(self, event: BookSnapshot | BookDelta) -> None:
        if type(event) is BookSnapshot:
            self.bids = {p: q for p, q in event.bids if q}
            self.asks = {p: q for p, q in event.asks if q}
            self.max_depth = event.max_depth
            self.synced = True
        else:
            for side, changes in ((self.bids, event.bids), (self.asks, event.asks)):
                for p, q in changes:
                    if q:
                        side[p] = q
                    else:
                        side.pop(p, None)
        if self.max_depth is not None:
            self.bids = {p: self.bids[p] for p in self.best_bids()[: self.max_depth]}
            self.asks = {p: self.asks[p] for p in self.best_asks()[: self.max_depth]}

    def best_bids(self) -> list[float]:
        return sorted(self.bids, reverse=True)

    def best_asks(self) -> list[float]:
        return sorted(self.asks)


def assert_book_equals_model(book: OrderBook, model: Model, n: int = 5) -> None:
    assert dict(book.bids) == model.bids
    assert dict(book.asks) == model.asks
    best_bid = max(model.bids, default=None)
    best_ask = min(model.asks, default=None)

    top = book.depth_top()
    if best_bid is None or best_ask is None:
        assert top is None
    else:
        assert tuple(top) == (best_bid, model.bids[best_bid], best_ask, model.asks[best_ask])

    assert book.crossed() == (best_bid is not None and best_ask is not None and best_bid >= best_ask)

    levels = book.top_levels(n)
    for side, (prices, sizes) in (
        (model.bids, (levels.bid_prices, levels.bid_sizes)),
        (model.asks, (levels.ask_prices, levels.ask_sizes)),
    ):
        best = (model.best_bids() if side is model.bids else model.best_asks())[:n]
        expected_prices = np.array(best + [np.nan] * (n - len(best)), dtype=float)
        expected_sizes = np.array([side[p] for p in best] + [0.0] * (n - len(best)), dtype=float)
        assert prices.shape == sizes.shape == (n,)
        np.testing.assert_array_equal(prices, expected_prices)  # NaN padding compares equal
        np.testing.assert_array_equal(sizes, expected_sizes)


# -- OrderBook vs model ------------------------------------------------------------------------

GRID = [float(p) for p in range(1, 13)]  # one grid for both sides: collisions and crossings happen
sizes = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 7.25]) | st.floats(0.001, 1e6)
snapshot_side = st.dictionaries(st.sampled_from(GRID), sizes, max_size=9).map(lambda d: list(d.items()))
delta_side = st.lists(st.tuples(st.sampled_from(GRID), sizes), max_size=6)  # repeats apply in order
snapshots = st.builds(
    lambda bids, asks, depth: BookSnapshot(INSTRUMENT, None, 0, None, bids, asks, depth),
    snapshot_side,
    snapshot_side,
    st.none() | st.none() | st.integers(1, 5),
)
deltas = st.builds(
    lambda bids, asks: BookDelta(INSTRUMENT, None, 0, None, None, None, bids, asks), delta_side, delta_side
)


@FAST
@given(events=st.lists(snapshots | deltas | deltas, max_size=25), n=st.integers(1, 12))
def test_book_matches_reference_model(events, n):
    book, model = OrderBook(), Model()
    assert_book_equals_model(book, model, n)
    for event in events:
        (book.apply_snapshot if type(event) is BookSnapshot else book.apply_delta)(event)
        model.apply(event)
        assert_book_equals_model(book, model, n)
        assert book.ready == model.synced


@FAST
@given(
    depth=st.integers(1, 6),
    bids=st.lists(st.sampled_from(GRID[:6]), min_size=1, unique=True),
    asks=st.lists(st.sampled_from(GRID[6:]), min_size=1, unique=True),
    later=st.lists(deltas, max_size=10),
)
def test_max_depth_keeps_only_the_best_levels(depth, bids, asks, later):
    snapshot = BookSnapshot(INSTRUMENT, None, 0, None, [(p, 1.0) for p in bids], [(p, 2.0) for p in asks], depth)
    book = OrderBook()
    book.apply_snapshot(snapshot)
    assert list(book.bids) == sorted(bids)[-depth:]  # the highest bids
    assert list(book.asks) == sorted(asks)[:depth]  # the lowest asks
    model = Model()
    model.apply(snapshot)
    for delta in later:
        book.apply_delta(delta)
        model.apply(delta)
        assert len(book.bids) <= depth and len(book.asks) <= depth
        assert_book_equals_model(book, model)


# -- BookSync, Binance spot --------------------------------------------------------------------

BID_GRID = [float(p) for p in range(1, 11)]  # bids below asks, so that no delta crosses the book
ASK_GRID = [float(p) for p in range(11, 21)]
size_or_zero = st.sampled_from([0.0, 0.0, 1.0, 2.5, 4.0])


def side_changes(grid: list[float]):
    return st.lists(st.tuples(st.sampled_from(grid), size_or_zero), max_size=4)


def side_levels(grid: list[float]):
    return st.dictionaries(st.sampled_from(grid), size_or_zero, max_size=6).map(lambda d: list(d.items()))


def book_snapshot(snapshot_id: int):
    return st.builds(
        lambda bids, asks: BookSnapshot(INSTRUMENT, None, 0, snapshot_id, bids, asks),
        side_levels(BID_GRID),
        side_levels(ASK_GRID),
    )


def raw_of(event: BookDelta | BookSnapshot) -> RawMessage:
    ids = f"{event.first_sequence}..{event.sequence}" if type(event) is BookDelta else f"snapshot {event.sequence}"
    return RawMessage("binance", event.receive_ts, ids.encode(), "TESTUSDT")


@st.composite
def delta_chains(draw, min_size: int = 2) -> list[BookDelta]:
    """A valid spot diff chain: every ``U`` is the previous ``u`` + 1, each diff covering 1-4 ids."""
    last = draw(st.integers(1, 10**12)) - 1
    chain = []
    for i in range(draw(st.integers(min_size, 12))):
        first = last + 1
        last = first + draw(st.integers(0, 3))
        bids, asks = draw(side_changes(BID_GRID)), draw(side_changes(ASK_GRID))
        chain.append(BookDelta(INSTRUMENT, 1_000 + i, 2_000 + i, first, last, None, bids, asks))
    return chain


@st.composite
def spot_scenarios(draw, applied_at_least: int = 0):
    """A chain, a snapshot whose id lies in it, and where the snapshot arrives among the diffs.

    Binance spot: diffs with ``u <= lastUpdateId`` are dropped; the first applied one must have
    ``U <= lastUpdateId + 1 <= u``. The snapshot arrives after the diff that bridges it (so that
    diff is buffered), or just before it when that diff starts exactly at ``lastUpdateId + 1``.
    ``applied_at_least`` diffs of the chain come after the snapshot id.
    """
    chain = draw(delta_chains(min_size=max(2, applied_at_least + 1)))
    top = chain[-applied_at_least].sequence - 1 if applied_at_least else chain[-1].sequence
    snapshot_id = draw(st.integers(chain[0].first_sequence - 1, top))
    bridge = next((i for i, d in enumerate(chain) if d.sequence > snapshot_id), len(chain))
    exact = bridge == len(chain) or chain[bridge].first_sequence == snapshot_id + 1
    arrival = draw(st.integers(bridge if exact else bridge + 1, len(chain)))
    snapshot = draw(book_snapshot(snapshot_id))
    return chain, snapshot, arrival


def expected_book(snapshot: BookSnapshot, chain: list[BookDelta]) -> Model:
    model = Model()
    model.apply(snapshot)
    for delta in chain:
        if delta.sequence > snapshot.sequence:
            model.apply(delta)
    return model


def feed(sync: BookSync, events) -> list:
    return [out for event in events for out in sync.on_event(event, raw_of(event))]


@FAST
@given(scenario=spot_scenarios())
def test_spot_sync_on_a_valid_chain_ends_live_and_exact(scenario):
    chain, snapshot, arrival = scenario
    sync = BookSync(INSTRUMENT, "binance", SpotRule())
    assert feed(sync, chain[:arrival]) == []  # buffered while waiting for the snapshot
    assert not sync.book.ready
    outputs = feed(sync, [snapshot, *chain[arrival:]])
    applied = [d for d in chain if d.sequence > snapshot.sequence]
    assert outputs == [snapshot, *applied]  # no resync, no dead letter
    assert sync.book.ready
    assert sync.book.sequence == (applied[-1].sequence if applied else snapshot.sequence)
    assert_book_equals_model(sync.book, expected_book(snapshot, chain))


@FAST
@given(scenario=spot_scenarios(applied_at_least=2), data=st.data())
def test_spot_sync_gap_resyncs_until_the_next_snapshot(scenario, data):
    chain, snapshot, arrival = scenario
    bridge = next(i for i, d in enumerate(chain) if d.sequence > snapshot.sequence)
    missing = data.draw(st.integers(bridge, len(chain) - 2), label="deleted diff")  # one that would be applied
    events = [*chain[:arrival], snapshot, *chain[arrival:]]
    events.remove(chain[missing])

    sync = BookSync(INSTRUMENT, "binance", SpotRule())
    outputs: list = []
    resynced_at = None
    for event in events:
        out = sync.on_event(event, raw_of(event))
        outputs.extend(out)
        if resynced_at is None and any(type(o) is Resync for o in out):
            resynced_at = event
            assert not sync.book.ready
        elif resynced_at is not None:
            assert out == [] and not sync.book.ready  # stale: buffered, nothing applied
    resyncs = [o for o in outputs if type(o) is Resync]
    assert len(resyncs) == 1 and not [o for o in outputs if type(o) is DeadLetter]
    # the book stopped at the last diff before the hole
    last_good = chain[missing - 1].sequence if missing > bridge else snapshot.sequence
    assert resyncs[0].sequence == last_good
    assert not sync.book.ready and not sync.book.bids and not sync.book.asks

    # a new snapshot at or after the missing diff brings the book back, exactly
    snapshot_id = data.draw(st.integers(chain[missing].sequence, chain[-1].sequence), label="new snapshot id")
    fresh = data.draw(book_snapshot(snapshot_id), label="new snapshot")
    out = sync.on_event(fresh, raw_of(fresh))
    remaining = [d for d in chain[missing + 1 :] if d.sequence > snapshot_id]
    assert out == [fresh, *remaining]
    assert sync.book.ready
    assert_book_equals_model(sync.book, expected_book(fresh, chain[missing + 1 :]))


@FAST
@given(scenario=spot_scenarios(applied_at_least=1), data=st.data())
def test_spot_sync_repeated_diff_is_an_out_of_order_dead_letter(scenario, data):
    chain, snapshot, arrival = scenario
    sync = BookSync(INSTRUMENT, "binance", SpotRule())
    feed(sync, [*chain[:arrival], snapshot, *chain[arrival:]])
    assert sync.book.ready
    before = (dict(sync.book.bids), dict(sync.book.asks), sync.book.sequence)
    applied = [d for d in chain if d.sequence > snapshot.sequence]
    repeat = data.draw(st.sampled_from(applied), label="repeated diff")
    out = sync.on_event(repeat, raw_of(repeat))
    assert len(out) == 1 and type(out[0]) is DeadLetter
    assert "out-of-order" in out[0].reason
    assert out[0].raw == raw_of(repeat).payload and out[0].instrument == INSTRUMENT
    assert sync.book.ready
    assert (dict(sync.book.bids), dict(sync.book.asks), sync.book.sequence) == before
    assert_book_equals_model(sync.book, expected_book(snapshot, chain))


@st.composite
def early_snapshot_scenarios(draw):
    """The REST snapshot arrives before the diff that bridges it, its id strictly inside that diff's
    ``U..u`` (so ``U <= lastUpdateId + 1 <= u`` holds but ``U != lastUpdateId + 1``)."""
    chain = draw(delta_chains(min_size=1))
    bridge = draw(st.integers(0, len(chain) - 1))
    last = chain[bridge - 1].sequence if bridge else chain[0].first_sequence - 1
    rebuilt = []
    for i, delta in enumerate(chain[bridge:]):  # give the bridging diff at least two ids
        first = last + 1
        last = first + (delta.sequence - delta.first_sequence) + (1 if i == 0 else 0)
        rebuilt.append(delta._replace(first_sequence=first, sequence=last))
    chain = chain[:bridge] + rebuilt
    snapshot_id = draw(st.integers(chain[bridge].first_sequence, chain[bridge].sequence - 1))
    arrival = draw(st.integers(0, bridge))
    return chain, draw(book_snapshot(snapshot_id)), arrival


@settings(max_examples=50, deadline=None)
@given(scenario=early_snapshot_scenarios())
def test_spot_sync_snapshot_before_its_bridging_diff(scenario):
    chain, snapshot, arrival = scenario
    sync = BookSync(INSTRUMENT, "binance", SpotRule())
    outputs = feed(sync, [*chain[:arrival], snapshot, *chain[arrival:]])
    assert not [o for o in outputs if type(o) is Resync]
    assert sync.book.ready
    assert_book_equals_model(sync.book, expected_book(snapshot, chain))
