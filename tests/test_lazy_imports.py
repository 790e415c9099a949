"""A run without models does not import the models' stack (Torch, River, SciPy): importing them costs
a short run more than the run itself. Each check is a fresh interpreter, whose modules say what ran."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

HEAVY = ("torch", "river", "scipy")
PROBE = "import sys; {code}; print(sorted(name for name in {heavy} if name in sys.modules))"


def heavy_imports(code: str, env: dict[str, str] | None = None) -> list[str]:
    """Which of HEAVY are imported once ``code`` has run in a fresh interpreter (its last line of output)."""
    probe = PROBE.format(code=code, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    )
    return json.loads(out.stdout.splitlines()[-1].replace("'", '"'))


@pytest.mark.parametrize("module", ["cli.main", "dataflows.predict", "dataflows.run", "store"])
def test_the_run_path_imports_no_model_stack(module):
    assert heavy_imports(f"import {module}") == []


def test_the_probe_sees_the_model_stack():
    assert heavy_imports("import models.online") == ["scipy", "torch"]


def test_a_run_without_models_imports_no_model_stack(simulated_recording, tmp_path):
    run = (
        "from cli.main import app; "
        f"app(['run', {str(simulated_recording)!r}, '--store', 'sqlite:///{tmp_path}/store.db', '--json'], "
        "standalone_mode=False)"
    )
    assert heavy_imports(run, {"QF_MODELS_DIR": str(tmp_path / "no_models"), "TQDM_DISABLE": "1"}) == []
    with sqlite3.connect(tmp_path / "store.db") as store:
        assert store.execute("SELECT count(*) FROM features").fetchone()[0] > 0
