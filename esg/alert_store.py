"""Alerts kept in a SQLite file: ``$QF_ESG_DB``, else ``esg_alerts.sqlite`` in the data folder (``QF_DATA_DIR``).

Each alert's natural key is (company, headline time, headline), so storing the same scan twice leaves
one row per alert (``INSERT OR REPLACE``), as every QuantumFlow sink does.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from esg.sentiment import Alert
from quantumflow.settings import data_dir

DB_ENV = "QF_ESG_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS esg_alerts (
    company_id TEXT NOT NULL,
    timestamp_ns INTEGER NOT NULL,
    headline TEXT NOT NULL,
    company_name TEXT NOT NULL,
    source TEXT NOT NULL,
    compound REAL NOT NULL,
    PRIMARY KEY (company_id, timestamp_ns, headline)
)
"""
_COLUMNS = ("company_id", "company_name", "timestamp_ns", "headline", "source", "compound")


def db_path() -> Path:
    """Where alerts are stored: ``$QF_ESG_DB`` if set, else ``esg_alerts.sqlite`` in the data folder."""
    return Path(os.environ.get(DB_ENV) or data_dir() / "esg_alerts.sqlite")


class AlertStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def save(self, alerts: list[Alert]) -> None:
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO esg_alerts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [tuple(getattr(a, c) for c in _COLUMNS) for a in alerts],
            )

    def recent(self, limit: int = 200) -> list[Alert]:
        """The newest alerts first."""
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM esg_alerts ORDER BY timestamp_ns DESC, company_id LIMIT ?", (limit,)
        )
        return [Alert(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
