"""The raw log in Kafka: how a raw message is written as a Kafka record, and read back.

- **topic**: one per feed, ``raw.<feed>`` (``raw.binance``, ``raw.coinbase_advanced``, ...), the
  feed being one of ``operators.feeds.FEEDS``; the topic is how a reader knows the wire protocol.
- **key**: the symbol of the instrument the message belongs to (``BTCUSDT``, ``BTC-USD``), as
  its parser names it; a message that names none (a Binance REST depth snapshot) takes its
  recording's symbol, which is the same one. All of an instrument's messages thus share a key,
  hence a partition, in the order they were published: per-instrument order is the log's
  order, even for an instrument whose messages came over several connections (Coinbase's
  ``level2`` and ``market_trades``). That is what makes a Kafka run's rows equal a file
  replay's: each instrument numbers its events (``seq``) in the order it meets them, and that
  order is the same in both. Messages without market data go keyed by their recording's symbol.
- **value**: the message's bytes exactly as received.
- **timestamp**: the local receive time in milliseconds (CreateTime), for Kafka's own tools.
- **headers**: ``receive_ns``, the receive time in nanoseconds as ASCII digits (the exact value
  the flow uses; a record without it falls back to its timestamp); ``publish_ns``, the wall time
  it was handed to Kafka (the flow measures its latency from it); ``dead_letter``, the reason,
  for a line of a recording that was a dead letter already (its bytes are the line), so that it
  stays one, with the same reason, when read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from operators.feeds import FEEDS, parse
from quantumflow.events import DeadLetter, RawMessage, split_instrument

TOPIC_PREFIX = "raw."
RECEIVE_NS = "receive_ns"
PUBLISH_NS = "publish_ns"
DEAD_LETTER = "dead_letter"


class Record(NamedTuple):
    """A Kafka record of the raw log, as produced."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: list[tuple[str, bytes]]


def topic_of(feed: str) -> str:
    return TOPIC_PREFIX + feed


def feed_of(topic: str) -> str | None:
    """The feed a raw topic carries; None for a topic that is not ``raw.<known feed>``."""
    feed = topic.removeprefix(TOPIC_PREFIX)
    return feed if topic.startswith(TOPIC_PREFIX) and feed in FEEDS else None


def symbol_of(raw: RawMessage) -> str | None:
    """The symbol of the instrument a message belongs to: its first event's, else the transport's key."""
    for event in parse(raw):
        if type(event) is not DeadLetter:
            return split_instrument(event.instrument)[1]
    return raw.key


def to_record(message: RawMessage | DeadLetter, publish_ns: int) -> Record:
    """A raw message (or a recording's bad line) as the record that carries it."""
    if type(message) is DeadLetter:
        key = None if message.instrument is None else split_instrument(message.instrument)[1]
        value, extra = message.raw, [(DEAD_LETTER, message.reason.encode())]
    else:
        key, value, extra = symbol_of(message), message.payload, []
    headers = [(RECEIVE_NS, b"%d" % message.receive_ts), (PUBLISH_NS, b"%d" % publish_ns), *extra]
    return Record(
        topic_of(message.feed),
        None if key is None else key.encode(),
        value,
        message.receive_ts // 1_000_000,
        headers,
    )


def where(topic: str, partition: int, offset: int) -> str:
    """A record's place in the log, as dead letters name it."""
    return f"Kafka {topic} partition {partition} offset {offset}"


class LogPlaces(Sequence[str]):
    """Where each message of a batch from one partition was in the log: the offsets are kept, and a place
    is named only when asked for (by a dead letter), off the per-message path."""

    __slots__ = ("offsets", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition
        self.offsets: list[int] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return where(self.topic, self.partition, self.offsets[index])


def located(letter: DeadLetter, place: str) -> DeadLetter:
    """A dead letter whose reason ends with where its message was in the log."""
    return letter._replace(reason=f"{letter.reason} ({place})")


def from_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    headers: list[tuple[str, bytes]] | None,
) -> RawMessage | DeadLetter:
    """A record read back: the raw message it carries, or a dead letter naming where it is."""
    feed = topic.removeprefix(TOPIC_PREFIX)
    value = value or b""
    fields = dict(headers or ())
    receive_ns = fields.get(RECEIVE_NS)
    if receive_ns is None:
        receive_ts = timestamp_ms * 1_000_000  # written by another producer: the millisecond timestamp
    elif receive_ns.isdigit():
        receive_ts = int(receive_ns)
    else:
        letter = DeadLetter(feed, None, timestamp_ms * 1_000_000, value, f"bad {RECEIVE_NS} header {receive_ns!r}")
        return located(letter, where(topic, partition, offset))
    reason = fields.get(DEAD_LETTER)
    if reason is not None:
        letter = DeadLetter(feed, None, receive_ts, value, reason.decode(errors="replace"))
        return located(letter, where(topic, partition, offset))
    try:
        symbol = None if key is None else key.decode()
    except UnicodeDecodeError:
        letter = DeadLetter(feed, None, receive_ts, value, f"key is not UTF-8: {key!r}")
        return located(letter, where(topic, partition, offset))
    return RawMessage(feed, receive_ts, value, symbol)


def publish_ns(headers: list[tuple[str, bytes]] | None) -> int | None:
    """When a record was handed to Kafka (wall-clock ns), if its producer said."""
    for name, value in headers or ():
        if name == PUBLISH_NS and value.isdigit():
            return int(value)
    return None
