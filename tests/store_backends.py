"""Empty stores of each backend for the store's behaviour tests: a new SQLite file, or the QuestDB server
at ``QF_TEST_QUESTDB`` (``host:port``, the ILP/HTTP port; PG wire on 8812 unless ``?pg_port=N`` follows)
with the store's tables dropped. Such a server is for tests only: every test empties it.

QuestDB's WAL tables apply commits asynchronously, so a row flushed a moment ago may not be visible yet;
a QuestDB store here gives readers that first wait until every committed transaction is applied."""

from __future__ import annotations

import os
import time
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from store import open_store
from store.base import Reader, Store, Writer
from store.schema import TABLES
from store.url import QuestDBLocation, parse_url

BACKENDS = ("sqlite", "questdb")
QUESTDB_VARIABLE = "QF_TEST_QUESTDB"
WAL_WAIT_S = 60  # a guard against a suspended table, not a measurement
_files = count()


def empty_store_url(backend: str, folder: Path) -> str:
    """The URL of an empty store of ``backend``; skips the test when that backend is not available."""
    if backend == "sqlite":
        return f"sqlite:///{folder / f'store{next(_files)}.db'}"
    server = os.environ.get(QUESTDB_VARIABLE)
    if not server:
        pytest.skip(f"no QuestDB server to test against: set {QUESTDB_VARIABLE}=host:port (its tables are dropped)")
    url = f"questdb://{server}"
    pg = _pg(url)
    try:
        for name in TABLES:
            pg.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        pg.close()
    return url


def open_visible(url: str) -> Store:
    """The store at ``url``; for QuestDB, one whose readers see every row flushed before each query."""
    store = open_store(url)
    return store if url.startswith("sqlite") else _Settled(store)


def _pg(url: str) -> Any:
    """A PG-wire connection to the QuestDB server at ``url``, for what the store itself never does."""
    from store.questdb import PG

    location = parse_url(url)
    assert isinstance(location, QuestDBLocation)
    return PG(location, 30.0)


def wait_for_wal(pg: Any) -> None:
    """Until every WAL table has applied what its sequencer committed (``writerTxn == sequencerTxn``)."""
    deadline = time.monotonic() + WAL_WAIT_S
    while True:
        tables = pg.execute("SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables()")
        suspended = [name for name, stopped, _, _ in tables if stopped]
        assert not suspended, f"QuestDB suspended the WAL of {suspended}"
        if all(applied == committed for _, _, applied, committed in tables):
            return
        assert time.monotonic() < deadline, f"QuestDB did not apply its WAL in {WAL_WAIT_S} s: {tables}"
        time.sleep(0.02)


class _Settled(Store):
    def __init__(self, store: Store) -> None:
        self._store = store
        self.url = store.url

    def writer(self, batch_rows: int = 10_000, max_delay_s: float = 1.0) -> Writer:
        return self._store.writer(batch_rows, max_delay_s)

    def reader(self) -> Reader:
        return _SettledReader(self._store.reader(), self.url)


class _SettledReader:
    """A reader whose every query waits for the WAL first."""

    def __init__(self, reader: Reader, url: str) -> None:
        self._reader = reader
        self._admin = _pg(url)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._reader, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def settled(*args: Any, **kwargs: Any) -> Any:
            wait_for_wal(self._admin)
            return attribute(*args, **kwargs)

        return settled

    def close(self) -> None:
        self._reader.close()
        self._admin.close()

    def __enter__(self) -> _SettledReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
