"""A block of native recording lines made into messages in one pass (the compiled one and the Python one)
gives what reading it line by line gives, and a recording reads the same with either."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dataflows.recordings as recordings
from dataflows.recordings import _native_line, open_recording, python_native_messages
from quantumflow.events import RawMessage

compiled = pytest.importorskip("dataflows._native_lines", reason="the compiled pass was not built").native_messages
PASSES = {"compiled": compiled, "python": python_native_messages}
FEED, KEY = "binance", None

digits = st.text("0123456789", min_size=0, max_size=21).map(str.encode)
text = st.binary(max_size=12).map(lambda data: data.replace(b"\n", b""))
native = st.builds(lambda ts, payload: ts + b" " + payload, digits, text | st.just(b'{"e":"x"} ok'))
line = native | text | st.sampled_from([b"", b" ", b"1", b"12 ", b"1" * 19 + b" x", b"1" * 20 + b" x", b"\r", b"1 \r"])


def plain(line: bytes) -> bool:
    """A line the one-pass readers make a message of: a native line with no carriage return."""
    try:
        _native_line(line)
    except ValueError:
        return False
    return b"\r" not in line


def by_pass(native_messages, block: bytes, limit: int) -> tuple[list[RawMessage], int]:
    """The messages the recording reader takes from ``native_messages`` (``limit`` at a time), and the
    offset of the line it then reads the rest of the block from, line by line (-1: none)."""
    made: list[RawMessage] = []
    start = 0
    while start >= 0:
        messages, start = native_messages(block, start, limit, FEED, KEY, RawMessage)
        if not messages:
            break
        made += messages
    return made, start


@settings(max_examples=400, deadline=None)
@given(st.lists(line, min_size=1, max_size=8), st.integers(1, 4))
def test_a_block_reads_as_its_lines_read_one_by_one(lines, limit):
    block = b"\n".join(lines)
    first_not_plain = next((at for at, one in enumerate(lines) if not plain(one)), len(lines))
    offset = sum(len(one) + 1 for one in lines[:first_not_plain])
    for name, native_messages in PASSES.items():
        made, rest = by_pass(native_messages, block, limit)
        assert all(type(message) is RawMessage for message in made), name
        got = [(message.feed, message.receive_ts, message.payload, message.key) for message in made]
        if name == "python" and first_not_plain < len(lines):  # all lines or none
            assert (got, rest) == ([], 0), name
            continue
        expected = [(FEED, *_native_line(one), KEY) for one in lines[:first_not_plain]]
        assert got == expected, name
        assert rest == (-1 if first_not_plain == len(lines) else offset), name


def test_a_line_that_is_not_plain_stops_the_compiled_pass_there():
    good = [b"1 {}", b"22 {} {}", b"333 "]
    for bad in (b"", b"x 1", b"1" * 20 + b" {}", b" 1 {}", b"12", b"4 {}\r"):
        for at in range(len(good) + 1):
            block = b"\n".join([*good[:at], bad, *good[at:]])
            made, rest = by_pass(compiled, block, 2)
            assert [(m.receive_ts, m.payload) for m in made] == [_native_line(one) for one in good[:at]]
            assert block[rest:].startswith(bad)
            assert python_native_messages(block, 0, 2, FEED, KEY, RawMessage) == ([], 0)


def test_receive_times_of_every_length_read_as_int_reads_them():
    for count in range(1, 20):
        for value in (b"9" * count, b"0" * count, b"1" + b"0" * (count - 1), b"0" * (count - 1) + b"7"):
            (message,), rest = compiled(value + b" x", 0, 10, FEED, KEY, RawMessage)
            assert (message.receive_ts, rest) == (int(value), -1)
    assert compiled(b"9" * 20 + b" x", 0, 10, FEED, KEY, RawMessage) == ([], 0)


def test_a_message_type_is_one_tuple_new_makes():
    import time

    for native_messages in PASSES.values():
        with pytest.raises(TypeError, match="not safe"):
            native_messages(b"1 a", 0, 5, FEED, KEY, time.struct_time)  # a struct sequence has fields of its own


def test_a_recording_reads_the_same_with_either_pass(tmp_path, monkeypatch):
    lines = [b'%d {"n":%d}' % (1_700_000_000_000_000_000 + i, i) for i in range(3000)]
    lines[1200] = b"not a line"
    lines[2000] = b"12 {}\r"
    lines.insert(2500, b"")
    path = tmp_path / "binance_x.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))

    def read() -> list:
        recording = open_recording(path, "binance")
        return [*recording, recording.skipped_lines]

    with_compiled = read()
    monkeypatch.setattr(recordings, "native_messages", python_native_messages)
    assert read() == with_compiled
    assert len(with_compiled) == 3000 + 1  # a dead letter for the bad line, the empty line skipped, and the count


def test_every_native_recording_reads_the_same_with_either_pass(shared_data, monkeypatch):
    paths = sorted(path for path in shared_data.rglob("*.gz") if open_recording(path).kind == "native")
    assert paths
    with_compiled = {path: list(open_recording(path)) for path in paths}
    monkeypatch.setattr(recordings, "native_messages", python_native_messages)
    for path in paths:
        assert list(open_recording(path)) == with_compiled[path], path
