"""Recordings: files of raw exchange messages, read back as the log of record.

Three formats, told apart by their content (or names, for LOBSTER):

* **native** (what ``../shared/data/binance/*.gz`` is, and what QuantumFlow writes): gzip or
  plain text, one message a line, ``<local receive time, ns since epoch> <raw message>``. The
  feed is recognised from the messages (Binance spot / USD-M / COIN-M, Coinbase Advanced Trade).
* **cryptofeed captures**: ``<epoch seconds>: <raw message>`` lines; lines starting with
  ``wss://`` record what the client sent (``<-``) or a connect (``<->``) and are skipped. The
  feed is recognised from the websocket address.
* **LOBSTER** ``TICKER_DATE_START_END_message_N.csv`` with its ``..._orderbook_N.csv``: times
  are seconds after midnight in New York on DATE. The two files must have as many rows.

A bad line never stops a replay: a line that is not a line of its format, or the partial last line
of a gzip file cut off mid-write (a recorder killed), is yielded as a ``DeadLetter`` with its bytes
and the reason, and reading goes on (a cut file ends there, with a warning naming the file and the
byte offsets of the cut). A dead letter carries the receive time of the line before it, so that
merging files by receive time keeps it in place. The books notice what such a line took with it:
a lost delta is a sequence gap, which the sync turns into a resync.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from dataflows.gunzip import ERRORS as GZIP_ERRORS
from dataflows.gunzip import GzipReader
from operators.feeds import get_feed
from operators.feeds.common import decimal_seconds_to_ns
from quantumflow.events import DeadLetter, RawMessage

SNIFF_LINES = 2_000
READ_BYTES = 1 << 20
_WEBSOCKET_FEEDS = {
    "ws-feed.pro.coinbase.com": "coinbase",
    "ws-feed.exchange.coinbase.com": "coinbase",
    "advanced-trade-ws.coinbase.com": "coinbase_advanced",
    "ws.kraken.com": "kraken",
}
_LOBSTER_NAME = re.compile(
    r"^(?P<ticker>[A-Za-z.]+)_(?P<day>\d{4}-\d{2}-\d{2})_\d+_\d+_(message|orderbook)_(?P<levels>\d+)\.csv$"
)
_NEW_YORK = ZoneInfo("America/New_York")
_NATIVE_LINE = re.compile(rb"^\d+ ")
_CRYPTOFEED_LINE = re.compile(rb"^(wss://|\d+(\.\d+)?: )")  # the first line of a format tells it (bad ones do not)
_MAX_NS_DIGITS = 19  # receive times fit a signed 64-bit integer of nanoseconds
# One match a line: a native line's (receive time, message), or (b"", b"") for any other line
_NATIVE_LINES = re.compile(rb"^(?:(\d{1,%d}) (.*)|.*)$" % _MAX_NS_DIGITS, re.MULTILINE)
_NOT_NATIVE = (b"", b"")
CUT_OFF = "recording cut off"
# The compiled pass makes messages a few hundred at a time, not a block's thousands, so that they are not
# all alive at once (the garbage collector would move them to its oldest generation, to be scanned again).
_MESSAGES_AT_ONCE = 256
_new = tuple.__new__  # what a NamedTuple's constructor does, without its Python frame

log = logging.getLogger(__name__)


class RecordingError(ValueError):
    """A recording that cannot be read: missing, or in no format QuantumFlow knows."""


class Recording:
    """The raw messages of one recorded file, with how far reading has got (for progress)."""

    def __init__(self, path: Path, feed: str, symbol: str | None, kind: str) -> None:
        self.path = path
        self.feed = feed
        self.symbol = symbol
        self.kind = kind
        self.size = path.stat().st_size
        self.skipped_lines = 0  # client-sent and connect lines of cryptofeed captures
        self._file: io.BufferedReader | None = None
        if kind == "lobster":
            _check_lobster_rows(*_lobster_pair(path))

    @property
    def bytes_read(self) -> int:
        return self._file.tell() if self._file is not None and not self._file.closed else self.size

    def __iter__(self) -> Iterator[RawMessage | DeadLetter]:
        if self.kind == "lobster":
            yield from self._lobster()
            return
        with open(self.path, "rb") as self._file:
            lines = _Lines(self._file, _is_gzip(self.path))
            parse_line = _native_line if self.kind == "native" else _cryptofeed_line
            feed, key = self.feed, self.symbol
            receive_ts = 0
            for block in lines.blocks():
                if self.kind == "native":
                    start = 0
                    while start >= 0:
                        messages, start = native_messages(block, start, _MESSAGES_AT_ONCE, feed, key, RawMessage)
                        if not messages:  # at a line that is not plain: the rest is read line by line
                            block = block[start:]
                            break
                        yield from messages
                        receive_ts = messages[-1].receive_ts
                    else:
                        continue
                for line in block.split(b"\n"):
                    if line.startswith(b"wss://") or not line.strip():
                        self.skipped_lines += 1
                        continue
                    try:
                        receive_ts, payload = parse_line(line)
                    except ValueError as error:
                        yield DeadLetter(feed, None, receive_ts, line, f"not a {self.kind} recording line: {error}")
                        continue
                    yield RawMessage(feed, receive_ts, payload, key)
            if lines.cut is not None:
                log.warning("%s: %s", self.path, lines.cut)
                yield DeadLetter(feed, None, receive_ts, lines.tail, f"{CUT_OFF}: {lines.cut}")

    def _lobster(self) -> Iterator[RawMessage | DeadLetter]:
        messages, books = _lobster_pair(self.path)
        midnight = _midnight_ns(self.path)
        with open(messages, "rb") as self._file, open(books, "rb") as book_file:
            before = b""
            receive_ts = midnight
            for row, (message, after) in enumerate(zip(self._file, book_file, strict=True), 1):
                message, after = message.strip(), after.strip()
                try:
                    receive_ts = midnight + decimal_seconds_to_ns(message.partition(b",")[0].decode())
                except ValueError as error:  # the row is lost; the next one's number shows the gap
                    yield DeadLetter("lobster", None, receive_ts, message, f"not a LOBSTER message line: {error}")
                else:
                    yield RawMessage(
                        "lobster", receive_ts, b"%d,%s\n%s\n%s" % (row, message, before, after), self.symbol
                    )
                before = after


class _Lines:
    """The lines of a file, gzip or plain, without their line ends. A gzip stream that ends early
    or goes bad stops them there: ``cut`` then says where, and ``tail`` holds the partial line."""

    def __init__(self, file: io.BufferedReader, compressed: bool) -> None:
        self._file = file
        self._read = GzipReader(file).read if compressed else file.read1
        self.cut: str | None = None
        self.tail = b""

    def __iter__(self) -> Iterator[bytes]:
        for block in self.blocks():
            yield from block.split(b"\n")

    def blocks(self) -> Iterator[bytes]:
        """The lines as they are read: each block one or more whole lines, joined by line ends."""
        tail = b""
        uncompressed = 0
        while True:
            try:
                chunk = self._read(READ_BYTES)
            except GZIP_ERRORS as error:
                whole = uncompressed - len(tail)
                self.cut = (
                    f"the gzip stream breaks off at compressed byte {self._file.tell():,} ({error}); "
                    f"read up to the last whole line, which ends at uncompressed byte {whole:,}"
                    + (f", then {len(tail):,} bytes of a partial line" if tail else "")
                )
                self.tail = tail
                return
            if not chunk:
                break
            uncompressed += len(chunk)
            if tail:
                chunk = tail + chunk
            end = chunk.rfind(b"\n")
            if end < 0:
                tail = chunk
                continue
            tail = chunk[end + 1 :]
            yield chunk[:end]
        if tail:
            yield tail  # a last line without a line end


def open_recording(path: str | Path, feed: str | None = None) -> Recording:
    """Open a recording, recognising its format and feed (``feed`` overrides the guess)."""
    path = Path(path)
    if path.is_dir():
        raise RecordingError(f"{path} is a folder: this takes one recording file")
    if not path.is_file():
        raise RecordingError(f"no such recording file: {path}")
    if feed is not None:
        get_feed(feed)  # a clear error for an unknown name
    lobster = _LOBSTER_NAME.match(path.name)
    if lobster:
        return Recording(path, "lobster", lobster["ticker"], "lobster")
    head = _head_lines(path)
    first = next((line for line in head if _CRYPTOFEED_LINE.match(line) or _NATIVE_LINE.match(line)), b"")
    if _CRYPTOFEED_LINE.match(first):
        return Recording(path, feed or _cryptofeed_feed(path, head), None, "cryptofeed")
    if _NATIVE_LINE.match(first):
        sniffed_feed, symbol = _sniff_native(head)
        if feed is None and sniffed_feed is None:
            raise RecordingError(f"{path}: cannot tell which feed this recording holds; pass --feed")
        return Recording(path, feed or sniffed_feed, symbol, "native")
    raise RecordingError(
        f"{path}: not a recording QuantumFlow knows "
        "(native '<ns> <message>' lines, a cryptofeed capture, or a LOBSTER pair)"
    )


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(2) == b"\x1f\x8b"


def _head_lines(path: Path) -> list[bytes]:
    try:
        with open(path, "rb") as raw:
            return [line for _, line in zip(range(SNIFF_LINES), _Lines(raw, _is_gzip(path)), strict=False)]
    except OSError as error:
        raise RecordingError(f"{path}: unreadable: {error}") from error


def _native_line(line: bytes) -> tuple[int, bytes]:
    receive_ts, space, payload = line.rstrip(b"\r").partition(b" ")
    if not space or not receive_ts.isdigit() or len(receive_ts) > _MAX_NS_DIGITS:
        raise ValueError("expected '<receive time, ns since epoch> <message>'")
    return int(receive_ts), payload


def python_native_messages(
    block: bytes, start: int, limit: int, feed: str, key: str | None, message_type: type[RawMessage]
) -> tuple[list[RawMessage], int]:
    """The messages of the lines of ``block`` from offset ``start``, ``message_type(feed, receive_ts, payload,
    key)`` each, and the offset of the first line not made a message (-1: none left): all of them when
    every line is a plain native line (no carriage return), else none.

    One regular-expression pass instead of a split, a partition and checks per line, with the same result.
    Other lines are told by their empty match, not by counting line ends (a slower pass over the bytes).
    ``dataflows/_native_lines.c`` does the same in C, ``limit`` messages at a time and up to the first line
    that is not plain."""
    rest = block[start:]
    if b"\r" in rest:
        return [], start
    lines = _NATIVE_LINES.findall(rest)
    if _NOT_NATIVE in lines:
        return [], start
    return [_new(message_type, (feed, int(receive_ts), payload, key)) for receive_ts, payload in lines], -1


try:  # the same in C (dataflows/_native_lines.c), which the install builds where it finds a C compiler
    from dataflows._native_lines import native_messages
except ImportError:
    native_messages = python_native_messages


def _cryptofeed_line(line: bytes) -> tuple[int, bytes]:
    seconds, separator, payload = line.rstrip(b"\r").partition(b": ")
    if not separator:
        raise ValueError("expected '<receive time, s since epoch>: <message>'")
    return decimal_seconds_to_ns(seconds.decode()), payload


def _cryptofeed_feed(path: Path, head: list[bytes]) -> str:
    for line in head:
        if line.startswith(b"wss://"):
            host = line.split(b"/")[2].split(b" ")[0].decode()
            if host in _WEBSOCKET_FEEDS:
                return _WEBSOCKET_FEEDS[host]
    raise RecordingError(f"{path}: cannot tell the feed of this cryptofeed capture; pass --feed")


def _sniff_native(head: list[bytes]) -> tuple[str | None, str | None]:
    """The feed and symbol of a native recording, from its first messages."""
    feed = symbol = None
    for line in head:
        try:
            message = orjson.loads(line.split(b" ", 1)[1])
        except (IndexError, orjson.JSONDecodeError):
            continue
        if type(message) is not dict:
            continue
        if message.get("channel") == "l2_data":
            events = message.get("events") or [{}]
            return "coinbase_advanced", events[0].get("product_id")
        if message.get("channel") == "market_trades":
            trades = (message.get("events") or [{}])[0].get("trades") or [{}]
            return "coinbase_advanced", trades[0].get("product_id")
        data = message.get("data")
        if type(data) is dict and "s" in data:
            symbol = symbol or data["s"]
            if data.get("e") == "depthUpdate":
                futures = "pu" in data
                feed = ("binance_coinm" if "_" in data["s"] else "binance_usdm") if futures else "binance"
                return feed, symbol
    return feed, symbol


def _lobster_pair(path: Path) -> tuple[Path, Path]:
    messages = path.with_name(path.name.replace("_orderbook_", "_message_"))
    books = path.with_name(path.name.replace("_message_", "_orderbook_"))
    for part in (messages, books):
        if not part.is_file():
            raise RecordingError(f"{path}: the LOBSTER pair needs {part.name} beside it")
    return messages, books


def _check_lobster_rows(messages: Path, books: Path) -> None:
    counts = [_count_lines(part) for part in (messages, books)]
    if counts[0] != counts[1]:
        raise RecordingError(
            f"{messages}: the LOBSTER pair differs in length: {messages.name} has {counts[0]:,} rows, "
            f"{books.name} has {counts[1]:,} (each message row needs the orderbook row after it)"
        )


def _count_lines(path: Path) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as file:
        while chunk := file.read(READ_BYTES):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _midnight_ns(path: Path) -> int:
    day = date.fromisoformat(_LOBSTER_NAME.match(path.name)["day"])
    return int(datetime.combine(day, time(), _NEW_YORK).timestamp()) * 1_000_000_000
