"""An independent engine for the backtester's accounting: hftbacktest (a dev dependency) run on a Binance USD-M
recording with market orders at fixed receive times, zero latency and zero fees, so that its fills and P&L
can be set beside the project's backtester on the same schedule.

``hft_market_orders(recording, schedule, workdir)`` converts the recording with hftbacktest's own converter
(``hftbacktest.data.utils.binancefutures.convert``, cached in ``workdir``), submits a ``MARKET`` order at each
``(receive_ns, side, qty)`` of the schedule (side +1 buy, -1 sell, as ``backtest.orders``) and returns each
order's fills and the final position, cash, fees and equity marked to mid (see its docstring for the keys).

What hftbacktest 2.4.4 does, and how it differs from a backtester that walks the project's rebuilt book
(``dataflows.batches.InstrumentStates``) in receive-time order. Each point was read in its source and checked
on ``usdm_btcusdt_20240808.gz``.

1. Clocks. Every converted row carries the exchange time (``T`` of the message, in ms, times 10^6) and the
   local time (the recording's receive ns). The converter then *shifts every local time* by one constant so
   that no feed latency is negative: ``offset = max(0, max(exch_ts - receive_ns))`` (1,272,156,851 ns on
   08-08: the recorder's clock was 1.27 s behind Binance's). ``feed_offset`` computes it; this module
   schedules orders at ``receive_ns + offset`` and reports fill times back in receive ns.
2. Two books. hftbacktest keeps a *local* book (rows applied at their local time: what the strategy sees)
   and an *exchange* book (the same rows applied at their exchange time). Orders match against the
   exchange book only. With the shifted clock and zero order latency, an order sent at receive time r is
   matched against every row with ``exch_ts <= r + offset``: updates the recorder had not yet received
   (feed latency 0 to 99 ms after the shift, median 4 ms). The project matches against the book it has
   received. ``clock="exchange"`` runs hftbacktest so (its native model); ``clock="receive"`` (the default)
   first sets every row's exchange time to its local time, so both of hftbacktest's books see the feed in
   receive order, as the project's does: only then can fills agree price for price.
3. Ties. hftbacktest's ``elapse`` applies every row with time <= the target before the order is processed
   (in its event set, local rows, then local order responses, then exchange rows, then exchange-side order
   arrivals at equal times). So an order at receive time r sees every message received at or before r.
   The project's backtester must use the same rule (events with ``receive_ts <= r``) or say otherwise.
4. Depth only. The converter reads ``depthUpdate``, the REST snapshot and ``trade`` (only ``X == "MARKET"``);
   ``bookTicker`` is dropped (opt ``"t"`` would keep it as custom events 103/104, which the matcher never
   reads). The project's ``OrderBook.top_of_book()`` takes the best bid/offer from ``bookTicker`` when it is
   newer by update id than the last diff, so its best price can differ from hftbacktest's depth-only best
   between two diffs; ``OrderBook.depth_top()`` is the comparable figure.
5. No sequence sync. hftbacktest ignores ``U``/``u``/``pu`` and ``lastUpdateId``: every diff is applied in
   time order, the snapshot included. The snapshot becomes "clear each side from its best down to the
   snapshot's last price, then set the snapshot's levels": deeper levels set by earlier diffs survive. In
   receive order, the diffs received *before* the snapshot line (6 on 08-08, the last two newer than the
   snapshot: ``u >= lastUpdateId``) are applied first and then overwritten by the older snapshot at the
   prices it lists, until a later diff sets those prices again. The project buffers diffs until the
   snapshot, drops those it supersedes, applies the bridging ones after it, and resyncs on a gap (which
   hftbacktest never notices); its snapshot replaces the whole book. On 08-08, over the project's best 100
   levels a side, the two books differ at up to 7 ask levels (ranks 35 to 94) in the first 2 s and at none
   from 5 s on; the best levels never differ. Keep scheduled orders out of the first seconds.
6. Market orders. With ``no_partial_fill_exchange`` (used here) a market order fills its whole quantity at
   the best price of the opposite side, whatever the quantity there: it never walks the book.
   ``partial_fill_exchange`` walks up to 100 ticks (taking each level's quantity, without removing it from
   the book, and expiring the rest), but in 2.4.4 the *local* state (what ``state_values`` returns) applies
   a fill only when the order's status is ``FILLED``: partial slices are lost from position and balance (a
   6 BTC market buy that took several levels left a position of 0.365 BTC, its last slice). So a walking market
   order cannot be cross-checked against hftbacktest's accounting; each order here reports
   ``best_qty`` (the matching level's quantity in hftbacktest's book, exact in ``clock="receive"``) and
   ``walks`` (qty > best_qty): for such orders the project's walk and hftbacktest's single price differ by
   construction. Nor does hftbacktest remove what an order took: a second order at the same time finds the
   same level again.
7. Rounding. Prices become ticks (``round(price / tick_size)``) and fills are reported as
   ``tick * tick_size`` in floating point (61815.100000000006): this module rounds fill prices to the tick's
   decimals. Quantities are not rounded to the lot (the lot size only decides when a remainder counts as
   zero). Balance accumulates the float products as they come: compare money to the cent, not bit for bit.
8. Accounting. Linear asset: a fill adds ``side * qty`` to position and ``-side * price * qty`` to balance
   (so ``balance`` is cash, starting at 0), and ``fee_model.amount`` to ``fee`` (0 here). Equity is
   ``balance + position * price - fee``; this module marks ``price`` at the mid of hftbacktest's local book
   (depth only, point 4) after the last row of the recording, where the project's mark may use a fresher
   ``bookTicker``. With a flat final position the equity is the cash and no mark matters.

Measured on ``usdm_btcusdt_20240808.gz`` with 0.01 BTC orders at random times (alternating sides): in
``clock="receive"``, all of 2,000 fills had the price and the best-level quantity of the project's
``depth_top()`` at the last message received at or before the order; 84 (4 %) differed from its
``top_of_book()`` (a fresher ``bookTicker``). ``clock="exchange"`` changed the price of 3 of 300 orders
against ``clock="receive"`` (cash -0.662 against -0.738 USDT). Cost: conversion about 5 s, the first run
about 5 s more (numba compiles hftbacktest's bindings), later runs well under a second.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path
from typing import Literal

import numpy as np

from bench.hft_books import hft_backtest

TICK_SIZE = 0.1  # BTCUSDT USD-M price tick
LOT_SIZE = 0.001  # and lot
PRICE_DECIMALS = 1
Clock = Literal["receive", "exchange"]


def feed_offset(recording: Path) -> int:
    """What hftbacktest's converter adds to every receive time: minus the most negative feed latency
    (receive ns minus exchange time) over the rows it makes, or 0. Same rows as the converter: ``trade``
    with ``X == "MARKET"``, ``depthUpdate`` and the REST snapshot, each timed by its ``T``."""
    lag = 0
    with gzip.open(recording, "rt") as lines:
        for line in lines:
            receive_ns, payload = line.split(" ", 1)
            message = json.loads(payload)
            data = message.get("data", message)
            kind = data.get("e")
            if kind == "depthUpdate" or (kind == "trade" and data.get("X") == "MARKET") or "lastUpdateId" in data:
                lag = max(lag, int(data["T"]) * 1_000_000 - int(receive_ns))
    return lag


def converted(recording: Path, workdir: Path) -> tuple[np.ndarray, int]:
    """hftbacktest's rows for ``recording`` (its converter's output, cached as ``workdir/<name>.npz``) and
    the offset its local times carry (``feed_offset``)."""
    from hftbacktest.data.utils import binancefutures

    workdir.mkdir(parents=True, exist_ok=True)
    name = recording.name.removesuffix(".gz")
    rows_path, offset_path = workdir / f"{name}.npz", workdir / f"{name}.offset.json"
    if not rows_path.exists():
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            binancefutures.convert(str(recording), output_filename=str(rows_path), buffer_size=20_000_000)
    if not offset_path.exists():
        offset_path.write_text(json.dumps({"offset_ns": feed_offset(recording)}))
    return np.load(rows_path)["data"], json.loads(offset_path.read_text())["offset_ns"]


def in_receive_order(rows: np.ndarray) -> np.ndarray:
    """The rows as the exchange would see them if it heard the feed when the recorder did: each local row
    once, its exchange time set to its local time, flagged for both sides (rows are in local order)."""
    from hftbacktest import EXCH_EVENT, LOCAL_EVENT

    local = rows[(rows["ev"] & LOCAL_EVENT) == LOCAL_EVENT].copy()
    local["exch_ts"] = local["local_ts"]
    local["ev"] |= EXCH_EVENT
    return local


def hft_market_orders(
    recording: Path, schedule: list[tuple[int, int, float]], workdir: Path, clock: Clock = "receive"
) -> dict:
    """Run hftbacktest over ``recording`` with a market order at each ``(receive_ns, side, qty)`` of
    ``schedule`` (in time order), zero latency, zero fees, no partial fills. Returns:

    - ``orders``: per scheduled order, ``receive_ns``, ``side``, ``qty``, ``status`` (hftbacktest's name),
      ``fills`` (a list of ``(receive_ns, price, qty)``), ``best_price``/``best_qty`` (the opposite side's
      best in hftbacktest's local book then: the matching book in ``clock="receive"``) and ``walks``;
    - ``position``, ``balance`` (cash; starts at 0), ``fee``, ``num_trades``, ``trading_value``;
    - ``mid`` (hftbacktest's local book after the last row), ``equity`` (balance + position * mid - fee);
    - ``clock``, ``offset_ns`` (receive ns + offset_ns = hftbacktest's time), ``end_ns`` (receive ns).
    """
    from hftbacktest import GTC, MARKET
    from hftbacktest.order import CANCELED, EXPIRED, FILLED, NEW, NONE, PARTIALLY_FILLED

    status_names = {
        NONE: "none",
        NEW: "new",
        EXPIRED: "expired",
        FILLED: "filled",
        CANCELED: "canceled",
        PARTIALLY_FILLED: "partially_filled",
    }
    rows, offset = converted(recording, workdir)
    if clock == "receive":
        rows = in_receive_order(rows)
    hbt = hft_backtest(rows, TICK_SIZE, LOT_SIZE)  # its clock at the first row
    orders = []
    for order_id, (receive_ns, side, qty) in enumerate(schedule, start=1):
        at = receive_ns + offset
        if at < hbt.current_timestamp:
            raise ValueError(f"order {order_id} at {receive_ns} comes before the data or the previous order")
        hbt.elapse(at - hbt.current_timestamp)
        depth = hbt.depth(0)
        if side > 0:
            best_price, best_qty, opposite = depth.best_ask, depth.best_ask_qty, "ask"
        else:
            best_price, best_qty, opposite = depth.best_bid, depth.best_bid_qty, "bid"
        if not np.isfinite(best_price):
            raise ValueError(f"order {order_id} at {receive_ns}: hftbacktest's book has no {opposite}")
        before = hbt.state_values(0).num_trades
        submit = hbt.submit_buy_order if side > 0 else hbt.submit_sell_order
        submit(0, order_id, best_price, qty, GTC, MARKET, False)
        hbt.elapse(0)  # the exchange takes the order and answers at the same time
        order = hbt.orders(0).get(order_id)
        fills = []
        if hbt.state_values(0).num_trades > before and order.exec_qty > 0:
            price = round(order.exec_price_tick * TICK_SIZE, PRICE_DECIMALS)
            fills.append((order.exch_timestamp - offset, price, order.exec_qty))
        orders.append(
            {
                "receive_ns": receive_ns,
                "side": side,
                "qty": qty,
                "status": status_names.get(order.status, str(order.status)),
                "fills": fills,
                "best_price": round(best_price, PRICE_DECIMALS),
                "best_qty": best_qty,
                "walks": qty > best_qty + LOT_SIZE / 2,
            }
        )
    last = int(rows["local_ts"].max())
    if last > hbt.current_timestamp:
        hbt.elapse(last - hbt.current_timestamp)
    depth = hbt.depth(0)
    state = hbt.state_values(0)
    mid = (depth.best_bid + depth.best_ask) / 2
    result = {
        "orders": orders,
        "position": state.position,
        "balance": state.balance,
        "fee": state.fee,
        "num_trades": state.num_trades,
        "trading_value": state.trading_value,
        "mid": mid,
        "equity": state.balance + state.position * mid - state.fee,
        "clock": clock,
        "offset_ns": offset,
        "end_ns": last - offset,
    }
    hbt.close()
    return result
