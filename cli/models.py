"""``quantumflow train`` and ``quantumflow evaluate`` (one test recording, or walk-forward over
consecutive periods), the settings they train with, and the small models the main job trains when
it finds none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from cli.errors import USAGE, UserError, bad_input, known_feed, writable_folder
from operators.feeds import FEEDS
from operators.labels import DEFAULT_HORIZONS
from quantumflow.settings import data_dir, models_dir, tuning_dir

HorizonsOption = Annotated[
    str,
    typer.Option(help="Horizons: numbers of best bid/offer changes (10) or times (1s, 500ms), comma separated."),
]
EpochsOption = Annotated[
    int, typer.Option(min=1, help="Most training epochs per network (early stopping ends sooner).")
]
WindowOption = Annotated[
    int | None,
    typer.Option(
        min=2, max=512, help="Events each network reads (the window T).", show_default="8, or the tuned value"
    ),
]
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="Settings from 'quantumflow tune' (its best_settings.json); command-line options override them.",
        show_default="data/tuning/best_settings.json when it exists",
    ),
]
UntunedOption = Annotated[
    bool, typer.Option("--untuned", help="Train with the built-in settings even if tuned ones exist.")
]
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
MIN_LABELS = 30  # a horizon's figures over fewer test labels than this are flagged


def train_command(
    paths: Annotated[list[Path], typer.Argument(help="Recordings to train on (files or folders), in time order.")],
    out: Annotated[Path | None, typer.Option(help="Folder for the checkpoints.", show_default="$QF_MODELS_DIR")] = None,
    horizons: HorizonsOption = DEFAULT_HORIZONS,
    epochs: EpochsOption = 20,
    window: WindowOption = None,
    seed: SeedOption = 7,
    test_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Last share of the time held out as the test part.")
    ] = 0.15,
    feed: FeedOption = None,
    settings_file: SettingsOption = None,
    untuned: UntunedOption = False,
    as_json: JsonOption = False,
) -> None:
    """Train the networks and the online learner on recordings (split in time: train, validation,
    test), save the checkpoints, and report every model beside the baselines on the test part. The
    settings are the tuned ones when 'quantumflow tune' wrote some (it says which it used and from
    where, and keeps them in the checkpoints)."""
    from dataflows.sources import recording_paths

    recording_paths(paths)  # a missing recording is the first thing said, before the settings
    out = out or models_dir()
    writable_folder(out)  # before the training, not after it
    console = _console(as_json)
    settings = training_settings(horizons, epochs, window, seed, settings_file, untuned, console)
    result = experiment(paths, None, settings, feed, out / "report", out, console, test_fraction)
    _show(result, out / "report", console, as_json)


def evaluate_command(
    periods: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Walk forward over consecutive periods (each a recording or a folder of them, in time order): "
            "train on the periods before each one and test on it.",
            show_default=False,
        ),
    ] = None,
    train: Annotated[list[Path] | None, typer.Option("--train", help="Recording(s) to train on.")] = None,
    test: Annotated[
        list[Path] | None,
        typer.Option(
            "--test", help="Recording(s) to test on: later ones of the training instruments, or another market."
        ),
    ] = None,
    rolling: Annotated[
        bool, typer.Option("--rolling", help="Walk forward training on the one period before each test period only.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the plots and results.json.", show_default="data/evaluation")
    ] = None,
    horizons: HorizonsOption = DEFAULT_HORIZONS,
    epochs: EpochsOption = 20,
    window: WindowOption = None,
    seed: SeedOption = 7,
    feed: FeedOption = None,
    settings_file: SettingsOption = None,
    untuned: UntunedOption = False,
    as_json: JsonOption = False,
) -> None:
    """Train on recordings and test on later ones or on a market never seen in training (--train,
    --test), or walk forward over consecutive periods (PERIOD PERIOD...): accuracy, macro-F1, per-class
    precision and recall, log-loss and calibration (ECE) of every model, the stacking layer, the
    mixture, the top layer over them (hedge), the ensemble (the one of the three the flow uses) and
    the baselines, per horizon, with a
    confusion-matrix, training-curve and mixture-weight plot.

    Walk-forward with periods A B C: fold 1 trains on A and tests on B, fold 2 trains on A and B
    (--rolling: B only) and tests on C; every fold is reported, then the mean over the folds
    (walk_forward.json, and each fold's plots in fold_N/).

    Training and test recordings are replayed as one stream (a later recording continues the earlier
    one's book). An instrument of the test recordings that the training ones hold is tested from where
    its test recording starts, which must be after its training recordings end; any other instrument is
    a held-out market, tested whole. The models are fitted on the events before the test parts and run
    online over them."""
    folds = _folds(periods, train, test, rolling, feed)
    out = out or data_dir() / "evaluation"
    writable_folder(out)  # before the training, not after it
    console = _console(as_json)
    settings = training_settings(horizons, epochs, window, seed, settings_file, untuned, console)
    if not periods:
        fold_train, fold_test, test_start = folds[0]
        result = experiment([*fold_train, *fold_test], test_start, settings, feed, out, None, console)
        _show(result, out, console, as_json)
        return
    from dataflows.walk_forward import mean_metrics

    reports = []
    for number, (fold_train, fold_test, test_start) in enumerate(folds, start=1):
        names = f"train {' + '.join(p.name for p in fold_train)}, test {' + '.join(p.name for p in fold_test)}"
        console.print(f"[bold]fold {number} of {len(folds)}[/bold]: {names}")
        folder = out / f"fold_{number}"
        result = experiment([*fold_train, *fold_test], test_start, settings, feed, folder, None, console)
        if not as_json:
            console.print(results_table(result.metrics, f"fold {number}: {names}"))
            for warning in few_labels(result.metrics):
                console.print(warning, style="yellow", markup=False, highlight=False)
        reports.append(
            {
                "train": [str(p) for p in fold_train],
                "test": [str(p) for p in fold_test],
                "events": result.events,
                "metrics": result.metrics,
                "results": str(folder / "results.json"),
            }
        )
    summary = {"mode": "rolling" if rolling else "expanding", "folds": reports, "mean": mean_metrics(reports)}
    (out / "walk_forward.json").write_text(json.dumps(summary, indent=1))
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    console.print(results_table(summary["mean"], f"mean over {len(folds)} folds"))
    console.print(f"written: {out / 'walk_forward.json'}, and each fold's plots in {out}/fold_N/")


def _folds(periods, train, test, rolling, feed) -> list[tuple[list[Path], list[Path], dict[str, int]]]:
    """(training recordings, test recordings, where each tested instrument's test part starts) per fold;
    refuses a test period of an instrument that does not start after its training periods end."""
    from dataflows.training import test_starts

    if periods and (train or test):
        raise UserError("give either periods to walk forward over or --train and --test, not both", USAGE)
    if not periods:
        if not train or not test:
            raise UserError("give --train and --test, or two or more periods to walk forward over", USAGE)
        folds = [(train, test)]
    elif len(periods) < 2:
        raise UserError("walk-forward needs two or more periods (the first is only trained on)", USAGE)
    else:
        folds = [([periods[i - 1]] if rolling else periods[:i], [periods[i]]) for i in range(1, len(periods))]
    return [(fold_train, fold_test, test_starts(fold_train, fold_test, feed)) for fold_train, fold_test in folds]


def train_default_models(recording: Path, console: Console) -> None:
    """Small models for the main job when none exist."""
    from dataflows.training import run_experiment
    from models.train import small_settings

    console.print(f"no trained models in {models_dir()}: training small ones on {recording} (about a minute)")
    run_experiment([recording], small_settings(), models_dir() / "report", save_models=models_dir(), say=console.print)


def _console(as_json: bool) -> Console:
    return Console(width=shutil.get_terminal_size((150, 24)).columns, stderr=as_json)


def training_settings(horizons, epochs, window, seed, settings_file, untuned, console):
    """The built-in settings, over them the tuned ones (--settings, else data/tuning/best_settings.json
    when it exists, unless --untuned), over those the command line's; says which and from where."""
    from dataflows.tuning import BEST_FILE, tuned_settings
    from models.train import Settings
    from quantumflow.horizons import parse_horizons

    if settings_file is not None and untuned:
        raise UserError("--settings and --untuned contradict each other: give one", USAGE)
    tuned = tuning_dir() / BEST_FILE
    if settings_file is None and not untuned and tuned.is_file():
        settings_file = tuned
    with bad_input():  # bad horizons, an unreadable settings file
        values = tuned_settings(settings_file) if settings_file is not None else {}
        source = f"tuned, from {settings_file}" if settings_file is not None else "built-in defaults"
        if window is not None:
            values["window"] = window
            source += ", window from the command line"
        settings = Settings(parse_horizons(horizons), epochs=epochs, seed=seed, source=source, **values)
    console.print(f"settings ({source}): {shown(settings.tunable())}")
    return settings


def shown(settings: dict) -> str:
    return ", ".join(
        f"{name} {f'{value:.4g}' if isinstance(value, float) else value}" for name, value in settings.items()
    )


def experiment(paths, test_start, settings, feed, out, save_models, console, test_fraction=0.15):
    from dataflows.sources import recording_paths
    from dataflows.training import run_experiment

    total = sum(path.stat().st_size for path in recording_paths(paths))
    with (
        tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar,
    ):
        return run_experiment(
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


def _show(result, out, console: Console, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.metrics, indent=1))
        return
    console.print(results_table(result.metrics))
    for warning in few_labels(result.metrics):
        console.print(warning, style="yellow", markup=False, highlight=False)
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


def few_labels(metrics: dict[str, dict[str, dict]]) -> list[str]:
    """A warning per horizon with fewer than ``MIN_LABELS`` labels in the test part: figures over a
    handful of labels (0.000 over two, say) say nothing of the models."""
    counts = {horizon: m.get("n") for horizon, m in next(iter(metrics.values())).items()}
    return [
        f"warning: only {n:.0f} test label{'s' if n != 1 else ''} at horizon {horizon} (the test part is too short "
        f"for it): its figures say nothing"
        for horizon, n in counts.items()
        if n is not None and n < MIN_LABELS
    ]


def results_table(metrics: dict[str, dict[str, dict]], title: str = "test part") -> Table:
    table = Table("horizon", "model", *_SHOWN, "P down/flat/up", "R down/flat/up", title=title)
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
