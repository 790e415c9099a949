"""The report's one HTML page: every picture embedded as a data URI (the file works wherever it is
moved), each with its caption, and what could not be drawn said where it would have been."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import NamedTuple


class Section(NamedTuple):
    heading: str
    figures: list[tuple[str, Path, str]]  # title, PNG, caption
    missing: list[str]  # what could not be drawn, and why


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #1f2328; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.92em; margin-top: 0.4em; }
.missing { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em 0.8em; border-radius: 6px; }
.meta { color: #57606a; }
"""


def write_html(path: Path, meta: str, sections: list[Section]) -> Path:
    """The page at ``path``: a title, ``meta`` (plain text: where the data came from), a contents list
    and the sections."""
    body = [
        "<h1>QuantumFlow analysis report</h1>",
        f'<p class="meta">{escape(meta)} Made {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}.</p>',
        "<ul>"
        + "".join(f'<li><a href="#{_anchor(s.heading)}">{escape(s.heading)}</a></li>' for s in sections)
        + "</ul>",
    ]
    for section in sections:
        body.append(f'<h2 id="{_anchor(section.heading)}">{escape(section.heading)}</h2>')
        for title, png, caption in section.figures:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            body.append(
                f'<figure data-testid="figure"><h3>{escape(title)}</h3>'
                f'<img alt="{escape(title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        body += [f'<p class="missing" data-testid="missing">{escape(what)}</p>' for what in section.missing]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>QuantumFlow analysis report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _anchor(heading: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in heading.lower())
