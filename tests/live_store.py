"""A store filled as the main job fills it (the simulated minute replayed with models), for the live dashboard's
tests, and a book row to append to it."""

from __future__ import annotations

from pathlib import Path

from pipeline_runs import replay

from store import open_store
from store.schema import TABLES


def filled_store(recording: Path, models: Path, folder: Path) -> str:
    """The URL of a new SQLite store holding ``recording`` replayed with ``models``."""
    url = f"sqlite:///{folder / 'store.db'}"
    replay(sorted(recording.glob("*.gz")), url, models=models, online_state=folder / "online")
    return url


def append_book(url: str, instrument: str, bid: float, after_ns: int = 1_000_000) -> dict:
    """A copy of the instrument's latest book row, ``after_ns`` later, its best bid moved to ``bid``; written."""
    with open_store(url).reader() as reader:
        row = reader.latest("book", instrument)
    row = {**row, "ts": row["ts"] + after_ns, "seq": row["seq"] + 1, "bid_price_1": bid}
    with open_store(url).writer() as writer:
        writer.write("book", [tuple(row[name] for name in TABLES["book"].names)])
    return row
