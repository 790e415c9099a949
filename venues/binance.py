"""Binance spot and USD-M futures: one combined-stream websocket per symbol (diff depth, bookTicker,
trade), with the REST depth snapshots the book needs.

Every frame is handed on unchanged, with the time it came off the socket. The snapshot
(``GET /api/v3/depth`` or ``/fapi/v1/depth``, limit 1000) is fetched once the first diff of a
connection has arrived, again after every gap in the diffs (spot ``U != previous u + 1``; futures
``pu != previous u``), and again when it is older than the first diff it must bridge; each response
is handed on as a message of its own, the bare REST body, as Binance's recordings have it. Frames
keep flowing while a snapshot is fetched (the book's sync buffers them).

The connection is dropped and made again, with backoff and jitter, when it closes, when no frame
has come for ``stall_s``, and before Binance's 24-hour limit. REST requests stay under the
documented request weight per minute (the venue's ``X-MBX-USED-WEIGHT-1M`` header counts), and a
429 or 418 is waited out for as long as its ``Retry-After`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass

import httpx
import orjson
import websockets
from websockets.exceptions import InvalidURI, WebSocketException

from venues.base import ClientStats, Emit, Received, VenueError, backoff_delays, endpoint

DEPTH_LIMIT = 1000
STALL_S = 30.0  # Binance sends diffs every 100 ms and pings every 20 s: 30 s silent is a dead connection
MAX_CONNECTION_S = 23.5 * 3600  # Binance closes a connection after 24 h; leave before it does
REST_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0  # waiting longer for the venue to answer our close only delays the next connection
RETRY_AFTER_DEFAULT_S = 60.0
WEIGHT_WINDOW_S = 60.0


@dataclass(frozen=True)
class Market:
    """What differs between Binance's spot and USD-M futures market data."""

    feed: str
    ws_setting: str
    rest_setting: str
    depth_path: str
    depth_speed: str  # the diff stream's update speed, as recorded: spot 100ms, futures 0ms
    depth_weight: int  # request weight of a depth request with limit 1000
    check_weight: int  # ... with limit 5, the symbol check at start
    weight_per_minute: int  # the documented limit of request weight per IP per minute
    futures: bool


MARKETS = {
    "binance": Market(
        "binance", "QF_BINANCE_WS_URL", "QF_BINANCE_REST_URL", "/api/v3/depth", "100ms", 50, 5, 6000, False
    ),
    "binance_usdm": Market(
        "binance_usdm",
        "QF_BINANCE_FUTURES_WS_URL",
        "QF_BINANCE_FUTURES_REST_URL",
        "/fapi/v1/depth",
        "0ms",
        20,
        2,
        2400,
        True,
    ),
}


class Stalled(Exception):
    """No frame for longer than the stall timeout."""


class RequestWeight:
    """The request weight used in the current minute: the venue's own count (``X-MBX-USED-WEIGHT-1M``)
    where it said one, else ours; a request that would pass the limit waits for the next minute.
    ``blocked_until`` is set by a 429/418's ``Retry-After``."""

    def __init__(self, limit: int, headroom: float = 0.9) -> None:
        self.budget = int(limit * headroom)
        self.used = 0
        self.minute = self._minute()
        self.blocked_until = 0.0  # time.time()

    @staticmethod
    def _minute() -> int:
        return int(time.time() // WEIGHT_WINDOW_S)

    async def acquire(self, weight: int) -> None:
        while True:
            now = time.time()
            if now < self.blocked_until:
                await asyncio.sleep(self.blocked_until - now)
                continue
            if self._minute() != self.minute:
                self.minute, self.used = self._minute(), 0
            if self.used + weight <= self.budget:
                self.used += weight
                return
            await asyncio.sleep((self.minute + 1) * WEIGHT_WINDOW_S - now + 0.05)

    def observe(self, headers: httpx.Headers) -> None:
        reported = headers.get("x-mbx-used-weight-1m")
        if reported is not None and reported.isdigit():
            self.used = max(self.used, int(reported)) if self._minute() == self.minute else int(reported)


class _Connection:
    """One websocket's diff chain, and the snapshot it is waiting for."""

    def __init__(self) -> None:
        self.last_u: int | None = None
        self.bridge_from: int | None = None  # the first diff's U the pending snapshot must reach
        self.snapshot: asyncio.Task | None = None


class BinanceClient:
    """Market data of ``symbols`` on Binance spot (``feed="binance"``) or USD-M futures
    (``feed="binance_usdm"``): one connection per symbol, named by the symbol."""

    def __init__(
        self,
        symbols: list[str],
        feed: str = "binance",
        *,
        depth_speed: str | None = None,
        stall_s: float = STALL_S,
        max_connection_s: float = MAX_CONNECTION_S,
        first_backoff_s: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if feed not in MARKETS:
            raise ValueError(f"unknown Binance market {feed!r}: one of {', '.join(MARKETS)}")
        if not symbols:
            raise ValueError("no symbols given")
        self.market = MARKETS[feed]
        self.feed = feed
        self.symbols = [symbol.strip().upper() for symbol in symbols]
        self.depth_speed = depth_speed or self.market.depth_speed
        self.stall_s = stall_s
        self.max_connection_s = max_connection_s
        self.first_backoff_s = first_backoff_s
        self.rng = rng  # the backoff's jitter (tests fix it)
        self.stats = ClientStats()
        self.weight = RequestWeight(self.market.weight_per_minute)
        self._http: httpx.AsyncClient | None = None

    def stream_url(self, symbol: str) -> str:
        s = symbol.lower()
        streams = f"{s}@depth@{self.depth_speed}/{s}@bookTicker/{s}@trade"
        return f"{endpoint(self.market.ws_setting)}/stream?streams={streams}"

    def depth_url(self) -> str:
        return endpoint(self.market.rest_setting) + self.market.depth_path

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Connect every symbol and hand on what arrives until ``stop`` is set. VenueError at start for a
        symbol the venue does not list."""
        async with httpx.AsyncClient(timeout=REST_TIMEOUT_S) as self._http:
            for symbol in self.symbols:
                await self._depth(symbol, 5, self.market.check_weight, stop)
            tasks = [asyncio.create_task(self._keep_connected(symbol, emit, stop)) for symbol in self.symbols]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_connected(self, symbol: str, emit: Emit, stop: asyncio.Event) -> None:
        delays = backoff_delays(self.first_backoff_s, rng=self.rng)
        while not stop.is_set():
            received_before = self.stats.messages[symbol]
            try:
                await self._connection(symbol, emit, stop)
            except (OSError, TimeoutError, Stalled, WebSocketException, httpx.HTTPError) as error:
                self.stats.last_error = f"{symbol}: {type(error).__name__}: {error}"
                if isinstance(error, (InvalidURI,)):
                    raise VenueError(f"bad Binance websocket address {self.stream_url(symbol)}: {error}") from None
            if stop.is_set():
                return
            self.stats.reconnects += 1
            if self.stats.messages[symbol] > received_before:
                # it worked for a while: start the backoff anew
                delays = backoff_delays(self.first_backoff_s, rng=self.rng)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next(delays))

    async def _connection(self, symbol: str, emit: Emit, stop: asyncio.Event) -> None:
        """One websocket, until it closes, stalls, reaches its age limit, or ``stop``."""
        state = _Connection()
        opened = time.monotonic()
        async with websockets.connect(
            self.stream_url(symbol),
            max_size=None,
            open_timeout=REST_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            compression=None,
        ) as ws:
            closer = asyncio.create_task(stop.wait())
            closer.add_done_callback(lambda task: task.cancelled() or asyncio.ensure_future(ws.close()))
            try:
                while True:
                    age_left = self.max_connection_s - (time.monotonic() - opened)
                    if age_left <= 0:
                        return  # a planned reconnect, before the venue's own limit
                    try:
                        async with asyncio.timeout(min(self.stall_s, age_left)):
                            frame = await ws.recv(decode=False)
                    except TimeoutError:
                        if time.monotonic() - opened >= self.max_connection_s:
                            return
                        raise Stalled(f"no frame for {self.stall_s:g} s") from None
                    except websockets.ConnectionClosed:
                        if stop.is_set():
                            return
                        raise
                    receive_ns = time.time_ns()
                    emit(Received(self.feed, symbol, symbol, receive_ns, frame))
                    self.stats.messages[symbol] += 1
                    if b"depthUpdate" in frame:
                        self._on_diff(symbol, frame, state, emit, stop)
            finally:
                closer.cancel()
                if state.snapshot is not None:
                    state.snapshot.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await state.snapshot

    def _on_diff(self, symbol: str, frame: bytes, state: _Connection, emit: Emit, stop: asyncio.Event) -> None:
        try:
            data = orjson.loads(frame)
            data = data.get("data", data)
            first, last = int(data["U"]), int(data["u"])
            previous = int(data["pu"]) if self.market.futures else first - 1
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return  # handed on as it came: the flow makes it a dead letter; the next diff shows the gap
        if state.last_u is not None and last <= state.last_u:
            return  # one already seen
        gap = state.last_u is not None and previous != state.last_u
        if state.last_u is None or gap:
            state.bridge_from = first
            if gap:
                self.stats.resyncs += 1
            if state.snapshot is None or state.snapshot.done():
                state.snapshot = asyncio.create_task(self._snapshot(symbol, state, emit, stop))
        state.last_u = last

    def _bridges(self, last_update_id: int, first: int) -> bool:
        """Whether a snapshot at ``last_update_id`` reaches a diff starting at ``first``."""
        return last_update_id >= (first if self.market.futures else first - 1)

    async def _snapshot(self, symbol: str, state: _Connection, emit: Emit, stop: asyncio.Event) -> None:
        """Fetch snapshots until one reaches the first diff after the last gap; each is handed on."""
        delays = backoff_delays(self.first_backoff_s, rng=self.rng)
        while not stop.is_set():
            body, receive_ns = await self._depth(symbol, DEPTH_LIMIT, self.market.depth_weight, stop)
            if body is None:
                return
            emit(Received(self.feed, symbol, symbol, receive_ns, body))
            self.stats.messages[symbol] += 1
            try:
                last_update_id = int(orjson.loads(body)["lastUpdateId"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                last_update_id = None
            if last_update_id is not None and self._bridges(last_update_id, state.bridge_from):
                return
            with contextlib.suppress(TimeoutError):  # older than the stream: the venue's cache lags; ask again
                await asyncio.wait_for(stop.wait(), next(delays))

    async def _depth(self, symbol: str, limit: int, weight: int, stop: asyncio.Event) -> tuple[bytes | None, int]:
        """A depth response's body and receive time, retried through network errors, 5xx and 429/418 (waiting
        as asked); VenueError for an unknown symbol. (None, 0) if ``stop`` came first."""
        delays = backoff_delays(self.first_backoff_s, rng=self.rng)
        url = self.depth_url()
        while not stop.is_set():
            await self.weight.acquire(weight)
            try:
                response = await self._http.get(url, params={"symbol": symbol, "limit": limit})
            except httpx.UnsupportedProtocol as error:
                raise VenueError(f"bad Binance REST address {url}: {error}") from None
            except httpx.HTTPError as error:
                self.stats.last_error = f"{symbol}: REST {url}: {type(error).__name__}: {error}"
                wait = next(delays)
            else:
                receive_ns = time.time_ns()
                self.weight.observe(response.headers)
                if response.status_code == 200:
                    return response.content, receive_ns
                if response.status_code == 400 and _error_code(response) == -1121:
                    raise VenueError(f"Binance ({self.feed}) does not know the symbol {symbol!r}")
                if response.status_code in (418, 429):
                    wait = _retry_after(response)
                    self.weight.blocked_until = time.time() + wait
                    self.stats.last_error = f"{symbol}: REST answered {response.status_code}; waiting {wait:g} s"
                    continue  # acquire() waits it out
                if response.status_code < 500:
                    raise VenueError(
                        f"Binance ({self.feed}) refused the depth request for {symbol}: "
                        f"HTTP {response.status_code} {response.text[:200]}"
                    )
                self.stats.last_error = f"{symbol}: REST answered {response.status_code}"
                wait = next(delays)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        return None, 0


def _error_code(response: httpx.Response) -> int | None:
    try:
        return int(response.json()["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return RETRY_AFTER_DEFAULT_S
