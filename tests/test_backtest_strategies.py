"""The backtest's strategies driven by hand-built views and signals (no engine, no venue): the orders they
send, the moments they send them, and the execution algorithms' shortfall worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.execution import Immediate, PredictiveExecution, Twap, shortfall_summary
from backtest.follow import FollowSignal, RandomSignal
from backtest.market_maker import MarketMaker, uncertainty
from backtest.orders import BUY, SELL, TAKER, Cancel, Fill, MarketView, Order, Signal
from backtest.risk import RiskOverlay
from backtest.strategies import STRATEGIES, make

S = 1_000_000_000
HORIZONS = ("10", "10s")
UP, DOWN, FLAT = (0.1, 0.2, 0.7), (0.7, 0.2, 0.1), (0.2, 0.6, 0.2)


def signal(seq: int, probs: tuple[float, float, float], ts: int | None = None) -> Signal:
    """The same probabilities at both horizons."""
    return Signal(seq * S if ts is None else ts, seq, HORIZONS, np.array([probs, probs], dtype=float))


def view(
    ts: int,
    mid: float = 100.0,
    sig: Signal | None = None,
    *,
    spread: float = 0.02,
    bid_size: float = 1.0,
    position: float = 0.0,
    working: dict | None = None,
    vol: float | None = None,
) -> MarketView:
    return MarketView(ts, ts, mid - spread / 2, mid + spread / 2, bid_size, 1.0, sig, vol, position, 0.0, working or {})


class InstantVenue:
    """Fills every market order at once at the touch, so tests can run a strategy over a sequence."""

    def __init__(self, strategy) -> None:
        self.strategy = strategy
        self.position = 0.0
        self.sent: list[tuple[int, Order]] = []  # (view index, order)

    def step(self, i: int, v: MarketView) -> list:
        requests = self.strategy.on_event(v._replace(position=self.position))
        for r in requests:
            if isinstance(r, Order) and r.price is None:
                self.sent.append((i, r))
                self.position += r.side * r.qty
                price = v.ask if r.side == BUY else v.bid
                self.strategy.on_fill(Fill(r.id, v.ts, r.side, price, r.qty, TAKER, 0.0, 0.0, r.tag))
        return requests


# ---- follow the signal, and the random null


def test_follow_enters_once_per_signal_and_exits_on_the_time_horizon():
    follow = FollowSignal(horizon="10s", threshold=0.6, qty=0.1)
    up = signal(1, UP)
    [entry] = follow.on_event(view(1 * S, sig=up))
    assert (entry.side, entry.qty, entry.price, entry.tag) == (BUY, 0.1, None, "entry")
    for t in range(2, 11):  # the same signal seen again, and a new one the same way: nothing
        assert follow.on_event(view(t * S, sig=up if t < 5 else signal(5, UP), position=0.1)) == []
    [exit_] = follow.on_event(view(11 * S, sig=signal(5, UP), position=0.1))  # entry 1 s + 10 s
    assert (exit_.side, exit_.qty, exit_.tag) == (SELL, 0.1, "exit")
    assert exit_.id != entry.id
    assert follow.on_event(view(12 * S, sig=signal(5, UP))) == []  # that signal was acted on already


def test_follow_ignores_signals_below_the_threshold_or_flat():
    follow = FollowSignal(horizon="10s", threshold=0.75, qty=0.1)
    assert follow.on_event(view(S, sig=signal(1, UP))) == []  # 0.7 < 0.75
    assert follow.on_event(view(2 * S, sig=signal(2, (0.05, 0.9, 0.05)))) == []  # flat is no direction
    assert follow.on_event(view(3 * S, sig=signal(3, (0.8, 0.1, 0.1))))[0].side == SELL


def test_follow_exits_after_the_event_horizon_counted_in_changes_of_the_top():
    follow = FollowSignal(horizon="10", threshold=0.6, qty=0.1)
    assert len(follow.on_event(view(0, sig=signal(1, DOWN)))) == 1
    for t in range(1, 20):  # the top does not change: the event horizon does not advance, whatever the time
        assert follow.on_event(view(t * S, sig=signal(1, DOWN), position=-0.1)) == []
    for k in range(1, 10):  # nine changes of the best bid's size
        assert follow.on_event(view((20 + k) * S, sig=signal(1, DOWN), position=-0.1, bid_size=1 + k)) == []
    [exit_] = follow.on_event(view(30 * S, sig=signal(1, DOWN), position=-0.1, bid_size=11))
    assert (exit_.side, exit_.qty) == (BUY, 0.1)


def test_follow_exits_on_a_flip_and_enters_the_other_way_on_the_same_signal():
    follow = FollowSignal(horizon="10s", threshold=0.6, qty=0.1)
    follow.on_event(view(S, sig=signal(1, UP)))
    out = follow.on_event(view(2 * S, sig=signal(2, DOWN), position=0.1))
    assert [(o.side, o.qty, o.tag) for o in out] == [(SELL, 0.1, "exit"), (SELL, 0.1, "entry")]
    [exit_] = follow.on_event(view(12 * S, position=-0.1))
    assert (exit_.side, exit_.qty) == (BUY, 0.1)


def test_follow_exit_counts_an_entry_whose_fill_is_not_reported_yet():
    follow = FollowSignal(horizon="10s", threshold=0.6, qty=0.1)
    [entry] = follow.on_event(view(S, sig=signal(1, UP)))
    in_flight = {entry.id: entry}  # the fill's report has not come back: position still 0
    [exit_] = follow.on_event(view(2 * S, sig=signal(2, DOWN), working=in_flight))[:1]
    assert (exit_.side, exit_.qty) == (SELL, 0.1)
    refused = FollowSignal(horizon="10s", threshold=0.6, qty=0.1)
    refused.on_event(view(S, sig=signal(1, UP)))
    assert refused.on_event(view(11 * S)) == []  # entry gone without a fill (a limit refused it): nothing to undo


def run_on_random_signals(strategy, n: int = 3000) -> InstantVenue:
    rng = np.random.default_rng(7)
    venue = InstantVenue(strategy)
    sig = None
    for i in range(n):
        if rng.random() < 0.2:
            probs = rng.dirichlet([1, 1, 1])
            sig = Signal(i * S // 4, i, HORIZONS, np.array([probs, probs]))
        venue.step(i, view(i * S // 4, mid=100 + 0.01 * i, sig=sig))
    return venue


def test_random_trades_at_the_same_views_as_follow_as_often_with_other_directions():
    follow = run_on_random_signals(FollowSignal("10s", 0.55, 0.1))
    null = run_on_random_signals(RandomSignal("10s", 0.55, 0.1, seed=3))
    assert len(follow.sent) > 50
    assert [(i, o.tag) for i, o in follow.sent] == [(i, o.tag) for i, o in null.sent]
    entries = [o.side for _, o in follow.sent if o.tag == "entry"]
    random_entries = [o.side for _, o in null.sent if o.tag == "entry"]
    assert entries != random_entries
    assert 0.3 < random_entries.count(BUY) / len(random_entries) < 0.7
    assert abs(follow.position) <= 0.1 + 1e-9 and abs(null.position) <= 0.1 + 1e-9
    again = run_on_random_signals(RandomSignal("10s", 0.55, 0.1, seed=3))
    assert [o for _, o in again.sent] == [o for _, o in null.sent]  # seeded: the same run twice


# ---- the market maker


def quotes(requests) -> dict[int, float]:
    return {r.side: r.price for r in requests if isinstance(r, Order)}


def test_market_maker_skews_with_the_prediction_and_widens_when_unsure():
    def mm():
        return MarketMaker(qty=0.01, half_spread_bps=2, skew_bps=4, widen_bps=3, max_inventory=0.05, tick=0.0001)

    v = view(0, mid=10_000.0, spread=0.01)
    up = quotes(mm().on_event(v._replace(signal=signal(1, UP))))
    down = quotes(mm().on_event(v._replace(signal=signal(1, DOWN))))
    assert up[BUY] > down[BUY] and up[SELL] > down[SELL]
    # skew 4 bps x (0.7 - 0.1) = 2.4 bps of 10,000 = 2.4 on the mid, half spread 2 + 3 x uncertainty
    half = 2 + 3 * uncertainty(np.array(UP))
    assert up[BUY] == pytest.approx(10_000 * (1 + 2.4e-4) * (1 - half / 1e4), abs=1e-4)
    sure = quotes(mm().on_event(v._replace(signal=signal(1, (0.01, 0.98, 0.01)))))
    unsure = quotes(mm().on_event(v._replace(signal=signal(1, (1 / 3, 1 / 3, 1 / 3)))))
    assert unsure[SELL] - unsure[BUY] > sure[SELL] - sure[BUY]
    assert unsure[SELL] - unsure[BUY] == pytest.approx(10_000 * 2 * (2 + 3) / 1e4, abs=1e-3)


def test_market_maker_widens_when_the_volatility_forecast_jumps():
    mm = MarketMaker(half_spread_bps=1, widen_bps=2, requote_bps=0.1)
    calm = quotes(mm.on_event(view(0, mid=60_000.0, vol=2.0)))
    working = {}
    for t in range(1, 120):  # a calm trailing level, quotes working
        working = {o.id: o for o in mm._quotes.values()}
        mm.on_event(view(t * S, mid=60_000.0, vol=2.0, working=working))
    wild = quotes(mm.on_event(view(120 * S, mid=60_000.0, vol=6.0, working={o.id: o for o in mm._quotes.values()})))
    # no signal: fully unsure; calm: a half spread of 1 + 2 x 1 bps; the jump adds 2 x (6 / 2 - 1) bps a side
    assert calm[SELL] - calm[BUY] == pytest.approx(60_000 * 2 * 3 / 1e4, abs=0.02)
    assert wild[SELL] - wild[BUY] == pytest.approx(60_000 * 2 * 7 / 1e4, abs=0.02)


def test_market_maker_never_crosses_and_stops_a_side_at_max_inventory():
    mm = MarketMaker(qty=0.01, half_spread_bps=0.5, skew_bps=50, widen_bps=0, max_inventory=0.02)
    v = view(0, mid=60_000.0, spread=0.01, sig=signal(1, (0.0, 0.0, 1.0)))
    q = quotes(mm.on_event(v))
    assert q[BUY] == v.bid  # the wanted bid (50 bps above the mid) would cross: it sits at the best bid
    assert q[SELL] > v.ask
    leaning_down = MarketMaker(skew_bps=50, half_spread_bps=0.5, widen_bps=0)
    down = quotes(leaning_down.on_event(v._replace(signal=signal(1, (1.0, 0.0, 0.0)))))
    assert down[SELL] == v.ask and down[BUY] < v.bid
    full = MarketMaker(qty=0.01, max_inventory=0.02)
    assert set(quotes(full.on_event(view(0, position=0.02)))) == {SELL}
    assert set(quotes(MarketMaker(qty=0.01, max_inventory=0.02).on_event(view(0, position=-0.015)))) == {BUY}
    # inventory leans the quotes: long, both lower than flat
    flat = quotes(MarketMaker().on_event(view(0, mid=60_000.0)))
    long_ = quotes(MarketMaker().on_event(view(0, mid=60_000.0, position=0.04)))
    assert long_[BUY] < flat[BUY] and long_[SELL] < flat[SELL]


def test_market_maker_does_not_requote_small_moves_but_does_after_a_fill_or_a_big_move():
    mm = MarketMaker(qty=0.01, half_spread_bps=1, widen_bps=0, requote_bps=0.5)
    first = mm.on_event(view(0, mid=60_000.0))
    assert len(first) == 2 and all(isinstance(r, Order) for r in first)
    working = {o.id: o for o in first}
    assert mm.on_event(view(S, mid=60_000.6, working=working)) == []  # 0.1 bps: no change
    moved = mm.on_event(view(2 * S, mid=60_006.0, working=working))  # 1 bps
    assert [type(r) for r in moved] == [Cancel, Order, Cancel, Order]
    assert {r.order_id for r in moved if isinstance(r, Cancel)} == set(working)
    working = {r.id: r for r in moved if isinstance(r, Order)}
    assert mm.on_event(view(3 * S, mid=60_006.0, working=working)) == []
    bid = next(o for o in working.values() if o.side == BUY)
    mm.on_fill(Fill(bid.id, 3 * S, BUY, bid.price, 0.004, "maker", 0.0, 0.0, "quote"))
    after = mm.on_event(view(4 * S, mid=60_006.0, working=working, position=0.004))
    assert sum(isinstance(r, Cancel) for r in after) == 2 and sum(isinstance(r, Order) for r in after) == 2
    gone = {o.id: o for o in after if isinstance(o, Order) and o.side == SELL}  # the bid filled entirely
    [new_bid] = mm.on_event(view(5 * S, mid=60_006.0, working=gone, position=0.014))
    assert new_bid.side == BUY


# ---- execution algorithms


def run_schedule(strategy, seconds: int, sig_at=lambda t: None) -> list[tuple[int, Order]]:
    venue = InstantVenue(strategy)
    for t in range(seconds + 1):
        venue.step(t, view(t * S, sig=sig_at(t)))
    return venue.sent


def test_twap_sends_equal_children_at_equal_intervals_and_alternates_sides():
    sent = run_schedule(Twap(parent_qty=0.1, deadline_s=30, slices=5), 59)
    assert [t for t, _ in sent] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]
    assert all(o.qty == pytest.approx(0.02) for _, o in sent)
    assert [o.side for _, o in sent] == [BUY] * 5 + [SELL] * 5


def test_immediate_sends_the_whole_parent_at_its_start():
    sent = run_schedule(Immediate(parent_qty=0.1, deadline_s=30), 65)
    assert [(t, o.side, o.qty) for t, o in sent] == [(0, BUY, 0.1), (30, SELL, 0.1), (60, BUY, 0.1)]


def test_predictive_buys_early_on_an_up_signal_and_completes_by_the_deadline():
    # slices of 6 s: up at 2 s (slice 0), down through slices 1 and 2, up again at 19 s (slice 3), flat after
    def sig_at(t):
        return signal(1, UP) if t < 6 else signal(2, DOWN) if t < 19 else signal(3, UP) if t < 21 else signal(4, FLAT)

    strategy = PredictiveExecution(parent_qty=0.1, deadline_s=30, slices=5, horizon="10s", threshold=0.6)
    sent = run_schedule(strategy, 30, sig_at)
    # the first parent (a buy): slice 0 at once (up), slices 1 and 2 at their ends, slice 3 early at 19 s,
    # slice 4 at the deadline
    assert [t for t, o in sent if o.side == BUY] == [0, 12, 18, 19, 30]
    for j, (t, _) in enumerate(s for s in sent if s[1].side == BUY):
        assert t <= 6 * (j + 1)  # never later than its slice's end
    assert [p["filled"] for p in strategy.parents()][:1] == [pytest.approx(0.1)]
    assert strategy.parents()[0]["completed"] and strategy.parents()[1]["side"] == SELL


def test_shortfall_worked_by_hand():
    strategy = Immediate(parent_qty=0.1, deadline_s=10)
    [buy] = strategy.on_event(view(0, mid=100.0))
    strategy.on_fill(Fill(buy.id, 1, BUY, 100.1, 0.05, TAKER, 0.01, 0.002))
    strategy.on_fill(Fill(buy.id, 1, BUY, 100.2, 0.05, TAKER, 0.01, 0.002))
    [sell] = strategy.on_event(view(10 * S, mid=100.0))
    strategy.on_fill(Fill(sell.id, 10 * S + 1, SELL, 99.9, 0.1, TAKER, 0.02, 0.0))
    strategy.on_event(view(20 * S, mid=101.0))  # a third parent, never filled (the recording ends)
    first, second, third = strategy.parents()
    # buy: average 100.15, plus (0.02 fees + 0.004 slippage) / 0.1 = 0.24 a unit: 100.39 against 100 = 39 bps
    assert first["avg_price"] == pytest.approx(100.15) and first["shortfall_bps"] == pytest.approx(39.0)
    # sell: 99.9 less 0.02 / 0.1 = 99.7, 0.3 below the arrival mid: 30 bps of cost
    assert second["shortfall_bps"] == pytest.approx(30.0) and second["fills"] == 1
    assert third["arrival_mid"] == 101.0 and not third["completed"] and third["shortfall_bps"] is None
    summary = shortfall_summary(strategy.parents())
    assert summary["parents"] == 3 and summary["parents_completed"] == 2
    assert summary["shortfall_mean_bps"] == pytest.approx(34.5)
    assert summary["shortfall_median_bps"] == pytest.approx(34.5) and summary["shortfall_std_bps"] == pytest.approx(4.5)
    assert shortfall_summary([])["shortfall_mean_bps"] is None


# ---- the risk overlay


def test_risk_overlay_cuts_new_orders_on_a_volatility_jump_and_never_an_exit():
    overlay = RiskOverlay(FollowSignal("10s", 0.6, 0.1), jump_ratio=2.0, cut=0.5)
    venue = InstantVenue(overlay)
    for t in range(95):  # calm: forecast 2 bps; an entry at 90 s goes out whole
        venue.step(t, view(t * S, vol=2.0, sig=signal(1, UP, ts=90 * S) if t >= 90 else None))
    assert [(t, o.qty) for t, o in venue.sent] == [(90, 0.1)]
    assert not overlay.jumping
    # the forecast jumps to 4 x its level with a signal down: the exit goes out whole, the new entry is cut
    out = venue.step(95, view(95 * S, vol=8.0, sig=signal(2, DOWN, ts=95 * S)))
    assert overlay.jumping
    assert [(o.side, o.qty, o.tag) for o in out] == [(SELL, pytest.approx(0.1), "exit"), (SELL, 0.05, "entry")]
    out = venue.step(96, view(96 * S, vol=8.0, sig=signal(3, UP, ts=96 * S)))
    assert [(o.side, o.qty, o.tag) for o in out] == [(BUY, pytest.approx(0.05), "exit"), (BUY, 0.05, "entry")]
    for t in range(97, 107):  # held for the horizon, still in the jump: the exit of 0.05 whole
        out = venue.step(t, view(t * S, vol=8.0, sig=signal(3, UP, ts=96 * S)))
    assert overlay.jumping and [(o.side, o.qty, o.tag) for o in out] == [(SELL, pytest.approx(0.05), "exit")]
    assert overlay.cut_orders == 2 and venue.position == pytest.approx(0)


def test_risk_overlay_with_no_forecast_uses_realized_variance_and_a_cut_of_zero_sends_nothing_new():
    overlay = RiskOverlay(FollowSignal("10s", 0.6, 0.1), jump_ratio=2.0, cut=0.0)
    rng = np.random.default_rng(1)
    mid, t = 60_000.0, 0
    for t in range(0, 120 * 10):  # 120 s of small moves, ten views a second
        mid *= 1 + 1e-5 * rng.standard_normal()  # about 0.1 bps a view
        assert overlay.on_event(view(t * S // 10, mid=mid)) == []
    assert not overlay.jumping
    for k in range(1, 30):  # moves of 3 bps a view
        mid *= 1 + 3e-4 * (1 if k % 2 else -1)
        overlay.on_event(view((t + k) * S // 10, mid=mid))
    assert overlay.jumping
    assert overlay.on_event(view((t + 30) * S // 10, mid=mid, sig=signal(1, UP))) == []  # the entry cut to nothing
    assert overlay.cut_orders == 1
    assert overlay.params()["inner"] == "follow" and overlay.name == "follow+risk"


# ---- the registry


def test_registry_builds_each_strategy_with_defaults_and_says_what_is_wrong_in_one_line():
    for name in STRATEGIES:
        strategy = make(name)
        assert strategy.name == name
        assert strategy.on_event(view(0, mid=60_000.0, sig=signal(1, UP))) is not None
    # settings as a command line reads them: numbers where text is wanted and the other way round
    follow = make("follow", qty=1, horizon=10, threshold="0.6")
    assert follow.params() == {"horizon": "10", "threshold": 0.6, "qty": 1.0}
    known = "follow, random, market-maker, execution"
    with pytest.raises(ValueError, match=f"unknown strategy 'hodl': choose one of {known}"):
        make("hodl")
    with pytest.raises(ValueError, match="unknown setting 'size' for strategy 'follow': it takes horizon, threshold"):
        make("follow", size=1)
    with pytest.raises(ValueError, match=r"setting 'slices' of strategy 'execution' takes a whole number, not 2\.5"):
        make("execution", slices=2.5)
    with pytest.raises(ValueError, match="setting 'qty' of strategy 'market-maker' takes a number, not 'lots'"):
        make("market-maker", qty="lots")
    with pytest.raises(ValueError, match="bad horizon 'soon'"):
        make("follow", horizon="soon")
    # the execution strategy's benchmarks on its settings, without its predictive timing's
    settings = {"parent_qty": 0.2, "deadline_s": 60, "slices": 4, "threshold": 0.7}
    assert make("twap", **settings).params() == {"parent_qty": 0.2, "deadline_s": 60.0, "slices": 4}
    assert make("immediate", **settings).params() == {"parent_qty": 0.2, "deadline_s": 60.0}
    with pytest.raises(ValueError, match="unknown setting 'seed' for strategy 'execution'"):
        make("twap", seed=1)
