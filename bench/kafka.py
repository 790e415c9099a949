"""The flow through Kafka beside the file replay, on librdkafka's mock cluster in this process.

- **Throughput**: the head of a native recording (what one partition of the mock cluster keeps,
  about 5 MB) published, then read by ``run --kafka --stop-at-end`` into a fresh SQLite store, one
  worker, no models; beside the file replay of the same head into another.
- **Latency**: a short slice published at ``--speed 1`` (a live-like feed) while the flow tails the
  topic, for each batch size tried; latency runs from each message's publish (its receive time, for
  a live feed) to its feature row committed, p50 and p99. The batch size with the lowest p99 is
  reported.

    python -m bench.kafka [RECORDING] [--head 15000] [--slice-s 15] [--batches 10,100,1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

from dataflows.kafka_broker import MockBroker
from dataflows.kafka_publish import publish
from dataflows.recordings import open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from quantumflow.events import RawMessage
from quantumflow.settings import shared_data_dir

DEFAULT_RECORDING = shared_data_dir() / "binance" / "spot_btcusdt_20240808.gz"


@dataclass
class KafkaBench:
    recording: str
    head_messages: int
    file_events_per_s: float
    kafka_events_per_s: float
    publish_messages_per_s: float
    slice_s: float
    latency_ms: dict[int, tuple[float, float]]  # batch size -> (p50, p99), paced at real time
    best_batch: int

    def to_dict(self) -> dict:
        return asdict(self)


def head_of(recording: Path, lines: int, folder: Path) -> Path:
    """The first ``lines`` messages of a recording, as a native recording of their own."""
    path = folder / f"{recording.name.removesuffix('.gz')}_head{lines}"
    path.write_bytes(b"".join(line for _, line in islice(_message_lines(recording), lines)))
    return path


def slice_of(recording: Path, seconds: float, folder: Path) -> tuple[Path, int, float]:
    """The first ``seconds`` of a recording, as a native recording of their own; how many messages that is,
    and the seconds they span (fewer than asked of a shorter recording)."""
    kept = []
    first_ns = last_ns = None
    for receive_ns, line in _message_lines(recording):
        first_ns = receive_ns if first_ns is None else first_ns
        if receive_ns - first_ns > seconds * 1e9:
            break
        kept.append(line)
        last_ns = receive_ns
    path = folder / f"{recording.name.removesuffix('.gz')}_first{seconds:g}s"
    path.write_bytes(b"".join(kept))
    return path, len(kept), 0.0 if first_ns is None else (last_ns - first_ns) / 1e9


def _message_lines(recording: Path) -> Iterator[tuple[int, bytes]]:
    """Each message's receive time and native line, the recording read as the flow reads it: a cut file up
    to its last whole line (with the reader's warning), bad lines left out."""
    for raw in open_recording(recording):
        if type(raw) is RawMessage:
            yield raw.receive_ts, b"%d %s\n" % (raw.receive_ts, raw.payload)


def throughput(head: Path, folder: Path) -> tuple[float, float, float]:
    """events/s of the file replay and of the Kafka run of ``head``, and messages/s published."""
    file_run = run_flow(RunSettings((head,), store=f"sqlite:///{folder / 'file.db'}", predictions=False))
    with MockBroker() as broker:
        published = publish([head], broker.bootstrap)
        store = f"sqlite:///{folder / 'kafka.db'}"
        kafka_run = run_flow(RunSettings((), store=store, predictions=False, kafka=broker.bootstrap, stop_at_end=True))
    assert kafka_run.events_in == file_run.events_in, (kafka_run.events_in, file_run.events_in)
    return file_run.events_per_s, kafka_run.events_per_s, published.messages_per_s


def paced_latency(recording: Path, messages: int, batch: int, folder: Path) -> tuple[float, float]:
    """p50 and p99 latency (ms), publish -> feature row committed, of ``recording`` published at
    real time while the flow tails it in batches of at most ``batch``."""
    read = 0
    lock = threading.Lock()
    with MockBroker() as broker:
        _make_topic(broker.bootstrap)
        publisher = threading.Thread(target=publish, args=([recording], broker.bootstrap), kwargs={"speed": 1.0})

        def until_all_read(count: int) -> None:
            """Start publishing once the flow reads (its start-up is not the feed's latency); stop when all is read."""
            nonlocal read
            with lock:
                if count and not read:
                    publisher.start()
                read += count
                if read >= messages:
                    raise StopIteration

        settings = RunSettings(
            (), store=f"sqlite:///{folder / f'paced{batch}.db'}", predictions=False, kafka=broker.bootstrap,
            batch_messages=batch,
        )  # fmt: skip
        summary = run_flow(settings, on_progress=until_all_read)
        publisher.join()
    return summary.latency_p50_ms, summary.latency_p99_ms


def _make_topic(bootstrap: str) -> None:
    """The raw topic, made before the flow starts (by its first message, as the mock cluster does)."""
    from confluent_kafka import Producer

    from dataflows.kafka import client_config

    producer = Producer(client_config(bootstrap))
    producer.produce("raw.binance", b'{"result":null,"id":0}', b"BTCUSDT", headers=[("receive_ns", b"0")])
    producer.flush(10)


def bench_kafka(recording: Path, head_lines: int, slice_s: float, batches: list[int]) -> KafkaBench:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        head = head_of(recording, head_lines, folder)
        file_rate, kafka_rate, publish_rate = throughput(head, folder)
        paced, count, _ = slice_of(recording, slice_s, folder)
        latency = {batch: paced_latency(paced, count + 1, batch, folder) for batch in batches}
    best = min(latency, key=lambda batch: latency[batch][1])
    return KafkaBench(str(recording), head_lines, file_rate, kafka_rate, publish_rate, slice_s, latency, best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", nargs="?", type=Path, default=DEFAULT_RECORDING)
    parser.add_argument("--head", type=int, default=15_000, help="lines of the recording for the throughput pass")
    parser.add_argument("--slice-s", type=float, default=15.0, help="seconds of the recording published paced")
    parser.add_argument("--batches", default="10,100,1000", help="batch sizes to try, comma-separated")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = bench_kafka(args.recording, args.head, args.slice_s, [int(b) for b in args.batches.split(",")])
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"recording: {result.recording}, its first {result.head_messages:,} lines; 1 worker, no models, SQLite")
    print(f"file replay:        {result.file_events_per_s:,.0f} events/s")
    print(
        f"through Kafka:      {result.kafka_events_per_s:,.0f} events/s "
        f"(published at {result.publish_messages_per_s:,.0f} messages/s beforehand)"
    )
    print(f"published at real time ({result.slice_s:g} s), the flow tailing: latency publish -> feature row committed")
    for batch, (p50, p99) in result.latency_ms.items():
        print(f"  batch {batch:>6,}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"lowest p99: batch {result.best_batch:,}")


if __name__ == "__main__":
    main()
