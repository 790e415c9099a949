"""What the models were trained on, against what a run replays: models trained on the simulator,
or on another instrument, still predict, but the run says so, once per instrument."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from dataflows.sources import recording_paths
from simulator.output import simulated_instrument

SIMULATED, RECORDED = "simulated", "recorded"

log = logging.getLogger(__name__)


def simulated_instruments(recordings: Sequence[str | Path]) -> set[str]:
    """The instruments of the recordings that the simulator wrote."""
    return {name for path in recording_paths(recordings) if (name := simulated_instrument(path)) is not None}


def instrument_sources(instruments: Sequence[str], recordings: Sequence[str | Path]) -> dict[str, str]:
    """Each instrument and where its events came from (``SIMULATED`` or ``RECORDED``)."""
    simulated = simulated_instruments(recordings)
    return {instrument: SIMULATED if instrument in simulated else RECORDED for instrument in instruments}


def describe(instrument: str, source: str) -> str:
    return f"{source} {instrument}"


class ProvenanceCheck:
    """Called with each instrument the run meets; warns (log and ``on_warning``) the first time
    an instrument or its source is not what the models were trained on."""

    def __init__(
        self,
        trained_on: dict[str, str],
        models: Path,
        simulated: set[str],
        on_warning: Callable[[str], None] | None = None,
        live: bool = False,
    ) -> None:
        self.trained_on = trained_on  # instrument -> source
        self.models = models
        self.simulated = simulated
        self.on_warning = on_warning
        self.live = live  # the run reads the venues: its instruments' events are real, as recorded ones are
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # the workers of a process share the check

    def __call__(self, instrument: str) -> None:
        source = SIMULATED if instrument in self.simulated else RECORDED
        if self.trained_on.get(instrument) == source:
            return
        with self._lock:
            if instrument in self._warned:
                return
            self._warned.add(instrument)
        trained = ", ".join(describe(name, kind) for name, kind in sorted(self.trained_on.items()))
        message = (
            f"{describe(instrument, 'live' if self.live else source)} is predicted by the models in {self.models}, "
            f"trained on {trained}: "
            "its predictions may not hold (train on its recordings with 'quantumflow train')"
        )
        (log.warning if self.on_warning is None else self.on_warning)(message)
