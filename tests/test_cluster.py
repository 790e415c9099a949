"""The predict flow as a Bytewax cluster: several processes (``python -m bytewax.run ... -i N -a ADDRESSES``),
each with its workers, write the same store as one worker does, from a recording or from the raw log's
multi-partition topics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from pipeline_runs import replay, store_contents

from dataflows.kafka import client_config
from dataflows.kafka_broker import MockBroker
from dataflows.kafka_publish import publish
from dataflows.raw_log import symbol_of, to_record
from dataflows.recordings import open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from quantumflow.events import RawMessage
from store import open_store


def free_ports(count: int) -> list[int]:
    """Ports free on the loopback now (each bound, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


CLUSTER_DEADLINE_S = 300  # a guard against a hung cluster, not a measurement (it takes seconds)
PORT_TAKEN = "Address already in use"


def run_cluster(flow: str, processes: int, workers: int, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """``flow`` (a ``bytewax.run`` import string) run by ``processes`` processes of ``workers`` workers each,
    on the loopback, with ``env`` added to each one's environment; their results, once all have ended.

    A port picked free may be taken by someone else before a process binds it: the cluster then starts
    again on new ports (the flow's outputs are idempotent)."""
    for attempt in range(3):
        try:
            return _run_cluster_once(flow, processes, workers, env)
        except ClusterFailed as failure:
            if PORT_TAKEN not in str(failure) or attempt == 2:
                raise


class ClusterFailed(AssertionError):
    """A process of the cluster failed, or the cluster hung."""


def _run_cluster_once(
    flow: str, processes: int, workers: int, env: dict[str, str]
) -> list[subprocess.CompletedProcess]:
    """One start of the cluster. Output goes to files, not pipes: a pipe nobody drains while waiting for
    another process fills, blocks its writer, and so the whole cluster. A process that fails, or a cluster
    past its deadline, ends the others at once (a cluster missing a process waits for it forever), and the
    failure shows every process's stderr."""
    addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(processes))
    with tempfile.TemporaryDirectory() as folder:
        errors = [Path(folder) / f"{index}.err" for index in range(processes)]
        started = []
        for index, err in enumerate(errors):
            args = ["-m", "bytewax.run", flow, "-w", str(workers), "-i", str(index), "-a", addresses]
            with open(err, "w") as stderr:
                started.append(
                    subprocess.Popen(
                        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **env}
                    )
                )
        deadline = time.monotonic() + CLUSTER_DEADLINE_S
        while any(process.poll() is None for process in started):
            failed = any(process.returncode not in (None, 0) for process in started)
            if failed or time.monotonic() > deadline:
                for process in started:
                    if process.poll() is None:
                        process.kill()
                why = "a process failed" if failed else f"the cluster ran past {CLUSTER_DEADLINE_S} s"
                reports = [f"process {i}: exit {p.wait()}\n{errors[i].read_text()}" for i, p in enumerate(started)]
                raise ClusterFailed(f"{why}:\n" + "\n".join(reports))
            time.sleep(0.2)
        return [
            subprocess.CompletedProcess(process.args, process.returncode, "", err.read_text())
            for process, err in zip(started, errors, strict=True)
        ]


def predict_flow_spec(recordings: Sequence[Path], run_id: str) -> str:
    """The import string of the predict flow over ``recordings`` for Bytewax's runner."""
    return f"dataflows.predict:predict_flow({[str(path) for path in recordings]!r}, {run_id!r})"


def test_two_processes_of_two_workers_write_what_one_worker_writes(simulated_recording, simulated_models, tmp_path):
    one = f"sqlite:///{tmp_path / 'one.db'}"
    replay([simulated_recording], one, models=simulated_models.folder, online_state=tmp_path / "one_state")
    cluster = f"sqlite:///{tmp_path / 'cluster.db'}"
    env = {
        "QF_STORE": cluster,
        "QF_MODELS_DIR": str(simulated_models.folder),
        "QF_ONLINE_STATE": str(tmp_path / "cluster_state"),
    }
    for process in run_cluster(predict_flow_spec([simulated_recording], "cluster"), 2, 2, env):
        assert process.returncode == 0, process.stderr
    expected = store_contents(one)
    assert all(expected[table] for table in ("features", "book", "trades", "predictions"))
    assert store_contents(cluster) == expected
    with open_store(cluster).reader() as reader:
        metrics = reader.rows("run_metrics")
    assert {row["run_id"] for row in metrics} == {"cluster"}
    assert sorted({row["worker"] for row in metrics}) == [0, 1, 2, 3]  # each process reports its own workers
    assert sorted(path.name for path in (tmp_path / "cluster_state").iterdir()) == sorted(
        path.name for path in (tmp_path / "one_state").iterdir()
    )


def messages_per_partition(bootstrap: str) -> dict[tuple[str, int], int]:
    """The messages each partition of the broker's raw topics holds (high less low watermark)."""
    consumer = Consumer({**client_config(bootstrap), "group.id": "counts"})
    try:
        topics = consumer.list_topics(timeout=10).topics
        counts = {}
        for name in sorted(name for name in topics if name.startswith("raw.")):
            for partition in sorted(topics[name].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                counts[name, partition] = high - low
        return counts
    finally:
        consumer.close()


def write_keyless_to_last_partition(bootstrap: str, capture: Path) -> None:
    """The capture's first message of no instrument (its subscriptions answer), written once more into
    partition 3: the capture's ten products hash to partitions 0 to 2, and its keyless messages land
    where the producer's partitioner happens to put them, not always on 3."""
    keyless = next(m for m in open_recording(capture) if type(m) is RawMessage and symbol_of(m) is None)
    record = to_record(keyless, time.time_ns())
    producer = Producer(client_config(bootstrap))
    producer.produce(record.topic, record.value, None, partition=3, headers=record.headers)
    assert producer.flush(10) == 0


def test_two_processes_of_two_workers_read_a_four_partition_topic_as_one_worker_does(shared_data, tmp_path):
    # a Coinbase capture of ten products, each product its own key, over a topic's four partitions
    capture = shared_data / "coinbase" / "COINBASE.ws.28.0"
    with MockBroker() as broker:
        publish([capture], broker.bootstrap)
        write_keyless_to_last_partition(broker.bootstrap, capture)
        counts = messages_per_partition(broker.bootstrap)
        assert sorted(counts) == [("raw.coinbase", partition) for partition in range(4)]
        assert all(counts.values()), counts  # every partition holds messages: every worker reads some
        one = f"sqlite:///{tmp_path / 'one.db'}"
        run_flow(RunSettings((), store=one, kafka=broker.bootstrap, stop_at_end=True, predictions=False))
        cluster = f"sqlite:///{tmp_path / 'cluster.db'}"
        flow = (
            f"dataflows.predict:predict_flow([], 'cluster', kafka={broker.bootstrap!r}, stop_at_end=True, "
            "predictions=False)"
        )
        for process in run_cluster(flow, 2, 2, {"QF_STORE": cluster, "QF_DATA_DIR": str(tmp_path)}):
            assert process.returncode == 0, process.stderr
    expected = store_contents(one)
    assert all(expected[table] for table in ("features", "book", "trades"))
    assert len({row["instrument"] for row in expected["features"]}) == 10
    assert store_contents(cluster) == expected
    with open_store(cluster).reader() as reader:
        assert sorted({row["worker"] for row in reader.rows("run_metrics")}) == [0, 1, 2, 3]


def test_two_processes_of_two_workers_read_the_raw_topics_with_predictions_as_one_worker_does(
    simulated_recording, simulated_models, tmp_path
):
    # one instrument per feed: each topic's messages are in one partition, read by one worker of the four
    with MockBroker() as broker:
        publish([simulated_recording], broker.bootstrap)
        topics = Producer(client_config(broker.bootstrap)).list_topics(timeout=10).topics
        assert {name: len(topics[name].partitions) for name in topics if name.startswith("raw.")} == {
            "raw.binance": 4,
            "raw.coinbase_advanced": 4,
        }
        one = f"sqlite:///{tmp_path / 'one.db'}"
        settings = dict(kafka=broker.bootstrap, stop_at_end=True, models=simulated_models.folder)
        run_flow(RunSettings((), store=one, online_state_dir=tmp_path / "one_state", **settings))
        cluster = f"sqlite:///{tmp_path / 'cluster.db'}"
        env = {
            "QF_STORE": cluster,
            "QF_MODELS_DIR": str(simulated_models.folder),
            "QF_ONLINE_STATE": str(tmp_path / "cluster_state"),
        }
        flow = f"dataflows.predict:predict_flow([], 'cluster', kafka={broker.bootstrap!r}, stop_at_end=True)"
        for process in run_cluster(flow, 2, 2, env):
            assert process.returncode == 0, process.stderr
    expected = store_contents(one)
    assert all(expected[table] for table in ("features", "book", "trades", "predictions"))
    assert store_contents(cluster) == expected
