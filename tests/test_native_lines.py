"""A block of native recording lines read in one pass gives what reading it line by line gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.recordings import _native_line, _native_lines

digits = st.text("0123456789", min_size=0, max_size=21).map(str.encode)
text = st.binary(max_size=12).map(lambda data: data.replace(b"\n", b""))
native = st.builds(lambda ts, payload: ts + b" " + payload, digits, text | st.just(b'{"e":"x"} ok'))
line = native | text | st.sampled_from([b"", b" ", b"1", b"12 ", b"1" * 19 + b" x", b"1" * 20 + b" x", b"\r", b"1 \r"])


def _line_by_line(block: bytes) -> list[tuple[int, bytes]] | None:
    if b"\r" in block:
        return None
    try:
        return [_native_line(line) for line in block.split(b"\n")]
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(line, min_size=1, max_size=8))
def test_a_block_reads_as_its_lines_read_one_by_one(lines):
    block = b"\n".join(lines)
    expected = _line_by_line(block)
    got = _native_lines(block)
    assert (None if got is None else [(int(ts), payload) for ts, payload in got]) == expected


def test_one_bad_line_anywhere_sends_the_block_line_by_line():
    good = [b"1 {}", b"22 {} {}", b"333 "]
    assert _native_lines(b"\n".join(good)) == [(b"1", b"{}"), (b"22", b"{} {}"), (b"333", b"")]
    for bad in (b"", b"x 1", b"1" * 20 + b" {}", b" 1 {}", b"12"):
        for at in range(len(good) + 1):
            assert _native_lines(b"\n".join([*good[:at], bad, *good[at:]])) is None
