"""What every QuantumFlow Kafka client shares: its settings, and the checks that turn a broker that
does not answer or a topic that is not there into one clear line before anything runs."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata

from dataflows.raw_log import TOPIC_PREFIX, feed_of
from operators.feeds import FEEDS

CONNECT_TIMEOUT_S = 5.0
# librdkafka's own log (a connection refused, a broker that went away), into the flow's log
client_log = logging.getLogger("quantumflow.flow.kafka")


class _Repeats(logging.Filter):
    """librdkafka says the same error many times a second while a broker is away: each text once a while."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._said: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text, now = record.getMessage(), time.monotonic()
        if now - self._said.get(text, -self.interval_s) < self.interval_s:
            return False
        self._said[text] = now
        return True


client_log.addFilter(_Repeats())


class BrokerUnavailable(ConnectionError):
    """No Kafka broker answers at the address given."""


class TopicError(ValueError):
    """A topic that is not on the broker, is not a raw topic, or whose name Kafka would refuse."""


_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}\Z")


def check_topic_name(name: str) -> str:
    """``name`` if Kafka takes it as a topic's name, else TopicError saying its rule (said before a run
    rather than by the broker at the first send)."""
    if not _TOPIC_NAME.match(name) or name in (".", ".."):
        raise TopicError(f"{name!r} is not a Kafka topic name: 1 to 249 ASCII letters, digits, '.', '_' or '-'")
    return name


def client_config(bootstrap: str, **settings: object) -> dict:
    """A client's configuration: the bootstrap address, librdkafka's log into ours, and ``settings``."""
    return {"bootstrap.servers": bootstrap, "logger": client_log, **settings}


def cluster_metadata(bootstrap: str, timeout_s: float | None = None) -> ClusterMetadata:
    """The broker's topics and partitions; BrokerUnavailable naming the address if none answers
    within ``timeout_s`` (default CONNECT_TIMEOUT_S)."""
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    admin = AdminClient(client_config(bootstrap))
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as error:
        cause = error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)
        raise BrokerUnavailable(f"no Kafka broker answers at {bootstrap} (waited {timeout_s:g} s: {cause})") from None


def raw_topics(metadata: ClusterMetadata, bootstrap: str, wanted: Sequence[str] | None = None) -> dict[str, int]:
    """The raw topics to read (``wanted``, else every ``raw.<feed>`` topic on the broker), each with
    its number of partitions; TopicError for one that is missing or carries no known feed."""
    present = {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}
    if wanted is None:
        found = {name: count for name, count in sorted(present.items()) if feed_of(name) is not None}
        if not found:
            raise TopicError(
                f"no raw topics ({TOPIC_PREFIX}<feed>) on the Kafka broker at {bootstrap}; "
                "write recordings there with 'quantumflow publish'"
            )
        return found
    for name in wanted:
        if feed_of(name) is None:
            raise TopicError(
                f"{name!r} is not a raw topic: raw topics are named {TOPIC_PREFIX}<feed>, "
                f"the feed one of {', '.join(FEEDS)}"
            )
        if name not in present:
            raw = sorted(n for n in present if feed_of(n) is not None)
            raise TopicError(
                f"no topic {name!r} on the Kafka broker at {bootstrap} "
                f"(its raw topics: {', '.join(raw) if raw else 'none'})"
            )
    return {name: present[name] for name in wanted}


def watermarks(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """Each partition of ``topics``: its first offset the broker still holds, and its end offset (low and
    high watermarks). A low watermark above 0 means the partition's head has left the log (retention)."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "quantumflow-watermarks"}))
    try:
        found = consumer.list_topics(timeout=CONNECT_TIMEOUT_S).topics
        return {
            (topic, partition): consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for topic in topics
            if topic in found
            for partition in sorted(found[topic].partitions)
        }
    finally:
        consumer.close()
