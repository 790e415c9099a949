"""``quantumflow report``: the analysis report, from a store or from recordings replayed into a
temporary one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from tqdm import tqdm

from cli.errors import USAGE, UserError, writable_folder
from cli.models import FeedOption
from quantumflow.settings import models_dir


def report_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and report.html (made if need be).")],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Recordings (files or folders) to replay into a temporary store and report on; "
            "none: the store (--store).",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Store URL to report on: sqlite:///PATH or questdb://HOST[:PORT]. Default: $QF_STORE, else data/."
        ),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(
            help="Models folder from 'quantumflow train', or an evaluation folder from 'quantumflow evaluate' "
            "(default: $QF_MODELS_DIR, else data/models).",
        ),
    ] = None,
    feed: FeedOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """PNGs and one self-contained HTML page: per instrument the order-book depth heatmap, multi-level
    OFI over time, the depth and spread profile and the features' correlations with future mid returns;
    and, where a models folder holds an evaluation, training curves, confusion matrices, calibration
    curves and ensemble weights. What cannot be drawn is said on the page."""
    from dashboards.report import build_report
    from dataflows.sources import recording_paths
    from store import open_store
    from store.url import QuestDBLocation, parse_url, store_url

    if paths and store is not None:
        raise UserError("give recordings or --store, not both", USAGE)
    if models is not None and not models.is_dir():
        raise UserError(f"--models {models}: no such folder", USAGE)
    if paths:
        recording_paths(paths)  # a missing one is said before the folder is made
    else:
        if feed is not None:
            raise UserError("--feed goes with recordings", USAGE)
        url = source = store_url(store)
        location = parse_url(url)
        if not isinstance(location, QuestDBLocation) and not location.path.is_file():
            raise UserError(f"no store at {url}: {location.path} does not exist")
        open_store(url).check(write=False)
    writable_folder(out)
    console = Console(stderr=as_json)
    with tempfile.TemporaryDirectory(prefix="quantumflow-report-") as scratch:
        if paths:
            url, source = _replayed(paths, feed, Path(scratch)), "the recordings " + ", ".join(map(str, paths))
        report = build_report(url, models or models_dir(), out, source, say=lambda _: None)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    console.print(f"written: {report.html} with {len(report.figures)} pictures ({out})")
    for section, what in report.missing:
        console.print(f"not shown: {section}: {what}", markup=False, highlight=False)


def _replayed(paths: list[Path], feed: str | None, scratch: Path) -> str:
    """Replay the recordings through the predict flow (no predictions) into a SQLite store in ``scratch``."""
    from dataflows.run import run_flow
    from dataflows.run_settings import RunSettings
    from dataflows.sources import recording_paths

    files = recording_paths(paths)  # a missing or unreadable recording is said before anything runs
    url = f"sqlite:///{scratch / 'report.db'}"
    settings = RunSettings(tuple(paths), store=url, feed=feed, predictions=False, micro_price=None)
    total = sum(path.stat().st_size for path in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar:
        run_flow(settings, on_progress=lambda done: bar.update(done - bar.n))
    return url
