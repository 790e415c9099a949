"""The replay source: which files a path means, the merge by receive time, pacing and resuming."""

from __future__ import annotations

import gzip

import pytest

from dataflows import sources
from dataflows.recordings import RecordingError, open_recording
from dataflows.sources import ReplaySource, merged, recording_paths


def _batches(partition) -> list:
    out = []
    while True:
        try:
            out += partition.next_batch()
        except StopIteration:
            return out


def test_a_folder_means_its_recordings_with_a_lobster_pair_once(simulated_recording, tmp_path):
    assert [f.name for f in recording_paths([simulated_recording])] == [
        "binance_btcusdt.gz",
        "coinbase_level2_btc-usd.gz",
        "coinbase_market_trades_btc-usd.gz",
    ]  # not its manifest.json
    lobster = tmp_path / "lobster"
    lobster.mkdir()
    for name in (
        "AAPL_2012-06-21_34200000_57600000_message_10.csv",
        "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv",
    ):
        (lobster / name).write_text("")
    (lobster / "README.txt").write_text("")
    (lobster / "LICENSE").write_text("")
    assert [f.name for f in recording_paths([lobster])] == ["AAPL_2012-06-21_34200000_57600000_message_10.csv"]
    only_notes = tmp_path / "notes"
    only_notes.mkdir()
    (only_notes / "manifest.json").write_text("{}")
    with pytest.raises(RecordingError, match="no recordings"):
        recording_paths([only_notes])
    with pytest.raises(RecordingError, match="no such recording"):
        recording_paths([tmp_path / "missing.gz"])


def test_two_venues_interleave_by_receive_time(simulated_recording):
    recordings = [open_recording(path) for path in recording_paths([simulated_recording])]
    assert {r.feed for r in recordings} == {"binance", "coinbase_advanced"}
    times = [raw.receive_ts for raw in merged(recordings)]
    assert times == sorted(times)
    assert len(times) == sum(1 for r in recordings for _ in open_recording(r.path))


@pytest.fixture
def short_recording(simulated_recording, tmp_path):
    """The first 3,000 messages of the simulated Binance recording."""
    with gzip.open(simulated_recording / "binance_btcusdt.gz", "rb") as full:
        lines = [next(full) for _ in range(3_000)]
    path = tmp_path / "binance_short.gz"
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


class FakeClock:
    """Stands in for the ``time`` module in dataflows.sources: the wall clock moves only when a test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def perf_counter_ns(self) -> int:
        return 0


def _paced(path, speed, monkeypatch, batch_messages=1_000) -> list[tuple[float, list]]:
    """Replay ``path`` at ``speed`` on a fake clock that jumps to each time the source asks to be woken
    (plus a microsecond, the resolution of its answer); (clock, messages) of each batch."""
    clock = FakeClock(1_000_000.0)
    monkeypatch.setattr(sources, "time", clock)
    partition = ReplaySource([path], speed=speed, batch_messages=batch_messages).build_part("raw", "replay", None)
    delivered = []
    while True:
        try:
            batches = partition.next_batch()
        except StopIteration:
            return delivered
        delivered += [(clock.now, batch.messages) for batch in batches]
        awake = partition.next_awake()
        if awake is not None:
            assert awake.timestamp() >= clock.now - 1e-6  # never asks to be woken in the past
            clock.now = awake.timestamp() + 1e-6  # else a full batch, or the end: nothing to wait for


def test_paced_replay_delivers_each_message_when_its_recorded_time_falls_due(short_recording, monkeypatch):
    messages = list(open_recording(short_recording))
    speed = 4.0
    delivered = _paced(short_recording, speed, monkeypatch)
    assert [m for _, batch in delivered for m in batch] == messages  # all of them, in order
    start, first_ts = delivered[0][0], messages[0].receive_ts
    for k, (now, batch) in enumerate(delivered):
        recorded_due = [start + (m.receive_ts - first_ts) / 1e9 / speed for m in batch]
        assert max(recorded_due) <= now + 1e-6  # nothing before its time
        if k + 1 < len(delivered) and len(batch) < 1_000:  # and the next message was not due yet
            next_ts = delivered[k + 1][1][0].receive_ts
            assert start + (next_ts - first_ts) / 1e9 / speed > now - 1e-6
    assert len(delivered) > 10  # the clock gave out messages as they fell due, not all at once
    span = (messages[-1].receive_ts - first_ts) / 1e9
    assert delivered[-1][0] - start == pytest.approx(span / speed, abs=1e-5)


def test_twice_the_speed_takes_half_the_replay_time(short_recording, monkeypatch):
    slow = _paced(short_recording, 2.0, monkeypatch)
    fast = _paced(short_recording, 4.0, monkeypatch)
    assert [m for _, b in slow for m in b] == [m for _, b in fast for m in b]
    slow_span, fast_span = slow[-1][0] - slow[0][0], fast[-1][0] - fast[0][0]
    assert fast_span == pytest.approx(slow_span / 2, abs=1e-5)


def test_without_a_speed_batches_are_full_and_never_wait(short_recording, monkeypatch):
    monkeypatch.setattr(sources, "time", FakeClock(0.0))  # the clock never moves: nothing may wait for it
    partition = ReplaySource([short_recording], batch_messages=1_000).build_part("raw", "replay", None)
    assert partition.next_awake() is None
    assert [len(b.messages) for b in _batches(partition)] == [1_000, 1_000, 1_000]
