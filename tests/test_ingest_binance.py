"""Live ingestion from Binance, against the local Binance playing a recording (the real one where it is
beside the project, else the simulated minute): what the ingester writes rebuilds books equal to the
venue's own bookTicker at equal update ids, through recordings and through Kafka, and every recovery
path (reconnect, gap, stall, malformed frame, 429/418, unknown symbol, SIGTERM, a broker gone) ends as
it should. Byte for byte and USD-M futures: on the real recordings."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import signal
import time
from pathlib import Path

import orjson
import pytest
from pipeline_runs import in_background, quantumflow, replay
from test_binance_sync import compare_with_tickers
from test_kafka import assert_same_rows, kafka_run
from typer.testing import CliRunner

from cli.main import app
from dataflows import kafka
from dataflows.ingest import Ingester, IngestFailed
from dataflows.ingest_sinks import KafkaRawLog, RecordingFolder
from dataflows.kafka_broker import MockBroker
from dataflows.recordings import open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from exchanges.binance import CUT_FRAME, BinanceExchange
from quantumflow.events import DeadLetter, RawMessage, Resync
from store import open_store
from venues.base import Received, VenueError
from venues.binance import BinanceClient

SPOT = "spot_btcusdt_20240808.gz"
USDM = "usdm_btcusdt_20240808.gz"
GUARD_S = 120  # against a hung test, not a measurement


@pytest.fixture
def local_binance(monkeypatch):
    """``start(feed, recording, **options)``: the local venue playing a recording, the client's settings
    pointing at it."""
    started = []

    def start(feed: str, recording: Path, **options) -> BinanceExchange:
        exchange = BinanceExchange(feed, [recording], **options).start()
        started.append(exchange)
        for variable, value in exchange.settings().items():
            monkeypatch.setenv(variable, value)
        return exchange

    yield start
    for exchange in started:
        exchange.stop()


def received(client: BinanceClient) -> int:
    return sum(client.stats.messages.values())


def ingest_all(
    exchange: BinanceExchange, client: BinanceClient, sinks: list, until=None, max_pending: int = 100_000
) -> None:
    """Ingest until the venue has played everything and the client has it all (or ``until()``)."""
    done = until or (lambda: exchange.finished and received(client) == exchange.frames_sent + exchange.snapshots_sent)

    async def main() -> None:
        ingester = Ingester([client], sinks, max_pending)
        stop = asyncio.Event()
        running = asyncio.create_task(ingester.run(stop))
        deadline = time.monotonic() + GUARD_S
        # done on two polls in a row: the venue's thread may be between publishing its last message and counting it
        settled = 0
        while settled < 2 and not running.done() and time.monotonic() < deadline:
            settled = settled + 1 if done() else 0
            await asyncio.sleep(0.02)
        stop.set()
        await running
        if not done() and time.monotonic() >= deadline:
            pytest.fail(f"the ingest did not end within {GUARD_S} s: {client.stats}")

    asyncio.run(main())


def recorded(folder: Path) -> list[RawMessage | DeadLetter]:
    return [message for path in sorted(folder.glob("*.gz")) for message in open_recording(path)]


def stream_payloads(path: Path, seconds: float | None = None) -> list[bytes]:
    """The recording's websocket messages, byte for byte (its first ``seconds``)."""
    messages = list(open_recording(path))
    first = messages[0].receive_ts
    return [
        m.payload
        for m in messages
        if b"lastUpdateId" not in m.payload and (seconds is None or m.receive_ts - first <= seconds * 1e9)
    ]


def exact(messages) -> tuple[int, list]:
    """Comparisons of the rebuilt top with bookTickers (all must be equal), and the resyncs and dead letters."""
    compared, differing, replayed = compare_with_tickers(messages)
    assert differing == 0
    return compared, [out for out in replayed.outputs if type(out) in (Resync, DeadLetter)]


# -- the books are exact --------------------------------------------------------------------------


def test_the_whole_spot_recording_ingested_into_files_is_byte_for_byte_and_exact(local_binance, shared_data, tmp_path):
    exchange = local_binance("binance", shared_data / "binance" / SPOT, speed=50)
    client = BinanceClient(["BTCUSDT"])
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    messages = recorded(tmp_path)
    assert [p.name for p in tmp_path.glob("*.gz")] == [p.name for p in tmp_path.glob("binance_BTCUSDT_*.gz")]
    # every websocket frame, unchanged, in order; the snapshots as lines of their own
    frames = [m.payload for m in messages if b"lastUpdateId" not in m.payload]
    assert frames == stream_payloads(shared_data / "binance" / SPOT)
    assert sum(b"lastUpdateId" in m.payload for m in messages) == exchange.snapshots_sent == 1
    compared, bad = exact(messages)
    assert compared >= 500 and bad == []
    assert client.stats.reconnects == 0 and client.stats.resyncs == 0


def test_usdm_futures_ingested_is_exact(local_binance, shared_data, tmp_path):
    exchange = local_binance("binance_usdm", shared_data / "binance" / USDM, speed=50, seconds=30)
    client = BinanceClient(["BTCUSDT"], "binance_usdm")
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    messages = recorded(tmp_path)
    assert {type(m) for m in messages} == {RawMessage}
    assert open_recording(next(tmp_path.glob("*.gz"))).feed == "binance_usdm"
    compared, bad = exact(messages)
    assert compared >= 50 and bad == []


def test_through_kafka_the_flow_writes_the_rows_of_the_recorded_files(local_binance, binance_spot, tmp_path):
    exchange = local_binance("binance", binance_spot, speed=25, seconds=15)
    client = BinanceClient(["BTCUSDT"])
    folder = tmp_path / "recorded"
    folder.mkdir()
    with MockBroker() as broker:
        log = KafkaRawLog(broker.bootstrap, 10_000)
        ingest_all(exchange, client, [RecordingFolder(folder), log])
        assert log.topics == {"raw.binance": received(client)}
        kafka_url, file_url = f"sqlite:///{tmp_path / 'kafka.db'}", f"sqlite:///{tmp_path / 'file.db'}"
        summary = kafka_run(broker.bootstrap, kafka_url, tmp_path, predictions=False)
        assert summary.kafka_errors == 0
    run_flow(RunSettings((folder,), store=file_url, predictions=False))
    rows = assert_same_rows(kafka_url, file_url)
    assert rows["book"] and rows["resyncs"] == [] and rows["dead_letters"] == []
    compared, bad = exact(recorded(folder))
    assert compared >= 10 and bad == []


# -- recovery -------------------------------------------------------------------------------------


def test_a_dropped_connection_reconnects_and_a_new_snapshot_makes_the_book_exact_again(
    local_binance, binance_spot, tmp_path, store_url
):
    exchange = local_binance("binance", binance_spot, speed=20, seconds=60)
    exchange.at(2_000, exchange.drop)
    # a fixed jitter: the reconnect waits 0.3 s, 6 s of the market at 20x, which the client misses
    client = BinanceClient(["BTCUSDT"], first_backoff_s=0.5, rng=random.Random(3))
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    assert client.stats.reconnects == 1 and exchange.connections == 2
    assert exchange.snapshots_sent == 2  # one per connection
    messages = recorded(tmp_path)
    compared, bad = exact(messages)
    assert compared > 0
    assert [type(out) for out in bad] == [Resync] and bad[0].reason.startswith("sequence gap")
    # exact again after it: comparisons after the second snapshot
    after = [m for m in messages if m.receive_ts > bad[0].receive_ts]
    assert exact(after)[0] > 0
    summary = replay([tmp_path], store_url)
    assert summary.rows["resyncs"] == 1
    with open_store(store_url).reader() as reader:
        assert reader.rows("resyncs")[0]["reason"].startswith("sequence gap")


def test_a_skipped_diff_is_a_gap_the_client_fetches_a_snapshot_and_the_book_is_exact_again(
    local_binance, binance_spot, tmp_path
):
    exchange = local_binance("binance", binance_spot, speed=50, seconds=40)
    exchange.at(1_500, exchange.skip_diff)
    client = BinanceClient(["BTCUSDT"])
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    assert client.stats.resyncs == 1 and client.stats.reconnects == 0
    assert exchange.snapshots_sent >= 2
    messages = recorded(tmp_path)
    compared, bad = exact(messages)
    assert compared > 0 and [type(out) for out in bad] == [Resync]
    assert exact([m for m in messages if m.receive_ts > bad[0].receive_ts])[0] > 0
    assert (
        len([m for m in messages if b"depthUpdate" in m.payload])
        == len([p for p in stream_payloads(binance_spot, 40) if b"depthUpdate" in p]) - 1
    )


def test_a_stalled_connection_is_dropped_and_made_again(local_binance, binance_spot, tmp_path):
    exchange = local_binance("binance", binance_spot, speed=20, seconds=20)
    exchange.at(500, lambda: exchange.stall(1.5))
    client = BinanceClient(["BTCUSDT"], stall_s=0.4)
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    assert client.stats.reconnects >= 1 and exchange.connections >= 2
    assert "no frame for 0.4 s" in client.stats.last_error
    compared, bad = exact(recorded(tmp_path))
    assert compared > 0 and all(type(out) is Resync for out in bad)


def test_a_connection_is_made_again_before_its_age_limit(local_binance, binance_spot, tmp_path):
    # 3 s of play for connections of 0.3 s: a second's stall of a loaded machine still leaves several ages
    exchange = local_binance("binance", binance_spot, speed=20, seconds=60)
    client = BinanceClient(["BTCUSDT"], max_connection_s=0.3, first_backoff_s=0.01)
    ingest_all(exchange, client, [RecordingFolder(tmp_path)], until=lambda: exchange.finished)
    assert client.stats.reconnects >= 2 and exchange.connections >= 3
    assert client.stats.last_error is None  # planned, not failures
    # each connection asks for a snapshot; one closed by its age before the answer came (a loaded machine) has none
    assert exchange.snapshots_sent >= 2
    compared, bad = exact(recorded(tmp_path))
    assert compared > 0 and all(type(out) is Resync for out in bad)


def test_a_malformed_frame_is_recorded_as_received_and_is_a_dead_letter_downstream(
    local_binance, binance_spot, tmp_path
):
    exchange = local_binance("binance", binance_spot, speed=50, seconds=20)
    exchange.at(1_000, exchange.malformed)
    client = BinanceClient(["BTCUSDT"])
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    messages = recorded(tmp_path)
    cut = [m for m in messages if m.payload == CUT_FRAME]
    assert len(cut) == 1
    assert messages.index(cut[0]) < len(messages) - 100  # and it went on
    compared, bad = exact(messages)
    assert compared > 0 and [type(out) for out in bad] == [DeadLetter] and bad[0].reason.startswith("malformed JSON")
    assert client.stats.reconnects == 0 and client.stats.resyncs == 0


@pytest.mark.parametrize("status", [429, 418])
def test_a_refused_request_is_retried_after_the_wait_the_venue_asks(local_binance, binance_spot, tmp_path, status):
    exchange = local_binance("binance", binance_spot, speed=50, seconds=5)
    exchange.refuse_rest(status, retry_after_s=1.0, times=2)
    client = BinanceClient(["BTCUSDT"])
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    (refused, _), (again, _) = exchange.refusals
    assert again - refused >= 1.0  # waited as asked, not one request sooner
    assert exchange.depth_times[0] - again >= 1.0
    assert f"REST answered {status}" in client.stats.last_error
    assert exact(recorded(tmp_path))[1] == []


def test_the_client_stays_under_the_request_weight_the_venue_reports(local_binance, binance_spot, tmp_path):
    exchange = local_binance("binance", binance_spot, speed=0, seconds=5)
    client = BinanceClient(["BTCUSDT"])
    client.weight.budget = 60  # as if the minute were almost used up: a check (5) and one snapshot (50)
    ingest_all(exchange, client, [RecordingFolder(tmp_path)])
    assert exchange.snapshots_sent == 1 and client.weight.used == 55


# -- bad input ------------------------------------------------------------------------------------


def test_an_unknown_symbol_is_a_clear_error_at_start(local_binance, binance_spot, tmp_path):
    local_binance("binance", binance_spot, speed=0, seconds=5)
    with pytest.raises(VenueError, match="does not know the symbol 'NOSUCHPAIR'"):
        ingest_all(None, BinanceClient(["NOSUCHPAIR"]), [RecordingFolder(tmp_path)], until=lambda: False)
    result = CliRunner().invoke(app, ["ingest", "binance", "--symbols", "NOSUCHPAIR", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Binance (binance) does not know the symbol 'NOSUCHPAIR'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "kraken", "--symbols", "X", "--out", "{tmp}"], "Error: unknown venue 'kraken'"),
        (["ingest", "binance", "--symbols", "BTCUSDT"], "Error: nowhere to write"),
        (["ingest", "binance", "--symbols", "BTCUSDT", "--out", "/proc/no/such"], "Error: cannot write in the folder"),
        (["fake-exchange", "kraken", "{tmp}/x.gz"], "Error: no local exchange for 'kraken'"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(app, [arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code in (1, 2)
    assert result.output.startswith(message) and len(result.output.strip().splitlines()) == 1


def test_a_broker_that_goes_away_fails_the_ingest_saying_what_was_not_written(local_binance, binance_spot, tmp_path):
    exchange = local_binance("binance", binance_spot, speed=10, seconds=20)
    client = BinanceClient(["BTCUSDT"])
    broker = MockBroker()
    log = KafkaRawLog(broker.bootstrap, 10_000, delivery_timeout_ms=1_000)
    exchange.at(300, broker.close)
    with pytest.raises(IngestFailed, match="not acknowledged by the Kafka broker"):
        ingest_all(exchange, client, [log], until=lambda: exchange.finished)


def test_messages_past_the_bound_while_kafka_is_gone_fail_the_ingest(local_binance, binance_spot):
    exchange = local_binance("binance", binance_spot, speed=10, seconds=20)
    client = BinanceClient(["BTCUSDT"])
    broker = MockBroker()
    log = KafkaRawLog(broker.bootstrap, 50, delivery_timeout_ms=60_000)  # librdkafka holds 50, the ingester 50
    exchange.at(300, broker.close)
    with pytest.raises(IngestFailed, match=r"received messages not written to Kafka .* past the bound of 50"):
        ingest_all(exchange, client, [log], until=lambda: exchange.finished, max_pending=50)


def test_a_broker_that_does_not_answer_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(kafka, "CONNECT_TIMEOUT_S", 0.5)
    result = CliRunner().invoke(app, ["ingest", "binance", "--symbols", "BTCUSDT", "--kafka", "127.0.0.1:1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no Kafka broker answers at 127.0.0.1:1")


def test_recording_files_turn_with_the_hour_and_keep_a_message_on_one_line(tmp_path):
    hour = 1_723_161_600 * 10**9  # 2024-08-09 00:00 UTC
    messages = [
        Received("binance", "BTCUSDT", "BTCUSDT", hour - 1, b'{"a":1}'),
        Received("binance", "BTCUSDT", "BTCUSDT", hour, b'{"b":\n2}'),
        Received("binance", "ETHUSDT", "ETHUSDT", hour + 1, b'{"c":3}'),
    ]
    folder = RecordingFolder(tmp_path)
    folder.write(list(messages))
    folder.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "binance_BTCUSDT_20240808T23.gz",
        "binance_BTCUSDT_20240809T00.gz",
        "binance_ETHUSDT_20240809T00.gz",
    ]
    with gzip.open(tmp_path / names[1]) as file:
        (line,) = file.read().splitlines()
    assert line == b'%d {"b": 2}' % hour and orjson.loads(line.split(b" ", 1)[1]) == {"b": 2}
    folder = RecordingFolder(tmp_path)  # a restart in the same hour appends
    folder.write([messages[2]._replace(receive_ns=hour + 2)])
    folder.close()
    assert [m.receive_ts for m in open_recording(tmp_path / names[2], "binance")] == [hour + 1, hour + 2]


def test_the_fake_exchange_command_serves_what_ingest_reads(binance_spot, tmp_path):
    server = in_background(quantumflow("fake-exchange", "binance", binance_spot, "--speed", "50"))
    try:
        exports = dict(server.stdout.readline().decode().split()[1].split("=", 1) for _ in range(2))
        assert set(exports) == {"QF_BINANCE_WS_URL", "QF_BINANCE_REST_URL"}
        result = CliRunner().invoke(
            app,
            ["ingest", "binance", "--symbols", "btcusdt", "--out", str(tmp_path), "--duration", "1", "--json"],
            env=exports,
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["messages"]["BTCUSDT"] > 100 and summary["stopped_by"] == "duration"
        assert exact(recorded(tmp_path))[1] == []
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=GUARD_S)
    assert server.returncode == 0


def test_sigterm_ends_the_command_with_complete_files(local_binance, binance_spot, tmp_path):
    exchange = local_binance("binance", binance_spot, speed=0)
    env = exchange.settings()
    process = in_background(quantumflow("ingest", "binance", "--symbols", "BTCUSDT", "--out", tmp_path, "--json"), env)
    deadline = time.monotonic() + GUARD_S
    while exchange.frames_sent < 5_000 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=GUARD_S)
    assert process.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGTERM"
    (path,) = tmp_path.glob("*.gz")
    with gzip.open(path, "rb") as file:  # a complete gzip stream: reading it to the end raises nothing
        lines = file.read().splitlines()
    assert len(lines) == summary["written"][str(tmp_path)] == sum(summary["messages"].values()) > 5_000
    for line in lines:
        receive_ns, payload = line.split(b" ", 1)
        assert receive_ns.isdigit() and orjson.loads(payload)
