"""Digests of every row the flow derives (features, book, trades, resyncs, dead letters) per
recording, so that a faster hot path can be held to give exactly today's rows, bit for bit.

``PYTHONPATH=.:tests python -m tests.golden_rows`` writes ``tests/golden/rows.json`` from the code
as it is; the test compares the code as it becomes against that file. A float's ``repr`` is exact
(the shortest text that reads back as the same double), so equal digests mean equal rows."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from dataflows.batches import derive_offline
from dataflows.rows import TableRows, derived_rows
from operators.instrument import Derived
from quantumflow.settings import shared_data_dir
from simulator import simulate

GOLDEN = Path(__file__).parent / "golden" / "rows.json"
TABLES = ("features", "book", "trades", "resyncs", "dead_letters")
# Every market recording in the shared data, by its path there (a LOBSTER pair by its folder; the
# 08-09 Binance recordings have no snapshot of their own, so they follow their 08-08 ones).
RECORDINGS = (
    "binance/spot_btcusdt_20240808.gz",
    "binance/spot_btcusdt_20240808.gz+binance/spot_btcusdt_20240809.gz",
    "binance/usdm_btcusdt_20240808.gz",
    "binance/cm_btcusd_perp_20240808.gz",
    "binance/cm_btcusd_perp_20240808.gz+binance/cm_btcusd_perp_20240809.gz",
    "coinbase/COINBASE.ws.28.0",
    "kraken/KRAKEN.ws.50.0",
    "lobster",
)
SIMULATED = "simulated seed 7, 2 minutes with faults"


def row_digests(paths: list[Path], batch_messages: int = 1_000) -> dict[str, str]:
    """sha256 of each table's rows with their count. Rows are hashed per instrument (a row's first
    column) in the order the flow writes them; instruments interleave as the stream is cut."""
    hashes: dict[tuple[str, object], hashlib._Hash] = {}
    counts = dict.fromkeys(TABLES, 0)
    for item in derive_offline(paths, batch_messages=batch_messages):
        rows = derived_rows(item, 0, 0) if type(item) is Derived else item
        assert isinstance(rows, TableRows)
        for table in TABLES:
            for row in rows.tables.get(table, ()):
                key = (table, str(row[0]))
                if key not in hashes:
                    hashes[key] = hashlib.sha256()
                hashes[key].update(repr(tuple(row)).encode())  # a row's values, list or tuple
                counts[table] += 1
    digests = {}
    for table in TABLES:
        combined = hashlib.sha256()
        for key in sorted(key for key in hashes if key[0] == table):
            combined.update(f"{key[1]}:{hashes[key].hexdigest()}".encode())
        digests[table] = f"{counts[table]}:{combined.hexdigest()}"
    return digests


def shared_paths(shared: Path, name: str) -> list[Path]:
    return [shared / part for part in name.split("+")]


def simulated(folder: Path) -> Path:
    simulate(folder, seed=7, minutes=2, faults=True)
    return folder


def main() -> None:
    shared = shared_data_dir()
    golden: dict[str, dict[str, str]] = {}
    for name in RECORDINGS:
        print(name, file=sys.stderr)
        golden[name] = row_digests(shared_paths(shared, name))
    with tempfile.TemporaryDirectory() as scratch:
        golden[SIMULATED] = row_digests([simulated(Path(scratch))])
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
