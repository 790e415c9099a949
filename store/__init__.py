"""The store: QuestDB in production, SQLite embedded by default, behind one interface.

    store = open_store()              # argument, else $QF_STORE, else sqlite:///<project>/data/quantumflow.db
    store.check()                     # opens it and creates the tables, or StoreUnavailable saying why
    with store.writer() as w:         # batched, idempotent upserts by natural key
        w.write("features", rows)     # tuples in the column order of store.schema
    with store.reader() as r:
        r.latest("features", "binance:BTCUSDT", ["mid", "spread"])

See docs/store.md for the URL forms, the tables and their keys, and the QuestDB notes.
"""

from __future__ import annotations

from store.base import Reader, Store, StoreConfigError, StoreError, StoreUnavailable, Writer
from store.schema import TABLES, digest
from store.url import QuestDBLocation, parse_url, store_url


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (else ``QF_STORE``, else the default SQLite file). Opens no connection yet:
    a bad URL fails here (StoreConfigError), a store that cannot be used at ``check()`` or at the first
    write or query."""
    location = parse_url(store_url(url))
    if isinstance(location, QuestDBLocation):
        from store.questdb import QuestDBStore

        return QuestDBStore(location)
    from store.sqlite import SQLiteStore

    return SQLiteStore(location.path)


__all__ = [
    "TABLES",
    "Reader",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "Writer",
    "digest",
    "open_store",
]
