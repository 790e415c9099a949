"""Property tests for ``operators.feeds.parse``: it never raises, and what it lets through is sane.

Three kinds of input:

* anything at all (arbitrary bytes, arbitrary JSON, JSON shaped like the venues' messages) for every feed;
* real messages from the recordings in ``../shared/data`` (without them: simulated Binance messages and
  hand-written ones of the other venues), mutated (a key deleted, a value anywhere replaced by junk,
  the bytes truncated or a byte flipped);
* hand-written messages whose dead-letter reasons are checked by hand.

Whatever comes back is either exactly one ``DeadLetter`` carrying the input bytes and a reason (never
a decoder error: no input may pass for a bug in a decoder), or market events whose prices are
finite and positive, sizes finite and non-negative, and times integers.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic_feeds import binance_usdm_depth_update, coinbase_messages, kraken_messages, write_lobster_pair

from dataflows.recordings import open_recording
from operators.feeds import FEEDS, is_decoder_error, parse
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, DeadLetter, RawMessage, Trade
from quantumflow.settings import shared_data_dir

FEED_NAMES = sorted(FEEDS)
MARKET_TYPES = (BookSnapshot, BookDelta, Trade, BestBidOffer)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies --------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)

# Strings a careless parser might turn into a bad number.
NASTY_NUMBERS = [
    "", " 1 ", "NaN", "nan", "-NaN", "-1", "-0", "0", "1e999", "-1e999", "inf", "-inf", "Infinity", "1e-400", "1_0",
]  # fmt: skip
numberish = (
    st.sampled_from(NASTY_NUMBERS)
    | st.floats().map(repr)
    | st.integers().map(str)
    | st.decimals(allow_nan=True).map(str)
    | st.text(max_size=6)
)
junk_values = (
    st.sampled_from([*NASTY_NUMBERS, None, -1, 0, -0.0, 1e308, 2**64, -(2**63), True, False, [], {}])
    | numberish
    | json_values
)

# Keys and values the venues use, so that generated objects get past the first checks of a decoder.
KNOWN_KEYS = [
    "e", "E", "T", "s", "U", "u", "pu", "b", "a", "B", "A", "t", "p", "q", "m",
    "lastUpdateId", "bids", "asks", "stream", "data", "result", "id",
    "type", "product_id", "changes", "time", "side", "size", "price", "trade_id", "message", "reason",
    "channel", "sequence_num", "timestamp", "events", "updates", "price_level", "new_quantity",
    "event", "status", "errorMessage", "as", "bs", "c",
]  # fmt: skip
KNOWN_WORDS = [
    "depthUpdate", "bookTicker", "trade", "aggTrade", "BTCUSDT", "snapshot", "l2update", "match", "last_match",
    "ticker", "heartbeat", "heartbeats", "subscriptions", "error", "l2_data", "update", "bid", "offer", "buy",
    "sell", "b", "s", "book-10", "book-1000", "book", "subscriptionStatus", "systemStatus", "XBT/USD", "BTC-USD",
    "2021-04-17T16:43:37.075687Z", "2021-04-17T16:43:37Z", "1618677817.0618958", "1618677817",
]  # fmt: skip
level_rows = st.lists(st.lists(numberish | st.sampled_from(KNOWN_WORDS) | json_scalars, max_size=4), max_size=4)
shaped_values = (
    st.sampled_from(KNOWN_WORDS)
    | numberish
    | st.integers(-5, 2**63)
    | st.booleans()
    | st.none()
    | level_rows
    | st.lists(st.sampled_from(KNOWN_WORDS) | numberish, max_size=4)
)
shaped_objects = st.recursive(
    st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=3), shaped_values, max_size=10),
    lambda children: (
        st.dictionaries(st.sampled_from(KNOWN_KEYS), children | shaped_values, max_size=6)
        | st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=4,
)
shaped_arrays = st.tuples(  # Kraken's [channelID, data..., channelName, pair]
    json_scalars,
    st.lists(shaped_objects | level_rows, min_size=1, max_size=2),
    st.sampled_from(KNOWN_WORDS) | st.text(max_size=8),
    st.text(max_size=8),
).map(lambda t: [t[0], *t[1], t[2], t[3]])
shaped_json = (
    shaped_objects | shaped_arrays | st.builds(lambda s, d: {"stream": s, "data": d}, json_values, shaped_objects)
)

keys = st.none() | st.sampled_from(["BTCUSDT", "AAPL", ""]) | st.text(max_size=8)
receive_times = st.integers(0, 2**63 - 1)


# -- checks ------------------------------------------------------------------------------------


def _check_price(value: object, what: str) -> None:
    assert type(value) is float, f"{what} is {type(value).__name__}: {value!r}"
    assert math.isfinite(value) and value > 0, f"{what} must be finite and > 0, got {value!r}"


def _check_size(value: object, what: str) -> None:
    assert type(value) is float, f"{what} is {type(value).__name__}: {value!r}"
    assert math.isfinite(value) and value >= 0, f"{what} must be finite and >= 0, got {value!r}"


def _check_optional_int(value: object, what: str) -> None:
    assert value is None or type(value) is int, f"{what} must be an int or None, got {value!r}"


def check_output(raw: RawMessage, out: object) -> None:
    """``parse``'s contract: one well-formed dead letter, or sane market events."""
    assert type(out) is list
    if any(type(event) is DeadLetter for event in out):
        assert len(out) == 1, f"a dead letter mixed with other output: {out!r}"
        dead = out[0]
        assert dead.raw == raw.payload and type(dead.raw) is bytes
        assert isinstance(dead.reason, str) and dead.reason.strip(), f"empty dead-letter reason: {dead!r}"
        assert not is_decoder_error(dead), f"bad input taken for a decoder's bug: {dead.reason}"
        assert dead.feed == raw.feed and dead.receive_ts == raw.receive_ts
        return
    exchange = FEEDS[raw.feed].exchange
    for event in out:
        assert type(event) in MARKET_TYPES, f"unexpected output {event!r}"
        assert isinstance(event.instrument, str) and event.instrument.startswith(f"{exchange}:"), event
        assert type(event.receive_ts) is int and event.receive_ts == raw.receive_ts
        _check_optional_int(event.exchange_ts, "exchange_ts")
        if type(event) in (BookSnapshot, BookDelta):
            for side in ("bids", "asks"):
                for level in getattr(event, side):
                    assert type(level) is tuple and len(level) == 2, f"{side} level {level!r}"
                    _check_price(level[0], f"{side} price")
                    _check_size(level[1], f"{side} size")
        if type(event) is BookSnapshot:
            _check_optional_int(event.sequence, "sequence")
            _check_optional_int(event.max_depth, "max_depth")
        elif type(event) is BookDelta:
            for field in ("first_sequence", "sequence", "prev_sequence", "checksum"):
                _check_optional_int(getattr(event, field), field)
        elif type(event) is Trade:
            _check_price(event.price, "trade price")
            _check_size(event.size, "trade size")
            assert event.side in (-1, 0, 1)
            _check_optional_int(event.trade_id, "trade_id")
        else:
            _check_price(event.bid_price, "bid price")
            _check_price(event.ask_price, "ask price")
            _check_size(event.bid_size, "bid size")
            _check_size(event.ask_size, "ask size")
            _check_optional_int(event.sequence, "sequence")


def parse_checked(raw: RawMessage) -> list:
    out = parse(raw)  # must not raise
    check_output(raw, out)
    return out


# -- anything at all ---------------------------------------------------------------------------


@pytest.mark.parametrize("feed", FEED_NAMES)
@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=400), key=keys, receive_ts=receive_times)
def test_arbitrary_bytes_never_raise(feed, payload, key, receive_ts):
    parse_checked(RawMessage(feed, receive_ts, payload, key))


@pytest.mark.parametrize("feed", FEED_NAMES)
@PROPERTY_SETTINGS
@given(value=json_values, key=keys, receive_ts=receive_times)
def test_arbitrary_json_never_raises(feed, value, key, receive_ts):
    parse_checked(RawMessage(feed, receive_ts, json.dumps(value).encode(), key))


@pytest.mark.parametrize("feed", FEED_NAMES)
@PROPERTY_SETTINGS
@given(value=shaped_json, key=keys, receive_ts=receive_times)
def test_venue_shaped_json_never_raises(feed, value, key, receive_ts):
    """JSON built from the venues' own keys and words, so that it reaches deep into the decoders."""
    parse_checked(RawMessage(feed, receive_ts, json.dumps(value).encode(), key))


@settings(max_examples=100, deadline=None)
@given(feed=st.text(max_size=10).filter(lambda name: name not in FEEDS), payload=st.binary(max_size=40))
def test_unknown_feed_is_a_dead_letter(feed, payload):
    out = parse(RawMessage(feed, 1, payload))
    assert len(out) == 1 and type(out[0]) is DeadLetter
    assert out[0].raw == payload and out[0].reason == f"unknown feed {feed!r}"


# -- real messages, mutated --------------------------------------------------------------------


def _first(path: Path, test) -> RawMessage:
    return next(raw for raw in open_recording(path) if test(raw.payload))


def _lobster_row(path: Path, row: int) -> RawMessage:
    return next(raw for index, raw in enumerate(open_recording(path), 1) if index == row)


@cache
def real_samples(data: Path) -> dict[str, RawMessage]:
    """Real messages, read by the project's own recording readers (tested on their own elsewhere)."""
    spot = data / "binance" / "spot_btcusdt_20240808.gz"
    usdm = data / "binance" / "usdm_btcusdt_20240808.gz"
    coinbase = data / "coinbase" / "COINBASE.ws.28.0"
    kraken = data / "kraken" / "KRAKEN.ws.50.0"
    lobster = data / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    execution = next(raw for raw in open_recording(lobster) if raw.payload.split(b"\n")[0].split(b",")[2] == b"4")
    return {
        "binance depthUpdate": _first(spot, lambda p: b'"depthUpdate"' in p),
        "binance bookTicker": _first(spot, lambda p: b"@bookTicker" in p),
        "binance trade": _first(spot, lambda p: b'"e":"trade"' in p),
        "binance REST snapshot": _first(spot, lambda p: b"lastUpdateId" in p),
        "binance_usdm depthUpdate": _first(usdm, lambda p: b'"depthUpdate"' in p),
        "coinbase snapshot": _first(coinbase, lambda p: b'"snapshot"' in p),
        "coinbase l2update": _first(coinbase, lambda p: b'"l2update"' in p),
        "coinbase match": _first(coinbase, lambda p: b'"type":"match"' in p),
        "kraken snapshot": _first(kraken, lambda p: b'"as":' in p),
        "kraken update": _first(kraken, lambda p: b'"c":"' in p),
        "lobster first row": _lobster_row(lobster, 1),
        "lobster row 2": _lobster_row(lobster, 2),
        "lobster execution": execution,
    }


def standalone_samples(simulated: Path, folder: Path) -> dict[str, RawMessage]:
    """The same kinds of message without the real recordings: Binance spot from the simulated minute,
    the other venues (which the simulator does not play) hand-written."""
    spot = simulated / "binance_btcusdt.gz"
    kraken = kraken_messages()
    coinbase = coinbase_messages()
    lobster = list(open_recording(write_lobster_pair(folder, rows=30)))
    return {
        "binance depthUpdate": _first(spot, lambda p: b'"depthUpdate"' in p),
        "binance bookTicker": _first(spot, lambda p: b"@bookTicker" in p),
        "binance trade": _first(spot, lambda p: b'"e":"trade"' in p),
        "binance REST snapshot": _first(spot, lambda p: b"lastUpdateId" in p),
        "binance_usdm depthUpdate": binance_usdm_depth_update(),
        "coinbase snapshot": next(m for m in coinbase if b'"snapshot"' in m.payload),
        "coinbase l2update": next(m for m in coinbase if b'"l2update"' in m.payload),
        "coinbase match": next(m for m in coinbase if b'"match"' in m.payload),
        "kraken snapshot": kraken[0],
        "kraken update": kraken[1],
        "lobster first row": lobster[0],
        "lobster row 2": lobster[1],
        "lobster execution": next(m for m in lobster if m.payload.split(b"\n")[0].split(b",")[2] == b"4"),
    }


JSON_SAMPLES = [
    "binance depthUpdate",
    "binance bookTicker",
    "binance trade",
    "binance REST snapshot",
    "binance_usdm depthUpdate",
    "coinbase snapshot",
    "coinbase l2update",
    "coinbase match",
    "kraken snapshot",
    "kraken update",
]
LOBSTER_SAMPLES = ["lobster first row", "lobster row 2", "lobster execution"]
EXPECTED_TYPES = {
    "binance depthUpdate": [BookDelta],
    "binance bookTicker": [BestBidOffer],
    "binance trade": [Trade],
    "binance REST snapshot": [BookSnapshot],
    "binance_usdm depthUpdate": [BookDelta],
    "coinbase snapshot": [BookSnapshot],
    "coinbase l2update": [BookDelta],
    "coinbase match": [Trade],
    "kraken snapshot": [BookSnapshot],
    "kraken update": [BookDelta],
    "lobster first row": [BookSnapshot],
    "lobster row 2": [BookDelta],
    "lobster execution": [BookDelta, Trade],
}


@pytest.fixture(scope="module")
def samples(simulated_recording, tmp_path_factory) -> dict[str, RawMessage]:
    """Real messages where the real recordings are beside the project, else simulated and hand-written ones."""
    data = shared_data_dir()
    return (
        real_samples(data)
        if data.is_dir()
        else standalone_samples(simulated_recording, tmp_path_factory.mktemp("lobster"))
    )


@pytest.mark.parametrize("name", JSON_SAMPLES + LOBSTER_SAMPLES)
def test_real_samples_parse_cleanly(samples, name):
    """The unmutated messages are what the mutation tests think they are."""
    raw = samples[name]
    out = parse_checked(raw)
    assert [type(event) for event in out] == EXPECTED_TYPES[name], out


def _walk(data: st.DataObject, doc: object) -> list:
    """A random path into ``doc``: each step stops or descends into a random child, so that the
    top-level fields are hit as often as any one of a snapshot's thousands of levels."""
    path: list = []
    node = doc
    while isinstance(node, dict | list) and node:
        if path and data.draw(st.booleans(), label="stop here"):
            break
        if isinstance(node, dict):
            step = data.draw(st.sampled_from(list(node)), label="key")
        else:
            step = data.draw(st.integers(0, len(node) - 1), label="index")
        path.append(step)
        node = node[step]
    return path


def _edited(doc: object, path: list, value: object, delete: bool = False) -> object:
    """``doc`` with the value at ``path`` replaced (or deleted), copying only the containers on the path."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    if rest:
        copy[head] = _edited(doc[head], rest, value, delete)
    elif delete:
        del copy[head]
    else:
        copy[head] = value
    return copy


def _mutate_bytes(data: st.DataObject, payload: bytes) -> bytes:
    # "keep" weighs double: a truncated or flipped message is nearly always a dead letter, and the
    # values that survive parsing are what the property is about
    operation = data.draw(st.sampled_from(["keep", "keep", "truncate", "flip"]), label="byte mutation")
    if operation == "truncate":
        return payload[: data.draw(st.integers(0, max(len(payload) - 1, 0)), label="cut at")]
    if operation == "flip" and payload:
        at = data.draw(st.integers(0, len(payload) - 1), label="flip at")
        mask = data.draw(st.integers(1, 255), label="xor")
        return payload[:at] + bytes([payload[at] ^ mask]) + payload[at + 1 :]
    return payload


@pytest.mark.parametrize("name", JSON_SAMPLES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_real_json_messages(samples, name, data):
    raw = samples[name]
    doc = json.loads(raw.payload)
    for _ in range(data.draw(st.integers(0, 3), label="edits")):
        path = _walk(data, doc)
        if path and data.draw(st.booleans(), label="delete"):
            doc = _edited(doc, path, None, delete=True)
        else:
            doc = _edited(doc, path, data.draw(junk_values, label="new value"))
    payload = _mutate_bytes(data, json.dumps(doc, separators=(",", ":")).encode())
    parse_checked(raw._replace(payload=payload))


lobster_fields = (
    st.sampled_from([*NASTY_NUMBERS, "9999999999", "-9999999999", "٣", "+3", "0x10"])
    | st.integers(-(10**12), 10**12).map(str)
    | st.text(max_size=5)
)


def _mutate_lobster(data: st.DataObject, payload: bytes) -> bytes:
    lines = [line.split(",") for line in payload.decode("ascii").split("\n")]
    for _ in range(data.draw(st.integers(0, 3), label="edits")):
        line = lines[data.draw(st.integers(0, len(lines) - 1), label="line")]
        at = data.draw(st.integers(0, len(line) - 1), label="field")
        operation = data.draw(st.sampled_from(["replace", "replace", "delete", "insert"]), label="edit")
        if operation == "replace":
            line[at] = data.draw(lobster_fields, label="new field")
        elif operation == "delete" and len(line) > 1:
            del line[at]
        else:
            line.insert(at, data.draw(lobster_fields, label="new field"))
    text = "\n".join(",".join(line) for line in lines)
    return _mutate_bytes(data, text.encode("utf-8"))


@pytest.mark.parametrize("name", LOBSTER_SAMPLES)
@PROPERTY_SETTINGS
@given(data=st.data(), key=st.sampled_from(["AAPL", "", None]))
def test_mutated_lobster_records(samples, name, data, key):
    raw = samples[name]
    parse_checked(raw._replace(payload=_mutate_lobster(data, raw.payload), key=key))


# -- hand-checked reasons ----------------------------------------------------------------------


def _depth_update(bids: list, asks: list | None = None) -> bytes:
    data = {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 10, "u": 12, "b": bids, "a": asks or []}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()


SIZE_REASON = "size must be non-negative and finite, got "
PRICE_REASON = "price must be positive and finite, got "


def _book_ticker(price: str = "61837.63", size: str = "3.7") -> bytes:
    data = {"u": 400900217, "s": "BNBUSDT", "b": price, "B": size, "a": "61837.64", "A": "1.5"}
    return json.dumps({"stream": "bnbusdt@bookTicker", "data": data}).encode()


def _dead_reason(feed: str, payload: bytes, key: str | None = None) -> str:
    out = parse(RawMessage(feed, 7, payload, key))
    assert len(out) == 1 and type(out[0]) is DeadLetter, out
    assert out[0].raw == payload and out[0].receive_ts == 7 and out[0].feed == feed
    return out[0].reason


def test_valid_depth_update_parses():
    (delta,) = parse(RawMessage("binance", 7, _depth_update([["100.5", "2"]], [["101", "0"]])))
    assert delta == BookDelta("binance:BTCUSDT", 1723161255208_000_000, 7, 10, 12, None, [(100.5, 2.0)], [(101.0, 0.0)])


def test_negative_size_is_a_dead_letter():
    # the reason names the value, as sent or as parsed (the level parser checks the parsed floats)
    assert _dead_reason("binance", _depth_update([["100.5", "-1"]])).startswith(SIZE_REASON)
    assert "size must be non-negative" in _dead_reason(
        "coinbase",
        b'{"type":"l2update","product_id":"BTC-USD","changes":[["buy","100","-0.5"]],"time":"2021-04-17T16:43:37Z"}',
    )
    assert "size must be non-negative" in _dead_reason(
        "kraken", b'[1,{"b":[["100.0","-2.0","1618678133.1"]],"c":"123"},"book-10","XBT/USD"]'
    )


@pytest.mark.parametrize("nan", ["NaN", "nan", "-NaN", "inf", "1e999"])
def test_non_finite_size_is_a_dead_letter(nan):
    assert _dead_reason("binance", _depth_update([["100.5", nan]])).startswith(SIZE_REASON)
    assert _dead_reason("binance", _book_ticker(size=nan)) == f"size must be non-negative and finite, got {nan!r}"


@pytest.mark.parametrize("bad", ["NaN", "0", "-1", "1e999"])
def test_non_positive_or_non_finite_price_is_a_dead_letter(bad):
    assert _dead_reason("binance", _depth_update([[bad, "1"]])).startswith(PRICE_REASON)
    assert _dead_reason("binance", _book_ticker(price=bad)) == f"price must be positive and finite, got {bad!r}"


@pytest.mark.parametrize("feed", FEED_NAMES)
@pytest.mark.parametrize("payload", [b"", b"{", b'{"e": "trade",}', b"[1, 2", b"NaN", b"\xff\xfe", b'{"a": 1e999}'])
def test_malformed_json_is_a_dead_letter(feed, payload):
    if feed == "lobster":
        assert _dead_reason(feed, payload, "AAPL").startswith("not a LOBSTER record")
    else:
        assert _dead_reason(feed, payload, "BTCUSDT").startswith("malformed JSON")


def test_unknown_binance_event_type_is_a_dead_letter():
    payload = b'{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT"}}'
    reason = _dead_reason("binance", payload)
    assert reason == "unknown Binance event type 'kline'"
    assert "'kline'" in _dead_reason("binance_usdm", payload)


def test_binance_subscription_answer_is_quiet():
    assert parse(RawMessage("binance", 7, b'{"result":null,"id":1}')) == []


def test_binance_snapshot_without_key_is_a_dead_letter():
    payload = b'{"lastUpdateId":50093239218,"bids":[["61837.63","3.7"]],"asks":[["61837.64","1.5"]]}'
    for key in (None, ""):
        assert _dead_reason("binance", payload, key) == "depth snapshot names no symbol and the transport gave none"
    (snapshot,) = parse(RawMessage("binance", 7, payload, "BTCUSDT"))
    assert snapshot == BookSnapshot("binance:BTCUSDT", None, 7, 50093239218, [(61837.63, 3.7)], [(61837.64, 1.5)])


def test_missing_field_is_a_dead_letter():
    payload = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":5,"p":"1","q":"1","m":true}}'
    assert _dead_reason("binance", payload) == "missing field 'T'"


# -- non-positive LOBSTER prices --------------------------------------------------------------------------------

_LOBSTER_BOOK = b",".join([b"5859400,200,5853300,18"] * 10)


@pytest.mark.parametrize(
    "payload",
    [
        # an execution whose order price is negative -> Trade(price=-0.01)
        b"2,34200.1,4,1,5,-100,1\n" + _LOBSTER_BOOK + b"\n" + _LOBSTER_BOOK,
        # an execution at price 0 -> Trade(price=0.0)
        b"2,34200.1,4,1,5,0,1\n" + _LOBSTER_BOOK + b"\n" + _LOBSTER_BOOK,
        # a first row whose book has an ask at 0 and a bid at -5 -> snapshot levels (0.0, 200.0), (-0.0005, 18.0)
        b"1,34200.1,1,1,5,100,1\n\n" + b",".join([b"0,200,-5,18"] * 10),
    ],
    ids=["negative trade price", "zero trade price", "non-positive book prices"],
)
def test_lobster_non_positive_price_is_a_dead_letter(payload):
    parse_checked(RawMessage("lobster", 7, payload, "AAPL"))
