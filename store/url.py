"""Where the store is and how to reach it: the store URL, and the settings read from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from quantumflow.settings import data_dir
from store.base import StoreConfigError

FORMS = (
    "sqlite:///RELATIVE/PATH, sqlite:////ABSOLUTE/PATH, or questdb://HOST[:HTTP_PORT][?pg_port=N] "
    "(HTTP port 9000 and PG wire port 8812 by default)"
)
QUESTDB_HTTP_PORT = 9000
QUESTDB_PG_PORT = 8812
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 0.5


@dataclass(frozen=True)
class SQLiteLocation:
    path: Path  # absolute


@dataclass(frozen=True)
class QuestDBLocation:
    host: str
    http_port: int = QUESTDB_HTTP_PORT  # ILP over HTTP
    pg_port: int = QUESTDB_PG_PORT  # PostgreSQL wire protocol, for DDL and queries
    user: str = "admin"
    password: str = "quest"


def default_sqlite_path() -> Path:
    return data_dir() / "quantumflow.db"


def store_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``QF_STORE``, else ``quantumflow.db`` in the data folder."""
    return url or os.environ.get("QF_STORE") or f"sqlite:///{default_sqlite_path()}"


def parse_url(url: str) -> SQLiteLocation | QuestDBLocation:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("sqlite", "questdb"):
        raise _bad(url, "the scheme must be sqlite or questdb")
    return _sqlite(url, rest) if scheme == "sqlite" else _questdb(url)


def timeout_s() -> float:
    """Every query's time limit, in seconds: ``QF_STORE_TIMEOUT_S`` (default 5)."""
    return _seconds("QF_STORE_TIMEOUT_S", DEFAULT_TIMEOUT_S, allow_zero=False)


def retries() -> int:
    """How many times the flow retries a write the store refused before it stops: ``QF_STORE_RETRIES``
    (default 5; 0: stop at the first failure)."""
    text = os.environ.get("QF_STORE_RETRIES", "").strip()
    if not text:
        return DEFAULT_RETRIES
    if not text.isdigit() or int(text) > 1000:
        raise StoreConfigError(f"QF_STORE_RETRIES={text!r}: expected a whole number of retries from 0 to 1000")
    return int(text)


def backoff_s() -> float:
    """The wait before the first retry, in seconds, doubled before each next one: ``QF_STORE_BACKOFF_S``
    (default 0.5, so 5 retries span about 15 s)."""
    return _seconds("QF_STORE_BACKOFF_S", DEFAULT_BACKOFF_S, allow_zero=True)


def _seconds(name: str, default: float, allow_zero: bool) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < float("inf")):
        expected = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        raise StoreConfigError(f"{name}={text!r}: expected {expected}")
    return value


def _sqlite(url: str, rest: str) -> SQLiteLocation:
    if not rest.startswith("/"):
        raise _bad(url, "a sqlite URL has three slashes before a relative path and four before an absolute one")
    path = rest[1:]
    if not path:
        raise _bad(url, "no database file path")
    if "?" in path or "#" in path:
        raise _bad(url, "a sqlite URL takes no query or fragment")
    if path == ":memory:":
        raise _bad(url, "an in-memory database cannot be shared by the writers and readers")
    return SQLiteLocation(Path(path).expanduser().absolute())


def _questdb(url: str) -> QuestDBLocation:
    parts = urlsplit(url)
    if not parts.hostname:
        raise _bad(url, "no host")
    if parts.username is not None or parts.password is not None:
        raise _bad(url, "credentials go in QF_QUESTDB_USER and QF_QUESTDB_PASSWORD, not in the URL")
    if parts.path not in ("", "/") or parts.fragment:
        raise _bad(url, "a questdb URL has no path or fragment")
    try:
        http_port = QUESTDB_HTTP_PORT if parts.port is None else parts.port
    except ValueError:
        http_port = 0
    if not 0 < http_port < 65536:
        raise _bad(url, "the HTTP port must be a number from 1 to 65535")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad(url, "the query must be pg_port=N") from None
    unknown = set(query) - {"pg_port"}
    if unknown:
        raise _bad(url, f"unknown query parameter {sorted(unknown)[0]!r} (only pg_port is accepted)")
    pg_port = QUESTDB_PG_PORT
    if "pg_port" in query:
        values = query["pg_port"]
        if len(values) != 1 or not values[0].isdigit() or not 0 < int(values[0]) < 65536:
            raise _bad(url, "pg_port must be one number from 1 to 65535")
        pg_port = int(values[0])
    return QuestDBLocation(
        parts.hostname,
        http_port,
        pg_port,
        os.environ.get("QF_QUESTDB_USER") or "admin",
        os.environ.get("QF_QUESTDB_PASSWORD") or "quest",
    )


def _bad(url: str, what: str) -> StoreConfigError:
    shown = re.sub(r"//[^/@]*@", "//***@", url)  # never echo a password
    return StoreConfigError(f"bad store URL {shown!r}: {what}; accepted forms: {FORMS}")
