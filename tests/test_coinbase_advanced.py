"""Coinbase Advanced Trade level2, on messages shaped as its documentation shows them."""

import orjson
from replaying import Replayed

from quantumflow.events import BookDelta, BookSnapshot, DeadLetter, RawMessage, Resync


def l2(sequence: int, kind: str, updates: list[tuple[str, str, str]]) -> RawMessage:
    message = {
        "channel": "l2_data",
        "client_id": "",
        "timestamp": "2023-02-09T20:32:50.714964855Z",
        "sequence_num": sequence,
        "events": [
            {
                "type": kind,
                "product_id": "BTC-USD",
                "updates": [
                    {"side": side, "event_time": "2023-02-09T20:32:50.7Z", "price_level": p, "new_quantity": q}
                    for side, p, q in updates
                ],
            }
        ],
    }
    return RawMessage("coinbase_advanced", 1_675_974_770_800_000_000 + sequence, orjson.dumps(message))


SNAPSHOT = l2(
    1, "snapshot", [("bid", "21921.73", "0.06317902"), ("bid", "21921.3", "0.002"), ("offer", "21921.74", "0.5")]
)


def test_snapshot_then_updates_in_sequence():
    replayed = Replayed()
    assert replayed.feed([l2(0, "update", [("bid", "21900", "1")])]) == []  # before the snapshot: held
    (snapshot,) = replayed.feed([SNAPSHOT])
    assert type(snapshot) is BookSnapshot and snapshot.instrument == "coinbase:BTC-USD"
    assert snapshot.exchange_ts == 1_675_974_770_714_964_855
    (delta,) = replayed.feed([l2(2, "update", [("bid", "21921.73", "0"), ("offer", "21921.5", "1.25")])])
    assert type(delta) is BookDelta
    book = replayed.book("coinbase:BTC-USD")
    assert tuple(book.depth_top()) == (21921.3, 0.002, 21921.5, 1.25)
    assert replayed.states.states["coinbase:BTC-USD"].sync.discarded == 1  # the update older than the snapshot


def test_a_missing_sequence_number_is_a_gap():
    replayed = Replayed()
    replayed.feed([SNAPSHOT])
    replayed.feed([l2(2, "update", [("bid", "21921.5", "1")])])
    outputs = replayed.feed([l2(4, "update", [("bid", "21921.6", "1")])])
    assert [type(o) for o in outputs] == [Resync]
    assert outputs[0].reason == "sequence gap: after 2 came 4"
    assert not replayed.book("coinbase:BTC-USD").ready
    replayed.feed([l2(5, "snapshot", [("bid", "21000", "1"), ("offer", "21001", "1")])])
    assert replayed.book("coinbase:BTC-USD").ready


def test_an_update_beyond_a_fresh_snapshot_means_the_snapshot_is_too_old():
    replayed = Replayed()
    replayed.feed([SNAPSHOT])
    (resync,) = replayed.feed([l2(3, "update", [("bid", "21921.5", "1")])])
    assert resync.reason == "snapshot too old: 1 does not reach update 3"


def test_a_repeated_sequence_number_is_a_dead_letter():
    replayed = Replayed()
    replayed.feed([SNAPSHOT])
    replayed.feed([l2(2, "update", [("bid", "21921.5", "1")])])
    repeat = l2(2, "update", [("bid", "21921.6", "1")])
    (dead,) = replayed.feed([repeat])
    assert (
        type(dead) is DeadLetter
        and dead.raw == repeat.payload
        and dead.reason == "out-of-order update: 2 when the book is at 2"
    )
    assert replayed.book("coinbase:BTC-USD").ready


def test_unknown_channel_and_side_are_dead_letters():
    replayed = Replayed()
    (dead,) = replayed.feed([RawMessage("coinbase_advanced", 1, b'{"channel":"candles","events":[]}')])
    assert "unknown Coinbase Advanced Trade channel 'candles'" in dead.reason
    (dead,) = replayed.feed([l2(1, "snapshot", [("middle", "1", "1")])])
    assert "unknown book side 'middle'" in dead.reason
    assert replayed.feed([RawMessage("coinbase_advanced", 1, b'{"channel":"heartbeats","events":[]}')]) == []
