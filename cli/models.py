"""``quantumflow train`` and ``quantumflow evaluate``, and the small models the main job trains
when it finds none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from cli.errors import bad_input, known_feed
from operators.feeds import FEEDS
from operators.labels import DEFAULT_HORIZONS
from quantumflow.settings import data_dir, models_dir

HorizonsOption = Annotated[
    str,
    typer.Option(help="Horizons: numbers of best bid/offer changes (10) or times (1s, 500ms), comma separated."),
]
EpochsOption = Annotated[
    int, typer.Option(min=1, help="Most training epochs per network (early stopping ends sooner).")
]
WindowOption = Annotated[int, typer.Option(min=2, max=512, help="Events each network reads (the window T).")]
SeedOption = Annotated[int, typer.Option(help="Seed of every random choice (same seed, same models).")]
FeedOption = Annotated[
    str | None,
    typer.Option(
        "--feed",
        help=f"Wire protocol of the recording, if it cannot be recognised: {', '.join(FEEDS)}.",
        callback=known_feed,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the results as JSON: model -> horizon -> metric.")]
_SHOWN = ("accuracy", "macro_f1", "log_loss", "ece")
_PER_CLASS = ("precision_down", "precision_flat", "precision_up", "recall_down", "recall_flat", "recall_up")


def train_command(
    paths: Annotated[list[Path], typer.Argument(help="Recordings to train on (files or folders), in time order.")],
    out: Annotated[Path | None, typer.Option(help="Folder for the checkpoints.", show_default="$QF_MODELS_DIR")] = None,
    horizons: HorizonsOption = DEFAULT_HORIZONS,
    epochs: EpochsOption = 20,
    window: WindowOption = 32,
    seed: SeedOption = 7,
    test_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Last share of the time held out as the test part.")
    ] = 0.15,
    feed: FeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the networks and the online learner on recordings (split in time: train, validation,
    test), save the checkpoints, and report every model beside the baselines on the test part."""
    out = out or models_dir()
    _experiment(paths, None, horizons, epochs, window, seed, feed, out / "report", out, as_json, test_fraction)


def evaluate_command(
    train: Annotated[list[Path], typer.Option("--train", help="Recording(s) to train on.")],
    test: Annotated[
        list[Path],
        typer.Option(
            "--test", help="Recording(s) to test on: later ones of the training instruments, or another market."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the plots and results.json.", show_default="data/evaluation")
    ] = None,
    horizons: HorizonsOption = DEFAULT_HORIZONS,
    epochs: EpochsOption = 20,
    window: WindowOption = 32,
    seed: SeedOption = 7,
    feed: FeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train on recordings and test on later ones, or on a market never seen in training:
    accuracy, macro-F1, per-class precision and recall, log-loss and calibration (ECE) of every
    model, the stacking layer, the mixture, the ensemble (the one of the two the flow uses) and the
    baselines, per horizon, with a confusion-matrix, training-curve and mixture-weight plot.

    All are replayed as one stream (a later recording continues the earlier one's book). An
    instrument of the test recordings that the training ones hold is tested from where its test
    recording starts, which must be after its training recordings end; any other instrument is a
    held-out market, tested whole. The models are fitted on the events before the test parts and
    run online over them."""
    from dataflows.training import test_starts

    with bad_input():
        test_start = test_starts(train, test, feed)
    out = out or data_dir() / "evaluation"
    _experiment([*train, *test], test_start, horizons, epochs, window, seed, feed, out, None, as_json)


def train_default_models(recording: Path, console: Console) -> None:
    """Small models for the main job when none exist."""
    from dataflows.training import run_experiment
    from models.train import small_settings

    console.print(f"no trained models in {models_dir()}: training small ones on {recording} (about a minute)")
    run_experiment([recording], small_settings(), models_dir() / "report", save_models=models_dir(), say=console.print)


def _experiment(paths, test_start, horizons, epochs, window, seed, feed, out, save_models, as_json, test_fraction=0.15):
    from dataflows.sources import recording_paths
    from dataflows.training import run_experiment
    from models.train import Settings
    from operators.labels import parse_horizons

    console = Console(width=shutil.get_terminal_size((150, 24)).columns, stderr=as_json)
    with bad_input():  # bad horizons, or recordings too short to train on
        settings = Settings(parse_horizons(horizons), window=window, epochs=epochs, seed=seed)
        total = sum(path.stat().st_size for path in recording_paths(paths))
        with tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar:
            result = run_experiment(
                paths,
                settings,
                out,
                test_start,
                feed,
                save_models,
                say=console.print,
                on_progress=lambda done: bar.update(done - bar.n),
                test_fraction=test_fraction,
            )
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=1))
        return
    console.print(results_table(result.metrics))
    console.print(
        f"flat band θ (bps): {', '.join(f'{h} {t:.4g}' for h, t in result.thetas.items())}; "
        f"events {result.events}; online inference {result.inference_us_per_event:.0f} µs per event"
    )
    console.print(
        "mean mixture weights on the test part: "
        + "; ".join(
            f"{h}: " + ", ".join(f"{m} {w:.2f}" for m, w in by.items()) for h, by in result.mean_weights.items()
        )
    )
    console.print("written: " + ", ".join(result.files.values()) + f", {Path(out) / 'results.json'}")


def results_table(metrics: dict[str, dict[str, dict]]) -> Table:
    table = Table("horizon", "model", *_SHOWN, "P down/flat/up", "R down/flat/up", title="test part")
    horizons = list(next(iter(metrics.values())))
    for horizon in horizons:
        for model, by_horizon in metrics.items():
            m = by_horizon[horizon]
            table.add_row(
                horizon,
                model,
                *(f"{m[name]:.3f}" for name in _SHOWN),
                "/".join(f"{m[name]:.2f}" for name in _PER_CLASS[:3]),
                "/".join(f"{m[name]:.2f}" for name in _PER_CLASS[3:]),
                end_section=model == list(metrics)[-1],
            )
    return table
