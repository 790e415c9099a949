"""The recordings' gzip reader reads every file as Python's gzip does: the same pieces, then the same error
at the same compressed byte, on whole, multi-member, padded, cut and corrupted files."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zlib

import pytest

from dataflows.gunzip import ERRORS, GzipReader

LINES = b"".join(b'%d {"u":%d,"b":[["%d.1","0.5"]]}\n' % (i, i * 7, 60_000 + i % 97) for i in range(40_000))
WHOLE = gzip.compress(LINES, compresslevel=1)


def _with_header_fields(data: bytes) -> bytes:
    """A member with every optional header field (extra, name, comment, header CRC)."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x1e" + b"\0" * 6 + struct.pack("<H", 3) + b"xyz" + b"name\0" + b"comment\0" + b"\0\0"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


def _garbled(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    at, length = rng.randrange(len(data)), rng.choice([1, 4, 64, 1000])
    return data[:at] + rng.randbytes(length) + data[at + length :]


FILES = {
    "whole": WHOLE,
    "members": WHOLE + gzip.compress(b"") + gzip.compress(b"one more\n"),
    "zero padding": WHOLE + b"\0" * 9,
    "header fields": _with_header_fields(b"a line\n" * 5000) + WHOLE,
    "garbage after": WHOLE + b"garbage",
    "one byte after": WHOLE + b"\x1f",
    "not gzip": b"plain text\n",
    "empty": b"",
    "unknown method": WHOLE[:2] + b"\x07" + WHOLE[3:],
    "bad CRC": WHOLE[:-8] + b"\0\0\0\0" + WHOLE[-4:],
    "bad length": WHOLE[:-4] + b"\0\0\0\0",
    "cut in the header": WHOLE[:5],
    "cut in the trailer": WHOLE[:-3],
    "10,000:1": gzip.compress(b"\n" * 20_000_000),  # pieces held back by the size asked for
    **{f"cut at {fraction}": WHOLE[: int(len(WHOLE) * fraction)] for fraction in (0.001, 0.3, 0.999)},
    **{f"garbled {seed}": _garbled(WHOLE, seed) for seed in range(40)},
}


def _read(open_reader, data: bytes, size: int) -> tuple[list[bytes], tuple | None, int]:
    file = io.BytesIO(data)
    read, pieces = open_reader(file), []
    try:
        while piece := read(size):
            pieces.append(piece)
    except ERRORS as error:
        return pieces, (isinstance(error, EOFError), isinstance(error, OSError), str(error)), file.tell()
    return pieces, None, file.tell()


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("size", [1 << 20, 1000])
def test_a_file_reads_as_gzip_reads_it(name, size):
    data = FILES[name]
    expected = _read(lambda file: gzip.GzipFile(fileobj=file).read1, data, size)
    assert _read(lambda file: GzipReader(file).read, data, size) == expected


def test_the_files_cover_what_can_go_wrong():
    """The cases above do hit gzip's errors: cut streams, bad deflate data, bad checks and headers."""
    errors = {_read(lambda file: gzip.GzipFile(fileobj=file).read1, data, 1 << 20)[1] for data in FILES.values()}
    messages = {error[2] for error in errors if error}
    assert "Compressed file ended before the end-of-stream marker was reached" in messages
    assert any(message.startswith("Error -3 while decompressing data") for message in messages)
    assert any(message.startswith("CRC check failed") for message in messages)
    assert {"Incorrect length of data produced", "Unknown compression method"} <= messages
    assert any(message.startswith("Not a gzipped file") for message in messages)
