"""Prediction horizons: a number of book events (``"50"``) or a time (``"10s"``, ``"500ms"``), by name.

A domain type of the lowest layer, so that the store and the API can order horizons as the flow
names them; what a horizon's label means is ``operators.labels``'.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_HORIZON = re.compile(r"(\d+)(ms|s)?\Z")


class Horizon(NamedTuple):
    name: str
    events: int = 0  # > 0 for an event horizon
    ns: int = 0  # > 0 for a time horizon

    @classmethod
    def parse(cls, text: str) -> Horizon:
        """``"50"`` is 50 events, ``"10s"`` ten seconds, ``"500ms"`` half a second."""
        match = _HORIZON.match(text.strip())
        if not match or int(match[1]) <= 0:
            raise ValueError(f"bad horizon {text!r}: give a number of events (50) or a time (10s, 500ms)")
        count, unit = int(match[1]), match[2]
        if unit is None:
            return cls(str(count), events=count)
        return cls(f"{count}{unit}", ns=count * (1_000_000 if unit == "ms" else 1_000_000_000))


def parse_horizons(text: str) -> list[Horizon]:
    horizons = [Horizon.parse(part) for part in text.split(",") if part.strip()]
    names = [h.name for h in horizons]
    if not horizons or len(set(names)) != len(names):
        raise ValueError(f"bad horizons {text!r}: give distinct horizons separated by commas, e.g. 10,50,100,1s")
    return horizons


def horizon_order(name: str) -> tuple[int, int, str]:
    """Sort key: event horizons by their count, then time horizons by their length (the models' order, as in
    10, 50, 100, 500ms, 1s, 10s); a name that is no horizon last."""
    try:
        horizon = Horizon.parse(name)
    except ValueError:
        return 2, 0, name
    return (0, horizon.events, name) if horizon.events else (1, horizon.ns, name)
