"""``quantumflow run --live``: the predict flow reading the venues' live streams (here the local Binance and
Coinbase, playing recordings over the venues' own protocols) writes what a replay of what it received
writes, row for row, predictions included; and a live Binance book equals the venue's bookTicker."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from pipeline_runs import quantumflow, replay, store_contents
from test_binance_sync import compare_with_tickers

from dataflows.live_source import NothingReceived
from dataflows.recordings import open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from exchanges.binance import BinanceExchange
from exchanges.coinbase import CoinbaseExchange
from quantumflow.events import Resync
from store import open_store
from venues.base import VenueError

LIVE = ("binance:BTCUSDT", "coinbase:BTC-USD")


@pytest.fixture
def local_venues(simulated_recording, monkeypatch):
    """The simulated minute played by a local Binance and a local Coinbase at 10 times real time, the
    clients pointed at them."""
    binance = BinanceExchange("binance", [simulated_recording / "binance_btcusdt.gz"], speed=10).start()
    coinbase = CoinbaseExchange(
        simulated_recording / "coinbase_level2_btc-usd.gz",
        simulated_recording / "coinbase_market_trades_btc-usd.gz",
        speed=10,
    ).start()
    for variable, value in {**binance.settings(), **coinbase.settings()}.items():
        monkeypatch.setenv(variable, value)
    yield
    binance.stop()
    coinbase.stop()


def test_a_live_run_writes_what_a_replay_of_its_recording_writes(local_venues, simulated_models, tmp_path):
    live = f"sqlite:///{tmp_path / 'live.db'}"
    settings = RunSettings(
        (),
        store=live,
        live=LIVE,
        record_to=tmp_path / "received",
        duration_s=5,
        models=simulated_models.folder,
        online_state_dir=tmp_path / "live_state",
        fresh=True,
    )
    summary = run_flow(settings)
    assert summary.events_in > 1_000
    provenance = [w.split(" is ")[0] for w in summary.warnings if "is predicted by the models" in w]
    assert sorted(provenance) == ["live binance:BTCUSDT", "live coinbase:BTC-USD"]  # the models' are simulated
    rows = store_contents(live)
    for table in ("features", "book", "trades", "predictions"):
        assert {row["instrument"] for row in rows[table]} == set(LIVE), table
    assert not rows["dead_letters"] and not rows["resyncs"]
    replayed = f"sqlite:///{tmp_path / 'replayed.db'}"
    replay(
        [tmp_path / "received"],
        replayed,
        models=simulated_models.folder,
        online_state=tmp_path / "replay_state",
        fresh=True,
    )
    assert store_contents(replayed) == rows


def test_a_dropped_connection_and_a_skipped_diff_show_in_the_run_metrics_and_the_resyncs(
    simulated_recording, monkeypatch, tmp_path
):
    binance = BinanceExchange("binance", [simulated_recording / "binance_btcusdt.gz"], speed=4)
    binance.at(3_000, binance.drop)  # of about 10,500 messages in the minute: the book has long been synced
    binance.at(7_000, binance.skip_diff)  # and is synced again after the drop
    binance.start()
    for variable, value in binance.settings().items():
        monkeypatch.setenv(variable, value)
    store = f"sqlite:///{tmp_path / 'live.db'}"
    try:
        summary = run_flow(RunSettings((), store=store, live=("binance:BTCUSDT",), duration_s=17, predictions=False))
    finally:
        binance.stop()
    assert summary.reconnects == 1
    assert summary.venue_resyncs == 1  # the skipped diff: the client's gap, a new snapshot
    rows = store_contents(store)
    reasons = [row["reason"] for row in rows["resyncs"]]
    assert len(reasons) == 2 and all("sequence gap" in reason for reason in reasons), reasons  # each fault, once
    assert rows["book"][-1]["ts"] > rows["resyncs"][-1]["ts"]  # the book came back after the last
    with open_store(store).reader() as reader:
        metrics = reader.latest_run_metrics()
    assert {(row["reconnects"], row["venue_resyncs"]) for row in metrics} == {(1, 1)}


def test_a_live_binance_book_equals_the_venues_book_ticker(shared_data, monkeypatch, tmp_path):
    with BinanceExchange("binance", [shared_data / "binance" / "spot_btcusdt_20240808.gz"], speed=20) as binance:
        for variable, value in binance.settings().items():
            monkeypatch.setenv(variable, value)
        store = f"sqlite:///{tmp_path / 'live.db'}"
        run_flow(RunSettings((), store=store, live=("binance:BTCUSDT",), record_to=tmp_path / "rec", duration_s=6))
    (received,) = (tmp_path / "rec").iterdir()
    compared, differing, replayed = compare_with_tickers(open_recording(received))
    assert compared >= 100
    assert differing == 0
    assert not replayed.of_type(Resync)
    assert replayed.book("binance:BTCUSDT").ready


def test_an_unknown_symbol_ends_the_live_run_saying_so(local_venues, tmp_path):
    settings = RunSettings((), store=f"sqlite:///{tmp_path / 'live.db'}", live=("binance:NOPEUSDT",), duration_s=30)
    with pytest.raises(VenueError, match="NOPEUSDT"):
        run_flow(settings)


def test_a_live_run_that_receives_nothing_while_its_connections_fail_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("QF_BINANCE_WS_URL", "ws://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("QF_BINANCE_REST_URL", "http://127.0.0.1:9")
    settings = RunSettings((), store=f"sqlite:///{tmp_path / 'live.db'}", live=("binance:BTCUSDT",), duration_s=2)
    warned: list[tuple[float, str]] = []
    started = time.monotonic()
    with pytest.raises(NothingReceived, match=r"nothing received from the venues in \d+ s: BTCUSDT: .*127\.0\.0\.1:9"):
        run_flow(settings, on_warning=lambda message: warned.append((time.monotonic() - started, message)))
    # said while the run went on, not only when it ended
    assert warned and warned[0][0] < 2 and re.match(r"venues: BTCUSDT: .*127\.0\.0\.1:9.*; retrying", warned[0][1])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--live", "binance"], "is not VENUE:SYMBOL"),
        (["--live", "kraken:XBT/USD"], "no client for 'kraken'"),
        (["--record", "somewhere"], "--record and --duration go with --live"),
        (["--live", "binance:BTCUSDT", "--record", __file__], "is a file, not a folder"),
        (["--live", "binance:BTCUSDT", "--kafka", "127.0.0.1:9"], "--live reads the venues"),
    ],
)
def test_live_options_misused_are_one_line(args, said, tmp_path):
    done = subprocess.run(
        quantumflow("run", *args, "--store", f"sqlite:///{tmp_path / 'x.db'}"), capture_output=True, text=True
    )
    assert done.returncode == 2
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
