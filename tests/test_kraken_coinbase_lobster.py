"""Books of Kraken, Coinbase and LOBSTER recordings: checksums, crossings, every row. The checksum
mismatch and the crossing update run on hand-written messages where the real recordings are absent."""

import pytest
from replaying import Replayed
from synthetic_feeds import coinbase_messages, kraken_messages

from dataflows.recordings import open_recording
from operators.feeds import kraken
from quantumflow.events import BookDelta, BookSnapshot, DeadLetter, RawMessage, Resync, Trade
from quantumflow.settings import shared_data_dir

LOBSTER_MESSAGES = "AAPL_2012-06-21_34200000_57600000_message_10.csv"


def replay(recording) -> tuple[Replayed, list]:
    replayed = Replayed()
    return replayed, replayed.feed(recording)


def test_every_kraken_checksum_matches(shared_data):
    verified = 0

    def after_event(event, raw, outputs, book) -> None:
        nonlocal verified
        for out in outputs:
            assert type(out) not in (Resync, DeadLetter), out
            if type(out) is BookDelta:
                assert kraken.checksum(book) == out.checksum
                verified += 1

    replayed = Replayed(after_event)
    replayed.feed(open_recording(shared_data / "kraken" / "KRAKEN.ws.50.0"))
    assert verified > 4000
    states = replayed.states.states
    assert len(states) == 10 and all(state.sync.book.ready for state in states.values())


@pytest.fixture(scope="module")
def kraken_recording() -> list[RawMessage]:
    """The real Kraken capture where it is beside the project, else hand-written messages."""
    real = shared_data_dir() / "kraken" / "KRAKEN.ws.50.0"
    return list(open_recording(real)) if real.is_file() else kraken_messages()


def test_kraken_checksum_mismatch_forces_a_resync(kraken_recording):
    recording = list(kraken_recording)
    assert not [o for o in replay(recording)[1] if type(o) in (Resync, DeadLetter)]  # every checksum matches
    update = next(i for i, raw in enumerate(recording) if b'"c":"' in raw.payload)
    raw = recording[update]
    checksum = raw.payload.split(b'"c":"')[1].split(b'"')[0]
    recording[update] = raw._replace(payload=raw.payload.replace(checksum, b"%d" % (int(checksum) ^ 1)))
    replayed, outputs = replay(recording)
    resyncs = [o for o in outputs if type(o) is Resync]
    assert len(resyncs) == 1 and resyncs[0].reason.startswith("checksum mismatch")
    assert [o.reason for o in outputs if type(o) is DeadLetter] == [resyncs[0].reason]
    assert not replayed.book(resyncs[0].instrument).ready  # no new snapshot in the recording


def test_every_coinbase_product_gets_a_book_never_crossed(shared_data):
    products = set()
    deltas = 0

    def after_event(event, raw, outputs, book) -> None:
        nonlocal deltas
        for out in outputs:
            assert type(out) not in (Resync, DeadLetter), out
            if type(out) is BookSnapshot:
                products.add(out.instrument)
            if type(out) is BookDelta:
                deltas += 1
                assert not book.crossed()
                top = book.top_of_book()
                assert top.bid_price < top.ask_price

    replayed = Replayed(after_event)
    replayed.feed(open_recording(shared_data / "coinbase" / "COINBASE.ws.28.0"))
    assert len(products) == 10 and deltas == 9719
    assert all(state.sync.book.ready for state in replayed.states.states.values())


@pytest.fixture(scope="module")
def coinbase_book() -> tuple[list[RawMessage], str]:
    """Messages that leave a Coinbase book ready, and its product: the real capture's first 200 where it is
    beside the project, else hand-written ones."""
    real = shared_data_dir() / "coinbase" / "COINBASE.ws.28.0"
    if real.is_file():
        return list(open_recording(real))[:200], "SKL-USD"
    return coinbase_messages("BTC-USD"), "BTC-USD"


def test_coinbase_crossing_update_is_a_dead_letter(coinbase_book):
    messages, product = coinbase_book
    replayed = Replayed()
    replayed.feed(messages)
    book = replayed.book(f"coinbase:{product}")
    assert book.ready
    ask = book.depth_top().ask_price
    crossing = b'{"type":"l2update","product_id":"%s","changes":[["buy","%r","5"]],"time":"2021-04-17T16:43:40.1Z"}' % (
        product.encode(),
        ask * 1.01,
    )
    outputs = replayed.feed([RawMessage("coinbase", messages[-1].receive_ts + 1, crossing)])
    assert [type(o) for o in outputs] == [DeadLetter, Resync]
    assert outputs[0].raw == crossing and outputs[0].reason.startswith("crossed book after delta")
    assert not book.ready


def _lobster_rows(path):
    return [[int(v) for v in line.split(",")] for line in path.read_text().splitlines()]


def test_lobster_events_reproduce_every_orderbook_row(shared_data):
    folder = shared_data / "lobster"
    rows = _lobster_rows(folder / LOBSTER_MESSAGES.replace("message", "orderbook"))
    messages = [line.split(",") for line in (folder / LOBSTER_MESSAGES).read_text().splitlines()]
    reproduced = 0
    executions: dict[int, list[Trade]] = {}  # by row index

    def after_event(event, raw, outputs, book) -> None:
        nonlocal reproduced
        index = int(raw.payload.split(b",", 1)[0]) - 1
        if type(event) is Trade:  # an execution, after its row's book event
            assert outputs == [event]
            executions.setdefault(index, []).append(event)
            return
        (book_event,) = outputs
        assert type(book_event) is (BookSnapshot if index == 0 else BookDelta)
        assert book_event.sequence == index + 1  # tied to the message of the same row
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

    Replayed(after_event).feed(open_recording(folder / LOBSTER_MESSAGES))
    assert reproduced == len(rows) == 999
    for index, message in enumerate(messages):
        trades = executions.get(index, [])
        assert len(trades) == (int(message[1]) in (4, 5))
        if trades:
            assert trades[0].side == -int(message[5])
            assert trades[0].price == int(message[4]) / 10_000
    trades = sum(map(len, executions.values()))
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
