"""Coinbase Advanced Trade market data: ``level2`` and ``market_trades`` of each product, each on a websocket
of its own, and one ``heartbeats`` websocket that tells whether the venue is alive.

``sequence_num`` numbers every message of a connection whatever its channel, so a channel that shares
level2's connection would make its numbers jump; that is why every channel has its own, and why the
heartbeats (not recorded) do too. Every frame of the data connections is handed on unchanged, the
``subscriptions`` acknowledgements included, as a recording has them.
https://docs.cdp.coinbase.com/advanced-trade/docs/ws-overview

Recovery:

* a jump in level2's ``sequence_num`` is a lost message: the client subscribes again on the same
  connection and the venue sends a fresh snapshot, numbered on (a resync);
* a connection that closes, fails, or brings no frame for ``stall_s`` is opened again after a backoff
  with jitter (a reconnect); the new connection starts with a snapshot;
* heartbeats that stop for ``heartbeat_stall_s`` mean the venue has stalled: every connection is
  opened again at once, without waiting for its own ``stall_s`` (a quiet product's book may
  legitimately bring nothing for a while, heartbeats come every second).

An error the venue answers a subscription with, before it ever acknowledged that subscription (an
unknown product), is the user's mistake: ``run`` raises ``VenueError``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException

from venues.base import ClientStats, Emit, Received, VenueError, backoff_delays, endpoint

FEED = "coinbase_advanced"
CHANNELS = ("level2", "market_trades")
HEARTBEATS = "heartbeats"
MAX_FRAME_BYTES = 64 << 20  # a whole book's snapshot is one frame
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0


class CoinbaseClient:
    """``level2`` and ``market_trades`` of ``symbols`` (product ids such as ``BTC-USD``) from the venue at
    ``url`` (default: ``QF_COINBASE_WS_URL``)."""

    feed = FEED

    def __init__(
        self,
        symbols: list[str],
        *,
        url: str | None = None,
        stall_s: float = 30.0,
        heartbeat_stall_s: float = 5.0,
        first_backoff_s: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self.symbols = list(dict.fromkeys(symbols))
        if not self.symbols:
            raise ValueError("no product to subscribe to")
        self.url = url or endpoint("QF_COINBASE_WS_URL")
        self.stall_s = stall_s
        self.heartbeat_stall_s = heartbeat_stall_s
        self.first_backoff_s = first_backoff_s
        self.rng = rng or random.Random()
        self.stats = ClientStats()
        self._connections: list[_Connection] = []

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Keep the connections until ``stop`` is set; raises ``VenueError`` if the venue refuses a product."""
        data = [_Connection(self, symbol, channel, emit) for symbol in self.symbols for channel in CHANNELS]
        self._connections = [*data, _Connection(self, None, HEARTBEATS, None)]
        tasks = [asyncio.create_task(c.keep()) for c in self._connections]
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a VenueError, or a bug
        finally:
            for task in (stopped, *tasks):
                task.cancel()
            await asyncio.gather(stopped, *tasks, return_exceptions=True)

    def venue_stalled(self) -> None:
        """The heartbeats stopped: every data connection is opened again now."""
        for connection in self._connections:
            if connection.channel != HEARTBEATS:
                connection.give_up()


class _Connection:
    """One websocket of the client, kept open (or opened again) for one channel of one product."""

    def __init__(self, client: CoinbaseClient, symbol: str | None, channel: str, emit: Emit | None) -> None:
        self.client = client
        self.symbol = symbol
        self.channel = channel
        self.emit = emit
        self.name = HEARTBEATS if symbol is None else f"{symbol}.{channel}"
        request = {"type": "subscribe", "channel": channel}
        if symbol is not None:  # the heartbeats need no product
            request["product_ids"] = [symbol]
        self.subscribe = orjson.dumps(request)
        self.stall_s = client.heartbeat_stall_s if symbol is None else client.stall_s
        self.acknowledged_once = False  # the venue has accepted this subscription at least once
        self._deadline: asyncio.Timeout | None = None
        self._session_acknowledged = False  # the venue has accepted it on the current connection
        self._last_sequence: int | None = None
        self._awaiting_snapshot = False
        self._venue_stalled = False

    async def keep(self) -> None:
        stats = self.client.stats
        delays = self._delays()
        first = True
        while True:
            if not first:
                stats.reconnects += 1
            first = False
            try:
                async with connect(
                    self.client.url,
                    max_size=MAX_FRAME_BYTES,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=CLOSE_TIMEOUT_S,
                ) as websocket:
                    await websocket.send(self.subscribe.decode())
                    await self._read(websocket)
            except _Stalled:
                if self._venue_stalled:
                    stats.last_error = f"{self.name}: opened again, the venue's heartbeats stopped"
                else:
                    stats.last_error = f"{self.name}: no frame for {self.stall_s:g} s"
                if self.channel == HEARTBEATS:
                    self.client.venue_stalled()
            except InvalidURI as error:
                raise VenueError(f"Coinbase: {self.client.url!r} is not a websocket address ({error})") from error
            except InvalidStatus as error:
                status = error.response.status_code
                if not self.acknowledged_once and 400 <= status < 500 and status != 429:
                    raise VenueError(f"Coinbase at {self.client.url} refused the connection: HTTP {status}") from error
                stats.last_error = f"{self.name}: HTTP {status}"
            except (OSError, WebSocketException) as error:
                stats.last_error = f"{self.name}: {error or type(error).__name__}"
            if self._session_acknowledged:
                delays = self._delays()  # it worked for a while: start the backoff afresh
            await asyncio.sleep(next(delays))

    def give_up(self) -> None:
        """Treat the connection as stalled now (it is opened again)."""
        if self._deadline is not None:
            self._venue_stalled = True
            self._deadline.reschedule(asyncio.get_running_loop().time())

    def _delays(self) -> Iterator[float]:
        return backoff_delays(self.client.first_backoff_s, rng=self.client.rng)

    async def _read(self, websocket: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        self._last_sequence, self._awaiting_snapshot = None, False
        self._session_acknowledged = self._venue_stalled = False
        try:
            async with asyncio.timeout_at(loop.time() + self.stall_s) as self._deadline:
                while True:
                    frame = await websocket.recv(decode=False)
                    receive_ns = time.time_ns()
                    self._deadline.reschedule(loop.time() + self.stall_s)
                    if self._on_frame(frame, receive_ns):
                        await websocket.send(self.subscribe.decode())
        except TimeoutError:
            raise _Stalled from None
        finally:
            self._deadline = None

    def _on_frame(self, frame: bytes, receive_ns: int) -> bool:
        """Hand ``frame`` on; True when level2 must be subscribed again (a gap)."""
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            message = None
        if type(message) is not dict:
            message = {}
        if message.get("type") == "error":
            said = [str(message[key]) for key in ("message", "reason") if message.get(key)]
            reason = ": ".join(said) or frame.decode(errors="replace")
            if not self.acknowledged_once:
                raise VenueError(f"Coinbase refused {self.name}: {reason}")
            self.client.stats.last_error = f"{self.name}: {reason}"
        elif message.get("channel") == "subscriptions":
            self.acknowledged_once = self._session_acknowledged = True
        if self.emit is None:
            return False
        self.emit(Received(FEED, self.symbol, self.name, receive_ns, frame))
        self.client.stats.messages[self.name] += 1
        return self.channel == "level2" and self._gap(message)

    def _gap(self, message: dict) -> bool:
        sequence = message.get("sequence_num")
        if type(sequence) is not int:
            return False  # not a message of the channel (cut short, an error): the next number shows a loss
        last, self._last_sequence = self._last_sequence, sequence
        if message.get("channel") == "l2_data" and any(
            type(event) is dict and event.get("type") == "snapshot" for event in message.get("events") or ()
        ):
            self._awaiting_snapshot = False
            return False  # a whole book: whatever came before it no longer matters
        if last is None or sequence == last + 1 or self._awaiting_snapshot:
            return False  # in sequence, or a fresh snapshot is on its way that covers the loss
        self._awaiting_snapshot = True
        self.client.stats.resyncs += 1
        return True


class _Stalled(Exception):
    """No frame came in time (or the venue's heartbeats stopped): the connection is opened again."""
