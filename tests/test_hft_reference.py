"""The independent engine the backtester's accounting is checked against (tests/hft_reference.py): hftbacktest's
market orders on the real Binance USD-M recording fill at the best price of the book the project rebuilds
from the same messages, and its cash is what those fills make."""

from __future__ import annotations

from pathlib import Path

import pytest
from hft_reference import LOT_SIZE, hft_market_orders

from dataflows.batches import InstrumentStates
from dataflows.recordings import open_recording
from operators.book import TopOfBook

pytest.importorskip("hftbacktest", reason="hftbacktest (a dev dependency) is not installed")

RECORDING = "binance/usdm_btcusdt_20240808.gz"
FIRST_RECEIVE_NS = 1_723_161_255_030_314_667  # the recording's first line
QTY = 0.01
# 10 alternating market orders 30 s apart from 20 s in (past the snapshot's first seconds), off any message's time
SCHEDULE = [(FIRST_RECEIVE_NS + (20 + 30 * i) * 1_000_000_000 + 123_457, 1 - 2 * (i % 2), QTY) for i in range(10)]


@pytest.fixture(scope="module")
def recording(shared_data) -> Path:
    path = shared_data / RECORDING
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


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
