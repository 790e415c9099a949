"""How long `quantumflow run` takes to get going without models, each figure from fresh processes.

- import: a fresh interpreter importing what a run needs (the command line and the flow) until it
  could start, interpreter start-up not included.
- before the flow: a whole `quantumflow run HEAD --store sqlite:///... --json` without models (an
  empty models folder), its wall time less the seconds the flow itself ran (``RunSummary.seconds``,
  from just before Bytewax starts to its end): imports, the store's check, building the flow.
- whole run: that command's wall time, on the first lines of a recording.

Medians of several runs; the machine's load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.kafka import head_of

IMPORT_RUN_PATH = (
    "import time; started = time.perf_counter(); import cli.main, dataflows.run, store; "
    "print(time.perf_counter() - started)"
)


@dataclass
class StartupBench:
    recording: str
    head_messages: int
    repeats: int
    import_s: float
    before_flow_s: float
    whole_run_s: float
    flow_s: float
    load_before: str
    load_after: str

    def to_dict(self) -> dict:
        return asdict(self)


def import_seconds() -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT_RUN_PATH], capture_output=True, text=True, check=True)
    return float(out.stdout)


def run_seconds(head: Path, folder: Path) -> tuple[float, float]:
    """(wall time, the flow's own seconds) of a `quantumflow run` of ``head`` without models, in a fresh store."""
    store = folder / "startup.db"
    store.unlink(missing_ok=True)
    env = {**os.environ, "QF_MODELS_DIR": str(folder / "no_models"), "QF_ONLINE_STATE": str(folder / "state")}
    command = [sys.executable, "-m", "cli.main", "run", str(head), "--store", f"sqlite:///{store}", "--json"]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - started
    return wall, json.loads(out.stdout)["seconds"]


def bench_startup(recording: Path, head_lines: int, repeats: int) -> StartupBench:
    load_before = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "no_models").mkdir()
        head = head_of(recording, head_lines, folder)
        imports, runs = [], []
        for _ in range(repeats):  # alternately, so that a busy spell of the machine falls on both
            imports.append(import_seconds())
            runs.append(run_seconds(head, folder))
            shutil.rmtree(folder / "state", ignore_errors=True)
    load_after = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"
    return StartupBench(
        str(recording),
        head_lines,
        repeats,
        statistics.median(imports),
        statistics.median(wall - flow for wall, flow in runs),
        statistics.median(wall for wall, _ in runs),
        statistics.median(flow for _, flow in runs),
        load_before,
        load_after,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--head", type=int, default=1_000, help="lines of the recording the run replays")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = bench_startup(args.recording, args.head, args.repeats)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"recording: {result.recording}, its first {result.head_messages:,} lines; no models, SQLite")
    print(f"import of the run path (cli.main, dataflows.run, store): {result.import_s:.2f} s")
    print(
        f"quantumflow run: {result.whole_run_s:.2f} s in all, {result.before_flow_s:.2f} s of it before the flow "
        f"starts, the flow {result.flow_s:.2f} s"
    )
    print(f"median of {result.repeats} runs each; load average before {result.load_before}, after {result.load_after}")


if __name__ == "__main__":
    main()
