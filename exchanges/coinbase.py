"""A local Coinbase Advanced Trade: its market-data websocket on loopback, playing a ``level2`` recording and
optionally a ``market_trades`` recording of one product (native recordings, as ``quantumflow simulate`` and
the ingester write them).

It speaks the venue's protocol at ``/`` (the base address ``QF_COINBASE_WS_URL`` names): a client sends
``{"type": "subscribe", "product_ids": [...], "channel": "level2"}`` (or ``market_trades``, ``heartbeats``)
within 5 s of connecting; the server answers a ``subscriptions`` message, then for ``level2`` a snapshot of
its book at the current stream position, for ``market_trades`` the last 50 trades, then the updates as they
are played. ``sequence_num`` numbers every message of a connection. Subscribing again to ``level2`` gives a
fresh snapshot numbered on, which is how a client recovers from a gap. An unknown product is answered with
``{"type": "error", "message": "Failed to subscribe", "reason": ...}``; ``heartbeats`` come every second.

One player walks both recordings in receive-time order, whether anyone listens or not, at ``speed`` times
real time; at speed 0 it goes as fast as the connections take the messages, and waits while nobody is
subscribed. The server's book is the recording's first snapshot with every update played since applied to
it, so a snapshot sent at any point is exactly the book the recording's client had after the same update;
the snapshot carries the ``timestamp`` of that update's message. A later snapshot in the recording (its
client resynced there) is played as an update of the levels that differ, so a listener stays exact.

Faults on demand, callable from any thread: ``drop`` closes connections, ``skip_update`` numbers the next
level2 update but does not send it (a sequence gap), ``stall`` silences the open connections for a while
(they stay open), ``malformed`` cuts the next frame of a channel short.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
from collections import deque
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from dataflows.recordings import open_recording
from exchanges.serving import LocalServer
from quantumflow.events import RawMessage

LEVEL2, TRADES, HEARTBEATS = "level2", "market_trades", "heartbeats"
CHANNELS = (LEVEL2, TRADES, HEARTBEATS)
SUBSCRIBE_WITHIN_S = 5.0  # the venue closes a connection that subscribes to nothing in this time
HEARTBEAT_INTERVAL_S = 1.0
TRADES_SNAPSHOT = 50
QUEUE_HIGH_WATER = 256  # at speed 0, the player waits while a connection has this many frames unsent


class CoinbaseExchange:
    """A local Coinbase Advanced Trade playing ``level2_recording`` (and ``trades_recording``) at ``speed``
    times real time (0: as fast as the connections take it), once or, with ``loop``, over and over.
    A context manager: serving on ``ws_url`` inside the ``with``."""

    def __init__(
        self,
        level2_recording: Path,
        trades_recording: Path | None = None,
        speed: float = 1.0,
        *,
        loop: bool = False,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 (as fast as possible) or more, got {speed}")
        self.speed = speed
        self.loop = loop
        self._market = _Market(Path(level2_recording), None if trades_recording is None else Path(trades_recording))
        self.product = self._market.product
        self.finished = threading.Event()  # set once the recordings were played to their end (never with loop)
        self._server: LocalServer | None = None
        self._connections: set[_Connection] = set()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # a connection sent, subscribed or closed: the player may go on
        self._player: asyncio.Task | None = None
        self._heartbeats: asyncio.Task | None = None
        self._skips = 0  # level2 updates still to leave out
        self._malformed: set[str] = set()  # channels whose next frame goes out cut short

    @classmethod
    def from_recordings(
        cls, venue: str, recordings: list[Path], speed: float = 1.0, loop: bool = False
    ) -> CoinbaseExchange:
        """The local venue of ``quantumflow fake-exchange coinbase``: ``recordings`` are a product's level2
        recording and, optionally, its market_trades recording, told apart by their channel."""
        by_channel: dict[str, Path] = {}
        for path in map(Path, recordings):
            kind = _channel_of(path)
            if kind is None or kind in by_channel:
                raise ValueError(f"{path}: give one level2 and at most one market_trades recording of a product")
            by_channel[kind] = path
        if LEVEL2 not in by_channel:
            raise ValueError("no level2 recording among the recordings given")
        return cls(by_channel[LEVEL2], by_channel.get(TRADES), speed, loop=loop)

    @property
    def ws_url(self) -> str:
        return self._server.ws_url

    def settings(self) -> dict[str, str]:
        """The environment variable that points a client here."""
        return {"QF_COINBASE_WS_URL": self.ws_url}

    def start(self, host: str = "127.0.0.1", port: int = 0) -> CoinbaseExchange:
        self._server = LocalServer(Starlette(routes=[WebSocketRoute("/", self._serve)]), host, port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> CoinbaseExchange:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- faults, from any thread -----------------------------------------------------------

    def drop(self, channel: str = LEVEL2) -> None:
        """Close every connection subscribed to ``channel`` now, as a venue that drops a client."""
        self._on_loop(self._drop, channel)

    def skip_update(self) -> None:
        """The next level2 update is numbered on every connection but sent on none: a sequence gap."""
        self._on_loop(self._skip)

    def stall(self, seconds: float) -> None:
        """The connections open now send nothing for ``seconds`` (heartbeats included) but stay open."""
        self._on_loop(self._stall, seconds)

    def malformed(self, channel: str = TRADES) -> None:
        """The next frame of ``channel`` goes out cut in half, on every connection subscribed to it."""
        self._on_loop(self._malformed.add, channel)

    def _on_loop(self, call, *args) -> None:
        if self._event_loop is None:
            raise RuntimeError("no client has connected yet")
        self._event_loop.call_soon_threadsafe(call, *args)

    def _drop(self, channel: str) -> None:
        for connection in list(self._connections):
            if channel in connection.subscriptions:
                connection.close()

    def _skip(self) -> None:
        self._skips += 1

    def _stall(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        for connection in self._connections:
            connection.stalled_until = until

    # -- connections ---------------------------------------------------------------------------

    async def _serve(self, websocket: WebSocket) -> None:
        if self._event_loop is None:
            self._event_loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
            self._heartbeats = asyncio.create_task(self._beat())
        await websocket.accept()
        connection = _Connection(websocket, self._changed)
        self._connections.add(connection)
        writer = asyncio.create_task(connection.write())
        try:
            async with asyncio.timeout(SUBSCRIBE_WITHIN_S) as deadline:
                while True:
                    receive = asyncio.ensure_future(websocket.receive_text())
                    done, _ = await asyncio.wait([receive, writer], return_when=asyncio.FIRST_COMPLETED)
                    if writer in done:  # dropped, or the client went away
                        receive.cancel()
                        return
                    self._on_request(connection, receive.result())
                    if connection.subscriptions:
                        deadline.reschedule(None)
        except (WebSocketDisconnect, TimeoutError, KeyError):  # gone, silent, or a binary frame: closed
            pass
        finally:
            self._connections.discard(connection)
            self._changed.set()
            writer.cancel()
            connection.close()

    def _on_request(self, connection: _Connection, text: str) -> None:
        try:
            request = orjson.loads(text)
            kind, channel = request["type"], request["channel"]
            products = request.get("product_ids") or []
        except (orjson.JSONDecodeError, TypeError, KeyError):
            connection.error("Malformed request", text[:200])
            return
        if kind not in ("subscribe", "unsubscribe") or channel not in CHANNELS or not isinstance(products, list):
            connection.error("Unsupported request", f"type {kind!r}, channel {channel!r}")
            return
        unknown = [p for p in products if p != self.product]
        if unknown:
            connection.error("Failed to subscribe", f"{', '.join(map(str, unknown))} is not a valid product")
            return
        if channel != HEARTBEATS and not products:
            connection.error("Failed to subscribe", f"at least one product ID is needed for channel {channel}")
            return
        if kind == "unsubscribe":
            connection.subscriptions.pop(channel, None)
            connection.send("subscriptions", self._market.timestamp, self._acknowledgement(connection))
            return
        connection.subscriptions[channel] = products
        connection.send("subscriptions", self._market.timestamp, self._acknowledgement(connection))
        if channel == LEVEL2:
            market = self._market
            connection.send("l2_data", market.book_timestamp, market.book.snapshot_events(self.product))
        elif channel == TRADES:
            connection.send(TRADES, self._market.timestamp, self._market.trades_snapshot())
        if channel != HEARTBEATS and self._player is None:
            self._player = asyncio.create_task(self._play())
        self._changed.set()

    @staticmethod
    def _acknowledgement(connection: _Connection) -> bytes:
        return orjson.dumps([{"subscriptions": connection.subscriptions}])

    async def _beat(self) -> None:
        counter = 0
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            counter += 1
            now = time.time_ns()
            events = orjson.dumps([{"current_time": _rfc3339(now), "heartbeat_counter": counter}])
            for connection in self._connections:
                if HEARTBEATS in connection.subscriptions:
                    connection.send(HEARTBEATS, _rfc3339(now).encode(), events)

    # -- the player -------------------------------------------------------------------------------

    async def _play(self) -> None:
        while True:
            started, first_ns = time.monotonic(), None
            for receive_ns, channel, timestamp, events in self._market.tape():
                if self.speed > 0:
                    first_ns = receive_ns if first_ns is None else first_ns
                    ahead = (receive_ns - first_ns) / 1e9 / self.speed - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                else:
                    await self._room()
                self._publish(channel, timestamp, events)
            if not self.loop:
                self.finished.set()
                return
            fresh = self._market.again()  # the book jumps back to the start: listeners get the difference
            changes = self._market.book.replace(list(fresh.book.levels.values()))
            if changes:
                self._publish(LEVEL2, fresh.book_timestamp, _update_events(self.product, changes))
            self._market = fresh

    async def _room(self) -> None:
        """At speed 0: wait until someone listens and every listener has taken most of what it was sent."""
        while True:
            listening = [c for c in self._connections if LEVEL2 in c.subscriptions or TRADES in c.subscriptions]
            if listening and all(c.queue.qsize() < QUEUE_HIGH_WATER for c in listening):
                return
            self._changed.clear()
            await self._changed.wait()

    def _publish(self, channel: str, timestamp: bytes, events: bytes) -> None:
        subscription, wire_channel = (LEVEL2, "l2_data") if channel == LEVEL2 else (TRADES, TRADES)
        skip = channel == LEVEL2 and self._skips > 0
        if skip:
            self._skips -= 1
        cut = channel in self._malformed
        self._malformed.discard(channel)
        for connection in self._connections:
            if subscription in connection.subscriptions:
                connection.send(wire_channel, timestamp, events, skip=skip, cut=cut)


class _Connection:
    """One client's websocket: its subscriptions, its ``sequence_num`` and the frames waiting to go out."""

    def __init__(self, websocket: WebSocket, changed: asyncio.Event) -> None:
        self.websocket = websocket
        self.changed = changed
        self.subscriptions: dict[str, list[str]] = {}
        self.sequence = 0
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.stalled_until = 0.0
        self.closed = False

    def send(self, channel: str, timestamp: bytes, events: bytes, *, skip: bool = False, cut: bool = False) -> None:
        frame = b'{"channel":"%s","client_id":"","timestamp":"%s","sequence_num":%d,"events":%s}' % (
            channel.encode(),
            timestamp,
            self.sequence,
            events,
        )
        self.sequence += 1
        if not skip:
            self.queue.put_nowait(frame[: len(frame) // 2] if cut else frame)

    def error(self, message: str, reason: str) -> None:
        self.queue.put_nowait(orjson.dumps({"type": "error", "message": message, "reason": reason}))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)

    async def write(self) -> None:
        """Send the queued frames in order until closed; ends the connection then."""
        try:
            while (frame := await self.queue.get()) is not None:
                silent = self.stalled_until - time.monotonic()
                if silent > 0:
                    await asyncio.sleep(silent)
                await self.websocket.send_text(frame.decode())
                self.changed.set()
            await self.websocket.close(code=1011)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client has gone; the handler cleans up


class _Book:
    """The server's level2 book: each level's last update (as the recording printed it), keyed by side
    and price."""

    def __init__(self) -> None:
        self.levels: dict[tuple[str, Decimal], dict] = {}

    def apply(self, updates: list[dict]) -> None:
        for update in updates:
            key = _level_key(update)
            if Decimal(update["new_quantity"]) == 0:
                self.levels.pop(key, None)
            else:
                self.levels[key] = update

    def replace(self, updates: list[dict]) -> list[dict]:
        """Become the book ``updates`` list; the updates that turn the old book into the new one."""
        new = _Book()
        new.apply(updates)
        changes = [u for key, u in new.levels.items() if self.levels.get(key) != u]
        changes += [{**u, "new_quantity": "0"} for key, u in self.levels.items() if key not in new.levels]
        self.levels = new.levels
        return changes

    def snapshot_events(self, product: str) -> bytes:
        bids = sorted((k for k in self.levels if k[0] == "bid"), key=lambda k: k[1], reverse=True)
        offers = sorted((k for k in self.levels if k[0] != "bid"), key=lambda k: k[1])
        updates = [self.levels[k] for k in bids + offers]
        return orjson.dumps([{"type": "snapshot", "product_id": product, "updates": updates}])


def _channel_of(path: Path, look_at: int = 100) -> str | None:
    """``level2`` or ``market_trades``: the channel of a recording's first data messages (None: neither)."""
    for index, raw in enumerate(open_recording(path, "coinbase_advanced")):
        if index >= look_at:
            break
        try:
            channel = orjson.loads(raw.payload).get("channel")
        except (AttributeError, orjson.JSONDecodeError):  # a dead letter, or a line that is no JSON object
            continue
        if channel in ("l2_data", "market_trades"):
            return LEVEL2 if channel == "l2_data" else TRADES
    return None


def _level_key(update: dict) -> tuple[str, Decimal]:
    return update["side"], Decimal(update["price_level"])


class _Market:
    """The recordings' stream: the book and the trades as played so far, and what is left to play."""

    def __init__(self, level2: Path, trades: Path | None) -> None:
        self.paths = (level2, trades)
        self.book = _Book()
        self.book_timestamp = b""  # the timestamp of the last level2 message played: the stream position
        self.timestamp = b""  # of the last message played, either channel
        self.history: deque[dict] = deque(maxlen=TRADES_SNAPSHOT)  # the last trades, oldest first
        self.product: str | None = None
        self.skipped_lines = 0  # lines of the recordings that are not messages of theirs
        self.trades_seen = False
        readers = [self._read(level2, LEVEL2), *([self._read(trades, TRADES)] if trades else [])]
        self._entries = heapq.merge(*readers, key=lambda entry: entry[0])
        self._prime(has_trades=trades is not None)

    def again(self) -> _Market:
        return _Market(*self.paths)

    def _prime(self, has_trades: bool) -> None:
        """Apply the recordings up to their first snapshots: where a subscriber at the start begins."""
        for entry in self._entries:
            self._step(entry)
            if self.product is not None and (self.trades_seen or not has_trades):
                return
        if self.product is None:
            raise ValueError(f"{self.paths[0]}: no Coinbase Advanced Trade level2 snapshot in it")

    def tape(self) -> Iterator[tuple[int, str, bytes, bytes]]:
        """What to publish, in order: ``(receive ns in the recording, channel, timestamp, events JSON)``."""
        for entry in self._entries:
            published = self._step(entry)
            if published is not None:
                yield published

    def trades_snapshot(self) -> bytes:
        return orjson.dumps([{"type": "snapshot", "trades": list(reversed(self.history))}])

    def _step(self, entry: tuple[int, str, dict]) -> tuple[int, str, bytes, bytes] | None:
        """Apply one recorded message; what to publish of it, if anything."""
        receive_ns, channel, message = entry
        timestamp = message["timestamp"].encode()
        self.timestamp = timestamp
        if channel == LEVEL2:
            changes: list[dict] = []
            for event in message["events"]:
                if event["type"] == "snapshot":
                    first = self.product is None
                    self.product = self.product or event["product_id"]
                    replaced = self.book.replace(event["updates"])
                    changes += [] if first else replaced
                else:
                    self.book.apply(event["updates"])
                    changes += event["updates"]
            self.book_timestamp = timestamp
            if not changes:
                return None
            return receive_ns, LEVEL2, timestamp, _update_events(self.product, changes)
        self.trades_seen = True
        updates = [e for e in message["events"] if e["type"] == "update"]
        for event in message["events"]:
            if event["type"] == "snapshot":
                self.history.clear()
            self.history.extend(reversed(event["trades"]))
        if not updates:
            return None
        return receive_ns, TRADES, timestamp, orjson.dumps(updates)

    def _read(self, path: Path, channel: str) -> Iterator[tuple[int, str, dict]]:
        wanted = "l2_data" if channel == LEVEL2 else TRADES
        for raw in open_recording(path, feed="coinbase_advanced"):
            try:
                if type(raw) is not RawMessage:
                    raise ValueError
                message = orjson.loads(raw.payload)
                if message.get("channel") != wanted:
                    continue  # subscription acknowledgements, heartbeats
                _check(message, channel)
            except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation):
                self.skipped_lines += 1
                continue
            yield raw.receive_ts, channel, message


def _check(message: dict, channel: str) -> None:
    """Raise unless ``message`` has what the player reads of it."""
    if not isinstance(message["timestamp"], str):
        raise ValueError
    for event in message["events"]:
        if event["type"] not in ("snapshot", "update"):
            raise ValueError
        if channel == TRADES:
            list(event["trades"])
            continue
        for update in event["updates"]:
            if update["side"] not in ("bid", "offer") or Decimal(update["new_quantity"]) < 0:
                raise ValueError
            _level_key(update)


def _update_events(product: str, updates: list[dict]) -> bytes:
    return orjson.dumps([{"type": "update", "product_id": product, "updates": updates}])


def _rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"
