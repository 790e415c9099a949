"""The replay source: which files a path means, the merge by receive time, pacing and resuming."""

from __future__ import annotations

import gzip
import time

import pytest

from dataflows.recordings import RecordingError, open_recording
from dataflows.sources import ReplaySource, merged, recording_paths


def _batches(partition) -> list:
    out = []
    while True:
        try:
            out += partition.next_batch()
        except StopIteration:
            return out


def test_a_folder_means_its_recordings_with_a_lobster_pair_once(shared_data, tmp_path):
    files = recording_paths([shared_data / "lobster"])
    assert [f.name for f in files] == ["AAPL_2012-06-21_34200000_57600000_message_10.csv"]
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(RecordingError, match="no recordings"):
        recording_paths([tmp_path])
    with pytest.raises(RecordingError, match="no such recording"):
        recording_paths([tmp_path / "missing.gz"])


def test_two_venues_interleave_by_receive_time(shared_data):
    recordings = [
        open_recording(shared_data / "coinbase" / "COINBASE.ws.28.0"),
        open_recording(shared_data / "binance" / "spot_btcusdt_20240808.gz"),
    ]
    times = [raw.receive_ts for raw in merged(recordings)]
    assert times == sorted(times)
    assert len(times) == sum(1 for r in recordings for _ in open_recording(r.path))


@pytest.fixture
def short_recording(shared_data, tmp_path):
    """The first 3,000 messages of the spot recording."""
    with gzip.open(shared_data / "binance" / "spot_btcusdt_20240808.gz", "rb") as full:
        lines = [next(full) for _ in range(3_000)]
    path = tmp_path / "spot_btcusdt_short.gz"
    with gzip.open(path, "wb") as out:
        out.writelines(lines)
    return path


def test_batches_resume_where_the_snapshot_says(short_recording):
    source = ReplaySource([short_recording], batch_messages=700)
    partition = source.build_part("raw", "replay", None)
    first = partition.next_batch()[0]
    assert len(first.messages) == 700
    assert partition.snapshot() == 700
    resumed = _batches(source.build_part("raw", "replay", 700))
    rest = _batches(partition)
    assert [m for b in resumed for m in b.messages] == [m for b in rest for m in b.messages]
    assert sum(len(b.messages) for b in rest) == 2_300


def test_paced_replay_takes_the_recorded_time_over_speed(short_recording):
    messages = list(open_recording(short_recording))
    span_s = (messages[-1].receive_ts - messages[0].receive_ts) / 1e9
    speed = span_s / 0.6  # about 0.6 s of wall time
    partition = ReplaySource([short_recording], speed=speed).build_part("raw", "replay", None)
    started = time.monotonic()
    batches = []
    while True:
        awake = partition.next_awake()
        if awake is not None:
            time.sleep(max(0.0, awake.timestamp() - time.time()))
        try:
            batches += partition.next_batch()
        except StopIteration:
            break
    elapsed = time.monotonic() - started
    assert sum(len(b.messages) for b in batches) == 3_000
    assert len(batches) > 10  # delivered as they fell due, not all at once
    assert elapsed >= 0.5
