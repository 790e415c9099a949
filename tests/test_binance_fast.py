"""The Binance decoder's fast path against its plain path: the same events, bit for bit, on every
real Binance message and on hypothesis-made messages, right and wrong (wrong ones must reach the plain
path, so that their dead letters say the same)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.recordings import open_recording
from operators.feeds import FEEDS
from quantumflow.events import RawMessage


def outcome(decode, raw: RawMessage) -> str:
    """What a decoder makes of a message, floats bit for bit (``repr``), errors by type and text."""
    try:
        return repr(decode(raw))
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def test_fast_path_equals_plain_path_on_every_real_binance_message(shared_data):
    taken = 0
    for path in sorted((shared_data / "binance").glob("*.gz")):
        for raw in open_recording(path):
            decode = FEEDS[raw.feed].decode
            assert outcome(decode, raw) == outcome(decode.plain, raw), raw.payload
            taken += decode.fast(raw) is not None
    assert taken > 250_000  # all but the snapshots


numbers = st.sampled_from(["61800.20", "0.000", "-0.0", "1e5", "1E-3", "nan", "inf", "-1", "0", " 1.5", "1_0", "01.5"])
texts = numbers | st.text(max_size=4) | st.from_regex(r"\d{1,6}(\.\d{1,9})?", fullmatch=True)
scalars = (
    texts
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.just([])
    | st.just({})
)
decimals = st.from_regex(r"[1-9]\d{0,5}(\.\d{1,9})?", fullmatch=True) | st.sampled_from(["0.000", "0", "1e5"])
levels = st.lists(st.tuples(decimals, decimals).map(list), max_size=4)
wrong_levels = st.lists(
    st.lists(texts | st.floats(0.001, 1e6) | st.integers(0, 10), min_size=1, max_size=3), max_size=4
)
ids = st.integers(0, 2**63 + 5) | scalars


def field(name: str, valid, wrong=scalars):
    """A field: mostly right (so that whole messages often are), sometimes wrong or missing."""
    choice = st.integers(0, 29).flatmap(lambda k: wrong if k == 0 else st.just(...) if k == 1 else valid)
    return choice.map(lambda value: (name, value))


def message(*fields):
    return st.tuples(*fields).map(lambda pairs: {name: value for name, value in pairs if value is not ...})


depth = message(
    field("e", st.just("depthUpdate")),
    field("E", st.integers(0, 2**45)),
    field("T", st.integers(0, 2**45)),
    field("s", st.sampled_from(["BTCUSDT", "ETHUSDT", ""])),
    field("U", st.integers(0, 100)),
    field("u", st.integers(0, 100), ids),
    field("pu", st.integers(0, 100) | st.none(), ids),
    field("b", levels, wrong_levels | scalars),
    field("a", levels, wrong_levels | scalars),
)
ticker = message(
    field("e", st.just("bookTicker") | st.just(...)),
    field("u", st.integers(0, 2**40), ids),
    field("s", st.just("BTCUSDT")),
    field("b", decimals, texts | scalars),
    field("B", decimals, texts | scalars),
    field("a", decimals, texts | scalars),
    field("A", decimals, texts | scalars),
    field("E", st.integers(0, 2**45) | st.none()),
    field("T", st.integers(0, 2**45) | st.none()),
)
trade = st.sampled_from([("trade", "t"), ("aggTrade", "a"), ("kline", "t")]).flatmap(
    lambda kind: message(
        field("e", st.just(kind[0])),
        field("E", st.integers(0, 2**45)),
        field("T", st.integers(0, 2**45)),
        field("s", st.just("BTCUSDT")),
        field(kind[1], st.integers(0, 2**40), ids),
        field("p", decimals, texts | scalars),
        field("q", decimals, texts | scalars),
        field("m", st.booleans()),
        field("X", st.just("MARKET")),
        field("M", st.booleans()),
        field("zz", st.just(...), scalars),  # a field Binance does not send
    )
)
envelopes = st.tuples(
    depth | ticker | trade, st.sampled_from(["stream", "stream", "stream", "stream", "bare", "other"])
).map(
    lambda pair: (
        {"stream": "btcusdt@x", "data": pair[0]}
        if pair[1] == "stream"
        else pair[0]
        if pair[1] == "bare"
        else {"stream": 1, "data": pair[0]}
    )
)


@settings(max_examples=600, deadline=None)
@given(
    value=envelopes,
    feed=st.sampled_from(["binance", "binance_usdm", "binance_coinm"]),
    spoil=st.sampled_from([b"", b"", b"", b"x", b"\xff", b'"\\ud800"', b"1e400"]),
)
def test_fast_path_equals_plain_path_on_made_up_messages(value, feed, spoil):
    try:
        payload = orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer past 64 bits: written by hand, as a venue could
        payload = repr(value).replace("'", '"').replace("True", "true").replace("False", "false")
        payload = payload.replace("None", "null").encode()
    if spoil:  # bytes orjson rejects, in a field the fast path has no struct field for, or at the end
        payload = payload.replace(b"{", b'{"zz":' + spoil + b",", 1) if spoil != b"x" else payload + spoil
    raw = RawMessage(feed, 1, payload, "BTCUSDT")
    decode = FEEDS[feed].decode
    assert outcome(decode, raw) == outcome(decode.plain, raw)
