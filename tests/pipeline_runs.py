"""The one place the tests start the predict flow and the trainer, so that a change to their options
changes one file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from dataflows.run import RunSummary, run_flow
from dataflows.run_settings import RunSettings
from dataflows.training import Result, run_experiment
from models.train import Settings
from quantumflow.horizons import parse_horizons
from store import open_store

MODEL_HORIZONS = ("10", "1s")
DATA_TABLES = ("features", "book", "trades", "resyncs", "dead_letters", "predictions")  # all but run_metrics


def replay(
    recordings: Sequence[Path],
    store_url: str,
    *,
    workers: int = 1,
    models: Path | None = None,
    online_state: Path | None = None,
    fresh: bool = False,
) -> RunSummary:
    """Replay ``recordings`` through the predict flow into the store at ``store_url`` (predicting with
    ``models`` if given, the online learners' state kept in ``online_state``)."""
    settings = RunSettings(
        tuple(recordings), store=store_url, workers=workers, models=models, online_state_dir=online_state, fresh=fresh
    )
    return run_flow(settings)


def train_small_models(recording: Path, folder: Path) -> Result:
    """Small models (window 8, two epochs, at most 4,000 training windows) for MODEL_HORIZONS, fitted on the
    first 85% of ``recording`` and tested on the rest; checkpoints in ``folder``, the report in folder/report."""
    settings = Settings(parse_horizons(",".join(MODEL_HORIZONS)), window=8, epochs=2, max_train_windows=4_000)
    return run_experiment([recording], settings, folder / "report", save_models=folder, say=lambda _: None)


def quantumflow(*args: object) -> list[str]:
    """The command line of ``quantumflow ARGS...``, for a subprocess."""
    return [sys.executable, "-m", "cli.main", *map(str, args)]


def in_background(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``command`` started, stdout kept, stderr piped, no progress bars."""
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
    )


def wait_for_rows(url: str, process: subprocess.Popen, at_least: int = 1, table: str = "features") -> None:
    """Return once the store at ``url`` holds ``at_least`` rows of ``table``; fail if ``process`` ends first."""
    deadline = time.monotonic() + 300  # a guard against a hung run, not a measurement
    with open_store(url).reader() as reader:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if reader.count(table) >= at_least:
                    return
            except Exception:  # the table may not exist yet
                pass
            time.sleep(0.05)
    pytest.fail(f"the flow wrote no {at_least} {table} rows (exit status {process.poll()})")


def store_contents(url: str) -> dict[str, list[dict]]:
    """Every row of the store at ``url`` but the run metrics, table by table, in key order."""
    with open_store(url).reader() as reader:
        return {table: reader.rows(table) for table in DATA_TABLES}
