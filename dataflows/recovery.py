"""Bytewax recovery for the predict flow: a folder of snapshots that a killed run resumes from.

Bytewax snapshots the source's position (for a replay, the count of messages emitted) and every
instrument's keyed state (book, feature windows, pending labels, online learner, ensemble) together
at the close of each epoch, into SQLite partitions in the folder; a restart resumes from the last
complete snapshot and replays the messages after it, whose rows the store upserts over the ones
already written. The folder is made on first use, with ``manifest.json`` saying what run it
belongs to (the flow, the worker count, the recordings, the store and the models) and the format of
its snapshots; a folder made for another run, or by a version whose snapshots this one cannot read,
is refused, naming what differs, rather than resumed into wrong state.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir

MANIFEST = "manifest.json"
FLOW = "predict"
SNAPSHOT_INTERVAL_S = 1.0  # default: a resumed run replays at most about this much of the stream
# What the snapshots pickle (the keyed states' classes and their fields): raise it with any change to
# them, so that a folder of an older version is refused in one line instead of failing to unpickle.
SNAPSHOT_FORMAT = 2


class RecoveryMismatch(ValueError):
    """A recovery folder that belongs to another run, or that is not a recovery folder."""


def recovery_config(
    folder: str | Path,
    workers: int,
    belongs_to: dict,
    snapshot_interval_s: float = SNAPSHOT_INTERVAL_S,
) -> tuple[RecoveryConfig, timedelta]:
    """The recovery config for a run of ``workers`` workers in all, and its epoch (snapshot)
    interval. ``belongs_to`` says what run the folder is for (``source``, ``store``, ``models``...);
    a new folder is made and initialised with one partition per worker, an existing one must have
    been made for the same run, else RecoveryMismatch."""
    folder = Path(folder)
    manifest = {"flow": FLOW, "snapshot_format": SNAPSHOT_FORMAT, "workers": workers, **belongs_to}
    check(folder, manifest)
    if not (folder / MANIFEST).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        init_db_dir(folder, workers)
        temporary = folder / f".{MANIFEST}.tmp"
        temporary.write_text(json.dumps(manifest, indent=2))
        temporary.replace(folder / MANIFEST)  # written last: a folder with a manifest is initialised
    return RecoveryConfig(folder), timedelta(seconds=snapshot_interval_s)


def check(folder: Path, manifest: dict) -> None:
    """RecoveryMismatch if ``folder`` holds anything but a recovery folder made for ``manifest``'s run."""
    path = folder / MANIFEST
    if not path.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise RecoveryMismatch(
                f"recovery folder {folder} is not empty and has no {MANIFEST}: not a QuantumFlow recovery folder "
                "(give an empty or new folder)"
            )
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RecoveryMismatch(f"recovery folder {folder}: cannot read {MANIFEST} ({error})") from error
    theirs, ours = found.get("snapshot_format", 1), manifest["snapshot_format"]
    if theirs != ours:  # before the rest: the other keys may have changed with the format
        raise RecoveryMismatch(
            f"recovery folder {folder} holds snapshots of another QuantumFlow version (their format {theirs}, "
            f"this version's {ours}): give a new folder"
        )
    for key, expected in manifest.items():
        if found.get(key) != expected:
            raise RecoveryMismatch(
                f"recovery folder {folder} belongs to another run: its {key}: {_show(found.get(key))}; "
                f"this run's: {_show(expected)} (resume with the same settings, or give a new folder)"
            )


def finished(folder: str | Path) -> bool:
    """Whether the run of the recovery folder ran to its end (then a run resuming it has nothing left to do)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("finished", False)
    except (OSError, ValueError):
        return False


def mark_finished(folder: str | Path) -> None:
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text())
    temporary = path.with_name(f".{MANIFEST}.tmp")
    temporary.write_text(json.dumps({**manifest, "finished": True}, indent=2))
    temporary.replace(path)


def _show(value: object) -> str:
    if isinstance(value, dict) and "recordings" in value:
        return "recordings " + ", ".join(f"{item['path']} ({item['size']:,} bytes)" for item in value["recordings"])
    return json.dumps(value)
