"""Live ingestion from Coinbase Advanced Trade, against the local Coinbase playing a simulated recording:
local exchange -> ``CoinbaseClient`` -> native recording files -> the predict flow -> store, compared with
the flow's direct replay of the source recording.

Why the comparison is exact: the local exchange sends each recorded level2 update's events and
``timestamp`` as recorded (only ``sequence_num`` is its own, per connection), and the snapshot it sends
at any point is the recording's snapshot with every update played since applied, stamped with the
``timestamp`` of the last of them. The ingested book after a snapshot stamped T and the updates after
it therefore holds the very price and size strings the source's book holds after its message stamped
T and the same updates, parsed the same way: equal floats. So every book event of the ingested run is
matched, by its message's ``timestamp`` (the row's ``exchange_ts``, unique per level2 message in the
source), with the source's book after the same message: the top ten levels of each book row, and the
features that are functions of the book alone (mid, spread, imbalances, depth), bit for bit. Features
over time windows or past events are left out: they depend on receive times and on what came before.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest
from pipeline_runs import replay, store_contents
from replaying import Replayed

from dataflows.recordings import open_recording
from exchanges.coinbase import CoinbaseExchange
from operators.feeds.common import iso_to_ns
from quantumflow.events import BookDelta, BookSnapshot
from quantumflow.features import FEATURE_NAMES
from simulator import simulate
from simulator.output import write_recording
from venues.base import Received, VenueError
from venues.coinbase import CoinbaseClient

PRODUCT = "BTC-USD"
INSTRUMENT = "coinbase:BTC-USD"
LEVEL2, TRADES = f"{PRODUCT}.level2", f"{PRODUCT}.market_trades"
IMBALANCES = tuple(name for name in FEATURE_NAMES if name.startswith("depth_imbalance_"))
BOOK_FEATURES = ("mid", "spread", "weighted_mid", "bid_depth_10", "ask_depth_10", *IMBALANCES)
GUARD_S = 60  # against a hung client, not a measurement
AFTER_RECOVERY = 300  # level2 messages to take after a recovery before stopping


class Source(NamedTuple):
    level2: Path
    trades: Path
    features: dict[int, dict]  # the direct replay's feature rows by exchange_ts
    levels: dict[int, dict]  # the direct replay's top ten levels after each level2 message, as book columns
    last_timestamps: tuple[bytes, bytes]  # of the last level2 and market_trades messages


@pytest.fixture(scope="session")
def source(tmp_path_factory) -> Source:
    """Five simulated minutes of BTC-USD on Coinbase Advanced Trade, and what the flow makes of them."""
    folder = tmp_path_factory.mktemp("coinbase_source")
    simulate(folder, seed=11, minutes=5)
    level2, trades = folder / "coinbase_level2_btc-usd.gz", folder / "coinbase_market_trades_btc-usd.gz"
    url = f"sqlite:///{folder / 'direct.db'}"
    replay([level2, trades], url)
    features = store_contents(url)["features"]
    by_time = {row["exchange_ts"]: row for row in features}
    assert len(by_time) == len(features) > 5_000  # one level2 message per timestamp

    levels: dict[int, dict] = {}

    def after_event(event, raw, outputs, book) -> None:
        if type(event) in (BookSnapshot, BookDelta) and book.ready:
            levels[event.exchange_ts] = book_columns(*book.top_level_lists(10))

    Replayed(after_event).feed(open_recording(level2))
    return Source(level2, trades, by_time, levels, (last_timestamp(level2), last_timestamp(trades)))


def book_columns(bids: list, asks: list) -> dict:
    columns = {}
    for side, levels in (("bid", bids), ("ask", asks)):
        for k in range(10):
            price, size = levels[k] if k < len(levels) else (None, 0.0)
            columns[f"{side}_price_{k + 1}"], columns[f"{side}_size_{k + 1}"] = price, size
    return columns


def last_timestamp(recording: Path) -> bytes:
    *_, last = open_recording(recording)
    return b'"timestamp":"%s"' % orjson.loads(last.payload)["timestamp"].encode()


class Tap:
    """What the client hands on, counted as it comes; ``then`` runs after each message."""

    def __init__(self, then: Callable[[Tap, Received], bool]) -> None:
        self.received: list[Received] = []
        self.counts: Counter[str] = Counter()
        self.snapshots = 0  # level2 snapshots
        self.since_snapshot = 0  # level2 messages after the last snapshot
        self.then = then

    def take(self, message: Received) -> bool:
        """True when enough came."""
        self.received.append(message)
        self.counts[message.connection] += 1
        if message.connection == LEVEL2:
            self.since_snapshot += 1
            if b'"type":"snapshot"' in message.payload:
                self.snapshots += 1
                self.since_snapshot = 0
        return self.then(self, message)


def ingest(exchange: CoinbaseExchange, then: Callable[[Tap, Received], bool], **options) -> tuple[Tap, CoinbaseClient]:
    """Run a client on ``exchange`` until ``then`` says enough came."""
    tap = Tap(then)
    client = CoinbaseClient([PRODUCT], url=exchange.ws_url, rng=random.Random(3), **options)

    async def main() -> None:
        stop = asyncio.Event()

        def emit(message: Received) -> None:
            if tap.take(message):
                stop.set()

        async with asyncio.timeout(GUARD_S):
            await client.run(emit, stop)

    asyncio.run(main())
    return tap, client


def replay_ingested(tap: Tap, folder: Path) -> dict[str, list[dict]]:
    """The client's messages written as native recordings, one per connection, replayed into a store."""
    files = []
    for connection in sorted({m.connection for m in tap.received}):
        path = folder / f"coinbase_{connection.replace('.', '_').lower()}.gz"
        lines = [(m.receive_ns, m.payload) for m in tap.received if m.connection == connection]
        write_recording(path, lines, compress=True)
        files.append(path)
    url = f"sqlite:///{folder / 'ingested.db'}"
    replay(files, url)
    return store_contents(url)


def assert_exact(rows: dict[str, list[dict]], source: Source, in_order: bool = True) -> list[int]:
    """Every book event of the ingested run equals the direct replay's at the same level2 message;
    their exchange_ts, in order."""
    features = [row for row in rows["features"] if row["instrument"] == INSTRUMENT]
    assert features and rows["book"]
    for row in features:
        expected = source.features[row["exchange_ts"]]
        assert {name: row[name] for name in BOOK_FEATURES} == {name: expected[name] for name in BOOK_FEATURES}
    for row in rows["book"]:
        assert {name: row[name] for name in source.levels[row["exchange_ts"]]} == source.levels[row["exchange_ts"]]
    times = [row["exchange_ts"] for row in features]
    assert times == sorted(times) or not in_order  # a fresh snapshot never takes the book back in time
    return times


def recovered(tap: Tap) -> bool:
    """A second snapshot came, and enough level2 messages after it."""
    return tap.snapshots >= 2 and tap.since_snapshot >= AFTER_RECOVERY


def test_five_minutes_ingested_rebuild_the_books_of_a_direct_replay(source, tmp_path):
    last_level2, last_trades = source.last_timestamps
    seen = set()

    def until_the_end(tap: Tap, message: Received) -> bool:
        for last in (last_level2, last_trades):
            if last in message.payload:
                seen.add(last)
        return len(seen) == 2

    with CoinbaseExchange(source.level2, source.trades, speed=0) as exchange:
        tap, client = ingest(exchange, until_the_end)
    assert set(tap.counts) == {LEVEL2, TRADES}  # the heartbeats are not recorded
    assert (client.stats.reconnects, client.stats.resyncs, client.stats.last_error) == (0, 0, None)
    assert client.stats.messages == tap.counts

    rows = replay_ingested(tap, tmp_path)
    assert rows["resyncs"] == [] and rows["dead_letters"] == []
    matched = assert_exact(rows, source)
    # nothing lost: from the first snapshot on, every level2 message of the source is a book event here
    assert matched == sorted(ts for ts in source.features if ts >= matched[0])
    assert len(matched) > 5_000
    trade_ids = [row["trade_id"] for row in rows["trades"]]
    assert len(trade_ids) == len(set(trade_ids)) > 1_000


def test_a_dropped_connection_comes_back_with_a_fresh_snapshot_and_an_exact_book(source, tmp_path):
    # paced (five minutes in fifteen seconds): flat out, the player would reach the end while level2 is away
    with CoinbaseExchange(source.level2, source.trades, speed=20) as exchange:

        def drop_then_continue(tap: Tap, message: Received) -> bool:
            if message.connection == LEVEL2 and tap.counts[LEVEL2] == 500:
                exchange.drop("level2")
            return recovered(tap)

        tap, client = ingest(exchange, drop_then_continue)
    assert client.stats.reconnects == 1 and client.stats.resyncs == 0
    assert "BTC-USD.level2" in client.stats.last_error

    rows = replay_ingested(tap, tmp_path)
    assert rows["resyncs"] == [] and rows["dead_letters"] == []  # a new connection starts with a snapshot
    matched = assert_exact(rows, source)
    assert tap.snapshots == 2 and len(matched) >= (500 - 1) + (1 + AFTER_RECOVERY)  # less the acknowledgements


def test_a_skipped_update_is_a_gap_the_client_resubscribes_and_the_book_is_exact_again(source, tmp_path):
    with CoinbaseExchange(source.level2, source.trades, speed=0) as exchange:

        def skip_then_continue(tap: Tap, message: Received) -> bool:
            if message.connection == LEVEL2 and tap.counts[LEVEL2] == 500:
                exchange.skip_update()
            return recovered(tap)

        tap, client = ingest(exchange, skip_then_continue)
    assert client.stats.resyncs == 1 and client.stats.reconnects == 0
    level2 = [orjson.loads(m.payload) for m in tap.received if m.connection == LEVEL2]
    numbers = [message["sequence_num"] for message in level2]
    (gap,) = [i for i in range(1, len(numbers)) if numbers[i] != numbers[i - 1] + 1]
    # on the same connection, numbered on (the gap is the only jump): a new acknowledgement, then a snapshot
    kinds = [m["channel"] if m["channel"] == "subscriptions" else m["events"][0]["type"] for m in level2[gap:]]
    assert kinds.index("subscriptions") < kinds.index("snapshot")

    rows = replay_ingested(tap, tmp_path)
    (resync,) = rows["resyncs"]
    assert resync["reason"] == f"sequence gap: after {numbers[gap - 1]} came {numbers[gap]}"
    assert rows["dead_letters"] == []
    matched = assert_exact(rows, source)
    assert sum(ts > resync["exchange_ts"] for ts in matched) >= AFTER_RECOVERY


def test_malformed_frames_become_dead_letters_and_the_client_keeps_going(source, tmp_path):
    with CoinbaseExchange(source.level2, source.trades, speed=0) as exchange:

        def spoil_then_continue(tap: Tap, message: Received) -> bool:
            if message.connection == TRADES and tap.counts[TRADES] == 20:
                exchange.malformed("market_trades")
                exchange.malformed("level2")
            return tap.counts[TRADES] >= 60 and recovered(tap)

        tap, client = ingest(exchange, spoil_then_continue)
    cut = []
    for message in tap.received:
        try:
            orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            cut.append(message)
    assert sorted(m.connection for m in cut) == [LEVEL2, TRADES]
    assert client.stats.reconnects == 0
    assert client.stats.resyncs == 1  # the cut level2 message's number is missing: a gap

    rows = replay_ingested(tap, tmp_path)
    assert sorted(row["raw"] for row in rows["dead_letters"]) == sorted(m.payload for m in cut)
    assert len(rows["resyncs"]) == 1
    assert_exact(rows, source)


@pytest.mark.parametrize(
    ("options", "reconnects", "reason"),
    [
        # heartbeats stop: every connection is opened again, without waiting for its own stall time
        ({"heartbeat_stall_s": 2.5}, 3, "opened again, the venue's heartbeats stopped"),
        # each data connection that brings nothing for stall_s is opened again (the heartbeats wait longer)
        ({"heartbeat_stall_s": GUARD_S, "stall_s": 1.5}, 2, "no frame for 1.5 s"),
    ],
    ids=["heartbeats", "data"],
)
def test_a_stalled_venue_is_noticed_and_the_connections_opened_again(source, tmp_path, options, reconnects, reason):
    with CoinbaseExchange(source.level2, source.trades, speed=20) as exchange:

        def stall_then_continue(tap: Tap, message: Received) -> bool:
            if message.connection == LEVEL2 and tap.counts[LEVEL2] == 200:
                exchange.stall(GUARD_S)
            return recovered(tap)

        tap, client = ingest(exchange, stall_then_continue, **options)
    assert client.stats.reconnects == reconnects and client.stats.last_error.endswith(reason)
    rows = replay_ingested(tap, tmp_path)
    assert rows["resyncs"] == [] and rows["dead_letters"] == []
    assert_exact(rows, source)


def test_a_looping_exchange_starts_over_and_the_book_stays_exact(source, tmp_path):
    first_update = None  # the timestamp of the first update the client gets
    rounds = 0

    def into_the_second_round(tap: Tap, message: Received) -> bool:
        nonlocal first_update, rounds
        if message.connection == LEVEL2 and tap.counts[LEVEL2] == 3:
            first_update = b'"timestamp":"%s"' % orjson.loads(message.payload)["timestamp"].encode()
        if message.connection == LEVEL2 and first_update is not None and first_update in message.payload:
            rounds += 1
            tap.since_snapshot = 0
        return rounds == 2 and tap.since_snapshot >= AFTER_RECOVERY

    with CoinbaseExchange(source.level2, source.trades, speed=0, loop=True) as exchange:
        tap, client = ingest(exchange, into_the_second_round)
    assert not exchange.finished.is_set() and tap.snapshots == 1 and client.stats.resyncs == 0
    rows = replay_ingested(tap, tmp_path)
    assert rows["resyncs"] == [] and rows["dead_letters"] == []
    matched = assert_exact(rows, source, in_order=False)
    first = iso_to_ns(first_update.split(b'"')[-2].decode())
    assert sum(ts == first for ts in matched) == 2  # the same update, once per round
    assert len(matched) > len(source.features)


def test_an_unknown_product_is_a_clear_error_at_start(source):
    with CoinbaseExchange(source.level2, source.trades, speed=0) as exchange:
        client = CoinbaseClient([PRODUCT, "NOPE-USD"], url=exchange.ws_url)

        async def main() -> None:
            async with asyncio.timeout(GUARD_S):
                await client.run(lambda message: None, asyncio.Event())

        with pytest.raises(VenueError) as raised:
            asyncio.run(main())
    message = str(raised.value)
    assert "NOPE-USD" in message and "\n" not in message
    assert message.startswith("Coinbase refused NOPE-USD.") and "NOPE-USD is not a valid product" in message


def test_the_stop_event_ends_the_run_even_while_the_venue_is_silent(source):
    received: list[Received] = []
    with CoinbaseExchange(source.level2, source.trades, speed=1) as exchange:
        client = CoinbaseClient([PRODUCT], url=exchange.ws_url)

        async def main() -> None:
            stop = asyncio.Event()

            def emit(message: Received) -> None:
                received.append(message)
                if len(received) == 3:  # some came: silence the venue, then stop while the client waits
                    exchange.stall(GUARD_S)
                    asyncio.get_running_loop().call_later(0.5, stop.set)

            async with asyncio.timeout(GUARD_S):
                await client.run(emit, stop)

        asyncio.run(main())
    assert len(received) >= 3 and client.stats.reconnects == 0  # and it returned, not the guard
