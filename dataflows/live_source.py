"""The venues' live streams as the predict flow's source (``quantumflow run --live``).

The venue clients run on an asyncio loop in a thread of their own (``dataflows.ingest.Ingester``);
every message they receive is queued for the flow as it arrives and, with a recording folder, written
there too, so that the live run is a log of record that a later ``run FOLDER`` replays. The source has
one partition, whatever the number of workers: the keyed steps spread the instruments.

A live stream cannot be read again, so the source has no resume state: with ``--recovery`` a restarted
run goes on from the stream's present, and the recording folder keeps what came before. A client that
fails for good (an unknown symbol, a venue refusing) ends the run: its error is kept in the metrics
(``source_failure``) and raised by ``run_flow`` once the flow has committed what it had.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from dataflows.ingest import Ingester
from dataflows.ingest_sinks import RecordingFolder
from dataflows.metrics import FlowMetrics
from dataflows.sources import RawBatch
from quantumflow.events import RawMessage, split_instrument
from venues.base import Received
from venues.registry import VENUES, client_for

IDLE_WAIT = timedelta(milliseconds=2)  # how soon an empty source looks again: well under a live batch's age


class NothingReceived(ConnectionError):
    """A live run that received nothing while its connections kept failing (a wrong address, no network)."""


def venue_symbols(instruments: Sequence[str]) -> dict[str, list[str]]:
    """``binance:BTCUSDT,coinbase:BTC-USD`` as the symbols of each venue; ValueError naming a bad one."""
    by_venue: dict[str, list[str]] = {}
    for key in instruments:
        try:
            venue, symbol = split_instrument(key)
        except ValueError:
            raise ValueError(f"live instrument {key!r} is not VENUE:SYMBOL (e.g. binance:BTCUSDT)") from None
        if venue not in VENUES:
            raise ValueError(f"live instrument {key!r}: no client for {venue!r} (one of {', '.join(VENUES)})")
        symbols = by_venue.setdefault(venue, [])
        if symbol not in symbols:
            symbols.append(symbol)
    if not by_venue:
        raise ValueError("no live instrument given")
    return by_venue


class LiveSource(FixedPartitionedSource[RawBatch, None]):
    def __init__(
        self,
        instruments: Sequence[str],
        record_to: Path | None,
        duration_s: float | None,
        batch_messages: int,
        on_progress: Callable[[int], None],
        metrics: FlowMetrics,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.venues = venue_symbols(instruments)  # a mistake is said before the flow starts
        self.record_to = record_to
        self.duration_s = duration_s
        self.batch_messages = batch_messages
        self.on_progress = on_progress  # called with the messages received so far; StopIteration ends the run
        self.metrics = metrics
        self.on_warning = on_warning  # told each new error of the venues' connections as it happens

    def list_parts(self) -> list[str]:
        return ["live"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _LivePartition:
        clients = [client_for(venue, symbols) for venue, symbols in self.venues.items()]
        sinks = [RecordingFolder(self.record_to)] if self.record_to is not None else []
        return _LivePartition(
            clients, sinks, self.duration_s, self.batch_messages, self.on_progress, self.metrics, self.on_warning
        )


class _LivePartition(StatefulSourcePartition[RawBatch, None]):
    def __init__(
        self, clients, sinks, duration_s, batch_messages, on_progress, metrics: FlowMetrics, on_warning=None
    ) -> None:
        self._queue: deque[Received] = deque()
        self._ingester = Ingester(clients, sinks, listeners=[self._queue.append])
        self._batch_messages = batch_messages
        self._on_progress = on_progress
        self._metrics = metrics
        self._on_warning = on_warning
        self._received = 0
        self._ends_at = None if duration_s is None else time.monotonic() + duration_s
        self._stopping = False
        self._thread = threading.Thread(target=self._ingest, name="live ingest", daemon=True)
        self._thread.start()

    def _ingest(self) -> None:
        try:
            asyncio.run(self._ingester.run())
        except Exception as error:  # a client or a sink failed for good: the run ends, saying why
            self._metrics.source_failure = error

    def next_batch(self) -> list[RawBatch]:
        if self._stopping or (self._ends_at is not None and time.monotonic() >= self._ends_at):
            self._stop()
        if self._stopping and not self._thread.is_alive() and not self._queue:
            raise StopIteration
        batch = []
        while self._queue and len(batch) < self._batch_messages:
            message = self._queue.popleft()
            batch.append(RawMessage(message.feed, message.receive_ns, message.payload, message.symbol))
        self._received += len(batch)
        clients = self._ingester.clients
        self._metrics.reconnects = sum(client.stats.reconnects for client in clients)
        self._metrics.venue_resyncs = sum(client.stats.resyncs for client in clients)
        error = next((c.stats.last_error for c in clients if c.stats.last_error), None)
        if error is not None and error != self._metrics.venue_error and self._on_warning is not None:
            # said as it happens (once per new error), not only in the summary: a live run may go on for days
            self._on_warning(f"venues: {error}; retrying")
        self._metrics.venue_error = error
        if not self._thread.is_alive():
            self._stopping = True  # the ingester ended on its own: a failure, kept in the metrics
        try:
            self._on_progress(self._received)
        except StopIteration:  # the run is to stop (Ctrl-C, SIGTERM, the store): what came still goes out
            self._stop()
        return [RawBatch(time.perf_counter_ns(), batch)] if batch else []

    def next_awake(self) -> datetime | None:
        return None if self._queue else datetime.now(UTC) + IDLE_WAIT

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._stop()
        self._thread.join()

    def _stop(self) -> None:
        self._stopping = True
        self._ingester.stop()
