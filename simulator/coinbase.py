"""Coinbase Advanced Trade as a recording client receives it: ``level2`` and ``market_trades``,
each subscribed on its own websocket and written to its own recording file.

``sequence_num`` numbers every message of a connection, whatever its channel, which is why the
trades do not share the level2 connection: their messages would look like gaps in the book's.
On each connection the server answers a subscription with a ``subscriptions`` message, then a
snapshot (the whole book; the last trades, newest first), then updates: level2 sends each
batch of changed levels (absolute sizes, ``"0"`` removes) as it publishes them, market_trades
the trades of each 250 ms, newest first. A trade's ``side`` is the maker's: ``"SELL"`` for a
buyer-initiated print. Times are RFC 3339 UTC: nanoseconds for the message, microseconds for
the venue's events.

When the client sees a jump in level2's ``sequence_num`` it subscribes again, and the server
sends a fresh snapshot on the same connection, numbered on from the last message.
"""

from __future__ import annotations

from collections import deque

import orjson

from simulator.book import ASK, BID, BookState, VenueBook, book_state
from simulator.draws import Draws
from simulator.faults import truncate
from simulator.network import Connection
from simulator.output import RecordedFile
from simulator.session import Session
from simulator.wire import rfc3339, trimmed

L2_INTERVAL_NS = 50_000_000
TRADES_INTERVAL_NS = 250_000_000
TRADES_SNAPSHOT = 50
CONNECT_NS = (20_000_000, 25_000_000)  # from the start to each subscribe request: level2, market_trades
_SIDES = ("bid", "offer")


class CoinbaseFeed:
    def __init__(self, product: str, book: VenueBook, size_decimals: int, draws: Draws, session: Session) -> None:
        self.product = product
        self.book = book
        self.draws = draws
        self.session = session
        name = product.lower()
        self.l2_file = f"coinbase_level2_{name}{session.suffix}"
        self.trades_file = f"coinbase_market_trades_{name}{session.suffix}"
        network = session.model.coinbase_network
        self.l2 = Connection(network, draws)
        self.trades = Connection(network, draws)
        self.price = lambda tick: trimmed(tick, 2)
        self.size = lambda lots: trimmed(lots, size_decimals)
        self.sequence = {"l2": 0, "trades": 0}
        self.trade_id = session.first_ids[2]
        self.batch: dict[tuple[int, int], tuple[int, int]] = {}  # (side, tick) -> (lots, time)
        self.trade_batch: list[tuple[int, int, int, int, int]] = []  # (id, tick, lots, aggressor, time)
        self.history: deque = deque(maxlen=TRADES_SNAPSHOT)
        self.l2_live = self.trades_live = False
        self.l2_due = self.trades_due = 0
        self.gap: dict | None = None
        self.subscribe_due: list[tuple[int, str, dict | None]] = []
        for channel, after in zip(("l2", "trades"), CONNECT_NS, strict=True):
            self._subscribe(session.start_ns + after, channel, None)
        self.checkpoints: list[BookState] = []
        self.next_checkpoint = session.start_ns

    @property
    def instrument(self) -> str:
        return f"coinbase:{self.product}"

    def recorded(self) -> list[RecordedFile]:
        return [
            RecordedFile(self.l2_file, "coinbase_advanced", self.instrument, ["level2"], self.l2.lines),
            RecordedFile(self.trades_file, "coinbase_advanced", self.instrument, ["market_trades"], self.trades.lines),
        ]

    def final_state(self) -> BookState:
        return book_state(self.book, self.sequence["l2"] - 1, self.price, self.size)

    # -- the market's events -----------------------------------------------------------

    def record(self, now_ns: int, trades: list[tuple[int, int, int]]) -> None:
        changes = self.book.changes
        if self.l2_live:
            batch = self.batch
            for side, tick, lots in changes:
                batch[side, tick] = (lots, now_ns)
        changes.clear()
        for tick, lots, aggressor in trades:
            trade = (self.trade_id, tick, lots, aggressor, now_ns)
            self.trade_id += 1
            self.history.append(trade)
            if self.trades_live:
                self.trade_batch.append(trade)

    def advance(self, now_ns: int) -> None:
        """Publish what is due before ``now_ns``: level2 and trade batches, snapshots."""
        while True:
            due = []
            if self.l2_live:
                due.append((self.l2_due, 0))
            if self.trades_live:
                due.append((self.trades_due, 1))
            if self.subscribe_due:
                due.append((self.subscribe_due[0][0], 2))
            if not due:
                return
            at, kind = min(due)
            if at > now_ns:
                return
            if kind == 0:
                self._publish_l2(at)
                self.l2_due += L2_INTERVAL_NS
            elif kind == 1:
                self._publish_trades(at)
                self.trades_due += TRADES_INTERVAL_NS
            else:
                self._subscribed(*self.subscribe_due.pop(0))

    def finish(self, end_ns: int) -> None:
        """The end of the recording: publish what is due, and the changes and trades pending."""
        self.advance(end_ns)
        if self.l2_live:
            self._publish_l2(end_ns)
        if self.trades_live:
            self._publish_trades(end_ns)

    # -- messages ------------------------------------------------------------------------

    def _envelope(self, channel: str, connection: str, send_ns: int, events: list) -> bytes:
        sequence = self.sequence[connection]
        self.sequence[connection] = sequence + 1
        message = {
            "channel": channel,
            "client_id": "",
            "timestamp": rfc3339(send_ns),
            "sequence_num": sequence,
            "events": events,
        }
        return orjson.dumps(message)

    def _subscribe(self, client_ns: int, channel: str, fault: dict | None) -> None:
        connection = self.l2 if channel == "l2" else self.trades
        self.subscribe_due.append((client_ns + connection.latency_ns(), channel, fault))
        self.subscribe_due.sort(key=lambda due: due[0])

    def _subscribed(self, server_ns: int, channel: str, fault: dict | None) -> None:
        name = "level2" if channel == "l2" else "market_trades"
        connection = self.l2 if channel == "l2" else self.trades
        ack = [{"subscriptions": {name: [self.product]}}]
        connection.send(server_ns, self._envelope("subscriptions", channel, server_ns, ack))
        if channel == "trades":
            snapshot = [{"type": "snapshot", "trades": [self._trade(t) for t in reversed(self.history)]}]
            connection.send(server_ns, self._envelope("market_trades", channel, server_ns, snapshot))
            self.trades_live, self.trades_due = True, server_ns + TRADES_INTERVAL_NS
            return
        event_time = rfc3339(server_ns, 6)
        updates = [
            self._update(side, tick, lots, event_time) for side in (BID, ASK) for tick, lots in self.book.levels(side)
        ]
        events = [{"type": "snapshot", "product_id": self.product, "updates": updates}]
        receive = connection.send(server_ns, self._envelope("l2_data", channel, server_ns, events))
        self.batch = {}
        self.l2_live, self.l2_due = True, server_ns + L2_INTERVAL_NS
        if fault is not None:
            fault["snapshot_receive_ns"] = receive

    def _update(self, side: int, tick: int, lots: int, event_time: str) -> dict:
        return {
            "side": _SIDES[side],
            "event_time": event_time,
            "price_level": self.price(tick),
            "new_quantity": self.size(lots),
        }

    def _publish_l2(self, send_ns: int) -> None:
        if not self.batch:
            return
        updates = [self._update(side, tick, lots, rfc3339(at, 6)) for (side, tick), (lots, at) in self.batch.items()]
        self.batch = {}
        events = [{"type": "update", "product_id": self.product, "updates": updates}]
        payload = self._envelope("l2_data", "l2", send_ns, events)
        faults = self.session.faults
        lost = faults.due(faults.drop_coinbase, send_ns - self.session.start_ns)
        receive = self.l2.send(send_ns, payload, delivered=not lost)
        if lost:
            self.gap = faults.record("dropped_l2_message", self.l2_file, receive, sequence_num=self.sequence["l2"] - 1)
            return
        if self.gap is not None:  # the client sees sequence_num jump and subscribes again
            self.gap["detected_ns"] = receive
            self._subscribe(receive, "l2", self.gap)
            self.gap = None
        if send_ns >= self.next_checkpoint:
            self.checkpoints.append(self.final_state())
            self.next_checkpoint = send_ns + self.session.checkpoint_ns

    def _trade(self, trade: tuple[int, int, int, int, int]) -> dict:
        trade_id, tick, lots, aggressor, at = trade
        return {
            "trade_id": str(trade_id),
            "product_id": self.product,
            "price": self.price(tick),
            "size": self.size(lots),
            "side": "SELL" if aggressor > 0 else "BUY",
            "time": rfc3339(at, 6),
        }

    def _publish_trades(self, send_ns: int) -> None:
        if not self.trade_batch:
            return
        events = [{"type": "update", "trades": [self._trade(t) for t in reversed(self.trade_batch)]}]
        self.trade_batch = []
        payload = self._envelope("market_trades", "trades", send_ns, events)
        faults = self.session.faults
        if not faults.due(faults.malformed_trades, send_ns - self.session.start_ns):
            self.trades.send(send_ns, payload)
            return
        receive = self.trades.send(send_ns, truncate(payload, self.session.fault_rng))
        faults.record("malformed_line", self.trades_file, receive, channel="market_trades")
