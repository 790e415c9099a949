"""``quantumflow vol-evaluate``: the volatility forecasts against their baselines on recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from cli.errors import USAGE, UserError
from cli.models import FeedOption, JsonOption


def vol_evaluate_command(
    train: Annotated[list[Path], typer.Option("--train", help="Recording(s) the models learn on first.")],
    test: Annotated[
        list[Path] | None,
        typer.Option("--test", help="Later recording(s) to score on; none: the last half of the training time."),
    ] = None,
    feed: FeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Realized-volatility forecasts over the next 10 s and 60 s (HAR, EWMA, last window), learned
    online over the training recordings and then the test ones as one stream: QLIKE and MSE of the
    variance forecasts made in the test part, per instrument and horizon."""
    from dataflows.sources import recording_paths
    from dataflows.vol_evaluation import evaluate_volatility

    paths = [*train, *(test or [])]
    files = recording_paths(paths)
    test_start = _first_ts(test) if test else _middle_ts(train)
    total = sum(path.stat().st_size for path in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar:
        results = evaluate_volatility(paths, test_start, feed, on_progress=lambda done: bar.update(done - bar.n))
    if not results:
        raise UserError("no volatility forecast matured in the test part: the recordings are too short", USAGE)
    if as_json:
        typer.echo(json.dumps(results, indent=1))
        return
    console = Console()
    for instrument, result in results.items():
        console.print(vol_table(instrument, result))
        console.print(
            "EWMA half-life chosen (s): "
            + ", ".join(f"{h} {s}" for h, s in result["ewma_half_life_s"].items())
            + "; HAR coefficients [1, ln RV 1 s, 10 s, 60 s]: "
            + "; ".join(f"{h} {c}" for h, c in result["har_coefficients"].items())
        )


def vol_table(instrument: str, result: dict) -> Table:
    table = Table("horizon", "model", "QLIKE", "MSE (bps^4)", "forecasts", title=f"{instrument}: test part")
    for horizon, by_model in result["metrics"].items():
        for model, m in by_model.items():
            table.add_row(
                horizon,
                model,
                f"{m['qlike']:.3f}",
                f"{m['mse']:.4g}",
                str(result["forecasts"][horizon]),
                end_section=model == list(by_model)[-1],
            )
    return table


def _receive_times(paths: list[Path]) -> list[int]:
    from dataflows.recordings import open_recording
    from dataflows.sources import recording_paths

    times = []
    for path in recording_paths(paths):
        for message in open_recording(path):
            times.append(message.receive_ts)
    return times


def _first_ts(paths: list[Path]) -> int:
    from dataflows.recordings import open_recording
    from dataflows.sources import recording_paths

    firsts = [next(iter(open_recording(path)), None) for path in recording_paths(paths)]
    times = [message.receive_ts for message in firsts if message is not None]
    if not times:
        raise UserError("the test recordings hold no messages", USAGE)
    return min(times)


def _middle_ts(paths: list[Path]) -> int:
    times = _receive_times(paths)
    if not times:
        raise UserError("the recordings hold no messages", USAGE)
    return (min(times) + max(times)) // 2
