"""Recordings into the raw log: every message, byte for byte, into its feed's topic (see
``dataflows.raw_log``), in the order ``quantumflow run`` replays them (merged by receive time).

The producer is idempotent (a retried send is never written twice, and each partition keeps the
order of the sends), and the run waits for every message to be acknowledged. Paced at ``speed``
x real time, the recordings stand in for a live feed. A partition whose head the broker no longer
holds once everything is written (its retention, or the mock cluster's size limit) is said: a run
started then misses those messages, the book snapshots among them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from dataflows.kafka import client_config, cluster_metadata, watermarks
from dataflows.kafka_broker import MOCK_PARTITION_BYTES
from dataflows.raw_log import to_record
from dataflows.recordings import open_recording
from dataflows.sources import merged, recording_paths
from quantumflow.events import DeadLetter

PROGRESS_EVERY = 1_000  # messages between progress calls
DELIVERY_TIMEOUT_MS = 30_000  # a broker gone for longer fails the publish, naming the address
PRODUCER_SETTINGS = {"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": DELIVERY_TIMEOUT_MS}


class PublishFailed(ConnectionError):
    """Messages that the broker did not acknowledge in time."""


@dataclass
class PublishSummary:
    bootstrap: str
    messages: dict[str, int]  # per topic
    dead_letters: int  # recording lines that were dead letters already, published as such
    seconds: float
    messages_per_s: float
    lost_heads: dict[str, int] = field(default_factory=dict)  # "topic/partition": its first offset still held

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def warnings(self) -> list[str]:
        """One line for each partition whose head has left the log."""
        return [lost_head_warning(self.bootstrap, where, first) for where, first in self.lost_heads.items()]


def lost_head_warning(bootstrap: str, where: str, first: int) -> str:
    topic, _, partition = where.rpartition("/")
    return (
        f"{topic} partition {partition}: the broker at {bootstrap} kept only the tail, offsets 0 to {first - 1:,} "
        f"are gone, and a run started now misses that head (book snapshots included); 'quantumflow broker' "
        f"(librdkafka's mock cluster) keeps about {MOCK_PARTITION_BYTES // 2**20} MB a partition, a real Kafka "
        "what its retention settings say"
    )


def publish(
    paths: Sequence[str | Path],
    bootstrap: str,
    feed: str | None = None,
    speed: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PublishSummary:
    """Publish the recordings at ``paths`` to the broker at ``bootstrap``; ``on_progress`` gets
    the bytes read so far. BrokerUnavailable before anything is read if no broker answers."""
    recordings = [open_recording(path, feed) for path in recording_paths(paths)]
    cluster_metadata(bootstrap)
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer(client_config(bootstrap, **PRODUCER_SETTINGS))
    counts: Counter[str] = Counter()
    dead = 0
    started = time.perf_counter()
    origin: tuple[int, float] | None = None  # (first receive time, wall time), for pacing
    for sent, message in enumerate(merged(recordings), 1):
        if speed is not None:
            origin = origin or (message.receive_ts, time.time())
            due = origin[1] + (message.receive_ts - origin[0]) / 1e9 / speed
            while (wait := due - time.time()) > 0:
                producer.poll(wait)  # serves acknowledgements while it waits; returns early when it does
        record = to_record(message, time.time_ns())
        while True:
            try:
                producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    timestamp=record.timestamp_ms,
                    headers=record.headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.05)
        producer.poll(0)
        counts[record.topic] += 1
        dead += type(message) is DeadLetter
        if on_progress is not None and sent % PROGRESS_EVERY == 0:
            on_progress(sum(recording.bytes_read for recording in recordings))
    unsent = producer.flush(DELIVERY_TIMEOUT_MS / 1000 + 5)
    if failures or unsent:
        reason = failures[0].str() if failures else "timed out"
        raise PublishFailed(
            f"{len(failures) + unsent:,} of {sum(counts.values()):,} messages were not acknowledged by the "
            f"Kafka broker at {bootstrap} ({reason})"
        )
    if on_progress is not None:
        on_progress(sum(recording.bytes_read for recording in recordings))
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    lost = {f"{t}/{p}": low for (t, p), (low, _) in watermarks(bootstrap, sorted(counts)).items() if low > 0}
    return PublishSummary(bootstrap, dict(sorted(counts.items())), dead, seconds, total / max(seconds, 1e-9), lost)
