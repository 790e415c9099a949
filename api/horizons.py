"""Prediction horizons in the API: their order (the models'), and the 422 for a horizon an instrument has none of."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from api.errors import invalid
from quantumflow.horizons import horizon_order
from store import Reader

KEEP_S = 10.0  # how long an instrument's stored horizons are kept before they are read again


def in_horizon_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered by (ts, seq), each event's horizons in the models' order."""
    return sorted(rows, key=lambda row: (row["ts"], row["seq"], horizon_order(row["horizon"])))


class StoredHorizons:
    """Checks the horizons a request names against those the instrument's predictions have. Reading them all
    scans the instrument's predictions, so that answer is kept KEEP_S seconds, and it is read only when a
    horizon is in neither the answer at hand nor the instrument's latest predicted event."""

    def __init__(self, keep_s: float = KEEP_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self._clock = clock
        self._kept: dict[str, tuple[float, list[str]]] = {}  # only instruments with predictions, so it stays small
        self._lock = threading.Lock()

    def check(self, reader: Reader, instrument: str, asked: Sequence[str] | None, seen: set[str]) -> None:
        """A 422 naming the instrument's horizons if one ``asked`` for is none of them; ``seen``: horizons the
        query already found. Nothing to check for an instrument without predictions (or an unknown one)."""
        missing = [h for h in dict.fromkeys(asked or ()) if h not in seen]
        if missing:
            latest = {row["horizon"] for row in reader.latest_predictions(instrument)}
            missing = [h for h in missing if h not in latest]
        if not missing:
            return
        stored = self.stored(reader, instrument)
        unknown = [h for h in missing if h not in stored]
        if unknown and stored:
            raise invalid(
                "query",
                "horizon",
                f"no predictions of horizon {', '.join(unknown)} for {instrument}; "
                f"its horizons are {', '.join(stored)}",
                list(asked or ()),
            )

    def stored(self, reader: Reader, instrument: str) -> list[str]:
        """The instrument's stored horizons in the models' order, read again once kept KEEP_S seconds."""
        now = self._clock()
        with self._lock:
            kept = self._kept.get(instrument)
        if kept is not None and now - kept[0] < self.keep_s:
            return kept[1]
        names = sorted(reader.horizons(instrument), key=horizon_order)
        if names:
            with self._lock:
                self._kept[instrument] = (now, names)
        return names
