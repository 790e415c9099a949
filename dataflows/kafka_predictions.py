"""Predictions out to a Kafka topic, one JSON object per prediction row, for consumers that are not
the store. The object has the predictions table's columns (``store.schema.PREDICTIONS``; its
``model_probs`` and ``model_weights`` as objects rather than strings) and is keyed by the
instrument, so each instrument's predictions keep their order. As in the store, a prediction is
sent when made (no label yet) and again, whole, when its label matures: the later message for
the same (instrument, ts, seq, horizon) replaces the earlier.

Each worker's producer is idempotent. A message the broker does not acknowledge in time is
logged and counted in the run's metrics; the flow goes on (the store keeps every row).
"""

from __future__ import annotations

import logging

import orjson
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Message, Producer

from dataflows.kafka import client_config
from dataflows.metrics import FlowMetrics
from dataflows.rows import TableRows
from store.schema import PREDICTIONS

PRODUCER_SETTINGS = {"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 30_000}
_JSON_COLUMNS = ("model_probs", "model_weights")

log = logging.getLogger("quantumflow.flow")


def prediction_json(row: tuple) -> bytes:
    """A predictions table row as the JSON object sent for it."""
    document = dict(zip(PREDICTIONS.names, row, strict=True))
    for name in _JSON_COLUMNS:
        document[name] = orjson.loads(document[name])
    return orjson.dumps(document)


class PredictionsSink(DynamicSink[TableRows]):
    def __init__(self, bootstrap: str, topic: str, metrics: FlowMetrics | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.metrics = metrics or FlowMetrics()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PredictionsPartition:
        return _PredictionsPartition(self)


class _PredictionsPartition(StatelessSinkPartition[TableRows]):
    def __init__(self, sink: PredictionsSink) -> None:
        self._sink = sink
        self._producer = Producer(client_config(sink.bootstrap, **PRODUCER_SETTINGS))

    def write_batch(self, items: list[TableRows]) -> None:
        for item in items:
            for row in item.tables.get("predictions", ()):
                self._send(row[0].encode(), prediction_json(row))
        self._producer.poll(0)

    def close(self) -> None:
        left = self._producer.flush(35)
        if left:
            self._failed(f"{left:,} predictions still unsent when the flow ended")

    def _send(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self._sink.topic, value, key, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let the broker catch up
                self._producer.poll(0.05)

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None:
            self._failed(error.str())

    def _failed(self, why: str) -> None:
        self._sink.metrics.kafka_error(f"predictions to Kafka {self._sink.bootstrap} {self._sink.topic}: {why}")
        log.warning("predictions to Kafka %s %s: %s", self._sink.bootstrap, self._sink.topic, why)
