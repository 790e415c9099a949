"""Books of Kraken, Coinbase and LOBSTER recordings: checksums, crossings, every row."""

import pytest

from dataflows.recordings import open_recording
from operators.feeds import kraken
from operators.pipeline import BookBuilder
from quantumflow.events import BookDelta, BookSnapshot, DeadLetter, RawMessage, Resync, Trade

LOBSTER_MESSAGES = "AAPL_2012-06-21_34200000_57600000_message_10.csv"


def replay(recording) -> tuple[BookBuilder, list]:
    builder = BookBuilder()
    return builder, [out for raw in recording for out in builder.process(raw)]


def test_every_kraken_checksum_matches(shared_data):
    builder = BookBuilder()
    verified = 0
    for raw in open_recording(shared_data / "kraken" / "KRAKEN.ws.50.0"):
        for out in builder.process(raw):
            assert type(out) not in (Resync, DeadLetter), out
            if type(out) is BookDelta:
                assert kraken.checksum(builder.syncs[out.instrument].book) == out.checksum
                verified += 1
    assert verified > 4000
    assert len(builder.syncs) == 10 and all(s.book.ready for s in builder.syncs.values())


def test_kraken_checksum_mismatch_forces_a_resync(shared_data):
    recording = list(open_recording(shared_data / "kraken" / "KRAKEN.ws.50.0"))
    update = next(i for i, raw in enumerate(recording) if b'"c":"' in raw.payload)
    raw = recording[update]
    checksum = raw.payload.split(b'"c":"')[1].split(b'"')[0]
    recording[update] = raw._replace(payload=raw.payload.replace(checksum, b"%d" % (int(checksum) ^ 1)))
    builder, outputs = replay(recording)
    resyncs = [o for o in outputs if type(o) is Resync]
    assert len(resyncs) == 1 and resyncs[0].reason.startswith("checksum mismatch")
    assert [o.reason for o in outputs if type(o) is DeadLetter] == [resyncs[0].reason]
    assert not builder.syncs[resyncs[0].instrument].book.ready  # no new snapshot in the recording


def test_every_coinbase_product_gets_a_book_never_crossed(shared_data):
    builder = BookBuilder()
    products = set()
    deltas = 0
    for raw in open_recording(shared_data / "coinbase" / "COINBASE.ws.28.0"):
        for out in builder.process(raw):
            assert type(out) not in (Resync, DeadLetter), out
            book = builder.syncs[out.instrument].book
            if type(out) is BookSnapshot:
                products.add(out.instrument)
            if type(out) is BookDelta:
                deltas += 1
                assert not book.crossed()
                top = book.top_of_book()
                assert top.bid_price < top.ask_price
    assert len(products) == 10 and deltas == 9719
    assert all(sync.book.ready for sync in builder.syncs.values())


def test_coinbase_crossing_update_is_a_dead_letter(shared_data):
    recording = list(open_recording(shared_data / "coinbase" / "COINBASE.ws.28.0"))
    builder = BookBuilder()
    for raw in recording[:200]:
        builder.process(raw)
    book = builder.syncs["coinbase:SKL-USD"].book
    ask = book.depth_top().ask_price
    crossing = (
        b'{"type":"l2update","product_id":"SKL-USD","changes":[["buy","%r","5"]],"time":"2021-04-17T16:43:40.1Z"}'
        % (ask * 1.01)
    )
    outputs = builder.process(RawMessage("coinbase", recording[200].receive_ts, crossing))
    assert [type(o) for o in outputs] == [DeadLetter, Resync]
    assert outputs[0].raw == crossing and outputs[0].reason.startswith("crossed book after delta")
    assert not book.ready


def _lobster_rows(path):
    return [[int(v) for v in line.split(",")] for line in path.read_text().splitlines()]


def test_lobster_events_reproduce_every_orderbook_row(shared_data):
    folder = shared_data / "lobster"
    rows = _lobster_rows(folder / LOBSTER_MESSAGES.replace("message", "orderbook"))
    messages = [line.split(",") for line in (folder / LOBSTER_MESSAGES).read_text().splitlines()]
    builder = BookBuilder()
    reproduced = trades = 0
    for index, raw in enumerate(open_recording(folder / LOBSTER_MESSAGES)):
        outputs = builder.process(raw)
        book_event = outputs[0]
        assert type(book_event) is (BookSnapshot if index == 0 else BookDelta)
        assert book_event.sequence == index + 1  # tied to the message of the same row
        book = builder.syncs["lobster:AAPL"].book
        levels = book.top_levels(10)
        expected = rows[index]
        got = []
        for level in range(10):
            got += [
                round(levels.ask_prices[level] * 10_000) if levels.ask_sizes[level] else 9999999999,
                int(levels.ask_sizes[level]),
                round(levels.bid_prices[level] * 10_000) if levels.bid_sizes[level] else -9999999999,
                int(levels.bid_sizes[level]),
            ]
        reproduced += got == expected
        kind = int(messages[index][1])
        executions = [o for o in outputs if type(o) is Trade]
        assert len(executions) == (kind in (4, 5))
        if executions:
            trades += 1
            assert executions[0].side == -int(messages[index][5])
            assert executions[0].price == int(messages[index][4]) / 10_000
    assert reproduced == len(rows) == 999
    assert trades == 159


def test_lobster_times_are_new_york_session_times_in_utc_ns(shared_data):
    first = next(iter(open_recording(shared_data / "lobster" / LOBSTER_MESSAGES)))
    # 2012-06-21 09:30:00.004241176 EDT = 13:30:00.004241176 UTC
    assert first.receive_ts == 1340285400_004241176


@pytest.mark.parametrize(
    ("path", "feed"),
    [
        ("coinbase/COINBASE.ws.28.0", "coinbase"),
        ("kraken/KRAKEN.ws.50.0", "kraken"),
        (f"lobster/{LOBSTER_MESSAGES}", "lobster"),
    ],
)
def test_recording_feeds_are_recognised(shared_data, path, feed):
    assert open_recording(shared_data / path).feed == feed
