"""``quantumflow tune``: search the networks' and the ensemble's settings on the training recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cli.errors import USAGE, UserError, bad_input, writable_folder
from cli.models import FeedOption, HorizonsOption, JsonOption, SeedOption, _console, shown
from operators.labels import DEFAULT_HORIZONS
from quantumflow.settings import tuning_dir


def tune_command(
    paths: Annotated[list[Path], typer.Argument(help="Training recordings (files or folders), in time order.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the study (study.db) and best_settings.json; the same folder again continues it.",
            show_default="data/tuning",
        ),
    ] = None,
    minutes: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Time for the whole run, replay included: no trial starts unless a typical one fits; one always runs.",
        ),
    ] = 10.0,
    trials: Annotated[int | None, typer.Option(min=1, help="Stop after this many trials (if time is left).")] = None,
    horizons: HorizonsOption = DEFAULT_HORIZONS,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs per network in a trial.")] = 2,
    max_windows: Annotated[int, typer.Option(min=100, help="Training windows per epoch in a trial (a sample).")] = 3000,
    seed: SeedOption = 7,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.05, max=0.5, help="Last share of the events never read (what 'quantumflow train' tests on)."
        ),
    ] = 0.15,
    feed: FeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search the networks' window, width, depth, dropout and learning rate and the ensemble's
    forgetting and sharpness (Optuna, TPE) for the lowest ensemble log-loss, mean over the horizons.

    Walk-forward, never on the test part: the last --test-fraction of the events (what 'train' tests
    on) is never read; of the rest, the last 15% is the tuning validation, each trial fits on the
    time before it (briefly: --epochs, --max-windows) and runs online over it as the flow does. The
    best settings are written to OUT/best_settings.json, which 'train' and 'evaluate' use (by
    default from data/tuning/)."""
    from dataflows.sources import recording_paths
    from dataflows.tuning import StudyMismatch, tune
    from models.train import Settings
    from quantumflow.horizons import parse_horizons

    out = out or tuning_dir()
    writable_folder(out)
    console = _console(as_json)
    with bad_input():  # bad horizons
        base = Settings(parse_horizons(horizons), epochs=epochs, patience=1, seed=seed, max_train_windows=max_windows)
    total = sum(path.stat().st_size for path in recording_paths(paths))
    with (
        tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as replay,
        tqdm(total=trials, unit="trial", desc="tune", disable=None) as bar,
    ):

        def on_trial(number: int, value: float, best: float) -> None:
            bar.update()
            bar.set_postfix_str(f"trial {number}: {value:.4f}, best {best:.4f}")

        try:
            result = tune(
                paths,
                base,
                out,
                minutes,
                trials,
                feed,
                test_fraction,
                on_replay=lambda done: replay.update(done - replay.n),
                on_trial=on_trial,
            )
        except StudyMismatch as error:
            raise UserError(str(error), USAGE) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
        return
    best = result.best
    console.print(
        f"{result.new_trials} trials run now, {result.trials} in the study; best: trial {best['trial']}, "
        f"log-loss {best['log_loss']:.4f}, macro-F1 {best['macro_f1']:.3f} (ensemble, mean over the horizons, "
        "on the tuning validation)"
    )
    if best["built_in"] is not None:
        console.print(
            f"the built-in settings there: log-loss {best['built_in']['log_loss']:.4f}, "
            f"macro-F1 {best['built_in']['macro_f1']:.3f}"
        )
    console.print(f"best settings: {shown(best['settings'])}")
    console.print(f"written: {result.files['study']}, {result.files['best_settings']}")
    if Path(out).resolve() != tuning_dir().resolve():
        console.print(
            f"train with them: quantumflow train {' '.join(map(str, paths))} --settings {result.files['best_settings']}"
        )
