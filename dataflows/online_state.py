"""The online part of the models (the online learner and the ensemble's losses), saved per
instrument so that a restarted flow carries on learning where it stopped instead of starting cold.

One pickle per instrument under ``QF_ONLINE_STATE`` (default data/online_state/), written
atomically (a temporary file renamed) by the flow's own output, ``OnlineStateSink``, from the
``OnlineState`` each instrument's keyed step emits at the end of its stream. A state saved for
other models (other horizons, flat bands or model list) is not restored: the flow starts that
instrument afresh and says why.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path
from typing import NamedTuple

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from models.online import InstrumentPredictor

log = logging.getLogger(__name__)


class OnlineState(NamedTuple):
    """An instrument's online state, as it stands when emitted, for the models it belongs to."""

    instrument: str
    models: dict  # what the state is only valid for: horizons and flat bands
    state: dict


def state_path(folder: Path, instrument: str) -> Path:
    return folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", instrument) + ".pkl")


def _identity(predictor: InstrumentPredictor) -> dict:
    bundle = predictor.bundle
    return {"horizons": [h.name for h in bundle.horizons], "thetas": bundle.thetas.tolist()}


def online_state(instrument: str, predictor: InstrumentPredictor) -> OnlineState:
    return OnlineState(instrument, _identity(predictor), predictor.online_state())


def save(folder: Path, online: OnlineState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = state_path(folder, online.instrument)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(pickle.dumps({"models": online.models, "state": online.state}))
    temporary.replace(path)


def restore(folder: Path, instrument: str, predictor: InstrumentPredictor) -> bool:
    """Load the instrument's saved state into ``predictor``; False (with a warning) if there is
    none usable."""
    path = state_path(folder, instrument)
    if not path.is_file():
        return False
    try:
        saved = pickle.loads(path.read_bytes())
        if saved["models"] != _identity(predictor):
            raise ValueError("it was saved for other models (horizons or flat bands differ)")
        predictor.restore(saved["state"])
    except Exception as error:  # a bad state file must not stop the flow: the learner starts afresh
        log.warning("not restoring %s: %s", path, error)
        return False
    return True


class OnlineStateSink(DynamicSink[OnlineState]):
    """Saves each ``OnlineState`` that reaches it into ``folder`` (on the worker that made it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SavePartition:
        return _SavePartition(self.folder)


class _SavePartition(StatelessSinkPartition[OnlineState]):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write_batch(self, items: list[OnlineState]) -> None:
        for online in items:
            save(self.folder, online)
