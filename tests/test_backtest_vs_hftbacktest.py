"""The backtester's fills and P&L against an independent engine, hftbacktest (a dev dependency; the runner and
how the two engines differ are in tests/hft_reference.py), on the real Binance USD-M recording with zero
latency and zero costs: hftbacktest's market orders fill at the best price of the book the project rebuilds
from the same messages, and the same market orders through this backtester fill alike, with the same cash
to the cent."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hft_reference import LOT_SIZE, hft_market_orders

from backtest.costs import Costs, Limits
from backtest.engine import simulate
from backtest.latency import ConstantLatency
from backtest.orders import Fill, MarketView, Order
from backtest.queues import RiskAverseQueue
from backtest.signals import Signals
from backtest.venue import SimulatedVenue
from dataflows.batches import InstrumentStates
from dataflows.recordings import open_recording
from operators.book import TopOfBook

pytest.importorskip("hftbacktest", reason="hftbacktest (a dev dependency) is not installed")

RECORDING = "binance/usdm_btcusdt_20240808.gz"
INSTRUMENT = "binance_usdm:BTCUSDT"
FIRST_RECEIVE_NS = 1_723_161_255_030_314_667
QTY = 0.01
ORDERS = 30
# 10 alternating market orders 30 s apart from 20 s in (past the snapshot's first seconds), off any message's time
SCHEDULE = [(FIRST_RECEIVE_NS + (20 + 30 * i) * 1_000_000_000 + 123_457, 1 - 2 * (i % 2), QTY) for i in range(10)]
FREE = Costs(fixed_fee=0.0, maker_bps=0.0, taker_bps=0.0, slippage_bps=0.0)


class AtTimes:
    """Market orders of alternating sides at the first book event at or after each time (test only)."""

    name = "at-times"

    def __init__(self, times: list[int], qty: float) -> None:
        self.times = list(times)
        self.qty = qty
        self.sent: list[tuple[int, int, float]] = []  # (ts sent, side, qty)
        self.ids = itertools.count(1)

    def on_event(self, view: MarketView) -> list[Order]:
        if not self.times or view.ts < self.times[0]:
            return []
        self.times.pop(0)
        side = 1 if len(self.sent) % 2 == 0 else -1
        self.sent.append((view.ts, side, self.qty))
        return [Order(next(self.ids), side, self.qty)]

    def on_fill(self, fill: Fill) -> None:
        pass

    def params(self) -> dict:
        return {}


@pytest.fixture(scope="module")
def recording(shared_data) -> Path:
    path = shared_data / RECORDING
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def no_signals() -> Signals:
    empty = np.empty(0, dtype=np.int64)
    return Signals((), empty, empty, np.empty((0, 0, 3)), empty, np.empty(0))


def test_the_same_market_orders_fill_alike_and_account_to_the_cent(recording, tmp_path):
    # every 10 s from 20 s in: past the first seconds, where hftbacktest's snapshot handling differs (point 5)
    times = [FIRST_RECEIVE_NS + (20 + 10 * i) * 1_000_000_000 for i in range(ORDERS)]
    strategy = AtTimes(times, QTY)
    venue = SimulatedVenue(FREE, RiskAverseQueue(), ConstantLatency(0))
    # depth only: hftbacktest reads no bookTicker (point 4)
    run = simulate([recording], INSTRUMENT, strategy, no_signals(), venue, Limits(capital=1e7), depth_only=True)
    ours = {}
    for fill in run.fills:
        ours.setdefault(fill.order_id, []).append((fill.price, fill.qty))
    assert len(strategy.sent) == ORDERS and len(ours) == ORDERS

    theirs = hft_market_orders(recording, strategy.sent, tmp_path)
    for order_id, (sent, order) in enumerate(zip(strategy.sent, theirs["orders"], strict=True), start=1):
        assert not order["walks"], order  # hftbacktest fills a market order at one price (point 6)
        assert ours[order_id] == [(price, qty) for _, price, qty in order["fills"]], (sent, order)
    assert run.account.position == pytest.approx(theirs["position"], abs=1e-9) == pytest.approx(0.0, abs=1e-9)
    assert run.account.cash - 1e7 == pytest.approx(theirs["balance"], abs=0.005)


def project_tops(recording: Path, times: list[int]) -> list[TopOfBook]:
    """The depth book's best bid and ask (``depth_top``: hftbacktest reads no ``bookTicker``) after the last
    event received at or before each of ``times``, through the project's own parse and sync."""
    tops: list[TopOfBook] = []
    last: list[TopOfBook | None] = [None]

    def observe(event, raw, outputs) -> None:
        while len(tops) < len(times) and times[len(tops)] < event.receive_ts:
            tops.append(last[0])
        book = states.book(event.instrument)
        last[0] = book.depth_top() if book.ready else None

    states = InstrumentStates(observe=observe)
    for _ in states.replay(open_recording(recording)):
        pass
    return tops + [last[0]] * (len(times) - len(tops))


def test_hftbacktest_market_orders_fill_at_the_project_books_best_and_account_to_the_cent(recording, tmp_path):
    result = hft_market_orders(recording, SCHEDULE, tmp_path)
    tops = project_tops(recording, [at for at, _, _ in SCHEDULE])
    assert result["offset_ns"] == 1_272_156_851  # the recorder's clock ran 1.27 s behind Binance's
    cash = 0.0
    for (at, side, qty), order, top in zip(SCHEDULE, result["orders"], tops, strict=True):
        assert order["status"] == "filled" and not order["walks"], order
        [(fill_ns, price, fill_qty)] = order["fills"]
        best_price, best_qty = (top.ask_price, top.ask_size) if side > 0 else (top.bid_price, top.bid_size)
        assert (fill_ns, price, fill_qty) == (at, best_price, qty)
        assert order["best_qty"] == pytest.approx(best_qty, abs=LOT_SIZE / 10)
        cash -= side * price * qty
    assert result["position"] == pytest.approx(0.0, abs=LOT_SIZE / 10)
    assert result["num_trades"] == len(SCHEDULE) and result["fee"] == 0.0
    assert result["balance"] == pytest.approx(cash, abs=0.005)
    assert result["equity"] == pytest.approx(cash, abs=0.005)  # flat: no mark
    assert result["end_ns"] == 1_723_161_599_833_492_584  # the last line's receive time
