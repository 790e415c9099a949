"""Binance books rebuilt from real recordings equal the venue's own best bid/offer."""

import gzip
from pathlib import Path

import pytest
from replaying import Replayed

from dataflows.recordings import open_recording
from quantumflow.events import BestBidOffer, BookDelta, DeadLetter, RawMessage, Resync


def compare_with_tickers(raws) -> tuple[int, int, Replayed]:
    """Replay through the flow's path; whenever the book's last applied diff and a bookTicker share
    an update id, compare the depth book's best bid/ask (price and size) with the ticker's (after a
    snapshot that applies several buffered diffs at once, only the last of them is compared).
    Returns (compared, differing, the replay)."""
    tickers: dict[int, BestBidOffer] = {}
    applied = {}
    compared = differing = 0

    def after_event(event, raw, outputs, book) -> None:
        nonlocal compared, differing
        # A snapshot applies the diffs buffered before it in one go: the book is known only after the last.
        deltas = [out for out in outputs if type(out) is BookDelta]
        for out in outputs:
            if type(out) is BookDelta:
                if out is not deltas[-1]:
                    continue
                applied[out.sequence] = book.depth_top()
                pair = (applied[out.sequence], tickers.get(out.sequence))
            elif type(out) is BestBidOffer:
                tickers[out.sequence] = out
                pair = (applied.get(out.sequence), out)
            else:
                continue
            top, ticker = pair
            if top is not None and ticker is not None:
                compared += 1
                differing += tuple(top) != (ticker.bid_price, ticker.bid_size, ticker.ask_price, ticker.ask_size)

    replayed = Replayed(after_event)
    replayed.feed(raws)
    return compared, differing, replayed


@pytest.mark.parametrize(
    ("name", "instrument"),
    [("spot_btcusdt_20240808.gz", "binance:BTCUSDT"), ("usdm_btcusdt_20240808.gz", "binance_usdm:BTCUSDT")],
)
def test_rebuilt_top_equals_every_matching_book_ticker(shared_data, name, instrument):
    recording = open_recording(shared_data / "binance" / name)
    compared, differing, replayed = compare_with_tickers(recording)
    assert compared >= 500  # hundreds of exact comparisons, not a handful
    assert differing == 0
    assert replayed.book(instrument).ready


def test_usdm_recording_is_recognised_as_futures(shared_data):
    assert open_recording(shared_data / "binance" / "usdm_btcusdt_20240808.gz").feed == "binance_usdm"
    assert open_recording(shared_data / "binance" / "spot_btcusdt_20240808.gz").feed == "binance"


@pytest.mark.parametrize("name", ["spot_btcusdt_20240808.gz", "usdm_btcusdt_20240808.gz"])
def test_no_resync_and_no_dead_letter_on_clean_recordings(shared_data, name):
    outputs = Replayed().feed(open_recording(shared_data / "binance" / name))
    assert not [o for o in outputs if type(o) in (Resync, DeadLetter)]


def test_without_snapshot_there_is_no_book_only_a_waiting_state(shared_data):
    replayed = Replayed()
    outputs = replayed.feed(open_recording(shared_data / "binance" / "spot_btcusdt_20240809.gz"))
    sync = replayed.states.states["binance:BTCUSDT"].sync
    assert not sync.book.ready
    assert sync.book.describe() == "waiting for snapshot"
    assert sync.book.depth_top() is None and sync.book.top_of_book() is None
    assert len(sync.buffer) > 0  # diffs are kept, ready for a snapshot
    assert not [o for o in outputs if type(o) is BookDelta]


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as file:
        return file.read().splitlines()


def _recorded(lines: list[bytes], folder: Path) -> list[RawMessage]:
    """Edited recording lines, written as a recording and read back by the project's reader."""
    path = folder / "edited.gz"
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(b"\n".join(lines) + b"\n")
    return list(open_recording(path))


def test_deleted_diff_is_a_gap_the_book_stays_stale_until_a_new_snapshot(shared_data, tmp_path):
    lines = _lines(shared_data / "binance" / "spot_btcusdt_20240808.gz")
    diffs = [i for i, line in enumerate(lines) if b"@depth" in line]
    deleted = diffs[len(diffs) // 2]
    # A later REST snapshot, as a client would fetch after the gap: the book rebuilt from the
    # complete recording at a diff well after the gap, printed as Binance's depth response.
    resume_at = diffs[len(diffs) // 2 + 200]
    full = Replayed()
    full.feed(_recorded(lines[: resume_at + 1], tmp_path))
    book = full.book("binance:BTCUSDT")
    snapshot = b'{"lastUpdateId":%d,"bids":[%s],"asks":[%s]}' % (
        book.sequence,
        b",".join(b'["%r","%r"]' % level for level in reversed(book.bids.items())),
        b",".join(b'["%r","%r"]' % level for level in book.asks.items()),
    )
    receive_ts = int(lines[resume_at].split(b" ", 1)[0]) + 1
    gapped = (
        lines[:deleted]
        + lines[deleted + 1 : resume_at + 1]
        + [b"%d %s" % (receive_ts, snapshot)]
        + lines[resume_at + 1 :]
    )

    resyncs, stale_deltas = [], 0

    def after_event(event, raw, outputs, book) -> None:
        nonlocal stale_deltas
        for out in outputs:
            if type(out) is Resync:
                resyncs.append(out)
            elif type(out) is BookDelta and not book.ready:
                stale_deltas += 1
        if raw.receive_ts == receive_ts:
            assert book.ready  # the new snapshot brought it back
        elif resyncs and raw.receive_ts < receive_ts:
            assert not book.ready and book.depth_top() is None  # stale: nothing to use

    replayed = Replayed(after_event)
    replayed.feed(_recorded(gapped, tmp_path))
    assert len(resyncs) == 1 and resyncs[0].reason.startswith("sequence gap")
    assert stale_deltas == 0
    # exact again: compare with the book rebuilt from the complete recording
    reference = Replayed()
    reference.feed(open_recording(shared_data / "binance" / "spot_btcusdt_20240808.gz"))
    book = replayed.book("binance:BTCUSDT")
    assert book.ready
    assert dict(book.bids) == dict(reference.book("binance:BTCUSDT").bids)
    assert dict(book.asks) == dict(reference.book("binance:BTCUSDT").asks)


def test_corrupted_line_becomes_a_dead_letter_and_the_rest_replays(shared_data, tmp_path):
    lines = _lines(shared_data / "binance" / "spot_btcusdt_20240808.gz")
    tickers = [i for i, line in enumerate(lines) if b"bookTicker" in line]
    corrupt = tickers[100]
    ts, payload = lines[corrupt].split(b" ", 1)
    lines[corrupt] = ts + b" " + payload[: len(payload) // 2]
    replayed = Replayed()
    outputs = replayed.feed(_recorded(lines, tmp_path))
    dead = [o for o in outputs if type(o) is DeadLetter]
    assert len(dead) == 1
    assert dead[0].raw == payload[: len(payload) // 2] and dead[0].reason.startswith("malformed JSON")
    assert replayed.book("binance:BTCUSDT").ready
    assert sum(type(o) is BestBidOffer for o in outputs) == len(tickers) - 1


def test_futures_gap_is_detected_by_previous_update_id(shared_data, tmp_path):
    lines = _lines(shared_data / "binance" / "usdm_btcusdt_20240808.gz")
    diffs = [i for i, line in enumerate(lines) if b"@depth" in line]
    del lines[diffs[1000]]
    replayed = Replayed()
    raws = _recorded(lines, tmp_path)
    assert raws[0].feed == "binance_usdm"
    resyncs = [out for out in replayed.feed(raws) if type(out) is Resync]
    assert len(resyncs) == 1 and resyncs[0].reason.startswith("sequence gap")
    assert replayed.book("binance_usdm:BTCUSDT").describe().startswith("stale: sequence gap")
