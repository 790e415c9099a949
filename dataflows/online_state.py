"""The online part of the models (the online learner and the ensemble's losses), saved per
instrument so that a restarted flow carries on learning where it stopped instead of starting cold.

One pickle per instrument under ``QF_ONLINE_STATE`` (default data/online_state/), and one for its
volatility forecaster (``models.volatility``, with or without direction models: ``*.volatility.pkl``), written
atomically (a temporary file renamed) by the flow's own output, ``OnlineStateSink``, from the
``OnlineState`` each instrument's keyed step emits at the end of its stream.

A saved state is never allowed to see a run's future: it records the last event it learned from
(the source, the instrument, the event's receive time and sequence id), and a run restores it
only when the run's first event of that instrument was received after that one. Otherwise (the
same recording run again, an earlier one, a state saved without that record) or when it was saved
for other models (other horizons, flat bands or model list), the instrument starts from the
checkpoints and the run warns, once per instrument.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from models.volatility import VOL_HORIZON_NAMES, VOL_MODELS, VolForecaster

if TYPE_CHECKING:  # a run without models imports no Torch
    from models.online import InstrumentPredictor

    Learner = InstrumentPredictor | VolForecaster

log = logging.getLogger(__name__)


class LastEvent(NamedTuple):
    """Where in the log an instrument's event is: its receive time (the order every source keeps)
    and the venue's sequence id, and the source it came from (recordings or a topic)."""

    source: dict
    receive_ns: int
    sequence: int | None


class OnlineState(NamedTuple):
    """An instrument's online state, as it stands when emitted, for the models it belongs to."""

    instrument: str
    models: dict  # what the state is only valid for: horizons and flat bands
    state: dict
    learned_up_to: LastEvent  # the last event the state has seen
    part: str = ""  # "volatility" for the volatility forecaster's state


def state_path(folder: Path, instrument: str, part: str = "") -> Path:
    return folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", instrument) + (f".{part}" if part else "") + ".pkl")


def _part(predictor: Learner) -> str:
    return "volatility" if isinstance(predictor, VolForecaster) else ""


def _identity(predictor: Learner) -> dict:
    if isinstance(predictor, VolForecaster):
        return {"horizons": list(VOL_HORIZON_NAMES), "models": list(VOL_MODELS)}
    bundle = predictor.bundle
    return {"horizons": [h.name for h in bundle.horizons], "thetas": bundle.thetas.tolist()}


def online_state(instrument: str, predictor: Learner, learned_up_to: LastEvent) -> OnlineState:
    return OnlineState(instrument, _identity(predictor), predictor.online_state(), learned_up_to, _part(predictor))


def save(folder: Path, online: OnlineState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = state_path(folder, online.instrument, online.part)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    saved = {"models": online.models, "state": online.state, "learned_up_to": online.learned_up_to._asdict()}
    temporary.write_bytes(pickle.dumps(saved))
    temporary.replace(path)


def restore(
    folder: Path,
    instrument: str,
    predictor: Learner,
    first: LastEvent,
    warn: Callable[[str], None] | None = None,
) -> bool:
    """Load the instrument's saved state into ``predictor`` if it learned from nothing at or after
    ``first``, the run's first event of the instrument; False, and ``warn`` told why (else the log),
    if there is no usable one."""
    part = _part(predictor)
    path = state_path(folder, instrument, part)
    if not path.is_file():
        return False
    try:
        saved = pickle.loads(path.read_bytes())
        if saved["models"] != _identity(predictor):
            raise ValueError("it was saved for other models (horizons or flat bands differ)")
        if "learned_up_to" not in saved:
            raise ValueError("it does not say what it learned from (saved by an older version)")
        learned = LastEvent(**saved["learned_up_to"])
        if first.receive_ns <= learned.receive_ns:
            raise ValueError(
                f"it learned from events up to {_iso(learned.receive_ns)} ({_describe(learned.source)}) and this "
                f"run starts at {_iso(first.receive_ns)}: its predictions would use what it learned of their future"
            )
        predictor.restore(saved["state"])
    except Exception as error:  # a state that cannot be used must not stop the flow: the learner starts afresh
        start = "starting afresh" if part else "starting from the checkpoints"
        message = f"{instrument}: not restoring the online state {path}: {error}; {start}"
        (log.warning if warn is None else warn)(message)
        return False
    return True


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _describe(source: dict) -> str:
    recordings = source.get("recordings")
    if recordings is not None:
        return "recordings " + ", ".join(Path(item["path"]).name for item in recordings)
    return ", ".join(f"{key} {value}" for key, value in source.items())


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
