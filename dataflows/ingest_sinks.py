"""Where the ingester writes what the venues sent: a folder of recordings, or the raw log in Kafka.

A sink takes batches of ``venues.base.Received`` in arrival order. ``write`` raises OSError when it
cannot take them now (disk full, Kafka's queue full); the caller keeps them and tries again.
"""

from __future__ import annotations

import gzip
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from confluent_kafka import KafkaError, Message, Producer

from dataflows.kafka import client_config, cluster_metadata
from dataflows.kafka_publish import PRODUCER_SETTINGS, PublishFailed
from dataflows.raw_log import to_record
from quantumflow.events import RawMessage
from venues.base import Received


class Sink(Protocol):
    name: str

    def write(self, batch: list[Received]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def recording_name(message: Received) -> str:
    """``<feed>_<connection>_<YYYYmmddTHH>.gz``: one file per connection per hour (UTC) of receive time."""
    hour = datetime.fromtimestamp(message.receive_ns // 1_000_000_000, UTC).strftime("%Y%m%dT%H")
    return f"{message.feed}_{message.connection}_{hour}.gz"


def recording_line(message: Received) -> bytes:
    """``<receive ns> <payload>\\n``. A line end inside the payload (JSON whitespace, never inside a JSON
    string) becomes a space, so the message stays one line and means the same."""
    payload = message.payload
    if b"\n" in payload:
        payload = payload.replace(b"\n", b" ")
    return b"%d %s\n" % (message.receive_ns, payload)


class RecordingFolder:
    """Native recordings in ``folder`` (gzip, hourly files per connection). A file of an hour already there
    is appended to (a new gzip member, which readers take as the same stream). Each ``flush`` ends the
    gzip data written so far on a byte boundary, so a process killed after it leaves whole lines."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)  # OSError, naming it, before anything is received
        self.folder = folder
        self.name = str(folder)
        self.files: dict[str, Path] = {}  # by connection, the file open now
        self.written: dict[str, int] = {}  # lines, by file name
        self._open: dict[str, tuple[Path, IO[bytes]]] = {}

    def write(self, batch: list[Received]) -> None:
        for done, message in enumerate(batch):
            try:
                self._write(message)
            except OSError:
                del batch[:done]  # the rest stays with the caller, to try again
                raise

    def _write(self, message: Received) -> None:
        path = self.folder / recording_name(message)
        current = self._open.get(message.connection)
        if current is None or current[0] != path:
            if current is not None:
                current[1].close()
            current = (path, gzip.open(path, "ab", compresslevel=6))  # noqa: SIM115 (open across writes)
            self._open[message.connection] = current
            self.files[message.connection] = path
        current[1].write(recording_line(message))
        self.written[path.name] = self.written.get(path.name, 0) + 1

    def flush(self) -> None:
        for _, file in self._open.values():
            file.flush(zlib.Z_SYNC_FLUSH)

    def close(self) -> None:
        while self._open:
            _, (_, file) = self._open.popitem()
            file.close()


class KafkaRawLog:
    """The raw log (``dataflows.raw_log``: topic ``raw.<feed>``, keyed by symbol, ``receive_ns`` header)
    through an idempotent producer. librdkafka holds up to ``max_pending`` unacknowledged messages; one
    not acknowledged within ``delivery_timeout_ms`` fails the sink (PublishFailed)."""

    def __init__(self, bootstrap: str, max_pending: int, delivery_timeout_ms: int | None = None) -> None:
        cluster_metadata(bootstrap)  # BrokerUnavailable, in one line, before anything connects
        self.bootstrap = bootstrap
        self.name = f"Kafka {bootstrap}"
        settings = {**PRODUCER_SETTINGS, "queue.buffering.max.messages": max_pending}
        if delivery_timeout_ms is not None:
            settings["message.timeout.ms"] = delivery_timeout_ms
        self._timeout_s = settings["message.timeout.ms"] / 1000 + 5
        self._producer = Producer(client_config(bootstrap, **settings))
        self.failures: list[KafkaError] = []
        self.topics: dict[str, int] = {}

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self.failures.append(error)

    def write(self, batch: list[Received]) -> None:
        self._check()
        for done, message in enumerate(batch):
            record = to_record(
                RawMessage(message.feed, message.receive_ns, message.payload, message.symbol), time.time_ns()
            )
            try:
                self._producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    timestamp=record.timestamp_ms,
                    headers=record.headers,
                    on_delivery=self._delivered,
                )
            except BufferError:
                del batch[:done]  # the rest stays with the caller, to try again
                raise OSError(f"the Kafka producer's queue is full ({len(self._producer):,} unacknowledged)") from None
            self.topics[record.topic] = self.topics.get(record.topic, 0) + 1
        self._producer.poll(0)

    def flush(self) -> None:
        self._producer.poll(0)
        self._check()

    def close(self) -> None:
        unsent = self._producer.flush(self._timeout_s)
        if unsent:
            raise PublishFailed(f"{unsent:,} messages were not acknowledged by the Kafka broker at {self.bootstrap}")
        self._check()

    def _check(self) -> None:
        if self.failures:
            raise PublishFailed(
                f"{len(self.failures):,} messages were not acknowledged by the Kafka broker at {self.bootstrap} "
                f"({self.failures[0].str()})"
            )
