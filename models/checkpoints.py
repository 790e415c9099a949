"""What a models folder holds, known without loading it (and without Torch): the names of its files,
whether a folder holds trained models, and the error for one that cannot be used. ``models.bundle``
writes and loads such folders."""

from __future__ import annotations

from pathlib import Path

BAYES_FILE = "bayes.pkl"
MANIFEST = "manifest.json"


class CheckpointError(Exception):
    """A models folder that is missing, incomplete or inconsistent (the message says which)."""


class NoCheckpoints(CheckpointError):
    """No trained models where they were looked for: no such folder, a file, or a folder without them."""


def has_checkpoints(folder: Path) -> bool:
    """Whether ``folder`` holds a trained models folder (at least one network and the online learner)."""
    return any(folder.glob("*.pt")) and (folder / BAYES_FILE).is_file()


def require_checkpoints(folder: Path) -> None:
    """Raise ``NoCheckpoints`` saying what is wrong when ``folder`` holds no trained models."""
    if not folder.exists():
        raise NoCheckpoints(f"{folder}: no such folder of trained models")
    if not folder.is_dir():
        raise NoCheckpoints(f"{folder} is a file: give the folder trained models are in")
    if not has_checkpoints(folder):
        raise NoCheckpoints(f"no trained models in {folder}: run `quantumflow train RECORDING --out {folder}`")
