"""Bad recordings never stop a replay: bad lines and a gzip file cut off mid-write become dead
letters, the rest is replayed exactly; a LOBSTER pair of unequal length is an error; a decoder's
bug is counted apart from bad input."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from replaying import Replayed
from synthetic_feeds import write_lobster_pair

import simulator
from dataflows.batches import InstrumentStates
from dataflows.recordings import CUT_OFF, RecordingError, open_recording
from dataflows.replay import replay
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from dataflows.sources import merged, recording_paths
from operators import feeds
from operators.feeds import DECODER_ERROR
from quantumflow.events import DeadLetter, RawMessage, Resync
from quantumflow.settings import shared_data_dir
from store import open_store

SPOT = "binance:BTCUSDT"
GARBAGE = [
    b"garbage",
    b"\xff\xfe\x00 not text",
    b"1723075200000000000",  # a time and no message
    b"17230752000000000x0 {}",  # not a time
    b'-5 {"e":"trade"}',
    b"99999999999999999999 {}",  # more nanoseconds than 64 bits hold
]
NOT_A_LINE = "not a native recording line"


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as file:
        return file.read().splitlines()


def _write(path: Path, lines: list[bytes], compress: bool = True) -> Path:
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return path


def _with_garbage(lines: list[bytes]) -> list[bytes]:
    """``lines`` with each garbage line inserted at a spread of places (pure insertions)."""
    out = list(lines)
    for number, junk in enumerate(GARBAGE):
        out.insert((number + 1) * len(lines) // (len(GARBAGE) + 1), junk)
    return out


def _cut(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def _whole_lines_before_the_cut(path: Path) -> list[bytes]:
    """What zlib itself can decompress of a cut file, up to its last whole line."""
    data = gzip.zlib.decompressobj(31).decompress(path.read_bytes())
    return data[: data.rfind(b"\n")].split(b"\n")


def _tops(summary) -> dict:
    return {item.instrument: (item.state, item.sequence, item.levels) for item in summary.instruments}


def _books(states: InstrumentStates) -> dict:
    return {name: (dict(s.sync.book.bids), dict(s.sync.book.asks)) for name, s in states.states.items()}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env)


# -- real recordings ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spot_lines(shared_data) -> list[bytes]:
    return _lines(shared_data / "binance" / "spot_btcusdt_20240808.gz")


@pytest.fixture(scope="module")
def clean_spot(spot_lines, tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("clean") / "spot.gz", spot_lines)


def test_garbage_lines_are_dead_letters_and_the_books_stay_exact(spot_lines, clean_spot, tmp_path):
    dirty = _write(tmp_path / "dirty.gz", _with_garbage(spot_lines))
    clean, summary = replay([open_recording(clean_spot)]), replay([open_recording(dirty)])
    assert summary.dead_letters == {NOT_A_LINE: len(GARBAGE)} and summary.decoder_errors == 0
    assert summary.messages == clean.messages and summary.events["BookDelta"] == clean.events["BookDelta"] > 3000
    assert not summary.resyncs
    assert _tops(summary) == _tops(clean) and _tops(summary)[SPOT][0] == "live"
    letters = [item for item in open_recording(dirty) if type(item) is DeadLetter]
    assert [letter.raw for letter in letters] == GARBAGE  # the bytes as they were, in place
    assert all(letter.reason.startswith(f"{NOT_A_LINE}: expected '<receive time") for letter in letters)


def test_a_recording_that_starts_with_garbage_is_still_recognised(spot_lines, tmp_path):
    recording = open_recording(_write(tmp_path / "first.gz", [b"garbage", *spot_lines[:100]]))
    assert (recording.feed, recording.symbol, recording.kind) == ("binance", "BTCUSDT", "native")
    first, *rest = recording
    assert type(first) is DeadLetter and first.raw == b"garbage" and first.receive_ts == 0
    assert len(rest) == 100 and all(type(raw) is RawMessage for raw in rest)


def test_every_book_ticker_still_matches_with_garbage_in_between(spot_lines, tmp_path):
    from test_binance_sync import compare_with_tickers

    compared, differing, replayed = compare_with_tickers(
        open_recording(_write(tmp_path / "d.gz", _with_garbage(spot_lines)))
    )
    assert compared >= 500 and differing == 0
    assert len(replayed.of_type(DeadLetter)) == len(GARBAGE)


def test_a_garbled_diff_is_a_dead_letter_and_the_gap_a_resync(spot_lines, tmp_path):
    diffs = [i for i, line in enumerate(spot_lines) if b"@depth" in line]
    lines = list(spot_lines)
    lines[diffs[len(diffs) // 2]] = b"\x00garbled by the disk"
    replayed = Replayed()
    outputs = replayed.feed(open_recording(_write(tmp_path / "garbled.gz", lines)))
    (dead,) = [o for o in outputs if type(o) is DeadLetter]
    assert dead.raw == b"\x00garbled by the disk" and dead.reason.startswith(NOT_A_LINE)
    (resync,) = [o for o in outputs if type(o) is Resync]
    assert resync.reason.startswith("sequence gap")  # the sync saw the lost diff by itself
    assert replayed.book(SPOT).describe().startswith("stale: sequence gap")  # no later snapshot in the file


@pytest.mark.parametrize("fraction", [0.02, 0.6])
def test_a_file_cut_mid_gzip_is_read_to_its_last_whole_line(clean_spot, tmp_path, caplog, fraction):
    cut = _cut(clean_spot, tmp_path / "cut.gz", fraction)
    whole = _whole_lines_before_the_cut(cut)
    with caplog.at_level(logging.WARNING):
        items = list(open_recording(cut))
    *messages, letter = items
    assert [m.payload for m in messages] == [line.split(b" ", 1)[1] for line in whole]
    assert type(letter) is DeadLetter and letter.reason.startswith(f"{CUT_OFF}: the gzip stream breaks off")
    assert letter.receive_ts == messages[-1].receive_ts
    (warning,) = caplog.records
    text = warning.getMessage()
    assert str(cut) in text and f"compressed byte {cut.stat().st_size:,}" in text
    assert f"uncompressed byte {sum(len(line) + 1 for line in whole):,}" in text
    # the books are what the whole lines make
    reference, replayed = Replayed(), Replayed()
    reference.feed(open_recording(_write(tmp_path / "whole.gz", whole)))
    assert [o for o in replayed.feed(items) if type(o) is DeadLetter] == [letter]
    assert _books(replayed.states) == _books(reference.states)


def test_the_cli_replays_garbage_and_a_cut_file_and_exits_0(shared_data, spot_lines, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    _write(folder / "dirty.gz", _with_garbage(spot_lines))
    _cut(shared_data / "binance" / "usdm_btcusdt_20240808.gz", folder / "cut.gz", 0.5)
    result = _cli("replay", str(folder), "--json")  # a folder, as 'run' takes it
    assert result.returncode == 0, result.stderr
    assert "cut.gz: the gzip stream breaks off at compressed byte" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["dead_letters"]["reasons"] == {NOT_A_LINE: len(GARBAGE), CUT_OFF: 1}
    assert summary["decoder_errors"] == 0 and summary["messages"] > 20_000


def test_the_flow_stores_the_bad_lines_as_dead_letters_and_exits_0(shared_data, spot_lines, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    _write(folder / "dirty.gz", _with_garbage(spot_lines[:5000]))
    _cut(shared_data / "binance" / "usdm_btcusdt_20240808.gz", folder / "cut.gz", 0.1)
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    result = _cli("run", str(folder), "--store", url)
    assert result.returncode == 0, result.stderr
    assert "cut.gz: the gzip stream breaks off" in result.stderr and "Traceback" not in result.stderr
    with open_store(url).reader() as reader:
        letters = reader.rows("dead_letters")
        features = reader.rows("features")
    reasons = sorted(row["reason"].split(":")[0] for row in letters)
    assert reasons == sorted([NOT_A_LINE] * len(GARBAGE) + [CUT_OFF])
    assert {bytes(row["raw"]) for row in letters} >= set(GARBAGE)
    assert len(features) > 1000
    assert f"{len(GARBAGE) + 1} dead letters" in result.stdout


def test_a_cryptofeed_capture_with_garbage_replays_every_checksum(shared_data, tmp_path):
    lines = (shared_data / "kraken" / "KRAKEN.ws.50.0").read_bytes().splitlines()
    lines[100:100] = [b"no colon here", b"12x: {}"]
    capture = _write(tmp_path / "KRAKEN.ws.50.0", lines, compress=False)
    summary = replay([open_recording(capture)])
    assert summary.dead_letters == {"not a cryptofeed recording line": 2}
    assert not summary.resyncs and all(item.state == "live" for item in summary.instruments)


# -- LOBSTER ------------------------------------------------------------------------------------


@pytest.fixture
def lobster_copy(tmp_path) -> Path:
    """A copy of the real LOBSTER pair where it is beside the project, else a small hand-written one."""
    real = shared_data_dir() / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    if not real.is_file():
        return write_lobster_pair(tmp_path)
    for part in ("message", "orderbook"):
        shutil.copy(real.with_name(real.name.replace("message", part)), tmp_path)
    return tmp_path / real.name


def test_a_lobster_pair_of_unequal_length_is_an_error_naming_both_counts(lobster_copy):
    books = lobster_copy.with_name(lobster_copy.name.replace("message", "orderbook"))
    rows = books.read_bytes().splitlines(keepends=True)
    books.write_bytes(b"".join(rows[:-3]))
    message = f"{lobster_copy.name} has {len(rows)} rows, {books.name} has {len(rows) - 3}"
    with pytest.raises(RecordingError, match=message):
        open_recording(lobster_copy)
    result = _cli("replay", str(lobster_copy))
    assert result.returncode == 2 and f"has {len(rows)} rows" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_lobster_time_is_a_dead_letter_and_the_missing_row_a_gap(lobster_copy):
    lines = lobster_copy.read_bytes().splitlines(keepends=True)
    bad = len(lines) // 2  # row bad + 1
    lines[bad] = b"noon" + lines[bad][lines[bad].index(b",") :]
    lobster_copy.write_bytes(b"".join(lines))
    outputs = Replayed().feed(open_recording(lobster_copy))
    (dead,) = [o for o in outputs if type(o) is DeadLetter]
    assert dead.raw.startswith(b"noon,") and dead.reason.startswith("not a LOBSTER message line")
    (resync,) = [o for o in outputs if type(o) is Resync]
    assert resync.reason == f"sequence gap: after {bad} came {bad + 2}"


# -- simulated recordings: the same without ../shared/data ------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> simulator.Simulation:
    return simulator.simulate(tmp_path_factory.mktemp("sim"), seed=7, minutes=1)


def test_a_simulated_folder_with_garbage_and_a_cut_file_replays_exactly(simulated, tmp_path):
    binance, level2, trades = simulated.files
    folder = tmp_path / "bad"
    folder.mkdir()
    _write(folder / binance.name, _with_garbage(_lines(binance)))
    shutil.copy(level2, folder)
    _cut(trades, folder / trades.name, 0.5)
    summary = replay([open_recording(path) for path in recording_paths([folder])])
    assert summary.dead_letters == {NOT_A_LINE: len(GARBAGE), CUT_OFF: 1} and not summary.resyncs
    states = InstrumentStates()
    for _ in states.replay(merged([open_recording(path) for path in recording_paths([folder])])):
        pass
    for instrument, state in simulated.books.items():  # market trades do not touch the books
        book = states.book(instrument)
        assert (dict(book.bids), dict(book.asks)) == (state.bids, state.asks)
    result = _cli("replay", str(folder))
    assert result.returncode == 0, result.stderr
    assert f"dead letters: {len(GARBAGE) + 1}" in result.stdout and "decoder errors: 0" in result.stdout
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    result = _cli("run", str(folder), "--store", url)
    assert result.returncode == 0, result.stderr
    assert f"{trades.name}: the gzip stream breaks off" in result.stderr and "Traceback" not in result.stderr
    with open_store(url).reader() as reader:
        reasons = sorted(row["reason"].split(":")[0] for row in reader.rows("dead_letters"))
        assert reasons == sorted([NOT_A_LINE] * len(GARBAGE) + [CUT_OFF]) and reader.count("resyncs") == 0


# -- decoder errors ------------------------------------------------------------------------------


@pytest.fixture
def buggy_book_ticker(monkeypatch):
    """The Binance decoder with a bug: it fails on every bookTicker."""
    decode = feeds.FEEDS["binance"].decode

    def buggy(raw: RawMessage):
        if b"bookTicker" in raw.payload:
            return raw.payload.decode() + 1  # a TypeError, as a slip would raise
        return decode(raw)

    monkeypatch.setitem(feeds.FEEDS, "binance", feeds.FEEDS["binance"]._replace(decode=buggy))


def test_a_decoder_bug_is_counted_apart_from_bad_input(simulated, buggy_book_ticker, tmp_path):
    binance = simulated.files[0]
    tickers = sum(b"bookTicker" in line for line in _lines(binance))
    dirty = _write(tmp_path / "binance.gz", _with_garbage(_lines(binance)))
    summary = replay([open_recording(dirty)])
    assert summary.decoder_errors == tickers > 100
    assert summary.dead_letters == {NOT_A_LINE: len(GARBAGE), DECODER_ERROR: tickers}
    (letter, *_) = [
        o for o in Replayed().feed(open_recording(dirty)) if type(o) is DeadLetter and feeds.is_decoder_error(o)
    ]
    assert letter.reason == 'decoder error: TypeError: can only concatenate str (not "int") to str'
    assert b"bookTicker" in letter.raw

    run = run_flow(RunSettings((dirty,), store=f"sqlite:///{tmp_path / 'flow.db'}", predictions=False))
    assert run.decoder_errors == tickers
    assert run.rows["dead_letters"] == tickers + len(GARBAGE)  # kept, bytes and reason, with the bad input
    assert run.rows["features"] > 500  # the diffs still make books


def test_bad_input_is_never_a_decoder_error():
    letters = feeds.parse(RawMessage("binance", 1, b'{"e":"depthUpdate","s":"X","U":1,"u":2,"E":1,"b":[[1]],"a":[]}'))
    assert [letter.reason.split(":")[0] for letter in letters] == ["levels must be [price, size, ...] arrays"]
    assert not [letter for letter in letters if feeds.is_decoder_error(letter)]
    (letter,) = Replayed().feed([RawMessage("binance", 1, b"{")])
    assert letter.reason.startswith("malformed JSON") and not feeds.is_decoder_error(letter)


def test_a_cryptofeed_capture_folder_replays_its_websocket_capture_not_its_rest_answers(shared_data):
    # COINBASE.0 holds the REST product list the capture asked for: lines of '<url> -> <epoch>: <json>'
    assert [path.name for path in recording_paths([shared_data / "coinbase"])] == ["COINBASE.ws.28.0"]
