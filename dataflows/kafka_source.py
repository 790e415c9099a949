"""The raw log in Kafka as a Bytewax source: one source partition per Kafka partition of the raw
topics, each read by its own consumer from its first offset (or its resume state: the next
offset to read), as ``RawBatch``es like a recording's replay.

With ``stop_at_end`` a partition ends at the end offset it had when the run started, so the run
reads what was in the log then and stops; without, it tails the log until stopped. A record
that is not a raw message (a bad header) is a dead letter; each batch carries where its messages
were in the log, so that a message that does not parse is a dead letter naming its topic,
partition and offset. A broker that goes away is retried by the consumer (librdkafka reconnects
with backoff, and this source polls less often until it answers); every error is logged and
counted in the run's metrics, so an outage never passes for a quiet market; so are offsets that
left the log (retention) before they were read.

A batch's ``read_ns`` is when the oldest of its messages was published (its ``publish_ns``
header), so the latency the sink measures runs from the log, not from the read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from dataflows.kafka import client_config, cluster_metadata, raw_topics, watermarks
from dataflows.metrics import FlowMetrics
from dataflows.raw_log import LogPlaces, from_record, publish_ns
from dataflows.sources import BATCH_MESSAGES, RawBatch
from quantumflow.events import DeadLetter, RawMessage

IDLE_WAIT = timedelta(milliseconds=5)  # before polling a partition that had nothing again
MAX_BACKOFF_S = 5.0
LOG_INTERVAL_S = 30.0  # at most one warning a partition in this time

CONSUMER_SETTINGS = {
    "group.id": "quantumflow",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    # a fetch waits this long for data at most: Kafka answers as soon as data comes, the mock cluster
    # only when the wait is over (librdkafka's default, 500 ms, is then the latency)
    "fetch.wait.max.ms": 10,
}

log = logging.getLogger("quantumflow.flow")


class KafkaRawSource(FixedPartitionedSource[RawBatch, int]):
    """The raw topics at ``bootstrap`` (``topics``, else every ``raw.<feed>`` topic there).
    BrokerUnavailable or TopicError before the flow starts. ``on_progress`` is called with the
    number of messages of each batch read, 0 when a poll found none; StopIteration out of it ends
    the partition."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str] | None = None,
        stop_at_end: bool = False,
        batch_messages: int = BATCH_MESSAGES,
        on_progress: Callable[[int], None] | None = None,
        metrics: FlowMetrics | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = raw_topics(cluster_metadata(bootstrap), bootstrap, topics)
        self.stop_at_end = stop_at_end
        self.batch_messages = batch_messages
        self.on_progress = on_progress
        self.metrics = metrics or FlowMetrics()

    def list_parts(self) -> list[str]:
        return [f"{topic}/{partition}" for topic, count in self.partitions.items() for partition in range(count)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        topic, _, partition = for_part.rpartition("/")
        return _KafkaPartition(self, topic, int(partition), resume_state)

    def messages_now(self) -> int:
        """How many messages the partitions hold now (what ``stop_at_end`` reads from the start)."""
        return sum(high - low for low, high in watermarks(self.bootstrap, list(self.partitions)).values())


class _KafkaPartition(StatefulSourcePartition[RawBatch, int]):
    def __init__(self, source: KafkaRawSource, topic: str, partition: int, resume_state: int | None) -> None:
        self._source = source
        self._topic, self._partition = topic, partition
        self._consumer = Consumer(client_config(source.bootstrap, **CONSUMER_SETTINGS, error_cb=self._on_error))
        low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        self._next = low if resume_state is None else resume_state
        self._end = high if source.stop_at_end else None
        start = OFFSET_BEGINNING if resume_state is None else resume_state
        self._consumer.assign([TopicPartition(topic, partition, start)])
        self._awake: datetime | None = None
        self._backoff_s = 0.0
        self._erred = False  # an error in this poll
        self._errors = 0
        self._stopping = False
        self._logged_at = -LOG_INTERVAL_S
        if resume_state is None and low > 0:
            self._lost(0, low)

    def next_batch(self) -> list[RawBatch]:
        if self._stopping or (self._end is not None and self._next >= self._end):
            raise StopIteration
        self._erred = False
        records = self._consumer.consume(self._source.batch_messages, 0)
        if not records:
            if self._source.on_progress is not None:
                self._source.on_progress(0)  # it may end the source (a store that failed), idle or not
            self._awake = datetime.now(UTC) + (timedelta(seconds=self._backoff_s) if self._backoff_s else IDLE_WAIT)
            return []
        self._awake = None
        messages: list[RawMessage | DeadLetter] = []
        places = LogPlaces(self._topic, self._partition)
        oldest: int | None = None
        for record in records:
            error = record.error()
            if error is not None:
                self._on_error(error)
                continue
            offset = record.offset()
            if offset > self._next:
                self._lost(self._next, offset)
            messages.append(
                from_record(
                    self._topic,
                    self._partition,
                    offset,
                    record.key(),
                    record.value(),
                    record.timestamp()[1],
                    record.headers(),
                )
            )
            places.offsets.append(offset)
            published = publish_ns(record.headers())
            if published is not None and (oldest is None or published < oldest):
                oldest = published
            self._next = offset + 1
        if not messages:
            return []
        if not self._erred:  # the broker answers again
            self._backoff_s = 0.0
        if self._source.on_progress is not None:
            try:
                self._source.on_progress(len(messages))
            except StopIteration:  # the run is to stop: these messages, past the offset kept, still go out
                self._stopping = True
        return [RawBatch(_read_ns(oldest), messages, places)]

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        self._consumer.close()

    def _lost(self, first: int, after: int) -> None:
        """Offsets that the log no longer held when they were to be read: said, and counted."""
        self._source.metrics.messages_lost(after - first)
        self._on_error_text(
            f"{self._topic} partition {self._partition}: offsets {first} to {after - 1} ({after - first:,} messages) "
            "had left the log before they were read (its retention is shorter than the reader's lag)"
        )

    def _on_error(self, error: KafkaError) -> None:
        """A broker or partition error: logged, counted, and the partition polled less often for a while."""
        self._on_error_text(f"{self._topic} partition {self._partition}: {error.str()}")
        self._erred = True
        self._backoff_s = min(MAX_BACKOFF_S, max(0.1, 2 * self._backoff_s))

    def _on_error_text(self, what: str) -> None:
        self._source.metrics.kafka_error(f"Kafka {self._source.bootstrap}, {what}")
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL_S:  # a broker gone away errs many times a second: log a few
            log.warning(
                "Kafka %s, %s (%d errors on this partition so far)", self._source.bootstrap, what, self._errors + 1
            )
            self._logged_at = now
        self._errors += 1


def _read_ns(published_ns: int | None) -> int:
    """``published_ns`` (wall clock) as a ``perf_counter_ns`` reading; now when it is unknown."""
    now = time.perf_counter_ns()
    if published_ns is None:
        return now
    return now - max(0, time.time_ns() - published_ns)
