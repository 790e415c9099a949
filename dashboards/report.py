"""The analysis report: PNGs and one self-contained HTML page from a store (the market pictures, per
instrument) and a models folder (the evaluation pictures, drawn again from its results.json by the
functions ``quantumflow train`` and ``evaluate`` draw them with). A part that cannot be drawn is said
on the page, with why."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dashboards.report_data import InstrumentData, read_instrument
from dashboards.report_html import Section, write_html
from dashboards.report_plots import correlations_png, depth_heatmap_png, ofi_png, profile_png
from models.plots import calibration_png, confusion_png, training_curves_png, weights_png
from store import open_store

RESULTS = "results.json"
HTML = "report.html"
MODELS = "models"  # the section of the models' pictures; the others are instruments


class ReportError(Exception):
    """A store or models folder the report cannot be made from (the message says why)."""


@dataclass
class Figure:
    section: str  # an instrument, or MODELS
    title: str
    path: Path
    caption: str


@dataclass
class Report:
    source: str
    out: Path
    html: Path | None = None
    figures: list[Figure] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (section, what is missing and why)
    instruments: list[str] = field(default_factory=list)
    models: str | None = None  # the evaluation folder read

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "html": str(self.html),
            "pngs": [str(f.path) for f in self.figures],
            "instruments": self.instruments,
            "models": self.models,
            "missing": [f"{section}: {what}" for section, what in self.missing],
        }


MARKET_FIGURES: tuple[tuple[str, str, Callable[[Path, InstrumentData], str], str], ...] = (
    ("depth_heatmap", "Order-book depth heatmap", depth_heatmap_png, "book"),
    ("ofi", "Multi-level order flow imbalance", ofi_png, "features"),
    ("profile", "Depth and spread profile", profile_png, "features"),
    ("correlations", "Features against future mid returns", correlations_png, "features"),
)
WHAT_EACH_SHOWS = {
    "depth_heatmap": "Resting size of the top 10 levels a side (colour, log scale) per price and time bucket, "
    "the mid drawn over it.",
    "ofi": "The mid (top) and the multi-level order flow imbalance per book level over 1 s windows (bottom): "
    "blue is net buying pressure, red net selling.",
    "profile": "Mean resting size per level a side, mean size within 5, 10 and 25 bps of the mid, and how "
    "wide the spread was.",
    "correlations": "Spearman correlation of each feature with the mid's log return over the next 1, 10 and "
    "60 s, the strongest 12 per horizon.",
    "training_curves": "Train and validation log-loss per epoch of each network; the dashed line marks the "
    "epoch kept (early stopping).",
    "confusion": "Per model and horizon, true class (rows) against predicted class on the test part: counts "
    "and the share of each true class.",
    "calibration": "Share of right predictions against the model's confidence, per confidence bin, on the "
    "test part; the diagonal is perfect calibration.",
    "ensemble_weights": "Each model's weight in the ensemble over the test part, per horizon, as the flow "
    "updates it from matured labels.",
}


def build_report(store_url: str | None, models: Path, out: Path, source: str, say: Callable[[str], None]) -> Report:
    """Write the PNGs and the HTML page for the store at ``store_url`` and the models (or evaluation)
    folder ``models`` into ``out``; ``source`` says on the page what the store holds."""
    report = Report(source, out)
    with open_store(store_url).reader() as reader:
        report.instruments = reader.instruments()
        if not report.instruments:
            raise ReportError(f"the store {source} holds no rows of any instrument: nothing to report on")
        for instrument in report.instruments:
            say(f"reading {instrument}")
            data = read_instrument(reader, instrument)
            if data is None:
                report.missing.append((instrument, "no book or feature rows (trades only): no market pictures"))
                continue
            _market_figures(report, data)
    _model_figures(report, models)
    report.html = write_html(out / HTML, _meta(report), [_section(report, s) for s in (*report.instruments, MODELS)])
    return report


def _meta(report: Report) -> str:
    return f"Source: {report.source}. Models' evaluation: {report.models or 'none'}."


def _section(report: Report, name: str) -> Section:
    return Section(
        "Models and their evaluation" if name == MODELS else name,
        [(f.title, f.path, f.caption) for f in report.figures if f.section == name],
        [what for section, what in report.missing if section == name],
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _market_figures(report: Report, data: InstrumentData) -> None:
    for key, title, draw, needs in MARKET_FIGURES:
        if (data.book if needs == "book" else data.features) is None:
            report.missing.append((data.instrument, f"{title.lower()}: no {needs} rows for this instrument"))
            continue
        path = report.out / f"{_slug(data.instrument)}_{key}.png"
        try:
            caption = draw(path, data)
        except ValueError as why:
            report.missing.append((data.instrument, f"{title.lower()}: {why}"))
            continue
        report.figures.append(Figure(data.instrument, title, path, f"{WHAT_EACH_SHOWS[key]} {caption}"))


def evaluation_folder(models: Path) -> Path | None:
    """Where the evaluation of ``models`` lies: the folder itself (``quantumflow evaluate --out``) or its
    report/ (``quantumflow train``); None when neither holds a results.json."""
    for folder in (models, models / "report"):
        if (folder / RESULTS).is_file():
            return folder
    return None


def _model_figures(report: Report, models: Path) -> None:
    folder = evaluation_folder(models)
    if folder is None:
        report.missing.append(
            (
                MODELS,
                f"no model evaluation in {models} (no {RESULTS} there or in its report/): no training curves, "
                "confusion matrices, calibration curves or ensemble weights; 'quantumflow train' or "
                "'quantumflow evaluate' makes one",
            )
        )
        return
    report.models = str(folder)
    try:
        results = json.loads((folder / RESULTS).read_text())
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {folder / RESULTS}: {error}") from error
    plotted = results.get("plotted") or {}
    events = results.get("events", {})
    split = ", ".join(f"{part} {n:,}" for part, n in events.items())
    metrics = results.get("metrics", {})
    drawers = {
        "training_curves": ("Training curves", lambda p: _training_curves(p, plotted["histories"], split)),
        "confusion": ("Confusion matrices", lambda p: _confusions(p, plotted["confusions"], metrics)),
        "calibration": ("Calibration curves", lambda p: _calibration(p, plotted["calibration"], metrics)),
        "ensemble_weights": ("Ensemble weights", lambda p: _weights(p, plotted["weights"], results)),
    }
    for key, (title, draw) in drawers.items():
        path = report.out / f"models_{key}.png"
        written = folder / f"{key}.png"
        try:
            caption = draw(path)
        except (KeyError, ValueError, TypeError):
            if not written.is_file():  # an evaluation from before its data were kept, without this picture
                report.missing.append((MODELS, f"{title.lower()}: not in {folder / RESULTS} and no {written.name}"))
                continue
            shutil.copyfile(written, path)
            caption = f"As drawn by the evaluation in {folder} (its {RESULTS} does not hold the numbers behind it)."
        report.figures.append(Figure(MODELS, title, path, f"{WHAT_EACH_SHOWS[key]} {caption}"))


def _training_curves(path: Path, histories: dict[str, list[dict]], split: str) -> str:
    training_curves_png(path, histories)
    best = ", ".join(
        f"{model} {min(h['val_loss'] for h in hist):.4f} (epoch {next(h['epoch'] for h in hist if h.get('best'))} "
        f"of {len(hist)})"
        for model, hist in histories.items()
    )
    return f"Events per part: {split}. Best validation log-loss: {best}."


def _confusions(path: Path, confusions: dict[str, dict[str, list]], metrics: dict) -> str:
    confusion_png(path, {(m, h): matrix for m, by in confusions.items() for h, matrix in by.items()})
    model = "ensemble" if "ensemble" in metrics else next(iter(metrics))
    scores = ", ".join(
        f"{h}: {m['n']:,} labelled, accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}"
        for h, m in metrics[model].items()
    )
    return f"Test part, {model}: {scores}."


def _calibration(path: Path, curves: dict, metrics: dict) -> str:
    calibration_png(path, curves)
    ece = "; ".join(
        f"{model} " + ", ".join(f"{h} {m['ece']:.3f}" for h, m in by.items())
        for model, by in metrics.items()
        if model in curves
    )
    return f"Expected calibration error (ECE) per model and horizon: {ece}."


def _weights(path: Path, weights: dict, results: dict) -> str:
    seconds = np.asarray(weights["seconds"], dtype=np.float64)
    weights_png(path, seconds, weights["by_horizon"])
    means = "; ".join(
        f"{h}: " + ", ".join(f"{m} {w:.2f}" for m, w in by.items()) for h, by in results["mean_weights"].items()
    )
    return (
        f"{len(seconds):,} test events sampled over {seconds[-1] - seconds[0]:,.1f} s. Mean weights: {means}."
        if len(seconds)
        else f"Mean weights: {means}."
    )
