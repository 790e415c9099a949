"""Writing a simulated recording: one native recording file per connection, and the manifest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import NamedTuple

MANIFEST = "manifest.json"
GENERATOR = "quantumflow simulate"  # the manifest's ``generator``: this simulator wrote the files


class RecordedFile(NamedTuple):
    """What a recorder wrote for one connection: ``(receive ns, message)`` lines, in receive order."""

    name: str
    feed: str  # as ``operators.feeds.FEEDS`` names it
    instrument: str
    channels: list[str]
    lines: list[tuple[int, bytes]]


def write_recording(path: Path, lines: list[tuple[int, bytes]], compress: bool) -> None:
    """``<receive ns> <message>`` lines; gzip without a name or time in its header, so the same
    lines always give the same bytes."""
    data = b"".join(b"%d %s\n" % line for line in lines)
    path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if compress else data)


def write_manifest(out_dir: Path, files: list[RecordedFile], **facts) -> Path:
    """``manifest.json``: ``facts`` (seed, arguments, times, faults...), then each file."""
    listed = [
        {"file": f.name, "feed": f.feed, "instrument": f.instrument, "channels": f.channels, "messages": len(f.lines)}
        for f in files
    ]
    path = out_dir / MANIFEST
    path.write_text(json.dumps({**facts, "files": listed}, indent=2) + "\n")
    return path


def simulated_instrument(path: Path) -> str | None:
    """The instrument of ``path`` if it is a recording file this simulator wrote (listed in the
    manifest beside it), else None."""
    try:
        manifest = json.loads((path.parent / MANIFEST).read_text())
        if manifest.get("generator") != GENERATOR:
            return None
        return next((f["instrument"] for f in manifest["files"] if f["file"] == path.name), None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no manifest, or not one of ours
        return None
