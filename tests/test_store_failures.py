"""A store that fails while the flow runs: the write is retried with backoff; when the store keeps
failing the flow stops (no Bytewax panic) keeping what it committed, says where it got to, and a
replay of the same recording completes the store. The failures are injected into the SQLite writer."""

from __future__ import annotations

import pytest

from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from dataflows.sink import StoreStopped
from simulator import simulate
from store import StoreError, open_store
from store.schema import TABLES
from store.sqlite import SQLiteWriter

COMPARED = ("features", "book", "trades", "resyncs", "dead_letters")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulated")
    simulate(folder, seed=7, minutes=1)
    return folder


@pytest.fixture(scope="module")
def clean(recording, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('clean') / 'clean.db'}"
    run_flow(RunSettings((recording,), store=url, predictions=False))
    return url


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("QF_STORE_RETRIES", "2")
    monkeypatch.setenv("QF_STORE_BACKOFF_S", "0")


def failing_writes(monkeypatch, fail_from: int, fail_count: int | None = None) -> list[int]:
    """Make every SQLite batch write from the ``fail_from``-th on fail (only ``fail_count`` of them, if
    given); the list holds the failures so far."""
    write_tables = SQLiteWriter._write_tables  # each transaction of a writer
    calls, failures = [0], []

    def write(self, tables):
        calls[0] += 1
        if calls[0] >= fail_from and (fail_count is None or len(failures) < fail_count):
            failures.append(calls[0])
            raise StoreError("disk I/O error (injected)")
        return write_tables(self, tables)

    monkeypatch.setattr(SQLiteWriter, "_write_tables", write)
    return failures


def rows(url: str, table: str) -> list[dict]:
    with open_store(url).reader() as reader:
        return reader.rows(table)


def test_a_store_failing_for_a_moment_is_retried_and_nothing_is_lost(recording, clean, tmp_path, monkeypatch):
    failures = failing_writes(monkeypatch, fail_from=10, fail_count=2)  # two failures: within the 2 retries
    url = f"sqlite:///{tmp_path / 'flaky.db'}"
    summary = run_flow(RunSettings((recording,), store=url, predictions=False))
    assert len(failures) == 2
    assert summary.rows["features"] == len(rows(clean, "features"))
    for table in COMPARED:
        assert rows(url, table) == rows(clean, table), table


@pytest.mark.parametrize("workers", [1, 2])
def test_a_store_that_keeps_failing_stops_the_flow_keeping_what_it_committed(
    recording, clean, tmp_path, monkeypatch, workers
):
    failures = failing_writes(monkeypatch, fail_from=6)
    url = f"sqlite:///{tmp_path / 'failing.db'}"
    with pytest.raises(StoreStopped) as caught:
        run_flow(RunSettings((recording,), store=url, workers=workers, predictions=False))
    stopped = caught.value
    if workers == 1:
        assert len(failures) == 3  # the first try and 2 retries, then no more writes
    message = str(stopped)
    assert message.startswith(f"store {url} failed while the flow ran (disk I/O error (injected); 3 tries)")
    assert "replaying the same recordings again is safe" in message and "\n" not in message
    assert isinstance(stopped.__cause__, StoreError)

    # It stopped early, and everything it says it committed is in the store, as a clean run wrote it.
    assert stopped.events > 0
    assert set(stopped.committed) == {"binance:BTCUSDT", "coinbase:BTC-USD"}
    kept = {table: rows(url, table) for table in COMPARED}
    clean_features = {(row["instrument"], row["ts"], row["seq"]): row for row in rows(clean, "features")}
    assert 0 < len(kept["features"]) < len(clean_features)
    assert all(clean_features[row["instrument"], row["ts"], row["seq"]] == row for row in kept["features"])
    for instrument, ts in stopped.committed.items():
        stored = [
            row["ts"]
            for t in COMPARED
            if TABLES[t].per_instrument
            for row in kept[t]
            if row["instrument"] == instrument
        ]
        assert ts <= max(stored)

    # Replaying the same recording, with the store working again, completes it.
    monkeypatch.undo()
    run_flow(RunSettings((recording,), store=url, predictions=False))
    for table in COMPARED:
        assert rows(url, table) == rows(clean, table), table
