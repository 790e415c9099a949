"""Micro-price tables: fitted from a recording's book states, saved and loaded as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dataflows.batches import derive_offline
from dataflows.recordings import RecordingError
from operators.features.micro_price import MicroPriceTable, estimate_tick, fit_micro_price
from operators.instrument import Derived
from quantumflow.features import FEATURE_INDEX
from quantumflow.settings import micro_price_path

_COLUMNS = [FEATURE_INDEX[name] for name in ("mid", "spread")]


def fit_tables(
    paths: Sequence[str | Path], feed: str | None = None, on_progress: Callable[[int], None] | None = None
) -> dict[str, MicroPriceTable]:
    """One table per instrument, from the book states the flow sees replaying ``paths``."""
    columns: dict[str, list[np.ndarray]] = {}
    for derived in derive_offline(paths, feed, on_progress=on_progress):
        if type(derived) is Derived and len(derived.frame):
            frame = derived.frame
            columns.setdefault(derived.instrument, []).append(
                np.column_stack(
                    [
                        derived.features[:, _COLUMNS],
                        frame.bid_sizes[:, 0],
                        frame.ask_sizes[:, 0],
                        frame.bid_prices[:, 0],
                    ]
                )
            )
    tables = {}
    for instrument, parts in columns.items():
        mid, spread, bid_size, ask_size, bid = np.vstack(parts).T
        tick = estimate_tick(bid)
        tables[instrument] = fit_micro_price(mid, spread, bid_size, ask_size, tick)
    return tables


def save_tables(path: str | Path, tables: dict[str, MicroPriceTable]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: table.to_dict() for name, table in tables.items()}, indent=1))


def load_tables(path: str | Path | None) -> dict[str, MicroPriceTable]:
    """Tables from ``path``; with None, from ``settings.micro_price_path()`` if it exists, else none."""
    if path is None:
        path = micro_price_path()
        if not path.is_file():
            return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return {name: MicroPriceTable.from_dict(table) for name, table in data.items()}
    except FileNotFoundError:
        raise RecordingError(f"no micro-price table file at {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise RecordingError(f"{path}: not a micro-price table file: {error}") from None
