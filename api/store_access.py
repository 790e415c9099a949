"""The API's way into the store: queries run in worker threads on pooled readers, so a slow query never
holds up the event loop, and a store that fails or times out becomes a 503 with a clear message."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import HTTPException

from store import Reader, Store, StoreError
from store.base import StoreTimeout
from store.url import timeout_s

T = TypeVar("T")
log = logging.getLogger("quantumflow.api")

QUERY_THREADS = 8  # concurrent store queries; each has its own reader (its own connection)


class StoreUnavailable(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(503, detail)


class StoreGateway:
    def __init__(self, store: Store, threads: int = QUERY_THREADS) -> None:
        self.store = store
        self._limiter = anyio.CapacityLimiter(threads)
        self._idle: list[Reader] = []
        self._generation = 0  # bumped by close(): a reader from an earlier generation is closed when released
        self._lock = threading.Lock()

    async def run(self, query: Callable[[Reader], T]) -> T:
        """``query(reader)`` in a worker thread; StoreError becomes StoreUnavailable."""
        return await anyio.to_thread.run_sync(self._call, query, limiter=self._limiter)

    def close(self) -> None:
        """Closes the idle readers now and each busy one when its query returns: closing a connection while
        another thread runs a query on it can crash the process. The gateway opens new readers if used again."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for reader in idle:
            reader.close()

    def _call(self, query: Callable[[Reader], T]) -> T:
        reader, generation = self._acquire()
        try:
            return query(reader)
        except StoreTimeout as error:
            log.warning("store query timed out: %s", error)
            raise StoreUnavailable(
                f"the store did not answer within {timeout_s():g} s (QF_STORE_TIMEOUT_S); try again later"
            ) from None
        except StoreError as error:
            log.warning("store query failed: %s", error)
            raise StoreUnavailable(f"the store cannot be queried: {_reason(error)}") from None
        finally:
            self._release(reader, generation)

    def _acquire(self) -> tuple[Reader, int]:
        with self._lock:
            generation = self._generation
            if self._idle:
                return self._idle.pop(), generation
        try:
            reader = self.store.reader()
        except Exception as error:  # sqlite3 and psycopg errors too: opening is all that can fail here
            log.warning("store reader cannot be opened: %s", error)
            raise StoreUnavailable(f"the store cannot be opened: {_reason(error)}") from None
        return reader, generation

    def _release(self, reader: Reader, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append(reader)
                return
        reader.close()


def _reason(error: Exception) -> str:
    """The first line of what went wrong, without the SQL (the server log has everything)."""
    cause = error.__cause__
    text = str(cause) if cause is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(cause or error).__name__
