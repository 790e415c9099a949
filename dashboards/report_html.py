"""The report's one HTML page: every picture embedded as a data URI (the file works wherever it is
moved), each with its caption, and what could not be drawn said where it would have been."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboards.report import Report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #1f2328; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.92em; margin-top: 0.4em; }
.missing { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em 0.8em; border-radius: 6px; }
.meta { color: #57606a; }
"""


MODELS = "models"  # the section of the models' pictures; the others are instruments


def write_html(report: Report, path: Path) -> Path:
    sections = list(dict.fromkeys([*report.instruments, MODELS]))
    body = [
        "<h1>QuantumFlow analysis report</h1>",
        f'<p class="meta">Source: {escape(report.source)}. Models: {escape(report.models or "none")}. '
        f"Made {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</p>",
        "<ul>" + "".join(f'<li><a href="#{_anchor(s)}">{escape(_heading(s))}</a></li>' for s in sections) + "</ul>",
    ]
    for section in sections:
        body.append(f'<h2 id="{_anchor(section)}">{escape(_heading(section))}</h2>')
        for figure in (f for f in report.figures if f.section == section):
            data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure data-testid="figure"><h3>{escape(figure.title)}</h3>'
                f'<img alt="{escape(figure.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
            )
        missing = (what for s, what in report.missing if s == section)
        body += [f'<p class="missing" data-testid="missing">{escape(what)}</p>' for what in missing]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>QuantumFlow analysis report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _heading(section: str) -> str:
    return "Models and their evaluation" if section == MODELS else section


def _anchor(section: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in section.lower())
