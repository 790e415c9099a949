"""Binance spot as a recording client receives it, written to one recording file.

One combined-stream websocket carries ``<symbol>@depth@100ms`` (every level changed in each
100 ms window, with the first and last update id ``U``..``u``), ``<symbol>@bookTicker`` (each
change of the best bid or ask, with the update id that made it; no event type, no event time,
as on spot) and ``<symbol>@trade`` (one print per maker order filled; ``m`` is true when the
buyer was the maker). Every change of a level takes one update id.

The client fetches a REST depth snapshot (``GET /api/v3/depth?limit=1000``) right after
connecting, and again when it sees a diff that does not continue the last (``U`` is not the
previous ``u`` + 1): the response reaches it a round trip and the server's work later, and is
recorded on the same file, by receive time, as real recorders do.
"""

from __future__ import annotations

import orjson

from simulator.book import ASK, BID, BookState, VenueBook, book_state
from simulator.draws import Draws
from simulator.faults import truncate
from simulator.network import Connection
from simulator.output import RecordedFile
from simulator.session import Session
from simulator.wire import fixed

INTERVAL_NS = 100_000_000
SNAPSHOT_LIMIT = 1000
CONNECT_NS = 40_000_000  # from opening the websocket to sending the first REST request
SERVER_WORK_MS = (5.0, 30.0)  # a depth request's time on the server: uniform in this range, ms


class BinanceFeed:
    def __init__(self, symbol: str, book: VenueBook, size_decimals: int, draws: Draws, session: Session) -> None:
        self.symbol = symbol
        self.book = book
        self.draws = draws
        self.session = session
        self.file = f"binance_{symbol.lower()}{session.suffix}"
        stream = symbol.lower()
        self.depth_stream = f"{stream}@depth@100ms"
        self.ticker_stream = f"{stream}@bookTicker"
        self.trade_stream = f"{stream}@trade"
        self.ws = Connection(session.model.binance_network, draws)
        self.rest = Connection(session.model.binance_network, draws)
        self.price = lambda tick: fixed(tick, 2)
        self.size = lambda lots: fixed(lots, size_decimals)
        self.update_id = session.first_ids[0]
        self.trade_id = session.first_ids[1]
        self.window: dict[tuple[int, int], int] = {}
        self.window_first = 0
        self.window_end = (session.start_ns // INTERVAL_NS + 1) * INTERVAL_NS
        self.top: tuple[int, int, int, int] | None = None
        self.snapshot_due: list[tuple[int, dict | None]] = []
        self.gap: dict | None = None
        self.checkpoints: list[BookState] = []
        self.next_checkpoint = session.start_ns
        self._request_snapshot(session.start_ns + CONNECT_NS, None)

    @property
    def instrument(self) -> str:
        return f"binance:{self.symbol}"

    def recorded(self) -> list[RecordedFile]:
        """The websocket's messages and the REST responses, in one file by receive time."""
        lines = sorted(self.ws.lines + self.rest.lines, key=lambda line: line[0])
        channels = [self.depth_stream, self.ticker_stream, self.trade_stream, "REST depth"]
        return [RecordedFile(self.file, "binance", self.instrument, channels, lines)]

    def final_state(self) -> BookState:
        return book_state(self.book, self.update_id, self.price, self.size)

    # -- the market's events -----------------------------------------------------------

    def record(self, now_ns: int, trades: list[tuple[int, int, int]]) -> None:
        changes = self.book.changes
        if now_ns < self.session.start_ns:
            changes.clear()
            return
        if changes:
            if not self.window:
                self.window_first = self.update_id + 1
            window = self.window
            for side, tick, lots in changes:
                window[side, tick] = lots
            self.update_id += len(changes)
            changes.clear()
        for tick, lots, aggressor in trades:
            self._trade(now_ns, tick, lots, aggressor)
        book = self.book
        top = (*book.best(BID), *book.best(ASK))
        if top != self.top:
            self.top = top
            data = {
                "u": self.update_id,
                "s": self.symbol,
                "b": self.price(top[0]),
                "B": self.size(top[1]),
                "a": self.price(top[2]),
                "A": self.size(top[3]),
            }
            self._send(now_ns, self.ticker_stream, data)

    def advance(self, now_ns: int) -> None:
        """Publish what is due before ``now_ns``: depth windows that ended, REST responses."""
        while True:
            snapshot_at = self.snapshot_due[0][0] if self.snapshot_due else now_ns + 1
            if self.window_end <= min(now_ns, snapshot_at):
                self._publish_depth(self.window_end)
                self.window_end += INTERVAL_NS
            elif snapshot_at <= now_ns:
                self._snapshot(*self.snapshot_due.pop(0))
            else:
                return

    def finish(self, end_ns: int) -> None:
        """The end of the recording: publish what is due, and the last window's changes."""
        self.advance(end_ns)
        self._publish_depth(self.window_end)

    # -- messages ------------------------------------------------------------------------

    def _trade(self, now_ns: int, tick: int, lots: int, aggressor: int) -> None:
        trade_ms = now_ns // 1_000_000
        data = {
            "e": "trade",
            "E": trade_ms + int(self.draws.exponential()),
            "s": self.symbol,
            "t": self.trade_id,
            "p": self.price(tick),
            "q": self.size(lots),
            "T": trade_ms,
            "m": aggressor < 0,
            "M": True,
        }
        self.trade_id += 1
        self._send(now_ns, self.trade_stream, data)

    def _send(self, now_ns: int, stream: str, data: dict) -> None:
        payload = orjson.dumps({"stream": stream, "data": data})
        session = self.session
        if not session.faults.due(session.faults.malformed_binance, now_ns - session.start_ns):
            self.ws.send(now_ns, payload)
            return
        receive = self.ws.send(now_ns, truncate(payload, session.fault_rng))
        session.faults.record("malformed_line", self.file, receive, stream=stream)

    def _publish_depth(self, end_ns: int) -> None:
        if not self.window:
            return
        bids = sorted(((tick, lots) for (side, tick), lots in self.window.items() if side == BID), reverse=True)
        asks = sorted((tick, lots) for (side, tick), lots in self.window.items() if side == ASK)
        self.window = {}
        price, size = self.price, self.size
        data = {
            "e": "depthUpdate",
            "E": end_ns // 1_000_000,
            "s": self.symbol,
            "U": self.window_first,
            "u": self.update_id,
            "b": [[price(tick), size(lots)] for tick, lots in bids],
            "a": [[price(tick), size(lots)] for tick, lots in asks],
        }
        payload = orjson.dumps({"stream": self.depth_stream, "data": data})
        faults = self.session.faults
        lost = faults.due(faults.drop_binance, end_ns - self.session.start_ns)
        receive = self.ws.send(end_ns, payload, delivered=not lost)
        if lost:
            self.gap = faults.record("dropped_diff", self.file, receive, update_ids=[self.window_first, self.update_id])
            return
        if self.gap is not None:  # this diff does not continue the last one the client saw
            self.gap["detected_ns"] = receive
            self._request_snapshot(receive, self.gap)
            self.gap = None
        if end_ns >= self.next_checkpoint:
            self.checkpoints.append(self.final_state())
            self.next_checkpoint = end_ns + self.session.checkpoint_ns

    def _request_snapshot(self, client_ns: int, fault: dict | None) -> None:
        low, high = SERVER_WORK_MS
        work_ns = int((low + (high - low) * self.draws.uniform()) * 1e6)
        self.snapshot_due.append((client_ns + self.rest.latency_ns() + work_ns, fault))

    def _snapshot(self, server_ns: int, fault: dict | None) -> None:
        price, size = self.price, self.size
        message = {
            "lastUpdateId": self.update_id,
            "bids": [[price(tick), size(lots)] for tick, lots in self.book.levels(BID, SNAPSHOT_LIMIT)],
            "asks": [[price(tick), size(lots)] for tick, lots in self.book.levels(ASK, SNAPSHOT_LIMIT)],
        }
        receive = self.rest.send(server_ns, orjson.dumps(message))
        if fault is not None:
            fault["snapshot_receive_ns"] = receive
