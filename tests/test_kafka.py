"""The raw log in Kafka, on librdkafka's mock cluster: recordings published and read back by the predict
flow give the rows a file replay gives, table by table (on a simulated minute with predictions, and on
real recordings); a message that does not parse is a dead letter naming its topic, partition and
offset; predictions go out as JSON equal to the stored rows; a broker that is down, a topic that is
not there and a broker that goes away are said, not hung on."""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pipeline_runs import replay
from test_cli_errors import closed_port, one_line, quantumflow

from dataflows import kafka
from dataflows.kafka import BrokerUnavailable, TopicError, client_config, cluster_metadata
from dataflows.kafka_broker import MockBroker
from dataflows.kafka_predictions import prediction_json
from dataflows.kafka_publish import publish
from dataflows.kafka_source import IDLE_WAIT, KafkaRawSource
from dataflows.metrics import FlowMetrics
from dataflows.raw_log import RECEIVE_NS, from_record, to_record
from dataflows.recordings import open_recording
from dataflows.run import RunSummary, run_flow
from dataflows.run_settings import RunSettings
from dataflows.sources import merged, recording_paths
from operators.feeds import parse
from store import open_store

ROOT = Path(__file__).resolve().parent.parent
DATA_TABLES = ("features", "book", "trades", "resyncs", "dead_letters", "predictions")
PLACE = re.compile(r" \(Kafka (\S+) partition (\d+) offset (\d+)\)$")


@pytest.fixture
def broker():
    with MockBroker() as running:
        yield running.bootstrap


@pytest.fixture
def quick_timeout(monkeypatch):
    monkeypatch.setattr(kafka, "CONNECT_TIMEOUT_S", 0.5)


def kafka_run(bootstrap: str, url: str, tmp_path: Path, **settings) -> RunSummary:
    return run_flow(
        RunSettings((), store=url, kafka=bootstrap, stop_at_end=True, online_state_dir=tmp_path / "state", **settings)
    )


def contents(url: str) -> dict[str, list[dict]]:
    with open_store(url).reader() as reader:
        return {table: reader.rows(table) for table in DATA_TABLES}


def without_places(rows: list[dict]) -> list[dict]:
    """Dead letters as a file replay has them: their reasons without the place in the log."""
    return [{**row, "reason": PLACE.sub("", row["reason"])} for row in rows]


def assert_same_rows(kafka_url: str, file_url: str) -> dict[str, list[dict]]:
    ours, theirs = contents(kafka_url), contents(file_url)
    for table in DATA_TABLES:
        rows = without_places(ours[table]) if table == "dead_letters" else ours[table]
        assert rows == theirs[table], table
    return ours


def topic_messages(bootstrap: str, topic: str) -> list:
    """Every message of ``topic``, partition after partition."""
    consumer = Consumer(client_config(bootstrap, **{"group.id": "test"}))
    out = []
    for partition in cluster_metadata(bootstrap).topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, low)])
        got = []
        while len(got) < high - low:
            got += [m for m in consumer.consume(1_000, 5) if m.error() is None]
        out += got
    consumer.close()
    return out


# -- the contract --------------------------------------------------------------------------------


def test_a_record_reads_back_as_the_message_keyed_by_its_instrument(simulated_recording):
    recordings = [open_recording(path) for path in recording_paths([simulated_recording])]
    keys: Counter[tuple[str, bytes]] = Counter()
    for message in merged(recordings):
        record = to_record(message, publish_ns=1)
        assert record.timestamp_ms == message.receive_ts // 1_000_000
        assert dict(record.headers)[RECEIVE_NS] == str(message.receive_ts).encode()
        back = from_record(record.topic, 0, 0, record.key, record.value, record.timestamp_ms, record.headers)
        assert back == message  # byte for byte, the exact receive time, the symbol as key
        keys[record.topic, record.key] += 1
        events = parse(message)
        if events:
            assert events[0].instrument.endswith(":" + record.key.decode())
    # Coinbase's level2 and market_trades connections share one key: one partition, one order
    assert set(keys) == {("raw.binance", b"BTCUSDT"), ("raw.coinbase_advanced", b"BTC-USD")}


# -- a Kafka run equals a file replay ------------------------------------------------------------


def test_a_kafka_run_writes_the_rows_of_a_file_replay_and_sends_its_predictions(
    simulated_recording, simulated_models, broker, tmp_path
):
    summary = publish([simulated_recording], broker)
    assert summary.messages == {"raw.binance": 10_505, "raw.coinbase_advanced": 1_388}
    kafka_url, file_url = f"sqlite:///{tmp_path / 'kafka.db'}", f"sqlite:///{tmp_path / 'file.db'}"
    summary = kafka_run(
        broker, kafka_url, tmp_path, models=simulated_models.folder, fresh=True, workers=2, predictions_topic="preds"
    )
    replay([simulated_recording], file_url, models=simulated_models.folder, online_state=tmp_path / "f", fresh=True)
    rows = assert_same_rows(kafka_url, file_url)
    assert rows["predictions"] and rows["features"]

    # every prediction row was sent; the mock cluster keeps only the last 5 MB or so of a partition, and of
    # what it kept, the last message of each key is the stored row
    consumer = Consumer(client_config(broker, **{"group.id": "test"}))
    ends = [consumer.get_watermark_offsets(TopicPartition("preds", p), timeout=10)[1] for p in range(4)]
    consumer.close()
    with open_store(kafka_url).reader() as reader:
        stored = {(row["instrument"], row["ts"], row["seq"], row["horizon"]): row for row in reader.rows("predictions")}
    assert sum(ends) == summary.rows["predictions"] >= len(stored)
    sent: dict[tuple, dict] = {}
    for message in topic_messages(broker, "preds"):  # the later message for a key replaces the earlier
        document = orjson.loads(message.value())
        assert message.key() == document["instrument"].encode()
        sent[document["instrument"], document["ts"], document["seq"], document["horizon"]] = document
    assert len(sent) > len(stored) / 4
    for key, document in sent.items():
        assert document == orjson.loads(prediction_json(tuple(stored[key].values())))


def test_real_recordings_through_kafka_give_the_rows_of_their_file_replay(
    shared_data, simulated_models, broker, tmp_path
):
    # Binance spot (its first 6,000 lines: the mock cluster keeps about 5 MB a partition, and predicting
    # costs time), and a Coinbase capture of ten products on one connection, each product its own key
    spot = tmp_path / "spot_btcusdt_20240808_head"
    with gzip.open(shared_data / "binance" / "spot_btcusdt_20240808.gz", "rb") as whole:
        spot.write_bytes(b"".join(islice(whole, 6_000)))
    recordings = [spot, shared_data / "coinbase" / "COINBASE.ws.28.0"]
    summary = publish(recordings, broker)
    assert set(summary.messages) == {"raw.binance", "raw.coinbase"}
    kafka_url, file_url = f"sqlite:///{tmp_path / 'kafka.db'}", f"sqlite:///{tmp_path / 'file.db'}"
    models = dict(models=simulated_models.folder, fresh=True)  # small models, to predict with, not to be right
    assert kafka_run(broker, kafka_url, tmp_path, **models).kafka_errors == 0
    run_flow(RunSettings(tuple(recordings), store=file_url, online_state_dir=tmp_path / "file_state", **models))
    rows = assert_same_rows(kafka_url, file_url)
    assert len({row["instrument"] for row in rows["features"]}) > 2
    assert len({row["instrument"] for row in rows["predictions"]}) == 11  # BTCUSDT and the ten Coinbase products


# -- bad input -----------------------------------------------------------------------------------


def test_a_message_that_does_not_parse_is_a_dead_letter_naming_its_place_in_the_log(broker, tmp_path):
    producer = Producer(client_config(broker))
    producer.produce("raw.binance", b'{"e":"depthUpdate"', b"BTCUSDT", headers=[(RECEIVE_NS, b"1723075200123456789")])
    producer.produce("raw.binance", b"{}", b"BTCUSDT", headers=[(RECEIVE_NS, b"soon")], timestamp=1_723_075_200_000)
    assert producer.flush(10) == 0
    url = f"sqlite:///{tmp_path / 'kafka.db'}"
    kafka_run(broker, url, tmp_path, predictions=False)
    letters = sorted(contents(url)["dead_letters"], key=lambda row: row["ts"])
    assert [(row["ts"], row["raw"]) for row in letters] == [
        (1_723_075_200_000_000_000, b"{}"),
        (1_723_075_200_123_456_789, b'{"e":"depthUpdate"'),
    ]
    assert letters[0]["reason"].startswith("bad receive_ns header b'soon'")
    assert letters[1]["reason"].startswith("malformed JSON")
    places = [PLACE.search(row["reason"]).groups() for row in letters]
    assert places[0][:2] == places[1][:2] and places[0][0] == "raw.binance"  # one key, one partition
    assert {int(offset) for _, _, offset in places} == {0, 1}


def test_messages_that_left_the_log_before_they_were_read_are_said(broker, tmp_path):
    producer = Producer(client_config(broker))
    quiet = b'{"result":null,"id":1,"padding":"%s"}' % (b"x" * 300)  # a subscription answer: no market data
    for n in range(20_000):  # 6.6 MB into one partition, more than the mock cluster keeps
        producer.produce("raw.binance", quiet, b"BTCUSDT", headers=[(RECEIVE_NS, b"%d" % (1_723_075_200 * 10**9 + n))])
        producer.poll(0)
    assert producer.flush(30) == 0
    url = f"sqlite:///{tmp_path / 'kafka.db'}"
    summary = kafka_run(broker, url, tmp_path, predictions=False)
    assert summary.kafka_errors == 1
    assert re.search(
        r"raw\.binance partition \d: offsets 0 to \d+ \([\d,]+ messages\) had left the log", summary.last_kafka_error
    )
    with open_store(url).reader() as reader:
        assert {row["source_errors"] for row in reader.latest_run_metrics()} == {1}  # in the run's metrics too


def test_a_broker_that_is_down_is_one_line_naming_it(simulated_recording, tmp_path, quick_timeout):
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(BrokerUnavailable, match=re.escape(address)):
        publish([simulated_recording], address)
    with pytest.raises(BrokerUnavailable, match=re.escape(address)):
        kafka_run(address, f"sqlite:///{tmp_path / 'kafka.db'}", tmp_path)
    one_line(quantumflow("publish", str(simulated_recording), "--kafka", address, data=tmp_path), 1, address)


def test_a_topic_that_is_not_there_is_one_line_naming_it(simulated_recording, broker, tmp_path):
    with pytest.raises(TopicError, match="no raw topics"):
        kafka_run(broker, f"sqlite:///{tmp_path / 'kafka.db'}", tmp_path)
    publish([simulated_recording], broker)
    with pytest.raises(TopicError, match=r"no topic 'raw\.kraken'.*raw\.binance, raw\.coinbase_advanced"):
        kafka_run(broker, f"sqlite:///{tmp_path / 'kafka.db'}", tmp_path, topics=("raw.kraken",))
    with pytest.raises(TopicError, match=r"'preds' is not a raw topic"):
        kafka_run(broker, f"sqlite:///{tmp_path / 'kafka.db'}", tmp_path, topics=("preds",))


@pytest.mark.parametrize("name", ["bad topic!", "", ".", "..", "é", "x" * 250])
def test_a_predictions_topic_kafka_would_refuse_is_one_line_before_the_run(tmp_path, name):
    with pytest.raises(TopicError, match="is not a Kafka topic name"):
        kafka.check_topic_name(name)
    ran = quantumflow("run", "--kafka", f"127.0.0.1:{closed_port()}", "--predictions-topic", name, data=tmp_path)
    one_line(ran, 2, "is not a Kafka topic name")


def test_topic_names_kafka_takes_pass():
    for name in ("preds", "predictions.binance_BTC-USDT", "x" * 249):
        assert kafka.check_topic_name(name) == name


# -- the broker command, and a broker that goes away ---------------------------------------------


def test_the_broker_command_serves_until_sigterm_and_a_lost_broker_is_counted(simulated_recording, tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QF_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "cli.main", "broker"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert re.fullmatch(r"bootstrap: 127\.0\.0\.1:\d+\n", first), first
        bootstrap = first.split()[1]
        publish([simulated_recording], bootstrap)
        metrics = FlowMetrics()
        source = KafkaRawSource(bootstrap, ["raw.coinbase_advanced"], metrics=metrics)  # tailing
        part = source.build_part("raw", source.list_parts()[0], None)
        for _ in range(1_000):  # until it has connected and read
            if part.next_batch():
                break
            time.sleep(0.01)
        else:
            raise AssertionError("nothing read")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    for _ in range(1_000):  # the broker has gone: the partition keeps asking, says so, and waits longer
        if metrics.kafka_errors:
            break
        part.next_batch()
        time.sleep(0.01)
    assert metrics.kafka_errors and bootstrap in metrics.last_kafka_error
    assert part.next_batch() == []
    assert part.next_awake() > datetime.now(UTC) + IDLE_WAIT  # backing off
    part.close()


def test_the_broker_command_listens_on_the_port_asked_for_through_a_relay(tmp_path):
    port = closed_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QF_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "cli.main", "broker", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == f"bootstrap: 127.0.0.1:{port}\n"
        bootstrap = f"127.0.0.1:{port}"
        (announced,) = cluster_metadata(bootstrap).brokers.values()  # what clients go on to connect to
        assert announced.host == "127.0.0.1" and announced.port != port
        producer = Producer(client_config(bootstrap))
        for n in range(100):
            producer.produce("relayed", b"%d" % n, b"k")
        assert producer.flush(10) == 0
        assert [m.value() for m in topic_messages(bootstrap, "relayed")] == [b"%d" % n for n in range(100)]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        line = one_line(quantumflow("broker", "--port", str(busy), data=tmp_path), 1, f"127.0.0.1:{busy}")
    assert "the port is in use" in line


def test_a_recording_larger_than_the_broker_keeps_is_said_by_publish_and_by_the_run(shared_data, broker, tmp_path):
    # Binance spot, one key: 41,249 messages into one partition, more than the mock cluster's 5 MB
    spot = shared_data / "binance" / "spot_btcusdt_20240808.gz"
    published = quantumflow("publish", str(spot), "--kafka", broker, "--json", data=tmp_path)
    assert published.returncode == 0, published.stderr
    summary = orjson.loads(published.stdout)
    assert summary["messages"] == {"raw.binance": 41_249}
    ((where, first),) = summary["lost_heads"].items()
    assert where.startswith("raw.binance/") and 0 < first < 41_249
    (warning,) = published.stderr.splitlines()
    assert warning.startswith(f"warning: raw.binance partition {where[-1]}: the broker at {broker} kept only the tail")
    assert f"offsets 0 to {first - 1:,} are gone" in warning and "5 MB a partition" in warning
    run = quantumflow("run", "--kafka", broker, "--stop-at-end", data=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "written: 0 feature rows" in run.stdout
    assert f"NO FEATURE ROWS: {first:,} messages had left the Kafka log" in " ".join(run.stdout.split())


def test_the_kafka_bench_measures_both_runs_and_each_batch_size(simulated_recording):
    """``python -m bench.kafka`` (a line of ``make bench``) on a simulated recording: the file and Kafka
    runs of its head, and the paced latency per batch size (no timing is asserted)."""
    from bench.kafka import bench_kafka

    result = bench_kafka(simulated_recording / "binance_btcusdt.gz", 2_000, 2.0, [10, 100])
    assert result.head_messages == 2_000 and result.slice_s == 2.0
    assert result.file_events_per_s > 0 and result.kafka_events_per_s > 0 and result.publish_messages_per_s > 0
    assert set(result.latency_ms) == {10, 100} and result.best_batch in (10, 100)
    assert all(0 < p50 <= p99 for p50, p99 in result.latency_ms.values())
