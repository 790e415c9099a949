"""The market simulator: its recordings read back through the project's own readers and books."""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from replaying import Replayed
from test_binance_sync import compare_with_tickers

import simulator
from dataflows.recordings import open_recording
from dataflows.sources import merged
from operators.feeds import parse
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, DeadLetter, RawMessage, Resync, Trade

BINANCE, COINBASE = "binance:BTCUSDT", "coinbase:BTC-USD"
SEED, MINUTES = 7, 1.5


class Replay:
    """Every file merged by receive time, as the flow reads a recording folder, through the flow's
    path: each event's message with what came out of it (in order per instrument), each depth
    book's top after each delta, and the rebuilt books compared with the simulator's own wherever
    it kept one."""

    def __init__(self, sim: simulator.Simulation) -> None:
        self.messages: list[tuple[RawMessage, list]] = []
        self.depth_tops: list[tuple[int, str, tuple]] = []
        self.checkpoints = dict.fromkeys(sim.checkpoints, 0)
        self.crossed = 0
        self.kept = {key: {state.sequence: state for state in states} for key, states in sim.checkpoints.items()}
        self.replayed = Replayed(self._after_event)
        for letter in self.replayed.feed(merged([open_recording(path) for path in sim.files])):
            if type(letter) is DeadLetter:  # a message that could not be parsed
                self.messages.append((RawMessage(letter.feed, letter.receive_ts, letter.raw), [letter]))

    def _after_event(self, event, raw, outputs, book) -> None:
        self.messages.append((raw, outputs))
        for out in outputs:
            if type(out) is not BookDelta:
                continue
            self.crossed += book.crossed()
            self.depth_tops.append((raw.receive_ts, out.instrument, tuple(book.depth_top())))
            state = self.kept[out.instrument].get(out.sequence)
            if state is not None:
                assert (dict(book.bids), dict(book.asks)) == (state.bids, state.asks), out
                self.checkpoints[out.instrument] += 1

    def outputs(self, kind: type) -> list:
        return [out for _, outputs in self.messages for out in outputs if type(out) is kind]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    sim = simulator.simulate(tmp_path_factory.mktemp("clean"), seed=SEED, minutes=MINUTES)
    return sim, Replay(sim)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    sim = simulator.simulate(tmp_path_factory.mktemp("faulty"), seed=SEED, minutes=MINUTES, faults=True)
    return sim, Replay(sim)


def test_one_native_recording_per_connection_with_a_manifest(clean):
    sim, _ = clean
    assert [path.name for path in sim.files] == [
        "binance_btcusdt.gz",
        "coinbase_level2_btc-usd.gz",
        "coinbase_market_trades_btc-usd.gz",
    ]
    opened = [open_recording(path) for path in sim.files]
    assert [(r.feed, r.symbol, r.kind) for r in opened] == [
        ("binance", "BTCUSDT", "native"),
        ("coinbase_advanced", "BTC-USD", "native"),
        ("coinbase_advanced", "BTC-USD", "native"),
    ]
    manifest = json.loads(sim.manifest.read_text())
    assert manifest["seed"] == SEED and manifest["arguments"]["minutes"] == MINUTES and manifest["faults"] == []
    assert [f["messages"] for f in manifest["files"]] == [sum(1 for _ in r) for r in opened]
    assert sum(f["messages"] for f in manifest["files"]) == sum(sim.messages.values()) > 10_000
    for recording in opened:  # each connection's lines are in receive order
        times = [raw.receive_ts for raw in recording]
        assert times == sorted(times)


def test_every_message_parses_without_a_dead_letter(clean):
    _, replayed = clean
    kinds = set()
    for raw, outputs in replayed.messages:
        events = parse(raw)
        assert not [e for e in events if type(e) is DeadLetter], raw.payload[:200]
        assert not [o for o in outputs if type(o) in (DeadLetter, Resync)], raw.payload[:200]
        kinds.update((type(e).__name__, e.instrument) for e in events)
    assert kinds == {
        ("BookSnapshot", BINANCE),
        ("BookDelta", BINANCE),
        ("BestBidOffer", BINANCE),
        ("Trade", BINANCE),
        ("BookSnapshot", COINBASE),
        ("BookDelta", COINBASE),
        ("Trade", COINBASE),
    }


def test_rebuilt_books_equal_the_venues_own_and_are_never_crossed(clean):
    sim, replayed = clean
    assert min(replayed.checkpoints.values()) >= 15  # sampled along the way (compared as they came)
    assert replayed.crossed == 0
    for instrument, state in sim.books.items():
        book = replayed.replayed.book(instrument)
        assert book.ready and book.sequence == state.sequence
        assert (dict(book.bids), dict(book.asks)) == (state.bids, state.asks)
        assert len(state.bids) > 10 and len(state.asks) > 10


def test_book_ticker_equals_the_rebuilt_top_of_book(clean):
    sim, _ = clean
    compared, differing, _ = compare_with_tickers(open_recording(sim.files[0]))
    assert compared >= 200 and differing == 0


def test_trades_print_at_the_touch_they_took(clean):
    """A buyer-initiated Binance print is at or above the best ask its bookTicker last showed, a
    seller-initiated one at or below the best bid (a market order may walk deeper); both venues
    print both sides."""
    _, replayed = clean
    sides = {BINANCE: set(), COINBASE: set()}
    touch, checked = None, 0
    for _, outputs in replayed.messages:
        for out in outputs:
            if type(out) is BestBidOffer:
                touch = (out.bid_price, out.ask_price)
            elif type(out) is Trade:
                sides[out.instrument].add(out.side)
                if out.instrument == BINANCE and touch is not None:
                    assert out.price >= touch[1] if out.side > 0 else out.price <= touch[0]
                    checked += 1
    assert sides == {BINANCE: {1, -1}, COINBASE: {1, -1}} and checked > 500


def test_same_seed_same_bytes_and_another_seed_other_bytes(tmp_path):
    runs = [
        simulator.simulate(tmp_path / name, seed=seed, minutes=0.25) for name, seed in (("a", 3), ("b", 3), ("c", 4))
    ]
    a, b, c = ([path.read_bytes() for path in [*run.files, run.manifest]] for run in runs)
    assert a == b
    assert all(x != y for x, y in zip(a[:3], c[:3], strict=True))


def test_each_injected_fault_is_detected_and_the_books_recover(faulty):
    sim, replayed = faulty
    kinds = [fault["kind"] for fault in sim.faults]
    assert sorted(set(kinds)) == ["dropped_diff", "dropped_l2_message", "malformed_line"]
    dead = {(out.receive_ts, out.reason.split(":")[0]) for out in replayed.outputs(DeadLetter)}
    resyncs = {(out.receive_ts, out.instrument) for out in replayed.outputs(Resync)}
    snapshots = {(out.receive_ts, out.instrument) for out in replayed.outputs(BookSnapshot)}
    expected_dead, expected_resyncs = set(), set()
    for fault in sim.faults:
        if fault["kind"] == "malformed_line":
            expected_dead.add((fault["receive_ns"], "malformed JSON"))
            continue
        instrument = BINANCE if fault["kind"] == "dropped_diff" else COINBASE
        expected_resyncs.add((fault["detected_ns"], instrument))
        assert fault["receive_ns"] <= fault["detected_ns"] < fault["snapshot_receive_ns"]
        assert (fault["snapshot_receive_ns"], instrument) in snapshots  # the client's new snapshot
    assert dead == expected_dead
    assert resyncs == expected_resyncs
    assert min(replayed.checkpoints.values()) >= 10  # exact whenever live, before and after
    for instrument, state in sim.books.items():  # and at the end
        book = replayed.replayed.book(instrument)
        assert book.ready and (dict(book.bids), dict(book.asks)) == (state.bids, state.asks)


def test_faults_change_the_recording_not_the_market(clean, faulty):
    for instrument, state in clean[0].books.items():
        assert (state.bids, state.asks) == (faulty[0].books[instrument].bids, faulty[0].books[instrument].asks)


def _tops(replayed: Replay) -> dict[str, list[tuple]]:
    """Each venue's top of book as the client sees it, once per change: Binance from bookTicker,
    Coinbase from its rebuilt depth."""
    tops: dict[str, list[tuple]] = {BINANCE: [], COINBASE: []}
    rows = [
        (raw.receive_ts, out.instrument, tuple(out[4:]))
        for raw, outputs in replayed.messages
        for out in outputs
        if type(out) is BestBidOffer
    ]
    rows += [row for row in replayed.depth_tops if row[1] == COINBASE]
    for receive_ts, instrument, top in sorted(rows, key=lambda row: row[0]):
        if not tops[instrument] or tops[instrument][-1][1:] != top:
            tops[instrument].append((receive_ts, *top))
    return tops


def test_l1_imbalance_predicts_the_next_mid_move(clean):
    for instrument, rows in _tops(clean[1]).items():
        top = np.array(rows)[:, 1:]
        mid = (top[:, 0] + top[:, 2]) / 2
        imbalance = (top[:, 1] - top[:, 3]) / (top[:, 1] + top[:, 3])
        changes = np.flatnonzero(np.diff(mid)) + 1
        following = np.searchsorted(changes, np.arange(len(mid)), side="right")
        known = following < len(changes)
        move = mid[changes[following[known]]] - mid[known]
        hits = np.sign(imbalance[known]) == np.sign(move)
        assert len(hits) > 1000 and hits.mean() > 0.55, (instrument, hits.mean())


def test_venues_dislocate_briefly(clean):
    """One venue's bid above the other's ask happens, in episodes well under a second, not most of
    the time: the follower catches up or is arbitraged."""
    tops = _tops(clean[1])
    events = sorted((row[0], instrument, row[1], row[3]) for instrument, rows in tops.items() for row in rows)
    best: dict[str, tuple[float, float]] = {}
    episodes, started, dislocated_ns = [], None, 0
    for receive_ts, instrument, bid, ask in events:
        best[instrument] = (bid, ask)
        if len(best) < 2:
            continue
        (bid_a, ask_a), (bid_b, ask_b) = best[BINANCE], best[COINBASE]
        crossed = bid_a > ask_b or bid_b > ask_a
        if crossed and started is None:
            started = receive_ts
        elif not crossed and started is not None:
            episodes.append(receive_ts - started)
            dislocated_ns += receive_ts - started
            started = None
    assert len(episodes) >= 20
    assert statistics.median(episodes) < 0.5e9
    assert dislocated_ns < 0.5 * MINUTES * 60e9


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"minutes": 0}, "minutes must be more than 0"),
        ({"symbol": "BTC"}, "symbol must look like BTCUSDT"),
        ({"price": 5.0}, "price must be between"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"start": "yesterday"}, "start must be an ISO 8601 UTC time"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        simulator.simulate(tmp_path, **arguments)


def test_the_command_writes_a_recording_and_says_what_it_wrote(tmp_path):
    binary = Path(sys.executable).parent / "quantumflow"
    env = {**os.environ, "COLUMNS": "200"}
    ok = subprocess.run(
        [str(binary), "simulate", "--out", str(tmp_path), "--minutes", "0.2", "--seed", "5", "--faults"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert entry["file"] in ok.stdout
    assert "binance" in ok.stdout and "coinbase" in ok.stdout and "malformed_line" in ok.stdout
    bad = subprocess.run(
        [str(binary), "simulate", "--out", str(tmp_path), "--symbol", "BTC"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "symbol must look like BTCUSDT" in bad.stderr


# -- the decoder support the simulated recordings need -------------------------------------


def _market_trades(trades: list[dict]) -> RawMessage:
    message = {
        "channel": "market_trades",
        "client_id": "",
        "timestamp": "2024-08-08T00:00:01.25Z",
        "sequence_num": 4,
        "events": [{"type": "update", "trades": trades}],
    }
    return RawMessage("coinbase_advanced", 1, orjson.dumps(message))


def test_market_trades_are_trades_oldest_first_with_the_aggressor_side():
    trade = {"product_id": "BTC-USD", "price": "60000.01", "size": "0.0015", "time": "2024-08-08T00:00:01.2Z"}
    newer = {**trade, "trade_id": "12", "side": "BUY", "time": "2024-08-08T00:00:01.210005Z"}
    older = {**trade, "trade_id": "11", "side": "SELL"}
    first, second = parse(_market_trades([newer, older]))
    assert first == Trade(COINBASE, 1_723_075_201_200_000_000, 1, 11, 60000.01, 0.0015, 1)  # the maker sold
    assert second.trade_id == 12 and second.side == -1


def test_a_market_trade_with_an_unknown_side_is_a_dead_letter():
    (dead,) = parse(_market_trades([{"trade_id": "1", "product_id": "BTC-USD", "side": "UP"}]))
    assert type(dead) is DeadLetter and "unknown trade side 'UP'" in dead.reason


def test_a_market_trades_recording_is_recognised(tmp_path):
    path = tmp_path / "trades.txt"
    subscriptions = b'{"channel":"subscriptions","client_id":"","sequence_num":0,"events":[]}'
    path.write_bytes(b"1 %s\n2 %s\n" % (subscriptions, _market_trades([{"product_id": "ETH-USD"}]).payload))
    recording = open_recording(path)
    assert (recording.feed, recording.symbol) == ("coinbase_advanced", "ETH-USD")
