"""Live latency: a recording replayed paced at 1x and at 10x its real rate, standing in for a live
feed, through the predict flow on one worker into SQLite. Latency runs from the moment each
message was due (a live feed's arrival) to its rows being committed: the feature rows in a run
without models, the prediction rows (committed with the feature rows of their event) in a run with
them. p50 and p99 per run, with the machine's load average beside them.

With no checkpoints in the models folder, small ones are trained on the recording first."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.books import each_warning_once
from bench.kafka import slice_of
from bench.models import models_for
from dataflows.recordings import RecordingError, open_recording
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from models.checkpoints import CheckpointError
from quantumflow.settings import shared_data_dir

DEFAULT_RECORDING = shared_data_dir() / "binance" / "spot_btcusdt_20240808.gz"
SPEEDS = (1.0, 10.0)


@dataclass
class LiveRun:
    speed: float
    models: bool
    recording_s: float  # seconds of the recording replayed
    events: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    load: float  # one-minute load average at the run's end


@dataclass
class LiveBench:
    recording: str
    models: str
    runs: list[LiveRun]

    def to_dict(self) -> dict:
        return asdict(self)


def bench_live(recording: Path, wall_s: float, models: Path | None = None, speeds=SPEEDS) -> LiveBench:
    """Each speed without and with models, ``wall_s`` seconds each: the recording's first
    ``wall_s * speed`` seconds."""
    open_recording(recording)  # one recording file QuantumFlow reads, or a clear error before any training
    runs = []
    with tempfile.TemporaryDirectory(prefix="qf-bench-live-") as scratch, each_warning_once():
        folder = Path(scratch)
        _, models_folder = models_for(recording, models, folder)
        for speed in speeds:
            paced, _, recording_s = slice_of(recording, wall_s * speed, folder)
            for with_models in (False, True):
                store = folder / f"live_{speed:g}_{with_models}.db"
                settings = RunSettings(
                    (paced,),
                    store=f"sqlite:///{store}",
                    speed=speed,
                    models=models_folder,
                    online_state_dir=folder / "state",
                    fresh=True,
                    predictions=with_models,
                )
                summary = run_flow(settings)
                runs.append(
                    LiveRun(
                        speed,
                        with_models,
                        recording_s,
                        summary.events_in,
                        summary.events_per_s,
                        summary.latency_p50_ms,
                        summary.latency_p99_ms,
                        os.getloadavg()[0],
                    )
                )
        named = "small ones trained on the recording" if models_folder.is_relative_to(folder) else str(models_folder)
    return LiveBench(str(recording), named, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "recording",
        nargs="?",
        type=Path,
        default=DEFAULT_RECORDING,
        help="a recording to pace (default: Binance spot 08-08 in the shared data)",
    )
    parser.add_argument("--wall-s", type=float, default=30.0, help="seconds each paced run lasts (default %(default)s)")
    parser.add_argument("--models", type=Path, help="checkpoints (default: $QF_MODELS_DIR, else small ones trained)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.wall_s <= 0:
        parser.error("--wall-s must be above 0")
    try:
        result = bench_live(args.recording, args.wall_s, args.models)
    except (RecordingError, CheckpointError) as error:
        sys.exit(f"error: {error}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"recording: {result.recording}; models: {result.models}; 1 worker, SQLite")
    print("paced replay (a live-like feed): latency from a message being due to its rows committed")
    for run in result.runs:
        rows = "prediction rows" if run.models else "feature rows   "
        print(
            f"  {run.speed:>4g}x, {rows}: p50 {run.p50_ms:5.1f} ms, p99 {run.p99_ms:6.1f} ms "
            f"({run.events:,} events, {run.recording_s:.0f} s of recording; load {run.load:.2f})"
        )


if __name__ == "__main__":
    main()
