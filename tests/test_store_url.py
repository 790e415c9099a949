"""Choosing a store: URL forms, the environment, and the schema's shared definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import StoreConfigError, StoreError, digest, open_store
from store.questdb import QuestDBStore
from store.schema import FEATURE_NAMES, FEATURES, TABLES
from store.sqlite import SQLiteStore
from store.url import QuestDBLocation, default_sqlite_path, parse_url, store_url, timeout_s


def test_the_url_comes_from_the_argument_then_qf_store_then_the_default(monkeypatch):
    monkeypatch.delenv("QF_STORE", raising=False)
    monkeypatch.delenv("QF_DATA_DIR", raising=False)
    assert store_url() == f"sqlite:///{default_sqlite_path()}"
    assert Path(__file__).resolve().parents[1] / "data" / "quantumflow.db" == default_sqlite_path()
    monkeypatch.setenv("QF_STORE", "questdb://env-host")
    assert store_url() == "questdb://env-host"
    assert store_url("sqlite:///x.db") == "sqlite:///x.db"
    assert isinstance(open_store(), QuestDBStore)


def test_sqlite_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///data/q.db").path == tmp_path / "data" / "q.db"  # relative to the working folder
    assert parse_url(f"sqlite:///{tmp_path}/abs.db").path == tmp_path / "abs.db"  # four slashes: absolute
    assert parse_url("sqlite:////var/q.db").path == Path("/var/q.db")
    store = open_store("sqlite:///nested/folder/q.db")
    assert isinstance(store, SQLiteStore) and not (tmp_path / "nested").exists()  # nothing made before it is used
    store.check()
    assert (tmp_path / "nested" / "folder" / "q.db").is_file()
    assert store.url == f"sqlite:///{tmp_path}/nested/folder/q.db"


def test_questdb_urls(monkeypatch):
    monkeypatch.delenv("QF_QUESTDB_USER", raising=False)
    monkeypatch.delenv("QF_QUESTDB_PASSWORD", raising=False)
    assert parse_url("questdb://localhost") == QuestDBLocation("localhost", 9000, 8812, "admin", "quest")
    assert parse_url("questdb://10.0.0.5:9001/?pg_port=5432") == QuestDBLocation("10.0.0.5", 9001, 5432)
    assert parse_url("questdb://[::1]:9000").host == "::1"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgres://localhost", "scheme must be sqlite or questdb"),
        ("sqlite.db", "scheme must be sqlite or questdb"),
        ("sqlite://", "three slashes"),
        ("sqlite://data/x.db", "three slashes"),
        ("sqlite:///", "no database file path"),
        ("sqlite:///x.db?mode=ro", "no query"),
        ("sqlite:///:memory:", "in-memory"),
        ("questdb://", "no host"),
        ("questdb://host:http", "HTTP port"),
        ("questdb://host:0", "HTTP port"),
        ("questdb://host/db", "no path"),
        ("questdb://host?pg_port=x", "pg_port must be one number"),
        ("questdb://host?pg_port=1&pg_port=2", "pg_port must be one number"),
        ("questdb://host?user=admin", "unknown query parameter 'user'"),
    ],
)
def test_a_bad_url_says_what_is_wrong_and_what_is_accepted(url, why):
    with pytest.raises(StoreError, match=why) as caught:
        open_store(url)
    assert "accepted forms: sqlite:///RELATIVE/PATH, sqlite:////ABSOLUTE/PATH, or questdb://" in str(caught.value)
    assert isinstance(caught.value, StoreConfigError) and not isinstance(caught.value, ValueError)


def test_credentials_in_a_url_are_refused_and_not_echoed():
    with pytest.raises(StoreError, match="QF_QUESTDB_USER") as caught:
        open_store("questdb://admin:hunter2@host")
    assert "hunter2" not in str(caught.value)


def test_the_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("QF_STORE_TIMEOUT_S", raising=False)
    assert timeout_s() == 5.0
    monkeypatch.setenv("QF_STORE_TIMEOUT_S", "0.5")
    assert timeout_s() == 0.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv("QF_STORE_TIMEOUT_S", bad)
        with pytest.raises(StoreError, match="QF_STORE_TIMEOUT_S"):
            timeout_s()


def test_the_features_table_follows_the_feature_registry():
    assert FEATURES.names[5:] == FEATURE_NAMES
    assert FEATURES.key == ("instrument", "ts", "seq")
    assert {name: t.key for name, t in TABLES.items() if not t.per_instrument} == {
        "dead_letters": ("feed", "ts", "digest"),
        "run_metrics": ("run_id", "ts", "worker"),
        "predictions": ("instrument", "ts", "seq", "horizon"),
        "vol_forecasts": ("instrument", "ts", "seq", "horizon", "model"),
        "backtests": ("id", "ts"),
    }


def test_digest_is_stable_and_fits_a_signed_long():
    assert digest(b"x") == 5395104992458594383  # BLAKE2b-64 with the top bit cleared; must never change
    assert digest(b"x") != digest(b"y")
    assert all(0 <= digest(bytes([i])) < 2**63 for i in range(256))
