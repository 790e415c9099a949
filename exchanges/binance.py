"""A local Binance (spot or USD-M futures) playing real recordings: the combined-stream websocket
(``/stream?streams=...``, frames ``{"stream": ..., "data": ...}`` with the recorded data bytes) and the
REST depth snapshot (``/api/v3/depth``, ``/fapi/v1/depth``) whose ``lastUpdateId`` and levels are the
book as the stream has played so far.

The market is one timeline per symbol, started by its first subscriber: message i is due
``(receive time i - first receive time) / speed`` after the start (``speed`` 0: as fast as the
subscribers take them). A subscriber gets what is published from the moment it connects (a
reconnecting client misses what passed meanwhile, as on the venue). The server's book starts from
the recording's first snapshot line and takes every diff as it is published (diffs the snapshot
covers change nothing). Snapshot lines are REST answers, never sent on the stream.

Faults, for tests and demos: ``drop()`` closes every connection, ``skip_diff()`` leaves the next diff
out of the stream (the book still takes it), ``stall(s)`` sends nothing for ``s`` seconds,
``malformed()`` sends a cut-off frame (before the next message), ``refuse_rest(status,
retry_after_s)`` answers the next depth request with 429 or 418; ``at(i, fault)`` runs a fault when
message ``i`` is published. A symbol not played is answered as Binance does (HTTP 400, code -1121).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from dataflows.recordings import RecordingError, open_recording
from exchanges.serving import LocalServer
from quantumflow.events import RawMessage

FEEDS = ("binance", "binance_usdm")
DEPTH_PATHS = {"binance": "/api/v3/depth", "binance_usdm": "/fapi/v1/depth"}
# depth request weight by the largest limit it covers, as documented
DEPTH_WEIGHT = {
    "binance": {100: 5, 500: 25, 1000: 50, 5000: 250},
    "binance_usdm": {50: 2, 100: 5, 500: 10, 1000: 20},
}
CUT_FRAME = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":17231612'


@dataclass
class StreamMessage:
    offset_ns: int  # after the recording's first message
    stream: str  # e.g. btcusdt@depth@100ms
    data: bytes  # the recorded data object, byte for byte
    diff: tuple | None  # (U, u, bids, asks, E, T) for a depth diff


@dataclass
class Symbol:
    """One symbol's recording, timeline and server-side book."""

    name: str
    messages: list[StreamMessage]
    snapshot_id: int
    bids: dict[str, str]
    asks: dict[str, str]
    futures: bool
    published: int = 0  # messages published so far
    started: float | None = None  # wall time of the first subscriber
    last_update_id: int = 0
    event_times: tuple[int, int] = (0, 0)
    finished: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.last_update_id = self.snapshot_id

    def due(self, index: int, speed: float) -> float:
        if speed == 0:
            return 0.0
        return self.started + self.messages[index].offset_ns / 1e9 / speed

    def publish(self) -> StreamMessage:
        message = self.messages[self.published]
        self.published += 1
        if message.diff is not None:
            _first, last, bids, asks, event, transact = message.diff
            covered = last < self.snapshot_id if self.futures else last <= self.snapshot_id
            if not covered:
                for side, levels in ((self.bids, bids), (self.asks, asks)):
                    for price, quantity in levels:
                        if float(quantity) == 0:
                            side.pop(price, None)
                        else:
                            side[price] = quantity
                self.last_update_id = max(self.last_update_id, last)
                self.event_times = (event, transact)
        if self.published == len(self.messages):
            self.finished.set()
        return message

    def depth(self, limit: int) -> bytes:
        bids = sorted(self.bids.items(), key=lambda level: -float(level[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda level: float(level[0]))[:limit]
        body = {"lastUpdateId": self.last_update_id}
        if self.futures:
            body |= {"E": self.event_times[0], "T": self.event_times[1]}
        return orjson.dumps({**body, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]})


def load_symbol(path: str | Path, feed: str, seconds: float | None = None) -> Symbol:
    """The stream messages of a native Binance recording (the first ``seconds`` of it if given) and the
    book of its first snapshot line."""
    recording = open_recording(path)
    if recording.feed != feed or recording.kind != "native":
        raise RecordingError(f"{path}: a {recording.kind} {recording.feed} recording, not a native {feed} one")
    messages: list[StreamMessage] = []
    snapshot: dict | None = None
    first_ns = None
    for raw in recording:
        if type(raw) is not RawMessage:
            continue
        first_ns = raw.receive_ts if first_ns is None else first_ns
        offset = raw.receive_ts - first_ns
        if seconds is not None and offset > seconds * 1e9:
            break
        message = orjson.loads(raw.payload)
        if "lastUpdateId" in message:
            snapshot = snapshot or message
            continue
        data = message["data"]
        start = raw.payload.index(b'"data":') + len(b'"data":')
        diff = None
        if data.get("e") == "depthUpdate":
            diff = (data["U"], data["u"], data["b"], data["a"], data.get("E", 0), data.get("T", 0))
        messages.append(StreamMessage(offset, message["stream"], raw.payload[start:-1], diff))
    if snapshot is None or not messages:
        raise RecordingError(f"{path}: no depth snapshot line and stream messages to play")
    return Symbol(
        recording.symbol,
        messages,
        snapshot["lastUpdateId"],
        {price: quantity for price, quantity in snapshot["bids"]},
        {price: quantity for price, quantity in snapshot["asks"]},
        feed != "binance",
    )


class BinanceExchange:
    """The local venue for ``feed`` playing ``recordings`` (one symbol each) at ``speed`` x real time;
    ``loop``: start again at the end (every connection is closed, as at a venue restart), else the
    stream goes quiet. ``max_connection_s``: close connections older than this (Binance: 24 h)."""

    def __init__(
        self,
        feed: str,
        recordings: Sequence[str | Path],
        *,
        speed: float = 1.0,
        seconds: float | None = None,
        loop: bool = False,
        max_connection_s: float | None = None,
    ) -> None:
        if feed not in FEEDS:
            raise ValueError(f"unknown Binance market {feed!r}: one of {', '.join(FEEDS)}")
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or more")
        self.feed, self.speed, self.loop, self.max_connection_s = feed, speed, loop, max_connection_s
        self._sources = (recordings, seconds)
        self.symbols = {s.name: s for s in (load_symbol(path, feed, seconds) for path in recordings)}
        self.connections = 0  # accepted so far
        self.depth_requests = 0
        self.frames_sent = 0  # websocket frames, all connections (each counted as its send begins)
        self.snapshots_sent = 0  # depth answers of DEPTH_LIMIT levels or more (the client's snapshots)
        self.refused: list[tuple[int, float]] = []  # REST refusals to give, (status, retry_after_s)
        self.refusals: list[tuple[float, float]] = []  # (time refused, retry_after_s) given
        self.depth_times: list[float] = []  # time.time() of each depth request answered
        self._drops = 0
        self._skips = 0
        self._malformed = 0
        self._stall_until = 0.0
        self._faults: dict[int, list[Callable[[], None]]] = {}
        self._weight_minute, self._weight_used = 0, 0
        self.app = Starlette(
            routes=[
                WebSocketRoute("/stream", self._stream),
                Route(DEPTH_PATHS[feed], self._depth),
            ]
        )
        self.server: LocalServer | None = None

    # faults
    def drop(self) -> None:
        self._drops += 1

    def skip_diff(self) -> None:
        self._skips += 1

    def malformed(self) -> None:
        self._malformed += 1

    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    def refuse_rest(self, status: int = 429, retry_after_s: float = 1.0, times: int = 1) -> None:
        self.refused += [(status, retry_after_s)] * times

    def at(self, index: int, fault: Callable[[], None]) -> None:
        """Run ``fault`` when the message at ``index`` (of every symbol's timeline) is about to be published."""
        self._faults.setdefault(index, []).append(fault)

    @property
    def finished(self) -> bool:
        return all(symbol.finished.is_set() for symbol in self.symbols.values())

    def wait_finished(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(s.finished.wait(max(0.0, deadline - time.monotonic())) for s in self.symbols.values())

    # serving
    def start(self, host: str = "127.0.0.1", port: int = 0) -> BinanceExchange:
        self.server = LocalServer(self.app, host, port).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def http_url(self) -> str:
        return self.server.http_url

    def settings(self) -> dict[str, str]:
        """The environment variables that point a client here."""
        prefix = "QF_BINANCE_FUTURES" if self.feed == "binance_usdm" else "QF_BINANCE"
        return {f"{prefix}_WS_URL": self.ws_url, f"{prefix}_REST_URL": self.http_url}

    def __enter__(self) -> BinanceExchange:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _depth(self, request: Request) -> Response:
        symbol = self.symbols.get(request.query_params.get("symbol", "").upper())
        if symbol is None:
            return _json({"code": -1121, "msg": "Invalid symbol."}, 400)
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _json({"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}, 400)
        if self.refused:
            status, retry_after = self.refused.pop(0)
            self.refusals.append((time.time(), retry_after))
            return _json({"code": -1003, "msg": "Too many requests."}, status, {"Retry-After": f"{retry_after:g}"})
        minute = int(time.time() // 60)
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        weights = DEPTH_WEIGHT[self.feed]
        self._weight_used += next((w for top, w in weights.items() if limit <= top), max(weights.values()))
        self.depth_requests += 1
        self.depth_times.append(time.time())
        if symbol.started is not None and self.speed > 0:
            self._catch_up(symbol)  # the market moved on while nobody was connected
        self.snapshots_sent += limit >= 1000
        headers = {"X-MBX-USED-WEIGHT-1M": str(self._weight_used)}
        return Response(symbol.depth(max(1, limit)), media_type="application/json", headers=headers)

    def _catch_up(self, symbol: Symbol) -> None:
        now = time.time()
        while symbol.published < len(symbol.messages) and symbol.due(symbol.published, self.speed) <= now:
            self._run_faults(symbol.published)
            symbol.publish()

    def _run_faults(self, index: int) -> None:
        for fault in self._faults.pop(index, ()):
            fault()

    async def _stream(self, websocket: WebSocket) -> None:
        streams = [name for name in websocket.query_params.get("streams", "").split("/") if name]
        wanted = {name.split("@", 1)[0].upper() for name in streams}
        names = {_base(name): name for name in streams}
        await websocket.accept()
        self.connections += 1
        playing = [self.symbols[name] for name in wanted if name in self.symbols]
        closed = asyncio.Event()
        reader = asyncio.create_task(self._read(websocket, closed))
        try:
            await asyncio.gather(*(self._play(websocket, s, names, closed) for s in playing), return_exceptions=False)
            await closed.wait()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            reader.cancel()
            if not closed.is_set():
                with contextlib.suppress(RuntimeError, OSError):
                    await websocket.close(1001)

    async def _read(self, websocket: WebSocket, closed: asyncio.Event) -> None:
        """Answer subscription requests as Binance does; notice the client leaving."""
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    request_id = orjson.loads(text).get("id")
                except (orjson.JSONDecodeError, AttributeError):
                    await websocket.send_text('{"error":{"code":3,"msg":"Invalid JSON"}}')
                    continue
                await websocket.send_text(orjson.dumps({"result": None, "id": request_id}).decode())
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            closed.set()

    async def _play(self, websocket: WebSocket, symbol: Symbol, names: dict[str, str], closed: asyncio.Event) -> None:
        if symbol.started is None:
            symbol.started = time.time()
        elif self.speed > 0:
            self._catch_up(symbol)
        index = symbol.published  # a subscriber sees what is published from now on
        drops, opened = self._drops, time.monotonic()
        while not closed.is_set():
            if self._drops != drops or (
                self.max_connection_s is not None and time.monotonic() - opened > self.max_connection_s
            ):
                await websocket.close(1001)
                closed.set()
                return
            if time.monotonic() < self._stall_until:
                await asyncio.sleep(0.01)
                continue
            if index == len(symbol.messages):
                if self.loop and index == symbol.published:
                    self._restart()
                    continue
                await asyncio.sleep(0.05)  # the recording is over: a quiet market
                continue
            if index == symbol.published:
                wait = symbol.due(index, self.speed) - time.time()
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.05))
                    continue
                self._run_faults(index)
                if self._drops != drops or time.monotonic() < self._stall_until:
                    continue
                symbol.publish()
            message = symbol.messages[index]
            index += 1
            name = names.get(_base(message.stream))
            if name is None:
                continue
            if message.diff is not None and self._skips:
                self._skips -= 1
                continue
            if self._malformed:  # sent before the message, which still follows
                self._malformed -= 1
                self.frames_sent += 1
                await websocket.send_text(CUT_FRAME.decode())
            frame = b'{"stream":"%s","data":%s}' % (name.encode(), message.data)
            self.frames_sent += 1  # before the send, which may wait: the last message is never published uncounted
            await websocket.send_text(frame.decode())
            if self.speed == 0 and index % 64 == 0:
                await asyncio.sleep(0)  # let the other connections and REST in

    def _restart(self) -> None:
        recordings, seconds = self._sources
        self.symbols = {s.name: s for s in (load_symbol(path, self.feed, seconds) for path in recordings)}
        self._drops += 1


def _base(stream: str) -> str:
    """A stream name without its update speed: btcusdt@depth@100ms -> btcusdt@depth."""
    parts = stream.split("@")
    return "@".join(parts[:2])


def _json(body: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
