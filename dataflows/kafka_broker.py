"""librdkafka's mock cluster: a Kafka broker speaking the real wire protocol on loopback, inside
this process, for development and tests (production uses a real Kafka).

A client configured with ``test.mock.num.brokers`` starts the cluster and lives as long as it;
other clients and processes connect to its address as to any broker. Topics are created on
first produce, with 4 partitions; the port is the one the cluster picks (librdkafka has no
setting to fix it), which is why ``bootstrap`` is announced rather than chosen.
"""

from __future__ import annotations

import threading

from confluent_kafka import Producer

from dataflows.kafka import client_log

# What the mock cluster keeps of a partition: past it the oldest messages leave the log (librdkafka has
# no setting for it). A real Kafka keeps what its retention settings say.
MOCK_PARTITION_BYTES = 5 * 1024 * 1024


class MockBroker:
    """The mock cluster, from construction until ``close``; ``bootstrap`` is its address."""

    def __init__(self, brokers: int = 1) -> None:
        self._client: Producer | None = Producer({"test.mock.num.brokers": brokers, "logger": client_log})
        metadata = self._client.list_topics(timeout=10)
        first = metadata.brokers[min(metadata.brokers)]
        self.bootstrap = f"{first.host}:{first.port}"

    def serve(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (the cluster runs on librdkafka's threads; this only waits)."""
        while not stop.wait(0.2):
            self._client.poll(0)

    def close(self) -> None:
        self._client = None  # the cluster goes with the client that started it

    def __enter__(self) -> MockBroker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
