"""Features on hand-computed books, and the properties every feature row must have."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from operators.features import FEATURE_INDEX, FEATURE_NAMES, FEATURES, formulas
from operators.features.micro_price import MicroPriceTable, estimate_tick, fit_micro_price
from operators.instrument import InstrumentState
from quantumflow.events import BookDelta, BookSnapshot, RawMessage, Trade
from quantumflow.features import markdown_table

INSTRUMENT = "coinbase:TEST-USD"
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def _raw(ts: int) -> RawMessage:
    return RawMessage("coinbase_advanced", ts, b"{}")


def _snapshot(seq, t, bids, asks):
    return BookSnapshot(INSTRUMENT, T0 + t, T0 + t, seq, bids, asks)


def _delta(seq, t, bids=(), asks=()):
    return BookDelta(INSTRUMENT, T0 + t, T0 + t, seq, seq, None, list(bids), list(asks))


def _trade(t, size, side):
    return Trade(INSTRUMENT, T0 + t, T0 + t, "1", 100.0, size, side)


EVENTS = [
    _snapshot(1, 0, [(100.0, 2.0), (99.0, 3.0)], [(101.0, 1.0), (102.0, 4.0)]),
    _delta(2, S // 2, bids=[(100.0, 5.0)]),  # queue grows at the best bid
    _delta(3, 12 * S // 10, asks=[(101.0, 0.0)]),  # best ask emptied: mid up
    _trade(13 * S // 10, 0.5, 1),
    _delta(4, 14 * S // 10, bids=[(100.5, 1.0)]),  # a bid improves the best: mid up again
]


@pytest.fixture(scope="module")
def rows() -> dict[str, np.ndarray]:
    state = InstrumentState(INSTRUMENT, "coinbase_advanced")
    derived = state.on_batch([(event, _raw(event.receive_ts)) for event in EVENTS])
    assert derived.frame.seq.tolist() == [1, 2, 3, 5]  # the trade is event 4 and makes no row
    return {name: derived.features[:, FEATURE_INDEX[name]] for name in FEATURE_NAMES}


def test_registry_lists_every_feature_once_with_definition_and_unit():
    assert len(FEATURES) >= 40
    assert len(set(FEATURE_NAMES)) == len(FEATURES)
    assert all(f.definition and f.unit for f in FEATURES)


def test_docs_list_the_registry():
    docs = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    assert docs.read_text().endswith(markdown_table()), "regenerate the table with: quantumflow features"


def test_prices_and_spread(rows):
    assert rows["mid"].tolist() == [100.5, 100.5, 101.0, 101.25]
    assert rows["spread"].tolist() == [1.0, 1.0, 2.0, 1.5]
    assert rows["spread_bps"][0] == pytest.approx(1e4 / 100.5)
    # weighted mid leans towards the thinner side: (b qa + a qb) / (qb + qa)
    assert rows["weighted_mid"][0] == pytest.approx((100 * 1 + 101 * 2) / 3)
    assert rows["weighted_mid"][3] == pytest.approx((100.5 * 4 + 102 * 1) / 5)
    assert rows["micro_price"].tolist() == rows["weighted_mid"].tolist()  # no table fitted


def test_depth_imbalance_is_cumulated_over_levels(rows):
    assert rows["depth_imbalance_1"][0] == pytest.approx((2 - 1) / 3)
    assert rows["depth_imbalance_2"][0] == pytest.approx((5 - 5) / 10)
    assert rows["depth_imbalance_10"][0] == pytest.approx(0.0)  # levels beyond the book add nothing
    # last state: bids 100.5x1, 100x5, 99x3; asks 102x4
    assert rows["depth_imbalance_1"][3] == pytest.approx((1 - 4) / 5)
    assert rows["depth_imbalance_3"][3] == pytest.approx((9 - 4) / 13)


def test_order_flow_increments_per_level(rows):
    # e1: a snapshot starts afresh (0); bid queue 2 -> 5 (+3); best ask 101x1 gone, new best 102 (+1);
    # new best bid 100.5x1 above 100 (+1)
    assert rows["ofi_1"].tolist() == [0.0, 3.0, 1.0, 1.0]
    assert rows["ofi_1_10e"].tolist() == [0.0, 3.0, 4.0, 5.0]
    # level 2 on the last event: bid 100x5 above the old level 2 (99) (+5); ask level 2 stays empty
    # level 3: bid 99x3 where there was none (+3)
    assert rows["ofi_2_100e"][3] == pytest.approx(4.0 + 5.0)  # ask level 2 emptied on event 3: +4
    assert rows["ofi_3_100e"][3] == pytest.approx(3.0)
    # time windows (t - 1 s, t]: at 1.4 s the rows at 0.5, 1.2 and 1.4 s
    assert rows["ofi_1_1s"].tolist() == [0.0, 3.0, 4.0, 5.0]
    assert rows["ofi_1_10s"][3] == 5.0


def test_trade_flow(rows):
    assert rows["signed_volume_1s"].tolist() == [0.0, 0.0, 0.0, 0.5]
    assert rows["trade_imbalance_1s"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert rows["trade_rate_10s"][3] == pytest.approx(0.1)


def test_returns_and_volatility(rows):
    r3 = 1e4 * math.log(101.0 / 100.5)
    r4 = 1e4 * math.log(101.25 / 101.0)
    assert rows["realized_variance_1s"][2] == pytest.approx(r3**2)
    assert rows["realized_variance_10s"][3] == pytest.approx(r3**2 + r4**2)
    assert rows["bipower_variation_10s"][2] == 0.0
    assert rows["bipower_variation_10s"][3] == pytest.approx(math.pi / 2 * abs(r3) * abs(r4))
    assert rows["mid_return_10e"][3] != rows["mid_return_10e"][3]  # NaN: fewer than 10 events before


def test_times_and_rates(rows):
    assert rows["time_since_mid_change"].tolist() == [0.0, 0.5, 0.0, 0.0]
    assert rows["event_rate_1s"].tolist() == [1.0, 2.0, 2.0, 3.0]
    assert rows["event_rate_10s"][3] == pytest.approx(0.4)


def test_slope_and_depth_buckets_by_hand():
    mid = np.array([10_000.0])
    bids = np.array([[9_999.0, 9_995.0, np.nan]])  # 1 and 5 bps from the mid
    sizes = np.array([[2.0, 3.0, 0.0]])
    distance = formulas.distance_bps(bids, mid)
    assert distance[0, :2] == pytest.approx([1.0, 5.0])
    assert formulas.depth_within(distance, sizes, 1.0)[0] == 2.0
    assert formulas.depth_within(distance, sizes, 5.0)[0] == 5.0
    # cumulative 2 at 1 bps, 5 at 5 bps: (1*2 + 5*5) / (1 + 25)
    assert formulas.book_slope(distance, sizes)[0] == pytest.approx(27 / 26)


def test_micro_price_table_is_antisymmetric_and_leans_with_imbalance():
    rng = np.random.default_rng(7)
    n = 20_000
    bid_size = rng.exponential(1.0, n)
    ask_size = rng.exponential(1.0, n)
    imbalance = bid_size / (bid_size + ask_size)
    # the mid moves up a tick with probability growing with the imbalance
    moves = np.where(rng.random(n) < 0.1, np.where(rng.random(n) < imbalance, 1.0, -1.0), 0.0)
    mid = 100.005 + np.concatenate([[0.0], np.cumsum(moves[:-1])]) * 0.01
    table = fit_micro_price(mid, np.full(n, 0.01), bid_size, ask_size, tick=0.01)
    g = table.adjustment_ticks[0]
    assert np.all(np.diff(g) > 0)
    assert g == pytest.approx(-g[::-1], abs=1e-9)
    micro = table.apply(np.array([100.0]), np.array([0.01]), np.array([9.0]), np.array([1.0]), np.array([0.0]))
    assert micro[0] == pytest.approx(100.0 + g[-1] * 0.01)
    np.testing.assert_array_equal(MicroPriceTable.from_dict(table.to_dict()).adjustment_ticks, table.adjustment_ticks)


def test_estimate_tick_ignores_float_noise():
    assert estimate_tick(np.array([100.0, 100.01, 100.03, 100.02 + 1e-12])) == 0.01


book_levels = st.lists(
    st.tuples(st.integers(1, 40), st.floats(0.0, 5.0, allow_nan=False).map(lambda q: round(q, 3))),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(book_levels, book_levels, st.integers(1, 400_000_000)), min_size=2, max_size=60),
    st.lists(st.integers(1, 10), min_size=1, max_size=10),
)
def test_features_do_not_depend_on_batch_boundaries(changes, cuts):
    """Any cut of the same events into batches gives bit-identical rows, with the state pickled and
    restored between batches as a snapshot of the flow does."""
    events, t = [_snapshot(1, 0, [(100.0 - i, 1.0) for i in range(12)], [(101.0 + i, 1.0) for i in range(12)])], 0
    for seq, (bids, asks, dt) in enumerate(changes, 2):
        t += dt
        events.append(_delta(seq, t, [(101.0 - b, q) for b, q in bids], [(100.0 + a, q) for a, q in asks]))
    whole = InstrumentState(INSTRUMENT, "coinbase_advanced")
    expected = whole.on_batch([(e, _raw(e.receive_ts)) for e in events])
    pieces, start = [], 0
    state = InstrumentState(INSTRUMENT, "coinbase_advanced")
    for cut in [*cuts, len(events)]:
        part = events[start : start + cut]
        start += cut
        if part:
            pieces.append(state.on_batch([(e, _raw(e.receive_ts)) for e in part]).features)
            state = pickle.loads(pickle.dumps(state))
    got = np.vstack(pieces)
    np.testing.assert_array_equal(got, expected.features)


def test_a_snapshot_without_a_row_still_resets_the_next_row_in_a_later_batch():
    events = [
        _snapshot(1, 0, [(100.0, 2.0)], [(101.0, 1.0)]),
        _snapshot(2, S, [(100.0, 2.0)], []),  # one-sided: no row
        _delta(3, 2 * S, asks=[(102.0, 1.0)]),
    ]
    whole = InstrumentState(INSTRUMENT, "coinbase_advanced").on_batch([(e, _raw(e.receive_ts)) for e in events])
    state = InstrumentState(INSTRUMENT, "coinbase_advanced")
    state.on_batch([(e, _raw(e.receive_ts)) for e in events[:2]])
    after_cut = state.on_batch([(events[2], _raw(events[2].receive_ts))])
    assert whole.frame.reset.tolist() == [True, True]
    assert after_cut.frame.reset.tolist() == [True]
    np.testing.assert_array_equal(after_cut.features, whole.features[1:])
    assert after_cut.features[0, FEATURE_INDEX["ofi_1"]] == 0.0


def test_one_huge_size_does_not_drown_later_small_ones():
    """A fat-finger trade of 1e17 inflates the running totals; once it has left every window
    (and the totals have restarted), small trades add up exactly again."""
    events = [_snapshot(1, 0, [(100.0, 1.0)], [(101.0, 1.0)]), _trade(S // 2, 1e17, 1)]
    for i in range(2, 10_000):
        t = S + i * S // 100  # a book event every 10 ms, a small buy every 100 ms
        events.append(_delta(i, t, bids=[(100.0, 1.0 + i % 7)]))
        if i % 10 == 0:
            events.append(_trade(t + 1, 0.001, 1))
    rows = InstrumentState(INSTRUMENT, "coinbase_advanced").on_batch([(e, _raw(e.receive_ts)) for e in events])
    assert rows.features[0, FEATURE_INDEX["signed_volume_10s"]] == 0.0
    assert rows.features[1, FEATURE_INDEX["signed_volume_1s"]] == 1e17  # the huge one, at the next book event
    last = rows.features[-1]
    assert last[FEATURE_INDEX["signed_volume_1s"]] == pytest.approx(0.010, rel=1e-9)
    assert last[FEATURE_INDEX["trade_imbalance_10s"]] == 1.0
    assert last[FEATURE_INDEX["trade_rate_10s"]] == pytest.approx(10.0)


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(1, 10)), elements=st.floats(width=64)),
    st.sampled_from([-np.inf, np.inf, 0.0]),
)
def test_the_quick_nan_to_num_is_numpys_bit_for_bit(values, nan):
    expected = np.nan_to_num(values, nan=nan)
    np.testing.assert_array_equal(formulas.nan_to_num(values, nan).view(np.int64), expected.view(np.int64))
