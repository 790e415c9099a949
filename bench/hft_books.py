"""File -> synced book: QuantumFlow beside hftbacktest on the same Binance futures recording.

Each side starts from the gzip file on disk and ends with the instrument's order book after the last
message; the two are timed alternately, for several rounds in one process, after a warm-up round
(untimed: numba compiles hftbacktest's bindings and converter on first use) that also checks that
both books agree, and an untimed round as the timed ones run (the first of them was slow on either side).

- **QuantumFlow**: the flow's own path up to the book, without features: the recording read in the
  replay source's batches (``open_recording``, ``BATCH_MESSAGES``), parsed and keyed by instrument by
  the flow's parse step (``parse_batch``), each event through its instrument's ``BookSync`` (the sync
  state machine: snapshot, buffered diffs, ``pu`` chaining, resyncs on a gap; every message is
  parsed: ``depthUpdate``, the REST snapshot, ``bookTicker`` and ``trade``).
- **hftbacktest** (2.4.4, a dev dependency): its converter for Binance futures recordings
  (``hftbacktest.data.utils.binancefutures.convert``: every line JSON-decoded in Python, depth levels
  and market trades into its event rows, ``bookTicker`` skipped; its feed-latency shift and event-order
  correction; no ``.npz`` written), then its Rust replay of those rows to the end of the file in a
  ``HashMapMarketDepthBacktest`` with no orders (each row applied to its local book at its local time,
  and to its exchange book at its exchange time). It keeps no sequence sync (see tests/hft_reference.py).

Both sides run their timed rounds with the garbage collector set as a flow run sets it
(``dataflows.collector.fewer_collections``: what exists before is left out of its passes, and they are
rarer). With Python's defaults, full passes would also walk the objects hftbacktest's warm-up leaves in
this process (numba's, some 100,000), which a run of the flow never pays.

Agreement (the warm-up round): at ``--samples`` receive times spread over the recording from 5 s in
(hftbacktest applies the snapshot over the earlier diffs, so deep levels may differ before) and after
the last message, the best ``--levels`` price levels per side of the project's depth book (the
``depthUpdate`` stream's alone, as hftbacktest has no ``bookTicker``) and of hftbacktest's local book,
after every message received at or before that time: prices in ticks, quantities exactly. Every timed
round also checks the best bid and ask after the last message.

Binance spot recordings are out: hftbacktest 2.4.4 has no converter for them (its futures converter
reads the transaction time ``T`` that spot depth updates and snapshots lack).

    python -m bench.hft_books [RECORDING] [--rounds 5] [--samples 20] [--levels 10] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import orjson

from dataflows import recordings
from dataflows.batches import parse_batch
from dataflows.collector import fewer_collections
from dataflows.recordings import RecordingError, open_recording
from dataflows.sources import BATCH_MESSAGES
from operators import book
from operators.book import OrderBook
from operators.feeds import FEEDS
from operators.sync import BookSync
from quantumflow.events import DeadLetter, RawMessage
from quantumflow.settings import shared_data_dir

DEFAULT_RECORDING = shared_data_dir() / "binance" / "usdm_btcusdt_20240808.gz"
FUTURES_FEEDS = ("binance_usdm", "binance_coinm")  # what hftbacktest's Binance converter reads
SETTLE_NS = 5_000_000_000  # samples start this long after the first message
CONVERT_ROWS = 20_000_000  # the converter's preallocated rows (its default, 100 M, reserves 6.4 GB)
DECIMALS = 8  # the finest tick and lot looked for


PASSES = {True: "built", False: "not built, the Python passes ran (make's install builds them with a C compiler)"}


class NotComparable(ValueError):
    """A recording hftbacktest's converter cannot read."""


# -- QuantumFlow: the flow's path up to the book ------------------------------------------------------------


def compiled_passes() -> bool:
    """Whether the install built the C passes (the book's level loop, native lines to messages), which the
    figures then include; else the Python passes ran, with the same results, more slowly."""
    return (
        book.apply_changes is not book.python_apply_changes
        and recordings.native_messages is not recordings.python_native_messages
    )


class SyncedBooks:
    """The flow's parse step (``parse_batch``) and each instrument's ``BookSync``, without features."""

    def __init__(self) -> None:
        self.syncs: dict[str, BookSync] = {}
        self.messages = 0
        self.events = 0

    def on_messages(self, messages: list[RawMessage | DeadLetter]) -> None:
        for batch in parse_batch(messages).batches:
            sync = self.syncs.get(batch.instrument)
            if sync is None:
                sync = self.syncs[batch.instrument] = BookSync(batch.instrument, batch.feed, FEEDS[batch.feed].rule())
            on_event = sync.on_event
            for event, raw in batch.events:
                on_event(event, raw)
            self.events += len(batch.events)
        self.messages += list(map(type, messages)).count(RawMessage)

    def book(self) -> OrderBook:
        if len(self.syncs) != 1:
            raise NotComparable(f"the recording holds {len(self.syncs)} instruments; hftbacktest's replay takes one")
        return next(iter(self.syncs.values())).book


def quantumflow_books(path: str | Path, feed: str | None = None) -> SyncedBooks:
    books = SyncedBooks()
    messages = iter(open_recording(path, feed))
    while chunk := list(islice(messages, BATCH_MESSAGES)):
        books.on_messages(chunk)
    return books


# -- hftbacktest: its converter, then its replay ------------------------------------------------------------


def hft_convert(path: Path) -> np.ndarray:
    from hftbacktest.data.utils import binancefutures

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            return binancefutures.convert(str(path), buffer_size=CONVERT_ROWS)
    except (EOFError, OSError, ValueError) as error:  # its gzip or JSON reader on a cut or corrupt file
        raise NotComparable(f"hftbacktest's converter cannot read {path}: {error}") from error


def hft_backtest(rows: np.ndarray, tick_size: float, lot_size: float):
    """A backtest of ``rows`` with no orders, its clock at the first row."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data([rows])
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick_size)
        .lot_size(lot_size)
        .last_trades_capacity(0)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    hbt.elapse(0)
    return hbt


def elapse_to(hbt, at: int) -> None:
    """Apply every row with a local time at or before ``at``."""
    if at > hbt.current_timestamp:
        hbt.elapse(at - hbt.current_timestamp)


def last_local_ts(rows: np.ndarray) -> int:
    return int(rows["local_ts"].max())


def finest_step(values: np.ndarray) -> float:
    """The largest power of ten (at most 1) that every value is a whole multiple of: the tick or lot the
    recording's prices or quantities show (hftbacktest needs both; too coarse a tick would merge levels)."""
    values = np.unique(values[np.isfinite(values) & (values != 0)])
    for decimals in range(DECIMALS + 1):
        scaled = values * 10**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return 10.0**-decimals
    return 10.0**-DECIMALS


def hft_steps(rows: np.ndarray) -> tuple[float, float]:
    from hftbacktest import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT

    kinds = rows["ev"] & 0xFF
    depth = rows[(kinds == DEPTH_EVENT) | (kinds == DEPTH_SNAPSHOT_EVENT)]
    return finest_step(depth["px"]), finest_step(depth["qty"])


# -- agreement -------------------------------------------------------------------------------------------


Levels = tuple[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...]]  # (bids, asks) of (tick, qty)


def quantumflow_levels(book: OrderBook, n: int, tick_size: float) -> Levels:
    bids = tuple((round(p / tick_size), q) for p, q in islice(reversed(book.bids.items()), n))
    asks = tuple((round(p / tick_size), q) for p, q in islice(book.asks.items(), n))
    return bids, asks


def hft_levels(hbt, n: int) -> Levels:
    from hftbacktest import BUY_EVENT

    depth = hbt.depth(0)
    levels = depth.snapshot()
    try:
        rows = levels[levels["qty"] > 0].copy()
    finally:
        depth.snapshot_free(levels)
    is_bid = (rows["ev"] & BUY_EVENT) == BUY_EVENT
    tick_size = depth.tick_size
    bids = sorted(((round(px / tick_size), qty) for px, qty in rows[is_bid][["px", "qty"]]), reverse=True)
    asks = sorted((round(px / tick_size), qty) for px, qty in rows[~is_bid][["px", "qty"]])
    return tuple((int(t), float(q)) for t, q in bids[:n]), tuple((int(t), float(q)) for t, q in asks[:n])


def converted_line(payload: bytes) -> bool:
    """Whether hftbacktest's converter makes rows of this message: depth diffs, market trades, snapshots."""
    message = orjson.loads(payload)
    data = message.get("data")
    if data is None:
        return "code" not in message
    return data.get("e") == "depthUpdate" or (data.get("e") == "trade" and data.get("X") == "MARKET")


def feed_offset(path: Path, rows: np.ndarray) -> int:
    """What the converter added to every receive time (its local times run ahead by it, so that no feed
    latency is negative): its first local time minus the receive time of the first line it converted."""
    from hftbacktest import LOCAL_EVENT

    messages = (raw for raw in open_recording(path) if type(raw) is RawMessage)
    first = next(raw.receive_ts for raw in messages if converted_line(raw.payload))
    return int(rows["local_ts"][(rows["ev"] & LOCAL_EVENT) == LOCAL_EVENT].min()) - first


def sample_times(path: Path, samples: int) -> list[int]:
    """``samples`` receive times spread evenly from ``SETTLE_NS`` after the first message to the last."""
    times = [raw.receive_ts for raw in open_recording(path) if type(raw) is RawMessage]
    start, end = times[0] + SETTLE_NS, times[-1]
    if samples < 1 or start >= end:
        return []
    return [start + (end - start) * i // samples for i in range(1, samples + 1)]


def batches_until(messages: Iterable[RawMessage | DeadLetter], times: list[int]) -> Iterator[tuple[int | None, list]]:
    """The messages in the flow's batch size, cut also at each of ``times``: (the time reached, or None
    for an ordinary batch; the batch). Cutting batches does not change a book (tests/test_features_recordings.py)."""
    pending = iter(times)
    next_time = next(pending, None)
    batch: list[RawMessage | DeadLetter] = []
    for raw in messages:
        while next_time is not None and raw.receive_ts > next_time:
            yield next_time, batch
            batch = []
            next_time = next(pending, None)
        batch.append(raw)
        if len(batch) == BATCH_MESSAGES:
            yield None, batch
            batch = []
    yield None, batch
    while next_time is not None:
        yield next_time, []
        next_time = next(pending, None)


@dataclass
class Agreement:
    samples: int  # compared instants, the end included
    agreed: int
    levels: int  # per side
    first_difference: str | None = None  # what differed first, if anything

    @property
    def all_agree(self) -> bool:
        return self.agreed == self.samples


def check_agreement(path: Path, rows: np.ndarray, samples: int, levels: int) -> Agreement:
    tick_size, lot_size = hft_steps(rows)
    offset = feed_offset(path, rows)
    hbt = hft_backtest(rows, tick_size, lot_size)
    books = SyncedBooks()
    agreement = Agreement(0, 0, levels)

    def compare(label: str) -> None:
        ours, theirs = quantumflow_levels(books.book(), levels, tick_size), hft_levels(hbt, levels)
        agreement.samples += 1
        if ours == theirs and all(ours):  # an empty side would agree with nothing to compare
            agreement.agreed += 1
        elif agreement.first_difference is None:
            agreement.first_difference = f"{label}: QuantumFlow {ours} hftbacktest {theirs}"

    try:
        for reached, batch in batches_until(open_recording(path), sample_times(path, samples)):
            books.on_messages(batch)
            if reached is not None:
                elapse_to(hbt, reached + offset)
                compare(f"received by {reached}")
        elapse_to(hbt, last_local_ts(rows))
        compare("after the last message")
    finally:
        hbt.close()
    return agreement


# -- timing ----------------------------------------------------------------------------------------------


@dataclass
class HftBooksBench:
    recording: str
    feed: str
    messages: int  # lines of the recording read by both sides
    quantumflow_events: int  # market events parsed
    hft_rows: int  # rows the converter made (each depth level a row; doubled where its event order needed)
    rounds: int
    quantumflow_s: list[float]
    hft_convert_s: list[float]
    hft_replay_s: list[float]
    agreement: Agreement
    ends_agree: int  # timed rounds whose best bid and ask after the last message agreed
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    describe: dict[str, str] = field(default_factory=dict)
    compiled: bool = True  # compiled_passes()

    @property
    def quantumflow_messages_per_s(self) -> float:
        return self.messages / statistics.median(self.quantumflow_s)

    @property
    def hft_messages_per_s(self) -> float:
        return self.messages / statistics.median(map(sum, zip(self.hft_convert_s, self.hft_replay_s, strict=True)))

    @property
    def round_ratios(self) -> list[float]:
        """QuantumFlow's rate over hftbacktest's (converter plus replay) in each round: the two ran one after
        the other, so a change in the machine's load between rounds weighs little on them."""
        hft_s = map(sum, zip(self.hft_convert_s, self.hft_replay_s, strict=True))
        return [theirs / ours for ours, theirs in zip(self.quantumflow_s, hft_s, strict=False)]

    @property
    def ratio(self) -> float:
        """The median of ``round_ratios``."""
        return statistics.median(self.round_ratios)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "quantumflow_messages_per_s": self.quantumflow_messages_per_s,
            "quantumflow_events_per_s": self.quantumflow_events / statistics.median(self.quantumflow_s),
            "hft_messages_per_s": self.hft_messages_per_s,
            "hft_convert_messages_per_s": self.messages / statistics.median(self.hft_convert_s),
            "hft_replay_rows_per_s": self.hft_rows / statistics.median(self.hft_replay_s),
            "round_ratios": self.round_ratios,
            "ratio": self.ratio,
            "all_agree": self.agreement.all_agree and self.ends_agree == self.rounds,
        }


DESCRIBE = {
    "quantumflow": "gzip read -> parse every message (the flow's parse step) -> BookSync per instrument "
    "(snapshot, buffered diffs, sequence checks, bookTicker kept beside the depth book)",
    "hftbacktest": "gzip read -> binancefutures.convert (JSON per line in Python, depth and market trades to "
    "rows, latency shift, event order) -> HashMapMarketDepthBacktest elapsed to the end, no orders "
    "(local and exchange books, no sequence checks)",
}


def best(levels: Levels) -> tuple:
    bids, asks = levels
    return bids[:1], asks[:1]


def bench_hft_books(path: Path, rounds: int = 5, samples: int = 20, levels: int = 10) -> HftBooksBench:
    feed = open_recording(path).feed
    if feed not in FUTURES_FEEDS:
        spot = feed == "binance"
        why = ": its converter reads the transaction time T that Binance spot messages lack" if spot else ""
        raise NotComparable(
            f"{path}: a {feed} recording; hftbacktest 2.4.4 converts only Binance futures recordings "
            f"(USD-M, COIN-M){why}"
        )
    load_start = _load()
    rows = hft_convert(path)  # the warm-up round: compiles hftbacktest's numba code
    agreement = check_agreement(path, rows, samples, levels)
    tick_size, lot_size = hft_steps(rows)
    _timed_round(path, tick_size, lot_size)  # untimed: each side's first round under the timed settings is slow
    ours_s, convert_s, replay_s = [], [], []
    ends_agree = 0
    for _ in range(rounds):
        books, rows, times, agree = _timed_round(path, tick_size, lot_size)
        for kept, seconds in zip((ours_s, convert_s, replay_s), times, strict=True):
            kept.append(seconds)
        ends_agree += agree
    return HftBooksBench(
        str(path),
        feed,
        books.messages,
        books.events,
        len(rows),
        rounds,
        ours_s,
        convert_s,
        replay_s,
        agreement,
        ends_agree,
        load_start,
        _load(),
        DESCRIBE,
        compiled_passes(),
    )


def _timed_round(path: Path, tick_size: float, lot_size: float) -> tuple[SyncedBooks, np.ndarray, tuple, bool]:
    """Each side once: QuantumFlow's books, hftbacktest's rows, the seconds of QuantumFlow, of the converter
    and of the replay, and whether the two best bids and asks agree at the end."""
    with fewer_collections():  # both sides, as a flow run sets the collector
        start = time.perf_counter()
        books = quantumflow_books(path)
        ours_s = time.perf_counter() - start

        start = time.perf_counter()
        rows = hft_convert(path)
        converted_at = time.perf_counter()
        hbt = hft_backtest(rows, tick_size, lot_size)
        elapse_to(hbt, last_local_ts(rows))
        replay_s = time.perf_counter() - converted_at
    agree = best(quantumflow_levels(books.book(), 1, tick_size)) == best(hft_levels(hbt, 1))
    hbt.close()
    return books, rows, (ours_s, converted_at - start, replay_s), agree


def _load() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "recording",
        nargs="?",
        type=Path,
        default=DEFAULT_RECORDING,
        help="a Binance USD-M or COIN-M recording (default: USD-M 08-08 in the shared data)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed rounds, each side once per round (default %(default)s)"
    )
    parser.add_argument(
        "--samples", type=int, default=20, help="instants at which the two books are compared (default %(default)s)"
    )
    parser.add_argument("--levels", type=int, default=10, help="price levels per side compared (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.rounds < 1 or args.samples < 0 or args.levels < 1:
        parser.error("--rounds and --levels must be at least 1, --samples at least 0")
    try:
        result = bench_hft_books(args.recording, args.rounds, args.samples, args.levels)
    except (NotComparable, RecordingError) as error:
        sys.exit(f"error: {error}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    figures = result.to_dict()
    print(f"recording: {result.recording} ({result.feed}, {result.messages:,} messages)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in result.load_start)}")
    print(f"QuantumFlow's C passes: {PASSES[result.compiled]}")
    print(f"file -> synced book, median of {result.rounds} alternating rounds:")
    print(
        f"  QuantumFlow:  {figures['quantumflow_messages_per_s']:>10,.0f} messages/s "
        f"({figures['quantumflow_events_per_s']:,.0f} events/s)"
    )
    print(
        f"  hftbacktest:  {figures['hft_messages_per_s']:>10,.0f} messages/s "
        f"(converter {figures['hft_convert_messages_per_s']:,.0f} messages/s, "
        f"replay {figures['hft_replay_rows_per_s']:,.0f} rows/s of {result.hft_rows:,})"
    )
    rounds = ", ".join(f"{r:.2f}" for r in result.round_ratios)
    print(f"  ratio QuantumFlow / hftbacktest: {result.ratio:.2f} (median of the rounds' {rounds})")
    agreement = result.agreement
    print(
        f"agreement: best {agreement.levels} levels a side equal at {agreement.agreed} of {agreement.samples} "
        f"instants; best bid/ask equal after {result.ends_agree} of {result.rounds} timed rounds"
    )
    if agreement.first_difference:
        print(f"  first difference: {agreement.first_difference}")
    for side, what in result.describe.items():
        print(f"  {side}: {what}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in result.load_end)}")


if __name__ == "__main__":
    main()
