"""The predict flow on Bytewax, end to end into a SQLite store. On simulated recordings: the rows it writes,
faults as resyncs and dead letters, the same store from two runs and from two workers (predictions
included), no duplicates after a kill, readers while it writes. On a real recording: feature rows that
agree with Binance's own bookTicker."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess

import pytest
from pipeline_runs import in_background, quantumflow, replay, wait_for_rows

from dataflows.recordings import open_recording
from operators.feeds import parse
from quantumflow.events import BestBidOffer
from store import digest, open_store

DATA_TABLES = ("features", "book", "trades", "resyncs", "dead_letters", "predictions")


def _store(folder, name="flow.db") -> str:
    return f"sqlite:///{folder / name}"


def _contents(url: str) -> dict[str, list[dict]]:
    with open_store(url).reader() as reader:
        return {table: reader.rows(table) for table in DATA_TABLES}


# -- simulated recordings ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_store(simulated_recording, tmp_path_factory):
    url = _store(tmp_path_factory.mktemp("simulated_store"))
    return url, replay([simulated_recording], url)


def test_rows_are_written_once_per_event_with_readable_keys(simulated_store):
    url, summary = simulated_store
    with open_store(url).reader() as reader:
        assert reader.instruments() == ["binance:BTCUSDT", "coinbase:BTC-USD"]
        assert reader.count("dead_letters") == reader.count("resyncs") == reader.count("predictions") == 0
        written = dict(summary.rows)
        matured = sum(row["realized"] is not None for row in reader.rows("vol_forecasts"))
        assert matured > 0 and written.pop("vol_forecasts") == reader.count("vol_forecasts") + matured  # upserted
        assert written == {table: reader.count(table) for table in written}
        for instrument in reader.instruments():
            assert 0 < reader.count("book", instrument) < reader.count("features", instrument)
            assert reader.count("trades", instrument) > 0
            latest = reader.latest("features", instrument, ["mid", "spread_bps"])
            assert latest["mid"] > 0 and latest["spread_bps"] > 0
            keys = [(row["ts"], row["seq"]) for row in reader.range("features", instrument, 0, 2**63 - 1, [], 100_000)]
            assert len(set(keys)) == len(keys) and [seq for _, seq in keys] == sorted(seq for _, seq in keys)
    assert summary.events_in > 10_000


def test_faults_become_resyncs_and_dead_letters_with_their_bytes(faulty_recording, tmp_path):
    url = _store(tmp_path)
    replay([faulty_recording], url)
    faults = json.loads((faulty_recording / "manifest.json").read_text())["faults"]
    cut_lines = {}
    for fault in faults:
        if fault["kind"] == "malformed_line":
            with gzip.open(faulty_recording / fault["file"], "rb") as recording:
                line = next(line for line in recording if line.startswith(b"%d " % fault["receive_ns"]))
            cut_lines[fault["receive_ns"]] = line.rstrip(b"\n").split(b" ", 1)[1]
    with open_store(url).reader() as reader:
        letters = reader.dead_letters()
        resyncs = reader.rows("resyncs")
    assert {letter["ts"]: letter["raw"] for letter in letters} == cut_lines
    assert all(letter["digest"] == digest(letter["raw"]) and "malformed" in letter["reason"] for letter in letters)
    gaps = {"dropped_diff": "binance:BTCUSDT", "dropped_l2_message": "coinbase:BTC-USD"}
    lost = sorted(gaps[fault["kind"]] for fault in faults if fault["kind"] in gaps)
    assert sorted(row["instrument"] for row in resyncs) == lost
    assert all("gap" in row["reason"] for row in resyncs)


def test_two_runs_and_two_workers_give_the_same_store(faulty_recording, simulated_models, tmp_path):
    """With predictions: each run starts its online learners from the checkpoints (fresh)."""
    stores = {}
    for name, workers in (("one", 1), ("again", 1), ("two", 2)):
        stores[name] = _store(tmp_path, f"{name}.db")
        replay(
            [faulty_recording],
            stores[name],
            workers=workers,
            models=simulated_models.folder,
            online_state=tmp_path / f"{name}_state",
            fresh=True,
        )
    expected = _contents(stores["one"])
    assert {row["instrument"] for row in expected["predictions"]} == {"binance:BTCUSDT", "coinbase:BTC-USD"}
    assert all(expected[table] for table in DATA_TABLES)  # every table has rows: a fault makes each kind
    assert _contents(stores["again"]) == expected
    assert _contents(stores["two"]) == expected


def _run_in_background(recording, url, speed) -> subprocess.Popen:
    """``quantumflow run`` paced at ``speed`` times real time, so that it is still running when a test acts."""
    return in_background(quantumflow("run", recording, "--store", url, "--speed", speed))


def test_a_killed_run_run_again_leaves_no_duplicates(simulated_recording, simulated_store, tmp_path):
    """Killed a few seconds into a replay paced to last 15 s, then replayed whole into the same store."""
    clean, _ = simulated_store
    killed = _store(tmp_path, "killed.db")
    process = _run_in_background(simulated_recording, killed, speed=4)
    wait_for_rows(killed, process, at_least=1_000)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = open_store(killed).reader().count("features")
    replay([simulated_recording], killed)
    after = _contents(killed)
    assert 0 < partial < len(after["features"])
    assert after == _contents(clean)


def test_a_reader_process_queries_while_the_flow_writes(simulated_recording, tmp_path):
    url = _store(tmp_path)
    process = _run_in_background(simulated_recording, url, speed=10)
    wait_for_rows(url, process)
    counts = []
    with open_store(url).reader() as reader:
        while process.poll() is None:
            counts.append(reader.count("features"))
            reader.latest("features", "binance:BTCUSDT", ["mid"])
            reader.latest_per_instrument("book")
    assert process.wait() == 0, process.stderr.read().decode()
    assert counts == sorted(counts) and len(set(counts)) > 1  # saw the rows arrive, never fewer
    assert open_store(url).reader().count("features") >= counts[-1] > 0


# -- a real recording: exactness ------------------------------------------------------------------


def test_feature_mid_and_spread_equal_the_book_ticker(shared_data, tmp_path):
    """Every feature row made at a bookTicker's update id has that bookTicker's mid and spread."""
    spot = shared_data / "binance" / "spot_btcusdt_20240808.gz"
    url = _store(tmp_path)
    summary = replay([spot], url)
    tickers = {}
    for raw in open_recording(spot):
        for event in parse(raw):
            if type(event) is BestBidOffer:
                tickers[event.sequence] = event
    with open_store(url).reader() as reader:
        rows = reader.rows("features")
        assert reader.count("dead_letters") == reader.count("resyncs") == 0
    assert summary.rows["features"] == len(rows) > 30_000
    matched = depth_rows = 0
    for row in rows:
        ticker = tickers.get(row["update_id"])
        if ticker is None:
            continue
        assert row["mid"] == (ticker.bid_price + ticker.ask_price) / 2, row
        assert row["spread"] == ticker.ask_price - ticker.bid_price, row
        matched += 1
        depth_rows += row["ts"] != ticker.receive_ts  # a depth update landing on the same id
    assert matched > 25_000
    assert depth_rows > 0
