"""Bytewax sources: recordings replayed as the raw log, merged by local receive time.

A replay is one source partition (one worker reads it; the keyed steps after it spread the
instruments over all workers), so several files interleave exactly as they were received.
It yields ``RawBatch``es, not single messages: Bytewax's per-item cost is paid once per batch,
and every message of a batch carries the time it entered the flow, from which the sink measures
latency. Paced at ``speed`` x real time, a batch holds what is due by then, and that time is when
its first message was due, as a live feed's message waits from its arrival.
A recording's bad lines travel as dead letters among the messages (see ``dataflows.recordings``).
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from dataflows.recordings import Recording, RecordingError, open_recording
from quantumflow.events import DeadLetter, RawMessage

BATCH_MESSAGES = 1_000
_NOT_RECORDINGS = (".json", ".md")  # a folder's manifest and notes
_NOT_RECORDING_NAMES = ("LICENSE", "README")
_CRYPTOFEED_REST = re.compile(r"[A-Z0-9_]+\.\d+")  # a capture's REST answers (COINBASE.0), beside its KRAKEN.ws.50.0


class RawBatch(NamedTuple):
    read_ns: int  # time.perf_counter_ns() when the batch entered the flow (paced: when its first message was due)
    messages: list[RawMessage | DeadLetter]
    places: Sequence[str] | None = None  # where each message was in the log (Kafka), named by its dead letters


def recording_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files to replay: each path as given, a folder as the recordings in it (a LOBSTER pair once)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            files += [
                p
                for p in inside
                if p.suffix not in _NOT_RECORDINGS
                and not p.name.upper().startswith(_NOT_RECORDING_NAMES)
                and "_orderbook_" not in p.name
                and not _CRYPTOFEED_REST.fullmatch(p.name)
            ]
        elif path.exists():
            files.append(path)
        else:
            raise RecordingError(f"no such recording file or folder: {path}")
    if not files:
        raise RecordingError(f"no recordings in {', '.join(map(str, paths))}")
    return files


def recording_identity(paths: Sequence[str | Path], feed: str | None = None) -> list[dict]:
    """Each recording file by what tells it apart: its path, size and first receive time."""
    files = []
    for path in recording_paths(paths):
        first = next(iter(open_recording(path, feed)), None)
        files.append(
            {
                "path": str(path.resolve()),
                "size": path.stat().st_size,
                "first_receive_ns": None if first is None else first.receive_ts,
            }
        )
    return files


def merged(recordings: Sequence[Recording]) -> Iterator[RawMessage | DeadLetter]:
    """The messages of every recording in order of local receive time (file order breaks ties)."""
    if len(recordings) == 1:
        return iter(recordings[0])
    return heapq.merge(*recordings, key=lambda raw: raw.receive_ts)


class ReplaySource(FixedPartitionedSource[RawBatch, int]):
    """Recordings as one partition; its resume state is how many messages were emitted."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        feed: str | None = None,
        speed: float | None = None,
        batch_messages: int = BATCH_MESSAGES,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.on_progress = on_progress  # called with the bytes read so far, after each batch; StopIteration ends
        self.files = recording_paths(paths)
        for path in self.files:  # clear errors before the run, not in a worker
            open_recording(path, feed)
        self.feed = feed
        self.speed = speed
        self.batch_messages = batch_messages

    def list_parts(self) -> list[str]:
        return ["replay"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _ReplayPartition:
        recordings = [open_recording(path, self.feed) for path in self.files]
        return _ReplayPartition(recordings, self.speed, self.batch_messages, resume_state or 0, self.on_progress)


class _ReplayPartition(StatefulSourcePartition[RawBatch, int]):
    def __init__(
        self,
        recordings: list[Recording],
        speed: float | None,
        batch_messages: int,
        skip: int,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self._recordings = recordings
        self._on_progress = on_progress
        self._messages = merged(recordings)
        self._emitted = 0
        for _ in range(skip):
            if next(self._messages, None) is None:
                break
            self._emitted += 1
        self._speed = speed
        self._batch_messages = batch_messages
        self._pending: RawMessage | DeadLetter | None = None
        # (first receive_ts, wall time, perf_counter_ns) when the first message went out
        self._clock_origin: tuple[int, float, int] | None = None
        self._stopping = False  # on_progress said the run is to stop (StopIteration): end at the next call

    @property
    def bytes_read(self) -> int:
        return sum(recording.bytes_read for recording in self._recordings)

    def next_batch(self) -> list[RawBatch]:
        if self._stopping:
            raise StopIteration
        batch: list[RawMessage | DeadLetter] = []
        while len(batch) < self._batch_messages:
            raw = self._pending or next(self._messages, None)
            self._pending = None
            if raw is None:
                if not batch:
                    raise StopIteration
                break
            if self._speed is not None and not self._due(raw):
                self._pending = raw
                break
            batch.append(raw)
        self._emitted += len(batch)
        if self._on_progress is not None:
            try:
                self._on_progress(self.bytes_read)
            except StopIteration:  # the run is to stop: this batch, already counted as emitted, still goes out
                self._stopping = True
        if not batch:
            return []
        return [RawBatch(self._due_ns(batch[0]) if self._speed is not None else time.perf_counter_ns(), batch)]

    def next_awake(self) -> datetime | None:
        if self._speed is None or self._pending is None or self._clock_origin is None:
            return None
        first_ts, wall, _ = self._clock_origin
        seconds = (self._pending.receive_ts - first_ts) / 1e9 / self._speed
        return datetime.fromtimestamp(wall, UTC) + timedelta(seconds=seconds)

    def snapshot(self) -> int:
        return self._emitted

    def _due(self, raw: RawMessage | DeadLetter) -> bool:
        if self._clock_origin is None:
            self._clock_origin = (raw.receive_ts, time.time(), time.perf_counter_ns())
            return True
        first_ts, wall, _ = self._clock_origin
        return raw.receive_ts <= first_ts + (time.time() - wall) * self._speed * 1e9

    def _due_ns(self, raw: RawMessage | DeadLetter) -> int:
        """When ``raw`` was due (perf_counter_ns): a paced replay stands in for a live feed, whose
        message waits from its arrival, not from when the flow came round to reading it."""
        assert self._clock_origin is not None and self._speed is not None
        first_ts, _, origin_ns = self._clock_origin
        return origin_ns + round((raw.receive_ts - first_ts) / self._speed)
