"""The ingester's overhead: one Binance client (``venues.binance``) against the local Binance
(``quantumflow fake-exchange``, in a process of its own so that the two do not share one interpreter).

- **Throughput**: the venue plays the whole recording as fast as it is read (``--speed 0``), three
  times, each to a fresh venue: to a bare websocket reader that only counts frames (the venue's own
  send rate, the ceiling), to the ingester writing a recording folder, and to the ingester writing
  the raw log into Kafka (librdkafka's mock cluster, in this process). Messages/s run from the first
  message received to the sink closed (files flushed and closed; every Kafka record acknowledged).
  An ingester within 10% of the bare reader was held back by the venue, else it is the limit.
- **Latency**: the venue plays at real time (``--speed 1``) for ``--seconds``, the ingester writing
  into Kafka. For every message, from its receive time (``receive_ns``: the frame off the socket) to
  (a) ``publish_ns``: handed to the Kafka producer, after the ingester's queue and writer thread, and
  (b) acknowledged: the producer's delivery callback ran, which is when the ingester learns that the
  broker has the record (librdkafka runs callbacks on the writer's next poll, so this includes its
  wait for the next batch). p50, p99 and max. The mock cluster keeps no log-append time, so the
  broker's own append instant is not measured apart from the acknowledgement.

    python -m bench.ingest [RECORDING] [--seconds 15] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import websockets
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from dataflows.ingest import Ingester
from dataflows.ingest_sinks import KafkaRawLog, RecordingFolder, Sink
from dataflows.kafka import client_config
from dataflows.kafka_broker import MockBroker
from dataflows.raw_log import PUBLISH_NS, RECEIVE_NS, topic_of
from exchanges.binance import load_symbol
from quantumflow.settings import shared_data_dir
from venues.base import Received
from venues.binance import BinanceClient

DEFAULT_RECORDING = shared_data_dir() / "binance" / "spot_btcusdt_20240808.gz"
FEED = "binance"
VENUE_HELD_BACK = 0.9  # an ingester at this share of the bare reader's rate or more was limited by the venue
GUARD_S = 600  # against a hung pass, not a measurement
MAX_PENDING = 1_000_000


@dataclass
class IngestBench:
    recording: str
    messages: int  # websocket frames the recording plays
    venue_messages_per_s: float  # to a bare reader
    folder_messages_per_s: float
    kafka_messages_per_s: float
    folder_limited_by: str  # "venue" or "ingester"
    kafka_limited_by: str
    paced_seconds: float
    paced_messages: int
    to_producer_ms: tuple[float, float, float]  # receive -> handed to the producer: p50, p99, max
    acknowledged_ms: tuple[float, float, float]  # receive -> delivery callback: p50, p99, max
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def local_binance(recording: Path, speed: float) -> Iterator[str]:
    """A fresh local Binance playing ``recording`` in its own process; its settings are in os.environ
    meanwhile (the client reads them), and its stream URL is yielded."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "fake-exchange", FEED, str(recording), "--speed", f"{speed:g}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    before = dict(os.environ)
    try:
        for _ in range(2):
            line = process.stdout.readline().decode()
            if not line.startswith("export "):
                raise RuntimeError(f"the local Binance did not start: {process.stderr.read().decode()[-2000:]}")
            name, value = line.split()[1].split("=", 1)
            os.environ[name] = value
        yield BinanceClient(["BTCUSDT"], FEED).stream_url("BTCUSDT")
    finally:
        os.environ.clear()
        os.environ.update(before)
        process.terminate()
        process.communicate(timeout=30)


class Counted:
    """A sink that counts the websocket frames passed to ``inner`` and notes when the first arrived."""

    def __init__(self, inner: Sink) -> None:
        self.inner, self.name = inner, inner.name
        self.frames = 0
        self.first_receive_ns: int | None = None

    def write(self, batch: list[Received]) -> None:
        if self.first_receive_ns is None and batch:
            self.first_receive_ns = batch[0].receive_ns
        offered = list(batch)
        try:
            self.inner.write(batch)
        except OSError:  # what it could not take stays in batch, for the next try
            self.frames += _frames(offered[: len(offered) - len(batch)])
            raise
        self.frames += _frames(offered)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def _frames(messages: list[Received]) -> int:
    """The websocket frames among ``messages`` (the rest are REST snapshots)."""
    return sum(not message.payload.startswith(b'{"lastUpdateId"') for message in messages)


class TimedKafkaRawLog(KafkaRawLog):
    """The raw log in Kafka, noting when each record's delivery callback ran, by its place in the log
    (a delivery report carries no headers: they are read back by ``read_times``)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, MAX_PENDING)
        self.acknowledged: dict[tuple[int, int], int] = {}  # (partition, offset) -> wall ns

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        acknowledged = time.time_ns()
        super()._delivered(error, message)
        if error is None:
            self.acknowledged[message.partition(), message.offset()] = acknowledged


def read_times(bootstrap: str, acknowledged: dict[tuple[int, int], int]) -> list[tuple[int, int, int]]:
    """(receive_ns, publish_ns, acknowledged_ns) of each acknowledged record, its headers read back."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "bench-ingest", "enable.auto.commit": False}))
    partitions = {partition for partition, _ in acknowledged}
    consumer.assign([TopicPartition(topic_of(FEED), p, OFFSET_BEGINNING) for p in partitions])
    times = []
    deadline = time.monotonic() + GUARD_S
    try:
        while len(times) < len(acknowledged) and time.monotonic() < deadline:
            for record in consumer.consume(1000, timeout=1.0):
                place = (record.partition(), record.offset())
                if record.error() is None and place in acknowledged:
                    headers = dict(record.headers())
                    times.append((int(headers[RECEIVE_NS]), int(headers[PUBLISH_NS]), acknowledged[place]))
    finally:
        consumer.close()
    return times


async def _read_bare(stream_url: str, frames: int) -> float:
    """messages/s of ``frames`` websocket frames read and counted, nothing else done with them."""
    async with websockets.connect(stream_url, max_size=None, compression=None) as ws:
        await ws.recv(decode=False)
        first = time.perf_counter()
        for _ in range(frames - 1):
            await asyncio.wait_for(ws.recv(decode=False), GUARD_S)
        return (frames - 1) / (time.perf_counter() - first)


def venue_rate(recording: Path, frames: int) -> float:
    with local_binance(recording, speed=0) as stream_url:
        return asyncio.run(_read_bare(stream_url, frames))


def ingest_rate(recording: Path, frames: int, sink: Sink) -> float:
    """messages/s of one ingester taking every frame of ``recording`` (and the snapshots) into ``sink``,
    from the first received to the sink closed."""
    counted = Counted(sink)

    async def main() -> float:
        client = BinanceClient(["BTCUSDT"], FEED)
        ingester = Ingester([client], [counted], MAX_PENDING)
        stop = asyncio.Event()
        running = asyncio.create_task(ingester.run(stop))
        deadline = time.monotonic() + GUARD_S
        while counted.frames < frames and not running.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        summary = await running
        closed_ns = time.time_ns()
        if counted.frames < frames:
            raise RuntimeError(f"{counted.frames:,} of {frames:,} frames written: {client.stats}")
        return sum(summary.written.values()) / ((closed_ns - counted.first_receive_ns) / 1e9)

    with local_binance(recording, speed=0):
        return asyncio.run(main())


def paced_latency(recording: Path, seconds: float) -> list[tuple[int, int, int]]:
    """(receive_ns, publish_ns, acknowledged_ns) of every message ingested into Kafka in ``seconds`` of
    the recording played at real time."""
    with MockBroker() as broker, local_binance(recording, speed=1):
        log = TimedKafkaRawLog(broker.bootstrap)
        ingester = Ingester([BinanceClient(["BTCUSDT"], FEED)], [log], MAX_PENDING)

        async def main() -> None:
            await ingester.run(duration_s=seconds)

        asyncio.run(main())
        return read_times(broker.bootstrap, log.acknowledged)


def spread_ms(ns: np.ndarray) -> tuple[float, float, float]:
    p50, p99 = np.percentile(ns, [50, 99]) / 1e6
    return float(p50), float(p99), float(ns.max() / 1e6)


def limited_by(rate: float, venue: float) -> str:
    return "venue" if rate >= VENUE_HELD_BACK * venue else "ingester"


def load() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())


def bench_ingest(recording: Path, seconds: float) -> IngestBench:
    load_start = load()
    frames = len(load_symbol(recording, FEED).messages)
    venue = venue_rate(recording, frames)
    with tempfile.TemporaryDirectory() as folder:
        to_folder = ingest_rate(recording, frames, RecordingFolder(Path(folder)))
    with MockBroker() as broker:
        to_kafka = ingest_rate(recording, frames, KafkaRawLog(broker.bootstrap, MAX_PENDING))
    times = np.array(paced_latency(recording, seconds), dtype=np.int64).reshape(-1, 3)
    if not len(times):
        raise RuntimeError(f"nothing was ingested in {seconds:g} s at real time")
    return IngestBench(
        str(recording),
        frames,
        venue,
        to_folder,
        to_kafka,
        limited_by(to_folder, venue),
        limited_by(to_kafka, venue),
        seconds,
        len(times),
        spread_ms(times[:, 1] - times[:, 0]),
        spread_ms(times[:, 2] - times[:, 0]),
        load_start,
        load(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", nargs="?", type=Path, default=DEFAULT_RECORDING)
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of the recording played at real time")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = bench_ingest(args.recording, args.seconds)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"recording: {result.recording} ({result.messages:,} frames); the local Binance in its own process")
    print(f"load average at start: {' '.join(map(str, result.load_start))}")
    print("as fast as read (speed 0), first message received -> sink closed:")
    print(f"  venue to a bare websocket reader:  {result.venue_messages_per_s:,.0f} messages/s")
    print(
        f"  ingester -> recording folder:      {result.folder_messages_per_s:,.0f} messages/s "
        f"(limited by the {result.folder_limited_by})"
    )
    print(
        f"  ingester -> Kafka, acknowledged:   {result.kafka_messages_per_s:,.0f} messages/s "
        f"(limited by the {result.kafka_limited_by})"
    )
    print(f"at real time (speed 1) for {result.paced_seconds:g} s into Kafka, {result.paced_messages:,} messages:")
    for label, (p50, p99, most) in (
        ("frame received -> handed to the producer", result.to_producer_ms),
        ("frame received -> acknowledged (delivery callback)", result.acknowledged_ms),
    ):
        print(f"  {label:<51} p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {most:.1f} ms")
    print(f"load average at end: {' '.join(map(str, result.load_end))}")


if __name__ == "__main__":
    main()
