"""The predict flow on Bytewax, end to end into a SQLite store, on the real recordings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dataflows.recordings import open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from operators.feeds import parse
from quantumflow.events import BestBidOffer
from store import open_store

DATA_TABLES = ("features", "book", "trades", "resyncs", "dead_letters")


def _store(tmp_path, name="flow.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _contents(url: str) -> dict[str, list[dict]]:
    with open_store(url).reader() as reader:
        return {table: reader.rows(table) for table in DATA_TABLES}


@pytest.fixture(scope="module")
def spot(shared_data):
    return shared_data / "binance" / "spot_btcusdt_20240808.gz"


@pytest.fixture(scope="module")
def spot_store(spot, tmp_path_factory):
    url = _store(tmp_path_factory.mktemp("spot"))
    summary = run_flow(RunSettings(spot, store=url))
    return url, summary


def test_feature_mid_and_spread_equal_the_book_ticker(spot, spot_store):
    """Every feature row made at a bookTicker's update id has that bookTicker's mid and spread."""
    url, summary = spot_store
    tickers = {}
    for raw in open_recording(spot):
        for event in parse(raw):
            if type(event) is BestBidOffer:
                tickers[event.sequence] = event
    with open_store(url).reader() as reader:
        rows = reader.rows("features")
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


def test_rows_are_written_once_per_event_with_readable_keys(spot_store):
    url, summary = spot_store
    with open_store(url).reader() as reader:
        assert reader.instruments() == ["binance:BTCUSDT"]
        assert reader.count("dead_letters") == 0
        assert reader.count("resyncs") == 0
        assert 0 < reader.count("book") < reader.count("features")
        latest = reader.latest("features", "binance:BTCUSDT", ["mid", "spread_bps"])
    assert latest["mid"] > 0
    assert summary.events_in > 40_000


def test_two_runs_and_two_workers_give_the_same_store(shared_data, tmp_path):
    recordings = [shared_data / "coinbase" / "COINBASE.ws.28.0", shared_data / "binance" / "spot_btcusdt_20240808.gz"]
    first, again, two = (_store(tmp_path, name) for name in ("one.db", "again.db", "two.db"))
    run_flow(RunSettings(recordings, store=first))
    run_flow(RunSettings(recordings, store=again))
    run_flow(RunSettings(recordings, store=two, workers=2))
    expected = _contents(first)
    assert len({row["instrument"] for row in expected["features"]}) == 11
    assert _contents(again) == expected
    assert _contents(two) == expected


def _run_in_background(recording, url) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", str(recording), "--store", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )


def _wait_for_rows(url, process, at_least=1, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    with open_store(url).reader() as reader:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if reader.count("features") >= at_least:
                    return
            except Exception:  # the table may not exist yet
                pass
            time.sleep(0.05)
    pytest.fail("the flow wrote no feature rows in time")


def test_a_killed_run_run_again_leaves_no_duplicates(shared_data, tmp_path):
    recording = shared_data / "binance" / "usdm_btcusdt_20240808.gz"
    killed, clean = _store(tmp_path, "killed.db"), _store(tmp_path, "clean.db")
    process = _run_in_background(recording, killed)
    _wait_for_rows(killed, process, at_least=5_000)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = open_store(killed).reader().count("features")
    run_flow(RunSettings(recording, store=killed))
    run_flow(RunSettings(recording, store=clean))
    after = _contents(killed)
    assert 0 < partial < len(after["features"])
    assert after == _contents(clean)


def test_a_reader_process_queries_while_the_flow_writes(shared_data, tmp_path):
    url = _store(tmp_path)
    process = _run_in_background(shared_data / "binance" / "usdm_btcusdt_20240808.gz", url)
    _wait_for_rows(url, process)
    counts = []
    with open_store(url).reader() as reader:
        while process.poll() is None:
            counts.append(reader.count("features"))
            reader.latest("features", "binance_usdm:BTCUSDT", ["mid"])
            reader.latest_per_instrument("book")
    assert process.wait() == 0, process.stderr.read().decode()
    assert len(counts) > 5
    assert counts == sorted(counts)
    assert open_store(url).reader().count("features") >= counts[-1] > 0
